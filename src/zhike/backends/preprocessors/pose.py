"""OpenPose-style pose maps from MediaPipe Pose (whose models ship inside the mediapipe 0.10.21 wheel, so it
works offline). MediaPipe's 33 landmarks are mapped onto the 18 OpenPose COCO keypoints that the ControlNet
openpose models were trained on, and drawn the way ControlNet's annotator draws them."""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from zhike.backends.loaders import LoadEnv, loader
from zhike.core.errors import InvalidInput
from zhike.core.specs import ModelSpec

# OpenPose COCO-18 order -> MediaPipe landmark index (neck, index 1, is the midpoint of the shoulders).
OPENPOSE_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)  # fmt: skip
MP_INDEX = (0, -1, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)
# Limbs (1-based keypoint pairs) and colours (RGB) exactly as in ControlNet's openpose util.draw_bodypose.
LIMBS = (
    (2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11),
    (2, 12), (12, 13), (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18),
)  # fmt: skip
COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip


@dataclass
class LoadedPose:
    """A MediaPipe Pose graph. Not thread-safe: every call goes through `lock`."""

    pose: Any
    nbytes: int
    lock: threading.Lock = field(default_factory=threading.Lock)

    def process(self, rgb: np.ndarray) -> Any:
        with self.lock:
            return self.pose.process(rgb)


def _model_files() -> list[Path]:
    import mediapipe as mp

    root = Path(mp.__file__).parent / "modules"
    return [root / "pose_detection" / "pose_detection.tflite", root / "pose_landmark" / "pose_landmark_full.tflite"]


POSE = ModelSpec.bundled("mediapipe-pose", kind="pose", family="mediapipe", package="mediapipe")


@loader(family="mediapipe", kind="pose", format="bundled")
def _load_registered(spec: ModelSpec, env: LoadEnv) -> LoadedPose:
    return load_pose()


def load_pose() -> LoadedPose:
    import mediapipe as mp

    # model_complexity=1 ("full"): the only landmark model in the wheel; 0 and 2 would be downloaded.
    pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, min_detection_confidence=0.5)
    # Estimate: the weights plus about as much again for the interpreter's tensors.
    nbytes = 2 * sum(p.stat().st_size for p in _model_files() if p.is_file())
    loaded = LoadedPose(pose=pose, nbytes=nbytes)
    weakref.finalize(loaded, pose.close)  # free the native graph when the cache drops the entry
    return loaded


def detect_keypoints(loaded: LoadedPose, image: Image.Image, *, min_visibility: float = 0.3) -> list[dict]:
    """The 18 OpenPose keypoints in pixels: {name, x, y, visibility, present}. `present` is false for points
    MediaPipe guesses (visibility below `min_visibility`, e.g. occluded) or that lie outside the image."""
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    h, w = rgb.shape[:2]
    result = loaded.process(rgb)
    if result.pose_landmarks is None:
        raise InvalidInput(
            "no person was detected in the image; pose needs a clearly visible person", field="params.image"
        )
    lm = result.pose_landmarks.landmark
    pts = []
    for name, i in zip(OPENPOSE_NAMES, MP_INDEX, strict=True):
        if i < 0:  # neck
            a, b = lm[11], lm[12]
            x, y, v = (a.x + b.x) / 2, (a.y + b.y) / 2, min(a.visibility, b.visibility)
        else:
            x, y, v = lm[i].x, lm[i].y, lm[i].visibility
        px, py = x * w, y * h
        inside = 0 <= px < w and 0 <= py < h
        pts.append({"name": name, "x": round(px, 1), "y": round(py, 1), "visibility": round(v, 3),
                    "present": bool(inside and v >= min_visibility)})  # fmt: skip
    return pts


def draw_openpose(keypoints: list[dict], size: tuple[int, int]) -> Image.Image:
    """ControlNet 1.1's body drawing: limbs as filled ellipses dimmed to 60 %, then joints as full-colour dots.
    Stick width and dot radius (4 px at 512) scale with the image so a resized map looks like a 512 one."""
    w, h = size
    canvas = np.zeros((h, w, 3), np.uint8)
    s = max(w, h) / 512
    stick, radius = max(1, round(4 * s)), max(1, round(4 * s))
    for (a, b), color in zip(LIMBS, COLORS, strict=False):
        p, q = keypoints[a - 1], keypoints[b - 1]
        if not (p["present"] and q["present"]):
            continue
        mx, my = (p["x"] + q["x"]) / 2, (p["y"] + q["y"]) / 2
        length = math.hypot(p["x"] - q["x"], p["y"] - q["y"])
        angle = math.degrees(math.atan2(p["y"] - q["y"], p["x"] - q["x"]))
        poly = cv2.ellipse2Poly((int(mx), int(my)), (int(length / 2), stick), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, poly, color)
    canvas = (canvas * 0.6).astype(np.uint8)
    for k, color in zip(keypoints, COLORS, strict=True):
        if k["present"]:
            cv2.circle(canvas, (int(k["x"]), int(k["y"])), radius, color, thickness=-1)
    return Image.fromarray(canvas)


def pose_map(loaded: LoadedPose, image: Image.Image, *, min_visibility: float = 0.3) -> tuple[Image.Image, list[dict]]:
    keypoints = detect_keypoints(loaded, image, min_visibility=min_visibility)
    if not any(k["present"] for k in keypoints):
        raise InvalidInput(
            "no person was detected in the image (no body part is clearly visible)", field="params.image"
        )
    return draw_openpose(keypoints, image.size), keypoints
