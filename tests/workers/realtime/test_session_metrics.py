"""Server events in, Prometheus figures out."""

from __future__ import annotations

from prometheus_client import REGISTRY

from workers.realtime.session_metrics import SessionMetrics


def value(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def counts() -> list[float]:
    return [
        value("voicechain_realtime_voice_to_voice_seconds_count"),
        value("voicechain_realtime_interruptions_total"),
        value("voicechain_realtime_errors_total", {"kind": "invalid_event"}),
    ]


def test_latency_interruptions_and_errors_are_counted() -> None:
    before = counts()
    metrics = SessionMetrics()
    for event in (
        {"type": "input_audio_buffer.speech_stopped"},
        {"type": "response.output_audio.delta"},
        {"type": "response.output_audio.delta"},  # only the first delta of a reply counts
        {"type": "response.done", "response": {"status": "cancelled"}},
        {"type": "response.done", "response": {"status": "completed"}},
        {"type": "error", "error": {"code": "invalid_event"}},
    ):
        metrics.observe(event)
    assert [a - b for a, b in zip(counts(), before, strict=True)] == [1, 1, 1]
