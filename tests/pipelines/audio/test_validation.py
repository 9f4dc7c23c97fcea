from __future__ import annotations

import tracemalloc

import pytest

from pipelines.audio.validation import ALLOWED_FORMATS, AudioInfo, AudioRejected, inspect_audio
from tests.pipelines.audio import corpus

MAX_BYTES = 25 * 1024 * 1024
MAX_SECONDS = 600.0
REJECTED = corpus.REJECTED


def inspect(data: bytes, *, max_bytes: int = MAX_BYTES, max_seconds: float = MAX_SECONDS) -> AudioInfo:
    return inspect_audio(data, max_bytes=max_bytes, max_seconds=max_seconds)


@pytest.mark.parametrize("name", REJECTED)
def test_rejects_malformed_uploads_with_code_and_status(name: str) -> None:
    build, code, status = REJECTED[name]
    with pytest.raises(AudioRejected) as caught:
        inspect(build())
    assert (caught.value.code, caught.value.status) == (code, status), caught.value.message
    assert isinstance(caught.value, ValueError)
    assert str(caught.value)  # a human message for the API's error body


def test_size_is_checked_before_anything_else() -> None:
    with pytest.raises(AudioRejected) as caught:
        inspect(corpus.random_bytes(), max_bytes=100)
    assert (caught.value.code, caught.value.status) == ("too_large", 413)


def test_upload_of_exactly_max_bytes_is_accepted() -> None:
    data = corpus.wav()
    assert inspect(data, max_bytes=len(data)).frames == 16_000


def test_flac_cut_in_half_is_refused_not_crashing() -> None:
    """libsndfile reports a cut FLAC as lost sync mid-stream; either reading of it is a refusal."""
    with pytest.raises(AudioRejected) as caught:
        inspect(corpus.cut_in_half("FLAC"))
    assert caught.value.code in {"truncated", "decode_failed"}


@pytest.mark.parametrize("container", sorted(ALLOWED_FORMATS))
@pytest.mark.parametrize("rate", corpus.RATES)
@pytest.mark.parametrize("channels", [1, 2])
def test_good_files_report_decoded_duration(container: str, rate: int, channels: int) -> None:
    info = inspect(corpus.good(container, rate, channels))
    assert (info.format, info.sample_rate, info.channels) == (container, rate, channels)
    assert info.duration_s == pytest.approx(1.0, rel=0.02)
    assert info.frames == pytest.approx(rate, rel=0.02)


def test_duration_limit_is_inclusive() -> None:
    assert inspect(corpus.wav(seconds=2.0), max_seconds=2.0).duration_s == 2.0
    with pytest.raises(AudioRejected) as caught:
        inspect(corpus.wav(seconds=2.0), max_seconds=1.999)
    assert caught.value.code == "too_long"


def test_understated_data_size_reads_only_what_is_declared() -> None:
    """The header is allowed to promise less than the file holds; the trailing bytes are ignored."""
    assert inspect(corpus.wav_understated_data_size()).frames == 50


def test_streaming_wav_with_unknown_sizes_is_accepted() -> None:
    assert inspect(corpus.wav_streaming_sizes()).frames == 16_000


def test_flac_declaring_fewer_frames_yields_no_more_than_declared() -> None:
    """libsndfile stops a FLAC at its STREAMINFO total: a forged total can shorten, never lengthen."""
    assert inspect(corpus.flac_with_streaminfo(total_frames=1000)).frames == 1000


def test_bomb_decoding_stays_at_one_block_of_memory() -> None:
    """Decoding 10 minutes at once would allocate 19 MB of float32; the block reader holds ~128 KB."""
    bomb = corpus.silence_bomb("FLAC")
    tracemalloc.start()
    try:
        with pytest.raises(AudioRejected):
            inspect(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024


def test_bomb_within_a_generous_limit_is_measured_not_trusted() -> None:
    info = inspect(corpus.silence_bomb("OGG"), max_seconds=corpus.BOMB_SECONDS + 1)
    assert info.duration_s == pytest.approx(corpus.BOMB_SECONDS, rel=0.001)
