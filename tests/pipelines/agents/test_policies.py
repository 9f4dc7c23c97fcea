from __future__ import annotations

from pipelines.agents.policies import AgentPolicy, effective_policy


def test_review_from_agent_or_settings_and_patterns_add_up() -> None:
    policies = {"Support": AgentPolicy(block_patterns=(r"\bguarantee\b",), review=True)}
    support = effective_policy("support", policies, block_patterns=[r"\bsecret\b"])
    assert support.review and support.rules.block_patterns == (r"\bsecret\b", r"\bguarantee\b")
    assistant = effective_policy("Assistant", policies, review_agents=["*"])
    assert assistant.review and not assistant.moderation
    assert not effective_policy("Assistant", policies).review
    assert effective_policy("Assistant", {}, moderation_configured=True).moderation
