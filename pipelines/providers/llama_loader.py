"""Loading llama.cpp models so that they run on this CPU: no AMX weight repacking.

llama-cpp-python compiles ggml with `-march=native`. On a CPU with AMX (Intel Sapphire Rapids and later,
common in cloud VMs) ggml then repacks the weights of Q4_0/Q4_1/Q8_0 models into an AMX buffer, and the
first matrix product in `ggml_backend_amx_mul_mat` segfaults on some of those machines (seen here with
the bundled SmolLM2 Q4_1 and llama-cpp-python 0.3.36; upstream ggml-org/llama.cpp#20824, closed without a
fix; dspy's CI dropped the AMX variant for the same crash). The whole process dies, so every stage that
loads the LLM would crash-loop on such a machine.

llama.cpp's own switch is the model parameter `use_extra_bufts` (`--no-repack` in its CLI), which
llama-cpp-python's `Llama` does not expose; it reads `llama_model_default_params()` in its constructor, so
the defaults are wrapped while a model loads. Only AMX builds are changed: elsewhere the extra buffer
types are the AVX2 interleaved repacks that make Q4_0 faster and do not crash.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import llama_cpp.llama_cpp as llama_lib
from llama_cpp import Llama

_ORIGINAL_DEFAULTS = llama_lib.llama_model_default_params
_PATCH_LOCK = threading.Lock()


@cache
def backend_has_amx() -> bool:
    """True when the ggml CPU backend in this process was built with AMX kernels."""
    return b"AMX_INT8 = 1" in (llama_lib.llama_print_system_info() or b"")


def _defaults_without_repacking() -> Any:
    params = _ORIGINAL_DEFAULTS()
    params.use_extra_bufts = False
    return params


@contextmanager
def _repacking_off() -> Iterator[None]:
    with _PATCH_LOCK:  # the defaults are module state: one model loads at a time while they are wrapped
        llama_lib.llama_model_default_params = _defaults_without_repacking
        try:
            yield
        finally:
            llama_lib.llama_model_default_params = _ORIGINAL_DEFAULTS


def load_llama(model_path: str, **kwargs: Any) -> Llama:
    """`Llama(model_path, **kwargs)`, without the AMX weight repacking that crashes (see the module)."""
    if not backend_has_amx():
        return Llama(model_path=model_path, **kwargs)
    with _repacking_off():
        return Llama(model_path=model_path, **kwargs)


def disable_repacking_for_process() -> None:
    """For a process that builds its models itself (llama-cpp-python's OpenAI-compatible server): every
    model it loads skips the AMX repack from now on."""
    if backend_has_amx():
        llama_lib.llama_model_default_params = _defaults_without_repacking
