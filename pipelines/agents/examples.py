"""The agents shipped with VoiceChain; point `VOICECHAIN_AGENTS` at your own module to replace them."""

from __future__ import annotations

from agents import Agent

support = Agent(
    name="Support",
    instructions=(
        "You are a patient customer-support agent on a phone line. Answer in one or two short "
        "spoken sentences. Never read out long numbers."
    ),
)

assistant = Agent(
    name="Assistant",
    instructions=(
        "You are a helpful voice assistant. Answer in one or two short spoken sentences, "
        "without lists or markdown."
    ),
    handoffs=[support],
)

agents = [assistant, support]
