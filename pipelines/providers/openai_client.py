"""What every `openai` provider shares: building a client for one endpoint, and mapping its errors.

The client's own retries are switched off (`max_retries=0`): the base classes in `base.py` own retries,
so a transient failure is retried once per policy, not twice over. Errors become `ProviderError`:
timeouts, connection failures, 408/409/429 and 5xx are transient; any other 4xx is not (a bad key,
an unknown model or a refused input will not get better by asking again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import openai

from pipelines.providers.base import ProviderError, RetryPolicy

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 409, 429})
#: Placeholder key for servers that want none (llama.cpp, Ollama); the `openai` client insists on one.
NO_KEY = "not-needed"


@dataclass(frozen=True)
class Endpoint:
    """One OpenAI-compatible server and model, as configured for one stage."""

    model: str
    base_url: str | None = None  # None: api.openai.com
    api_key: str | None = None
    timeout_s: float = 30.0
    attempts: int = 3

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.base_url, api_key=self.api_key or NO_KEY, timeout=self.timeout_s, max_retries=0
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(attempts=max(1, self.attempts))


def is_transient_status(status: int) -> bool:
    return status in TRANSIENT_STATUS or status >= 500


def to_provider_error(exc: openai.OpenAIError, what: str) -> ProviderError:
    """A `ProviderError` saying what failed and whether trying again can help."""
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError(f"{what}: timed out", transient=True)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(f"{what}: cannot connect ({exc})", transient=True)
    if isinstance(exc, openai.APIStatusError):
        detail = exc.message or ""
        return ProviderError(
            f"{what}: HTTP {exc.status_code}: {detail}", transient=is_transient_status(exc.status_code)
        )
    return ProviderError(f"{what}: {exc}")


def guarded(what: str, call: Callable[[], T]) -> T:
    """Run one request, turning the client's exceptions into `ProviderError`."""
    try:
        return call()
    except openai.OpenAIError as exc:
        raise to_provider_error(exc, what) from exc
