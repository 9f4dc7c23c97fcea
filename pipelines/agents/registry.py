"""Agent definitions are plain OpenAI Agents SDK `Agent` objects in a user module named by a setting.

The registry resolves a name to an agent, so both paths (the chain and the realtime pool) run the same
definitions. Names compare case-insensitively: callers type "support" as often as "Support".
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agents import Agent

from pipelines.agents.policies import AgentPolicy
from pipelines.agents.routing import Route, Router


class UnknownAgent(LookupError):
    pass


@dataclass(frozen=True)
class AgentRegistry:
    by_key: Mapping[str, Agent[Any]]
    default: str
    #: Optional `routes` and `policies` exported next to the agents (see `pipelines.agents.examples`).
    routes: Mapping[str, Route] = field(default_factory=dict)
    policies: Mapping[str, AgentPolicy] = field(default_factory=dict)
    #: Extra requests that need no tool (`no_tool_examples` in the agents module), for the router.
    no_tool_examples: tuple[str, ...] = ()
    _router: list[Router] = field(default_factory=list, init=False, repr=False, compare=False)

    @property
    def router(self) -> Router:
        """The routes with their examples embedded: one per registry, built on first use, shared by the
        chained path and every realtime session of the process."""
        if not self._router:
            self._router.append(Router(self.routes, no_tool_examples=self.no_tool_examples))
        return self._router[0]

    def get(self, name: str | None) -> Agent[Any]:
        key = (name or self.default).casefold()
        try:
            return self.by_key[key]
        except KeyError:
            known = ", ".join(sorted(a.name for a in self.by_key.values()))
            raise UnknownAgent(f"unknown agent {name!r}; known agents: {known}") from None

    @property
    def names(self) -> list[str]:
        return sorted(a.name for a in self.by_key.values())


def _collect(root: Iterable[Agent[Any]]) -> dict[str, Agent[Any]]:
    """Include agents reachable through handoffs, so a handoff target can hold a conversation later."""
    found: dict[str, Agent[Any]] = {}
    stack = list(root)
    while stack:
        agent = stack.pop()
        if agent.name.casefold() in found:
            continue
        found[agent.name.casefold()] = agent
        stack.extend(h for h in agent.handoffs if isinstance(h, Agent))
    return found


def load_agents(spec: str, *, default: str) -> AgentRegistry:
    """`spec` is `module:attribute`; the attribute is a list of agents, a dict, or one agent."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"agents setting must look like 'package.module:attribute', got {spec!r}")
    module = importlib.import_module(module_name)
    value = getattr(module, attribute)
    if isinstance(value, Agent):
        value = [value]
    elif isinstance(value, Mapping):
        value = list(value.values())
    registry = AgentRegistry(
        by_key=_collect(value),
        default=default,
        routes=dict(getattr(module, "routes", None) or {}),
        policies=dict(getattr(module, "policies", None) or {}),
        no_tool_examples=tuple(getattr(module, "no_tool_examples", None) or ()),
    )
    registry.get(default)  # an unknown default is a configuration error: fail at start, not per turn
    return registry
