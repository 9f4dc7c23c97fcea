"""End-of-turn probability with Smart Turn v3.2 (Pipecat's model, BSD-2-Clause), run with onnxruntime.

The ONNX file ships inside the `pipecat-ai` wheel (installed with `--no-deps`); it is found through the
wheel's file list and checked against a pinned sha256, and pipecat itself is never imported (it would pull
in its whole framework). The model is a Whisper-tiny encoder with a linear head: it takes the last 8 s of
16 kHz audio (left-padded with zeros) as an 80x800 Whisper log-mel and returns P(the speaker has finished).

The features follow Whisper's recipe (as `transformers.WhisperFeatureExtractor` computes them with
`do_normalize=True`): waveform normalised to zero mean and unit variance, 25 ms periodic Hann windows every
10 ms on reflect-padded audio, power spectrum, Slaney mel filterbank (80 bands, 0-8 kHz), log10 floored
at 1e-10, clamped to 8 decades below the maximum, then scaled by (x + 4) / 4.
"""

from __future__ import annotations

import hashlib
import threading
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np
import onnxruntime
from numpy.lib.stride_tricks import sliding_window_view

MODEL_FILE = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"  # pipecat-ai 1.14.0
SAMPLE_RATE = 16_000
WINDOW_SAMPLES = 8 * SAMPLE_RATE
N_FFT = 400
HOP = 160
N_MELS = 80


class TurnModelMissing(RuntimeError):
    """The Smart Turn weights are not installed (or are not the file this code was checked against)."""


def model_path() -> Path:
    """The ONNX file inside the installed `pipecat-ai` wheel, verified against `MODEL_SHA256`."""
    try:
        files = metadata.files("pipecat-ai") or []
    except metadata.PackageNotFoundError as exc:
        raise TurnModelMissing(
            "semantic_vad needs the Smart Turn model: pip install --no-deps 'pipecat-ai==1.14.0'"
        ) from exc
    for f in files:
        if str(f) == MODEL_FILE:
            path = Path(str(f.locate()))
            _check_sha256(path)
            return path
    raise TurnModelMissing(f"{MODEL_FILE} is not in the installed pipecat-ai")


@cache
def _check_sha256(path: Path) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MODEL_SHA256:
        raise TurnModelMissing(f"{path} has sha256 {digest}, expected {MODEL_SHA256}")


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    freq = np.asarray(freq, dtype=np.float64)
    linear = 3.0 * freq / 200.0
    log = 15.0 + np.log(np.maximum(freq, 1e-12) / 1000.0) * (27.0 / np.log(6.4))
    return np.where(freq >= 1000.0, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = 200.0 * mel / 3.0
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log, linear)


@cache
def _mel_filters() -> np.ndarray:
    """[n_fft/2 + 1, 80] triangular filters with Slaney area normalisation."""
    edges = _mel_to_hz(
        np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(SAMPLE_RATE / 2)), N_MELS + 2)
    )
    bins = np.linspace(0, SAMPLE_RATE // 2, N_FFT // 2 + 1)
    rising = (bins[:, None] - edges[None, :-2]) / np.diff(edges)[None, :-1]
    falling = (edges[None, 2:] - bins[:, None]) / np.diff(edges)[None, 1:]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return filters * (2.0 / (edges[2:] - edges[:-2]))[None, :]


@cache
def _hann() -> np.ndarray:
    return np.hanning(N_FFT + 1)[:-1]  # periodic, as torch.hann_window


def log_mel(audio: np.ndarray) -> np.ndarray:
    """The model's input for the last 8 s of `audio` (16 kHz float): [80, 800] float32."""
    x = np.asarray(audio, dtype=np.float32)[-WINDOW_SAMPLES:]
    if len(x) < WINDOW_SAMPLES:
        x = np.concatenate([np.zeros(WINDOW_SAMPLES - len(x), dtype=np.float32), x])
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = sliding_window_view(padded, N_FFT)[::HOP] * _hann()
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2  # [801, 201]
    mel = np.log10(np.maximum(power @ _mel_filters(), 1e-10)).T[:, :-1]  # [80, 800]
    mel = np.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).astype(np.float32)


_sessions: dict[Path, onnxruntime.InferenceSession] = {}
_lock = threading.Lock()


def _session(path: Path) -> onnxruntime.InferenceSession:
    """One ONNX session per process, shared by every realtime session (`run` is thread-safe)."""
    with _lock:
        if path not in _sessions:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1  # ~65 ms on one core; leaves the other to STT/LLM
            options.inter_op_num_threads = 1
            options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
            options.log_severity_level = 4
            _sessions[path] = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        return _sessions[path]


class SmartTurn:
    """`probability(audio)`: how sure the model is that the speaker has finished their turn."""

    def __init__(self, path: Path | None = None) -> None:
        self._session = _session(path or model_path())

    def probability(self, audio: np.ndarray) -> float:
        features = log_mel(audio)[None]
        (out,) = self._session.run(None, {"input_features": features})
        return float(np.asarray(out).reshape(-1)[0])
