"""The worker app of workers/celery_app.py whose pool process finishes starting only once a file exists:
a model load as slow as a test wants (Whisper and the LLM loading on a loaded machine take seconds)."""

from __future__ import annotations

import os
import time
from typing import Any

from celery.signals import worker_process_init

from workers.celery_app import app

__all__ = ["app"]


@worker_process_init.connect
def _wait_for_release(**_: Any) -> None:
    path = os.environ["VOICECHAIN_TEST_POOL_RELEASE"]
    while not os.path.exists(path):
        time.sleep(0.1)
