"""The stages alone: turn detection, what-was-heard, audio codecs, protocol validation."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.realtime.audio import InputDecoder, OutputEncoder, chunk_bytes, duration_ms
from pipelines.realtime.config import TurnDetection
from pipelines.realtime.conversation import Spoken, heard_text
from pipelines.realtime.message_out import first_clause
from pipelines.realtime.protocol import ProtocolError, parse_client_event
from pipelines.realtime.turns import Pausing, Resumed, SpeechStarted, SpeechStopped, TurnDetector
from tests.pipelines.realtime.fakes import LoudnessVAD


def frames(pattern: str) -> np.ndarray:
    """'S' = 32 ms of speech, '.' = 32 ms of silence, at 16 kHz."""
    loud = np.full(512, 0.3, dtype=np.float32)
    quiet = np.zeros(512, dtype=np.float32)
    return np.concatenate([loud if c == "S" else quiet for c in pattern])


def test_turn_detector_events_in_order() -> None:
    det = TurnDetector(LoudnessVAD(), TurnDetection(silence_duration_ms=500), speculate_after_ms=160)
    events = det.feed(frames("..SSSS" + "." * 20))
    assert [type(e) for e in events] == [SpeechStarted, Pausing, SpeechStopped]
    assert events[0] == SpeechStarted(audio_start_ms=64)
    assert isinstance(events[2], SpeechStopped) and events[2].audio_end_ms >= 64 + 128 + 500


def test_turn_detector_pause_then_resume() -> None:
    det = TurnDetector(LoudnessVAD(), TurnDetection(silence_duration_ms=500), speculate_after_ms=160)
    events = det.feed(frames("SSS" + "." * 8 + "SS"))
    assert [type(e) for e in events] == [SpeechStarted, Pausing, Resumed]
    assert det.speaking


def test_chunked_feed_equals_whole_feed() -> None:
    audio = frames("..SSSS" + "." * 20)
    whole = TurnDetector(LoudnessVAD(), TurnDetection()).feed(audio)
    det = TurnDetector(LoudnessVAD(), TurnDetection())
    parts = [e for i in range(0, len(audio), 320) for e in det.feed(audio[i : i + 320])]
    assert parts == whole


def test_heard_text_cuts_inside_a_sentence() -> None:
    spoken = [Spoken("One two three four.", 0, 400), Spoken("Five six seven eight.", 400, 800)]
    assert heard_text(spoken, 0) == ""
    assert heard_text(spoken, 200) == "One two"
    assert heard_text(spoken, 400) == "One two three four."
    assert heard_text(spoken, 700) == "One two three four. Five six seven"
    assert heard_text(spoken, 5000) == "One two three four. Five six seven eight."


def test_first_clause_only_for_long_openings() -> None:
    assert first_clause("Sure, I") is None
    assert first_clause("The capital of France is Paris, and") == "The capital of France is Paris,"


def test_audio_round_trip_lengths() -> None:
    dec = InputDecoder("audio/pcm")
    pcm = (np.sin(np.arange(24_000) / 10) * 8000).astype("<i2").tobytes()
    out = np.concatenate([dec.decode(pcm[i : i + 960]) for i in range(0, len(pcm), 960)])
    assert 0 <= 16_000 - len(out) < 400  # the streaming resampler holds back ~20 ms until more arrives
    enc = OutputEncoder("audio/pcm", 22_050)
    data = enc.encode(np.zeros(22_050, dtype=np.int16), last=True)
    assert abs(duration_ms(len(data), "audio/pcm") - 1000) < 5
    assert all(len(c) == 4800 for c in chunk_bytes(data, "audio/pcm", 100)[:-1])
    ulaw = OutputEncoder("audio/pcmu", 22_050).encode(np.zeros(22_050, dtype=np.int16), last=True)
    assert abs(len(ulaw) - 8000) < 10
    assert 0 <= 16_000 - len(InputDecoder("audio/pcmu").decode(ulaw)) < 480  # ~26 ms held


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("[1]", "invalid_event"),
        (
            '{"type": "response.create", "response": {"output_modalities": ["video"]}}',
            "invalid_request_error",
        ),
        ('{"type": "conversation.item.fetch", "item_id": "x"}', "unknown_event"),
    ],
)
def test_bad_client_events(raw: str, code: str) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_client_event(raw)
    assert err.value.code == code
