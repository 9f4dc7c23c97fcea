"""Prometheus figures of a live session, read off the server events it sends.

Observing the outgoing events (rather than instrumenting the session) keeps the metrics honest: they
count what the client was actually told. Voice-to-voice here runs from `speech_stopped` to the first
audio delta of the reply, so it excludes the silence the VAD waits for (`silence_duration_ms`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pipelines.observability.metrics import count_interruption, count_realtime_error, observe_voice_to_voice


@dataclass
class SessionMetrics:
    _speech_stopped_at: float | None = None

    def observe(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "input_audio_buffer.speech_stopped":
            self._speech_stopped_at = time.monotonic()
        elif kind == "response.output_audio.delta" and self._speech_stopped_at is not None:
            observe_voice_to_voice(time.monotonic() - self._speech_stopped_at)
            self._speech_stopped_at = None
        elif kind == "response.done" and event.get("response", {}).get("status") == "cancelled":
            count_interruption()
        elif kind == "error":
            count_realtime_error(str(event.get("error", {}).get("code") or "unknown"))
