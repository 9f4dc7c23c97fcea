"""The last word on what the agent may say: operator block rules first, then redaction of personal data.

Everything that can be wrong with the configuration is found when `PolicyConfig` is built (at worker
start), so a bad regular expression fails a deploy instead of every turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from pipelines.policy.pii import redact_pii

Verdict = Literal["allowed", "redacted", "blocked"]

DEFAULT_SAFE_REPLY = "Sorry, I can't help with that. Is there anything else I can do for you?"


@dataclass(frozen=True)
class PolicyConfig:
    """Operator rules. Constructing one compiles the patterns and raises `ValueError` if any is unusable."""

    block_patterns: tuple[str, ...] = ()
    safe_reply: str = DEFAULT_SAFE_REPLY
    redact: bool = True
    _compiled: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.block_patterns, str):
            raise TypeError("block_patterns must be a sequence of patterns, not one string")
        patterns = tuple(self.block_patterns)
        object.__setattr__(self, "block_patterns", patterns)
        object.__setattr__(self, "_compiled", tuple(compile_block_pattern(p) for p in patterns))

    def blocking_patterns(self, reply: str) -> tuple[str, ...]:
        """The configured patterns (as written) that match the reply."""
        return tuple(p.pattern for p in self._compiled if p.search(reply))


@dataclass(frozen=True)
class PolicyDecision:
    """`text` is what may be spoken; `reasons` say why it differs from the reply, for the job record."""

    verdict: Verdict
    text: str
    reasons: tuple[str, ...] = ()


def compile_block_pattern(pattern: str) -> re.Pattern[str]:
    """Compile case-insensitively; refuse a pattern that matches the empty string, since it would
    silently block every reply (`a*`, `x?`, or an empty item in a comma-separated list)."""
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"invalid policy block pattern {pattern!r}: {exc}") from exc
    if compiled.search("") is not None:
        raise ValueError(
            f"policy block pattern {pattern!r} matches the empty string and would block every reply"
        )
    return compiled


def apply_policy(reply: str, config: PolicyConfig) -> PolicyDecision:
    """Block if any operator pattern matches; otherwise redact personal data if configured to."""
    blocked_by = config.blocking_patterns(reply)
    if blocked_by:
        return PolicyDecision(
            "blocked", config.safe_reply, tuple(f"blocked: matched pattern '{p}'" for p in blocked_by)
        )
    if not config.redact:
        return PolicyDecision("allowed", reply)
    text, counts = redact_pii(reply)
    if not counts:
        return PolicyDecision("allowed", reply)
    return PolicyDecision("redacted", text, tuple(f"redacted: {kind} x{n}" for kind, n in counts.items()))
