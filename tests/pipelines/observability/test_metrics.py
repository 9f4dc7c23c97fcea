"""Scrape-time collectors and the helpers the realtime pool imports."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from pipelines.observability import metrics


def _scrape(*collectors) -> str:
    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry).decode()


def test_queue_depth_reads_each_queue_at_scrape_time() -> None:
    depths = {"stt": 3, "agent": 0}
    text = _scrape(metrics.QueueDepthCollector(lambda: depths))
    assert 'voicechain_queue_depth{queue="stt"} 3.0' in text
    assert 'voicechain_queue_depth{queue="agent"} 0.0' in text
    assert "voicechain_broker_up 1.0" in text


def test_queue_depth_answers_when_the_broker_is_down() -> None:
    def broken() -> dict[str, int]:
        raise ConnectionError("down")

    text = _scrape(metrics.QueueDepthCollector(broken))
    assert "voicechain_broker_up 0.0" in text and "voicechain_queue_depth{" not in text


def test_job_status_collector() -> None:
    text = _scrape(metrics.JobStatusCollector(lambda: {"queued": 2, "running": 1}))
    assert 'voicechain_jobs{status="queued"} 2.0' in text and 'voicechain_jobs{status="running"} 1.0' in text


def test_realtime_helpers_move_their_metrics() -> None:
    sessions = metrics.REALTIME_SESSIONS._value.get()
    with metrics.realtime_session():
        assert metrics.REALTIME_SESSIONS._value.get() == sessions + 1
    assert metrics.REALTIME_SESSIONS._value.get() == sessions
    before = metrics.INTERRUPTIONS._value.get()
    metrics.count_interruption()
    metrics.observe_voice_to_voice(0.42)
    metrics.count_realtime_error("decode")
    assert metrics.INTERRUPTIONS._value.get() == before + 1
    text = generate_latest().decode()
    assert "voicechain_realtime_voice_to_voice_seconds_bucket" in text
    assert 'voicechain_realtime_errors_total{kind="decode"}' in text
