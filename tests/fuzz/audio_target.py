"""Coverage-guided fuzz target (atheris/libFuzzer) for upload validation and decoding.

Run by `tests/fuzz/test_audio_fuzz.py` in a subprocess for a bounded time; by hand:
`python tests/fuzz/audio_target.py CORPUS_DIR -max_total_time=60`. Any exception other than
`AudioRejected` (the documented refusal) is a finding, and so is a decode that exceeds its bounds.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from pipelines.audio.decode import decode_to_mono
    from pipelines.audio.validation import AudioRejected, inspect_audio

MAX_BYTES = 256 * 1024
MAX_SECONDS = 30.0


def test_one_input(data: bytes) -> None:
    try:
        info = inspect_audio(data, max_bytes=MAX_BYTES, max_seconds=MAX_SECONDS)
    except AudioRejected:
        return
    assert 0 < info.duration_s <= MAX_SECONDS + 1, info
    try:
        samples = decode_to_mono(data, target_rate=16_000, max_seconds=MAX_SECONDS, max_bytes=MAX_BYTES)
    except AudioRejected:
        return
    assert samples.ndim == 1 and len(samples) <= 16_000 * (MAX_SECONDS + 1), samples.shape
    assert float(abs(samples).max(initial=0.0)) <= 1.0


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
