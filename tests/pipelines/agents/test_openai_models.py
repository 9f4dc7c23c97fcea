"""The agent stage's SDK Runner on an OpenAI-compatible server (llama.cpp's), not the local wrapper."""

from __future__ import annotations

import pytest
from agents import Agent

from pipelines.agents.openai_models import OpenAIAgentModels
from pipelines.agents.sdk import SdkResponder
from pipelines.settings import Settings
from pipelines.stages.context import StageContext
from pipelines.storage.turns import HistoryEntry
from tests.services import LLAMA_SERVER_KEY

pytestmark = [pytest.mark.integration, pytest.mark.models]


def test_sdk_runner_answers_through_the_openai_chat_model(llama_server: str) -> None:
    responder = SdkResponder(OpenAIAgentModels(llama_server, LLAMA_SERVER_KEY, "smollm2"), model="smollm2")
    agent = Agent(name="Assistant", instructions="Answer in one short sentence.")
    history = [HistoryEntry(user="My name is Alice.", assistant="Nice to meet you, Alice.")]
    for _ in range(2):  # a second run on a new event loop must not reuse the first run's connections
        reply = responder.respond(agent, history, "What is the capital of France?")
        assert reply.text.strip() and reply.agent == "Assistant"


def test_provider_openai_selects_the_sdk_models(tmp_path, llama_server: str) -> None:
    settings = Settings(data_dir=tmp_path, llm_provider="openai", llm_model="smollm2",
                        llm_openai_base_url=llama_server, llm_openai_api_key=LLAMA_SERVER_KEY)  # fmt: skip
    responder = StageContext(settings).responder
    assert isinstance(responder, SdkResponder) and isinstance(responder.provider, OpenAIAgentModels)
    assert responder.provider.base_url == llama_server and responder.model == "smollm2"
