"""A Prometheus port per worker process group.

Celery's prefork pool runs tasks in child processes, so the children record into prometheus_client's
multiprocess files (`PROMETHEUS_MULTIPROC_DIR`) and the main worker process serves the merged view on
`worker_metrics_port`. The directory must be set before any metric is created, hence `import_modules`
(Celery 5.7 sends it just before importing the task modules; `celeryd_init` comes after). Off unless
the port is set.

This module must not import prometheus_client or any module defining metrics at import time.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from typing import Any

from celery.signals import (
    celeryd_init,
    import_modules,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from pipelines.settings import get_settings

log = logging.getLogger(__name__)
_state: dict[str, Any] = {}
#: Modules that define VoiceChain metrics; they must be imported after the directory is set.
OUR_METRIC_MODULES = ("pipelines.observability.metrics", "pipelines.providers.base")


@import_modules.connect
@celeryd_init.connect
def _prepare_multiprocess_dir(**_: Any) -> None:
    settings = get_settings()
    if settings.worker_metrics_port is None or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    if any(name in sys.modules for name in OUR_METRIC_MODULES):  # too late: serve the main process only
        log.warning("VoiceChain metrics were created before the worker started; child metrics are missing")
        return
    path = tempfile.mkdtemp(prefix="voicechain-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    _state["created_dir"] = path
    if "prometheus_client" in sys.modules:
        # Flower's Celery CLI plugin imports prometheus_client before any app code runs; the value class
        # is chosen at its import, so choose again now that the directory is set. Metrics created
        # earlier (Flower's own, unused in a worker) keep the in-process values.
        from prometheus_client import values

        values.ValueClass = values.get_value_class()


@worker_ready.connect
def _serve(**_: Any) -> None:
    settings = get_settings()
    if settings.worker_metrics_port is None:
        return
    from pipelines.observability.metrics import serve_metrics

    _state["server"] = serve_metrics(settings.worker_metrics_port, settings.metrics_addr)
    log.info("worker metrics on %s:%d/metrics", settings.metrics_addr, settings.worker_metrics_port)


@worker_process_shutdown.connect
def _child_exit(pid: int | None = None, **_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from pipelines.observability.metrics import mark_process_dead

        mark_process_dead(pid or os.getpid())


@worker_shutdown.connect
def _cleanup(**_: Any) -> None:
    server = _state.pop("server", None)
    if server is not None:
        server.shutdown()
    path = _state.pop("created_dir", None)
    if path:
        shutil.rmtree(path, ignore_errors=True)
