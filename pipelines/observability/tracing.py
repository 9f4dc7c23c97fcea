"""OpenTelemetry tracing, on only when an OTLP endpoint is configured.

`opentelemetry-sdk` and the OTLP exporter are the optional `[otel]` extra: every function here is safe
to call without them (it does nothing), and without `configure_tracing()` spans are non-recording.
Context crosses process boundaries as W3C `traceparent` headers (`inject` / `extract`), which the
workers carry in Celery task headers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
except ImportError:  # pragma: no cover - the api ships with openai-agents, but stay import-safe
    trace = None  # type: ignore[assignment]

_configured = False


def available() -> bool:
    return trace is not None


def configure_tracing(service: str, endpoint: str | None, exporter: Any = None) -> bool:
    """Export spans of this process to `endpoint` (OTLP/HTTP, e.g. http://collector:4318), or to
    `exporter` (tests). Returns whether tracing is on. Call after fork in prefork workers."""
    global _configured
    if trace is None or (endpoint is None and exporter is None):
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTLP endpoint set but opentelemetry-sdk is missing: pip install 'voicechain[otel]'")
        return False
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{(endpoint or '').rstrip('/')}/v1/traces")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    _configured = True
    return True


def enabled() -> bool:
    return _configured


def shutdown() -> None:
    """Flush pending spans (process exit, worker child shutdown)."""
    if trace is not None and _configured:
        provider = trace.get_tracer_provider()
        if hasattr(provider, "shutdown"):
            provider.shutdown()


def tracer() -> Any:
    return trace.get_tracer("voicechain") if trace is not None else None


def inject(carrier: MutableMapping[str, Any]) -> None:
    """Write the current trace context (`traceparent`) into `carrier`."""
    if trace is not None and _configured:
        propagate.inject(carrier)


def current_trace_id() -> str | None:
    if trace is None or not _configured:
        return None
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


@contextmanager
def span(name: str, carrier: Mapping[str, Any] | None = None, **attributes: Any) -> Iterator[Any]:
    """A span named `name`, child of the context in `carrier` if given, else of the current one."""
    if trace is None or not _configured:
        yield None
        return
    parent = propagate.extract(dict(carrier)) if carrier is not None else None
    with tracer().start_as_current_span(name, context=parent) as current:
        for key, value in attributes.items():
            if value is not None:
                current.set_attribute(key, value)
        yield current


def start_span(name: str, carrier: Mapping[str, Any] | None = None, **attributes: Any) -> Any:
    """Start a span and make it current until `end_span(handle)` (for signal-based hooks)."""
    if trace is None or not _configured:
        return None
    parent = propagate.extract(dict(carrier)) if carrier is not None else None
    current = tracer().start_span(name, context=parent)
    for key, value in attributes.items():
        if value is not None:
            current.set_attribute(key, value)
    token = otel_context.attach(trace.set_span_in_context(current))
    return current, token


def end_span(handle: Any, error: BaseException | None = None) -> None:
    if handle is None:
        return
    current, token = handle
    if error is not None:
        current.record_exception(error)
        current.set_status(trace.Status(trace.StatusCode.ERROR, str(error)[:200]))
    otel_context.detach(token)
    current.end()
