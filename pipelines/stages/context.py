"""Everything a stage needs, passed explicitly: database URL, artifact store, models and agents.

Models are built lazily, so a worker that serves only the `policy` queue never loads Whisper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from pipelines.agents.registry import AgentRegistry, load_agents
from pipelines.policy.rules import PolicyConfig
from pipelines.providers import factory
from pipelines.providers.base import ChatModel, SpeechToText, TextToSpeech
from pipelines.settings import Settings
from pipelines.storage.artifacts import ArtifactStore


@dataclass
class StageContext:
    settings: Settings
    store: ArtifactStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = ArtifactStore(self.settings.artifacts_dir)

    @property
    def database_url(self) -> str:
        return self.settings.resolved_database_url

    @cached_property
    def stt(self) -> SpeechToText:
        return factory.build_stt(self.settings)

    @cached_property
    def chat(self) -> ChatModel:
        return factory.build_chat_model(self.settings)

    @cached_property
    def tts(self) -> TextToSpeech:
        return factory.build_tts(self.settings)

    @cached_property
    def agents(self) -> AgentRegistry:
        return load_agents(self.settings.agents, default=self.settings.default_agent)

    @cached_property
    def policy(self) -> PolicyConfig:
        return PolicyConfig(
            block_patterns=tuple(self.settings.policy_block_patterns),
            safe_reply=self.settings.policy_safe_reply,
        )

    def warm_up(self, stages: tuple[str, ...]) -> None:
        """Load the models of the stages this process serves before the first task arrives, and build
        the policy so a bad pattern fails the worker at start rather than the first turn."""
        if "stt" in stages:
            _ = self.stt
        if "agent" in stages:
            _ = self.chat, self.agents
        if "policy" in stages:
            _ = self.policy
        if "tts" in stages:
            _ = self.tts
