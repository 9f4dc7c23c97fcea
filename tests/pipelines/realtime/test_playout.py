"""The WebRTC playout queue: frames in order, the buffer events, and what a cut reports as played."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.realtime.playout import FRAME_BYTES, SILENCE, Playout, StereoTo24k
from pipelines.realtime.protocol import validate_server_event


def make() -> tuple[Playout, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    return Playout(events.append), events


def test_frames_play_in_order_then_silence_with_started_and_stopped() -> None:
    playout, events = make()
    audio = bytes(range(256)) * 15  # 3840 bytes: four whole frames
    playout.feed("resp_1", "item_1", audio[:1000])
    playout.feed("resp_1", "item_1", audio[1000:])
    playout.finish("resp_1")
    frames = [playout.next_frame() for _ in range(5)]
    assert b"".join(frames[:4]) == audio and frames[4] == SILENCE
    assert [e["type"] for e in events] == ["output_audio_buffer.started", "output_audio_buffer.stopped"]
    assert playout.played_ms["item_1"] == 80
    for e in events:
        validate_server_event(e)


def test_a_short_tail_is_padded_and_stopped_waits_for_the_end_of_the_response() -> None:
    playout, events = make()
    playout.feed("resp_1", "item_1", bytes(FRAME_BYTES + 10))
    playout.next_frame()
    playout.next_frame()  # the 10-byte tail is held: more audio may come, so no stopped yet
    assert [e["type"] for e in events] == ["output_audio_buffer.started"]
    playout.finish("resp_1")
    assert len(playout.next_frame()) == FRAME_BYTES
    playout.next_frame()
    assert events[-1]["type"] == "output_audio_buffer.stopped"


def test_clear_drops_the_queue_reports_what_played_and_ignores_late_audio() -> None:
    playout, events = make()
    playout.feed("resp_1", "item_1", bytes([1]) * FRAME_BYTES * 50)
    for _ in range(7):
        playout.next_frame()
    cut = playout.clear()
    assert cut is not None and (cut.item_id, cut.played_ms) == ("item_1", 140)
    assert events[-1] == {**events[-1], "type": "output_audio_buffer.cleared", "response_id": "resp_1"}
    playout.feed("resp_1", "item_1", bytes([1]) * FRAME_BYTES)  # still in flight from the model
    assert playout.next_frame() == SILENCE and not playout.active
    assert playout.clear() is None  # nothing playing: no second cleared
    playout.feed("resp_2", "item_2", bytes([2]) * FRAME_BYTES)
    assert playout.next_frame() == bytes([2]) * FRAME_BYTES


def test_stereo_48k_becomes_mono_24k() -> None:
    converter = StereoTo24k()
    t = np.arange(48_000) / 48_000
    tone = (np.sin(2 * np.pi * 440 * t) * 10_000).astype(np.int16)
    stereo = np.stack([tone, tone], axis=1).reshape(1, -1)
    out = b"".join(converter.convert(stereo[:, i : i + 1920], 2) for i in range(0, stereo.shape[1], 1920))
    samples = np.frombuffer(out, dtype="<i2")
    assert 23_000 <= len(samples) <= 24_000  # the resampler holds back a few ms
    assert 8_000 < np.abs(samples[1000:]).max() < 11_000


def test_two_x_hands_each_chunk_on_whole_and_at_once_both_ways() -> None:
    """A call's audio is converted 20 ms at a time: an impulse comes out in the same chunk it went in
    (no burst-wise hold-back), within half a millisecond, and a tone keeps its level."""
    from pipelines.realtime.playout import TwoX

    up, down = TwoX(), TwoX()
    chunk = np.zeros(480, dtype=np.float32)
    chunk[100] = 1.0
    outs = [up.up(np.zeros(480, dtype=np.float32)), up.up(chunk)]
    assert [len(o) for o in outs] == [960, 960]
    assert abs(int(np.argmax(outs[1])) - 200) <= 24
    back = [down.down(o) for o in outs]
    assert [len(b) for b in back] == [480, 480] and abs(int(np.argmax(back[1])) - 100) <= 24
    t = np.arange(24_000) / 24_000
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    converter = TwoX()
    played = np.concatenate([converter.up(tone[i : i + 480]) for i in range(0, 24_000, 480)])
    assert abs(np.sqrt(np.mean(played[999:] ** 2)) - np.sqrt(0.5)) < 0.01
