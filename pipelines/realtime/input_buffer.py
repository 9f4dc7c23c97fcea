"""The input audio buffer: 16 kHz float32 audio since the last commit, addressed by session sample index.

Sample indices count every sample the session ever received, so VAD times (`audio_start_ms`) and buffer
trims (`prefix_padding_ms`) refer to the same clock. The buffer is bounded: past `max_ms` the oldest audio
is dropped, so a client that never commits cannot grow a session's memory without limit.
"""

from __future__ import annotations

import numpy as np

RATE = 16_000


class AudioBuffer:
    def __init__(self, max_ms: int = 120_000) -> None:
        self._chunks: list[np.ndarray] = []
        self._start = 0  # session sample index of the first buffered sample
        self._end = 0  # session sample index one past the last
        self.max_samples = max_ms * RATE // 1000

    @property
    def end_ms(self) -> int:
        return self._end * 1000 // RATE

    @property
    def duration_ms(self) -> int:
        return (self._end - self._start) * 1000 // RATE

    def append(self, samples: np.ndarray) -> bool:
        """Add audio; return False if old audio had to be dropped to stay under the limit."""
        if len(samples):
            self._chunks.append(samples)
            self._end += len(samples)
        if self._end - self._start > self.max_samples:
            self.keep_from_sample(self._end - self.max_samples)
            return False
        return True

    def keep_from_ms(self, ms: int) -> None:
        self.keep_from_sample(ms * RATE // 1000)

    def keep_from_sample(self, index: int) -> None:
        """Drop audio before session sample `index` (prefix padding, size limit)."""
        drop = min(max(0, index - self._start), self._end - self._start)
        if not drop:
            return
        data = self.peek()[drop:]
        self._chunks = [data] if len(data) else []
        self._start += drop

    def peek(self) -> np.ndarray:
        if not self._chunks:
            return np.zeros(0, dtype=np.float32)
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0]

    def take(self) -> np.ndarray:
        """All buffered audio; the buffer is then empty (its clock goes on)."""
        data = self.peek()
        self.clear()
        return data

    def clear(self) -> None:
        self._chunks = []
        self._start = self._end
