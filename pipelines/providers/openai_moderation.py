"""Moderation through OpenAI's `moderations` endpoint (or a server that imitates it)."""

from __future__ import annotations

from pipelines.providers.moderation import ModerationResult, Moderator
from pipelines.providers.openai_client import Endpoint, guarded


class OpenAIModerator(Moderator):
    name = "openai"

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.retry = endpoint.retry_policy()
        self._client = endpoint.client()

    def _moderate_impl(self, text: str) -> ModerationResult:
        response = guarded(
            "openai moderation",
            lambda: self._client.moderations.create(model=self.endpoint.model, input=text),
        )
        result = response.results[0]
        categories = {k: bool(v) for k, v in result.categories.model_dump(by_alias=True).items() if v}
        scores = {k: float(v) for k, v in result.category_scores.model_dump(by_alias=True).items() if v}
        return ModerationResult(
            flagged=bool(result.flagged), categories=tuple(sorted(categories)), scores=scores
        )
