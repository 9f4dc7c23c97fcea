"""Everything a stage needs, passed explicitly: database URL, artifact store, models and agents.

Models are built lazily, so a worker that serves only the `policy` queue never loads Whisper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from pipelines.agents.policies import EffectivePolicy, effective_policy
from pipelines.agents.registry import AgentRegistry, load_agents
from pipelines.agents.responder import Responder
from pipelines.policy.rules import PolicyConfig
from pipelines.providers import factory
from pipelines.providers.base import ChatModel, GenerationOptions, SpeechToText, TextToSpeech
from pipelines.providers.moderation import Moderator, build_moderator
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

    @cached_property
    def responder(self) -> Responder:
        """The Agents SDK Runner: with provider `openai` over the SDK's OpenAI models (the model picks
        tools); with the local model, over a wrapper where declared routes pick them."""
        from pipelines.agents.local_model import LocalModelProvider, RoutedLocalModel
        from pipelines.agents.sdk import SdkResponder

        if self.settings.llm_provider == "openai":
            from pipelines.agents.openai_models import OpenAIAgentModels

            base_url, api_key = self.settings.openai_endpoint("llm")
            models = OpenAIAgentModels(
                base_url, api_key, self.settings.llm_model, api=self.settings.llm_openai_api,
                timeout_s=self.settings.openai_timeout_s, max_attempts=self.settings.openai_max_attempts,
            )  # fmt: skip
            return SdkResponder(models, tracing=self.settings.agents_tracing, model=self.settings.llm_model)

        options = GenerationOptions(
            max_tokens=self.settings.llm_max_tokens,
            temperature=self.settings.llm_temperature,
            seed=self.settings.llm_seed,
        )
        model = RoutedLocalModel(self.chat, options, self.agents.router)
        return SdkResponder(LocalModelProvider(model), tracing=self.settings.agents_tracing)

    @cached_property
    def moderator(self) -> Moderator | None:
        return build_moderator(self.settings)

    def policy_for(self, agent: str) -> EffectivePolicy:
        return effective_policy(
            agent,
            self.agents.policies,
            block_patterns=self.settings.policy_block_patterns,
            safe_reply=self.settings.policy_safe_reply,
            review_agents=self.settings.review_agents,
            moderation_configured=self.settings.moderation_provider != "none",
        )

    def warm_up(self, stages: tuple[str, ...]) -> None:
        """Load the models of the stages this process serves before the first task arrives, and build
        the policy so a bad pattern fails the worker at start rather than the first turn."""
        if "stt" in stages:
            _ = self.stt
        if "agent" in stages:
            _ = self.chat, self.agents, self.responder
        if "policy" in stages:
            _ = self.policy
        if "tts" in stages:
            _ = self.tts
