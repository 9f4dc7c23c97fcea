"""The agents shipped with VoiceChain; point `VOICECHAIN_AGENTS` at your own module to replace them.

A module like this one exports:
- `agents`: the agents (a list, a dict or one `Agent`); handoff targets are found by following handoffs;
- `routes` (optional): when the embedded local model may call each tool or handoff (see
  `pipelines.agents.routing`); hosted models do their own function calling and ignore it;
- `policies` (optional): per-agent policy (`AgentPolicy`: block patterns, review mode, moderation).

The order-status tool reads a small SQL table of its own. It is the *shop's* data, not VoiceChain's: it
lives in its own SQLite file (`<data_dir>/example_shop.db`, created and seeded on first use) with its own
metadata, so VoiceChain's schema and migrations never learn about it. A real deployment points the tool
at its own order system instead.
"""

from __future__ import annotations

import hashlib
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from agents import (
    Agent,
    GuardrailFunctionOutput,
    RunContextWrapper,
    function_tool,
    input_guardrail,
    output_guardrail,
)
from sqlalchemy import Engine, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from pipelines.agents.policies import AgentPolicy
from pipelines.agents.routing import (
    Route,
    first_number,
    number_after,
    place_after_preposition,
    place_in_answer,
)

# --- the weather tool (deterministic fake data) -----------------------------------------------------------

_SKIES = ("sunny", "partly cloudy", "overcast", "rainy", "windy", "foggy")


def weather_report(city: str) -> str:
    """The same city always gets the same weather, so tests and demos are repeatable."""
    digest = hashlib.sha256(city.strip().casefold().encode()).digest()
    sky, temperature = _SKIES[digest[0] % len(_SKIES)], 5 + digest[1] % 25
    return f"In {city.strip().title()} it is {sky} and {temperature} degrees Celsius."


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather for a given city."""
    return weather_report(city)


# --- the order-status tool, backed by the shop's own small SQL table ---------------------------------------


class _ShopBase(DeclarativeBase):
    pass


class Order(_ShopBase):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(64))
    eta: Mapped[str] = mapped_column(String(64))


SEED_ORDERS = (
    ("1042", "shipped", "arrives on Thursday"),
    ("2001", "being packed", "ships tomorrow"),
    ("3300", "delivered", "was left at the front door on Monday"),
)


def shop_database_path() -> Path:
    """The shop's SQLite file next to VoiceChain's data; this user module reads its own environment."""
    return Path(os.environ.get("VOICECHAIN_DATA_DIR", ".voicechain")) / "example_shop.db"


@lru_cache(maxsize=4)
def shop_engine(path: Path) -> Engine:
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path.resolve()}")
    _ShopBase.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        existing = set(session.scalars(select(Order.id)))
        session.add_all(Order(id=i, status=s, eta=e) for i, s, e in SEED_ORDERS if i not in existing)
    return engine


def order_status_text(order_id: str, path: Path | None = None) -> str:
    clean = re.sub(r"[^0-9A-Za-z]", "", order_id).upper()
    with Session(shop_engine(path or shop_database_path())) as session:
        order = session.get(Order, clean)
    if order is None:
        return f"I could not find order {' '.join(clean)}. Please check the number."
    return f"Order {' '.join(clean)} is {order.status} and {order.eta}."


@function_tool
def get_order_status(order_id: str) -> str:
    """Look up the status of a customer's order by its order number."""
    return order_status_text(order_id)


# --- guardrails ---------------------------------------------------------------------------------------------

_SECRETS = re.compile(r"\b(passwords?|pass ?codes?|pins?|credit card numbers?|social security)\b", re.I)


@input_guardrail(name="no_credentials")
def no_credentials(ctx: RunContextWrapper[Any], agent: Agent[Any], data: Any) -> GuardrailFunctionOutput:
    """Refuse requests for passwords, PINs and card numbers before any model runs."""
    text = data if isinstance(data, str) else str(data[-1].get("content", "")) if data else ""
    return GuardrailFunctionOutput(
        output_info={"message": "I can't help with passwords, PINs or card numbers. Is there anything else?"},
        tripwire_triggered=bool(_SECRETS.search(text)),
    )


_LONG_NUMBER = re.compile(r"\d(?:[ -]?\d){11,}")


@output_guardrail(name="no_long_numbers")
def no_long_numbers(ctx: RunContextWrapper[Any], agent: Agent[Any], output: Any) -> GuardrailFunctionOutput:
    """Never read out a long number (a card or account number) on a phone line."""
    return GuardrailFunctionOutput(
        output_info={"message": "Sorry, I can't read that out. Is there anything else I can do?"},
        tripwire_triggered=bool(_LONG_NUMBER.search(str(output))),
    )


# --- the agents ---------------------------------------------------------------------------------------------

support = Agent(
    name="Support",
    instructions=(
        "You are a patient customer-support agent on a phone line. Answer in one or two short "
        "spoken sentences. Never read out long numbers."
    ),
    tools=[get_order_status],
    output_guardrails=[no_long_numbers],
)

assistant = Agent(
    name="Assistant",
    instructions=(
        "You are a helpful voice assistant. Answer in one or two short spoken sentences, "
        "without lists or markdown."
    ),
    tools=[get_weather, get_order_status],
    handoffs=[support],
    input_guardrails=[no_credentials],
    output_guardrails=[no_long_numbers],
)

agents = [assistant, support]

# --- when the local model calls what ------------------------------------------------------------------

routes = {
    "get_weather": Route(
        patterns=(
            r"\bweather\b",
            r"\bforecast\b",
            r"\b(temperature|degrees)\b.*\b(in|at|for)\b",
            r"\b(is it|will it)\b.*\b(rain|raining|snow|snowing|sunny|cold|hot|windy)\b",
            r"\bumbrella\b",
        ),
        exclude=(
            r"\bwhether\b",
            r"\bweather(ed|ing)\b",
            r"\b(joke|poem|song|story)\b",
            r"\bunder the weather\b",
            r"\bweather (app|apps|station|balloon|vane)\b",
            r"\bwhat is (the )?weather\?*$",
            r"\b(define|meaning of|spell)\b",
        ),
        arguments=lambda text: {"city": city} if (city := place_after_preposition(text)) else None,
        missing="Which city would you like the weather for?",
        followup=lambda text: {"city": city} if (city := place_in_answer(text)) else None,
    ),
    "get_order_status": Route(
        patterns=(
            r"\border\b.*\b(status|where|track|arriv|ship|deliver|come|late)",
            r"\btrack\w*\b.*\border\b",
            r"\b(where|status)\b.*\b(order|package|parcel)\b",
            r"\border (number|no|#)?\s*\d",
        ),
        exclude=(
            r"\b(in order to|order of|orders? (a|some|the)? ?(pizza|food|coffee))\b",
            r"\bplace an order\b",
            r"\bout of order\b",
            r"\bpecking order\b",
        ),
        arguments=lambda text: {"order_id": n} if (n := number_after("order")(text)) else None,
        missing="Could you tell me your order number?",
        followup=lambda text: {"order_id": n} if (n := first_number(text)) else None,
    ),
    "transfer_to_support": Route(
        patterns=(
            r"\b(support|customer service|help desk|helpdesk)\b",
            r"\brefund\b",
            r"\b(speak|talk) (to|with) (a |an |some)?(human|person|agent|someone|representative)\b",
            r"\bcomplaint\b",
            r"\bcomplain\b",
        ),
        exclude=(r"\b(support|supports) (for|of) \w+ (in|on)\b", r"\bsupport (vector|beam)\b"),
    ),
}

# --- policy per agent: review mode can also be switched on with VOICECHAIN_REVIEW_AGENTS -------------------

policies = {
    "Support": AgentPolicy(block_patterns=(r"\bguarantee(d)?\b",)),
}
