"""The bundled GGUF loads and generates on this CPU; on an AMX build, without the AMX weight repack that
segfaults (ggml-org/llama.cpp#20824: the whole process died on the first token here)."""

from __future__ import annotations

import llama_cpp.llama_cpp as llama_lib
import pytest

from pipelines.providers import llama_loader
from pipelines.providers.bundled import gguf_path

pytestmark = pytest.mark.models


def test_loads_and_generates_without_amx_repacking() -> None:
    llm = llama_loader.load_llama(str(gguf_path()), n_ctx=256, n_threads=1, verbose=False)
    assert llm.model_params.use_extra_bufts is not llama_loader.backend_has_amx()
    out = llm.create_completion("The capital of France is", max_tokens=4, temperature=0.0)
    assert out["choices"][0]["text"].strip()
    # the library's defaults are its own again once the model has loaded
    assert llama_lib.llama_model_default_params is llama_loader._ORIGINAL_DEFAULTS
    assert llama_lib.llama_model_default_params().use_extra_bufts is True
