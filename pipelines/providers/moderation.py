"""The moderation kind of provider: text in, a verdict with the categories that fired out.

A seam for the policy stage: `pipelines.stages.policy` may call `Moderator.moderate(reply)` before its
own rules when `moderation_provider` is set. The base owns retries and the duration metric, as the other
kinds in `base.py` do; a provider implements `_moderate_impl`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipelines.providers.base import RetryPolicy, call_with_retries

if TYPE_CHECKING:
    from pipelines.settings import Settings


@dataclass(frozen=True)
class ModerationResult:
    flagged: bool
    categories: tuple[str, ...] = ()  # the categories that fired, e.g. ("harassment", "violence")
    scores: Mapping[str, float] = field(default_factory=dict)


class Moderator(ABC):
    name: str = "base"
    retry = RetryPolicy()

    def moderate(self, text: str) -> ModerationResult:
        if not text.strip():
            return ModerationResult(flagged=False)
        return call_with_retries(
            lambda: self._moderate_impl(text), self.retry, kind="moderation", provider=self.name
        )

    @abstractmethod
    def _moderate_impl(self, text: str) -> ModerationResult: ...


def build_moderator(settings: Settings) -> Moderator | None:
    """The configured moderator, or None when `moderation_provider` is "none" (see the factory)."""
    from pipelines.providers import factory

    return factory.build_moderator(settings)
