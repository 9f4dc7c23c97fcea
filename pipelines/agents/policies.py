"""Policy per agent: which replies are blocked, whether a human reviews replies, whether to moderate.

An agents module may export `policies = {"Support": AgentPolicy(review=True)}`; operators can also turn
review on per agent with `VOICECHAIN_REVIEW_AGENTS=Support` (or `*` for every agent). The operator's
global block patterns always apply; an agent's own patterns add to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pipelines.policy.rules import DEFAULT_SAFE_REPLY, PolicyConfig


@dataclass(frozen=True)
class AgentPolicy:
    block_patterns: tuple[str, ...] = ()
    #: Hold every reply of this agent in `awaiting_approval` until a person approves or rejects it.
    review: bool = False
    #: Run the configured moderation provider on replies (None: moderate when a provider is configured).
    moderation: bool | None = None


@dataclass(frozen=True)
class EffectivePolicy:
    rules: PolicyConfig
    review: bool
    moderation: bool


@lru_cache(maxsize=64)
def _rules(patterns: tuple[str, ...], safe_reply: str) -> PolicyConfig:
    return PolicyConfig(block_patterns=patterns, safe_reply=safe_reply)


def effective_policy(
    agent: str,
    policies: Mapping[str, AgentPolicy],
    *,
    block_patterns: Sequence[str] = (),
    safe_reply: str = DEFAULT_SAFE_REPLY,
    review_agents: Sequence[str] = (),
    moderation_configured: bool = False,
) -> EffectivePolicy:
    """The policy for `agent` (names compare case-insensitively, as in the registry)."""
    own = next((p for name, p in policies.items() if name.casefold() == agent.casefold()), AgentPolicy())
    reviewed = {name.casefold() for name in review_agents}
    review = own.review or "*" in reviewed or agent.casefold() in reviewed
    moderation = moderation_configured if own.moderation is None else own.moderation and moderation_configured
    rules = _rules(tuple(dict.fromkeys((*block_patterns, *own.block_patterns))), safe_reply)
    return EffectivePolicy(rules=rules, review=review, moderation=moderation)
