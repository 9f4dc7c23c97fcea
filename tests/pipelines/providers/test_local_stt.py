"""Whisper tiny.en on piper speech: the round trip keeps the words that matter."""

from __future__ import annotations

import difflib
import re

import numpy as np
import pytest

from pipelines.providers.base import SpeechToText
from pipelines.providers.local_stt import WhisperSpeechToText, whisper_model_dir

pytestmark = pytest.mark.models


def _words(text: str) -> list[str]:
    """Lower case, punctuation dropped: Whisper's casing and punctuation are not what is tested."""
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def test_bundled_model_directory_exists() -> None:
    assert (whisper_model_dir() / "model.bin").is_file()


def test_transcribes_piper_speech(stt: SpeechToText, question_16k: np.ndarray) -> None:
    transcript = stt.transcribe(question_16k)
    words = _words(transcript.text)
    assert "weather" in words
    # piper's synthesis is slightly random and Whisper tiny sometimes spells a name oddly ("Perris")
    assert difflib.get_close_matches("paris", words, n=1, cutoff=0.6), words
    assert transcript.text == transcript.text.strip()
    assert transcript.language == "en"
    assert transcript.duration_s == pytest.approx(len(question_16k) / 16_000, abs=0.01)
    assert transcript.segments
    assert all(segment.end_s >= segment.start_s for segment in transcript.segments)


def test_empty_audio_gives_an_empty_transcript(stt: SpeechToText) -> None:
    transcript = stt.transcribe(np.zeros(0, dtype=np.float32))
    assert transcript.text == ""
    assert transcript.segments == ()


def test_refuses_int16_pcm(stt: SpeechToText) -> None:
    with pytest.raises(ValueError, match="float"):
        stt.transcribe(np.zeros(16_000, dtype=np.int16))


def test_refuses_stereo(stt: SpeechToText) -> None:
    with pytest.raises(ValueError, match="mono"):
        stt.transcribe(np.zeros((16_000, 2), dtype=np.float32))


def test_short_clips_take_the_short_window_with_the_same_words(question_16k: np.ndarray) -> None:
    """The 10 s window gives the 30 s window's words on a spoken question, give or take one (its word
    error rate is the same within noise: bench/stt_window.py); silence gives nothing, not a loop."""
    short = WhisperSpeechToText(short_window_s=10)
    full = WhisperSpeechToText()
    assert short._transcribe_short(question_16k, language="en", prompt=None) is not None
    got, expected = _words(short.transcribe(question_16k).text), _words(full.transcribe(question_16k).text)
    matcher = difflib.SequenceMatcher(a=got, b=expected)
    assert len(got) == len(expected) and matcher.ratio() >= 1 - 1 / len(got), (got, expected)
    assert "weather" in got
    silence = np.zeros(16_000, dtype=np.float32)
    assert short.transcribe(silence).text in ("", ".")


def test_long_clips_take_the_ordinary_path(question_16k: np.ndarray) -> None:
    stt = WhisperSpeechToText(short_window_s=10)
    long_clip = np.concatenate([question_16k] * 4 + [np.zeros(16_000 * 4, dtype=np.float32)])
    assert len(long_clip) > 16_000 * 9
    assert stt._transcribe_short(long_clip, language="en", prompt=None) is None
    assert "weather" in _words(stt.transcribe(long_clip).text)


def test_a_clip_takes_the_smallest_window_it_fits_in(question_16k: np.ndarray) -> None:
    """Live sessions use two windows: most questions fit in 10 s (0.44x the 30 s time), longer turns
    in 20 s, and longer still take the ordinary path; 1 s of room is kept after the audio."""
    from pipelines.realtime.engines import realtime_stt_windows
    from pipelines.settings import Settings

    assert realtime_stt_windows(Settings()) == (10.0, 20.0)
    assert realtime_stt_windows(Settings(realtime_stt_small_window_s=0)) == (20.0,)
    assert realtime_stt_windows(Settings(realtime_stt_window_s=0)) == ()
    stt = WhisperSpeechToText(short_window_s=(20.0, 10.0))
    assert stt.short_window_for(16_000 * 4) == 10.0
    assert stt.short_window_for(16_000 * 9) == 10.0 and stt.short_window_for(16_000 * 9 + 400) == 20.0
    assert stt.short_window_for(16_000 * 19 + 400) is None
    assert "weather" in _words(stt.transcribe(question_16k).text)


def test_a_transcript_said_over_and_over_is_kept_once() -> None:
    from pipelines.providers.local_stt import collapse_repeats

    question = "What is the capital of France?"
    assert collapse_repeats(f"{question} {question}") == question
    assert collapse_repeats(f"{question} {question} {question}") == question
    assert collapse_repeats("Hi. Thanks. Hi. Thanks.") == "Hi. Thanks."
    assert collapse_repeats("Hi. Hi. How are you?") == "Hi. Hi. How are you?"  # not a whole repeat
    assert collapse_repeats("Tell me more.") == "Tell me more."


def test_a_prompted_short_window_does_not_repeat_the_question(question_16k: np.ndarray) -> None:
    """With the agent's vocabulary as its prompt and no timestamps, Whisper decoded short piper
    questions two or three times over (WER 4.1 -> 11.4 % in bench/stt_window.py); not any more."""
    stt = WhisperSpeechToText(short_window_s=10)
    prompt = "Get the current weather for a given city. Transfer to Support."
    plain, prompted = (
        _words(stt.transcribe(question_16k).text),
        _words(stt.transcribe(question_16k, prompt=prompt).text),
    )
    assert abs(len(prompted) - len(plain)) <= 1, (plain, prompted)
