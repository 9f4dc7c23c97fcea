"""The agent stage on OpenAI or any OpenAI-compatible server, through the Agents SDK's own models.

Unlike the local default, the model itself chooses tools and handoffs here (no keyword routes). A fresh
`AsyncOpenAI` client is built for every run: `Runner.run_sync` runs each turn on its own event loop,
and an HTTP connection pool must not outlive the loop it was opened on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agents import OpenAIChatCompletionsModel, OpenAIResponsesModel
from agents.models.interface import Model, ModelProvider
from openai import AsyncOpenAI

OpenAIApi = Literal["chat_completions", "responses"]


@dataclass(frozen=True)
class OpenAIAgentModels(ModelProvider):
    base_url: str | None
    api_key: str | None
    default_model: str
    api: OpenAIApi = "chat_completions"
    timeout_s: float = 30.0
    max_attempts: int = 3

    def get_model(self, model_name: str | None) -> Model:
        client = AsyncOpenAI(
            base_url=self.base_url,
            api_key=self.api_key or "not-needed",  # local servers often take none; the SDK insists on one
            timeout=self.timeout_s,
            max_retries=max(0, self.max_attempts - 1),  # the client backs off on 429 and 5xx
        )
        name = model_name or self.default_model
        if self.api == "responses":
            return OpenAIResponsesModel(model=name, openai_client=client)
        return OpenAIChatCompletionsModel(model=name, openai_client=client)
