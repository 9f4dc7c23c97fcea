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

from pipelines.agents.arguments import first_number, number_after, place_anywhere, place_in_answer
from pipelines.agents.policies import AgentPolicy
from pipelines.agents.routing import Route

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
        examples=(
            "What's the weather in Paris?",
            "What is the weather like in London today?",
            "Tell me the forecast for Berlin.",
            "Will it rain in Seattle tomorrow?",
            "Is it cold in Oslo right now?",
            "How hot is it in Cairo?",
            "What's the temperature in Tokyo?",
            "Do I need an umbrella in Dublin?",
            "Is it snowing in Denver?",
            "Should I bring a jacket to Chicago tonight?",
            "What are the conditions outside in Toronto?",
            "Is it sunny in Lisbon this weekend?",
            "How many degrees is it in Athens?",
            "What's the weather like?",
            "Will it be stormy in Miami?",
            "Is it humid in Singapore?",
            "Should I wear sunscreen in Barcelona?",
            "Are clear skies expected over Dallas?",
            "What's the climate like in Rio this week?",
            "Any showers expected in Brussels?",
            "How chilly does it get in Moscow at night?",
            "Is it freezing in Calgary?",
            "Is it going to be nice out this afternoon?",
            "What's the high on Friday in Houston?",
            "Will I need gloves in Minneapolis tomorrow morning?",
            "How much rain is coming to Portland?",
            "Should I expect fog in San Diego this morning?",
            "How does the weekend look weather-wise for Austin?",
            "Is it t-shirt weather in Perth?",
            "How low will the temperature drop tonight in Detroit?",
            "Give me today's forecast.",
            "How cold will it get tonight?",
            "Is it raining outside?",
            "Any sun expected in Copenhagen on Sunday?",
            "What's the UV index in Honolulu?",
            "Are there thunderstorms headed for Atlanta?",
            "Weather check for Manchester.",
            "Is the heat going to break in Seville this week?",
            "How's it looking outside in Vancouver?",
            "Will it be windy in Wellington later?",
        ),
        patterns=(r"\bweather (in|for|at|like in)\b", r"\bforecast (in|for)\b"),
        exclude=(
            r"\bwhether\b",
            r"\bweather(ed|ing)\b",
            r"\bunder the weather\b",
            r"\b(joke|poem|song|story) about\b",
        ),
        arguments=lambda text: {"city": city} if (city := place_anywhere(text)) else None,
        missing="Which city would you like the weather for?",
        followup=lambda text: {"city": city} if (city := place_in_answer(text)) else None,
    ),
    "get_order_status": Route(
        examples=(
            "Where is my order?",
            "What's the status of my order 1042?",
            "Can you track order number 2001?",
            "When will my package arrive?",
            "Has my order shipped yet?",
            "My parcel hasn't been delivered.",
            "I want to check on my order.",
            "Is order 3300 on its way?",
            "My order is late, where is it?",
            "Check the delivery status of my purchase.",
            "Where's my stuff? I ordered it last week.",
            "Did my shipment go out?",
            "I haven't received my purchase yet.",
            "What happened to the thing I bought?",
            "Has order 1042 been sent?",
            "When is my delivery coming?",
            "Can you check where my package is? The number is 5512.",
            "I placed an order last Tuesday and it still isn't here.",
            "What's the tracking status for order 8841?",
            "Has order number 7070 been dispatched?",
            "My delivery was supposed to come yesterday.",
            "Is my parcel out for delivery?",
            "Order 4419, when will it be delivered?",
            "I'm calling about my order, it's 6203.",
            "The package I'm expecting hasn't arrived.",
            "Did you ship order 3141 yet?",
            "What's the estimated delivery date for my order?",
            "I'd like an update on my purchase.",
            "Where's order 9900 right now?",
            "Is my order still being processed?",
        ),
        patterns=(r"\border (number|no\.?|#)\s*\w",),
        # "order of the planets" is no purchase, but "order of 1176" is Whisper's "order 1176"
        exclude=(r"\bin order to\b", r"\bout of order\b", r"\bpecking order\b", r"\border of\b(?!\s*\d)"),
        arguments=lambda text: {"order_id": n} if (n := read_order_number(text)) else None,
        missing="Could you tell me your order number?",
        followup=lambda text: {"order_id": n} if (n := first_number(text)) else None,
    ),
    "transfer_to_support": Route(
        examples=(
            "I want to talk to customer support.",
            "Can I speak to a human?",
            "Let me talk to a real person.",
            "I'd like a refund.",
            "I want to make a complaint.",
            "Connect me with an agent please.",
            "Get me a representative.",
            "This isn't helping, I need someone from support.",
            "Can you transfer me to the help desk?",
            "My product arrived broken and I want my money back.",
            "Transfer me to an operator.",
            "I need to speak with someone on your staff.",
            "Let me talk to your manager.",
            "There's a wrong charge on my bill, I need help from someone.",
            "I want to return a damaged item.",
            "Put me through to customer service.",
            "Connect me to someone who can help.",
            "I need to talk to someone in billing.",
            "Is there somebody I could speak to about my account?",
            "Please connect me with a live person.",
            "I've been overcharged and want to dispute it.",
            "I'd like to speak to your supervisor.",
            "Can you pass me on to a real agent?",
            "The product stopped working and I want a replacement.",
            "Please get me an actual person.",
            "I'm not happy with this, who can I complain to?",
            "Transfer this call to tech support.",
        ),
        patterns=(r"\b(speak|talk) (to|with) (a |an )?(human|real person|representative)\b",),
        exclude=(r"\bsupport (vector|beam)s?\b",),
    ),
}

#: Requests that need no tool and look like ones that do (added to the router's general set).
no_tool_examples = (
    "Tell me a story about the weather.",
    "What causes thunderstorms?",
    "How do I order food online?",
    "Is it polite to complain at a restaurant?",
    "What is a person's normal body temperature?",
    # "order" that is not a purchase
    "Sort these numbers in order from smallest to largest.",
    "She ordered everyone to leave the room.",
    "In what order should I read the Harry Potter books?",
    "The judge issued a court order.",
    "I like to keep my desk in good order.",
    "We ordered the names alphabetically.",
    "What's the chronological order of the Star Wars films?",
    "What did the knights of the holy order do?",
    # weather words that ask no forecast
    "What's the difference between weather and climate?",
    "How do meteorologists predict storms?",
    "Write a haiku about snow.",
    "My friend is weathering a hard time at work.",
    "Why is it colder at the poles?",
    "How hot is the surface of Venus?",
    "How cold is outer space?",
    "Can animals sense a storm coming?",
    # people, support, returns, packages that need no agent
    "Who was the first person to climb Everest?",
    "How many people live in China?",
    "What makes a good manager?",
    "How do I support a friend who is grieving?",
    "Can a human survive without sleep?",
    "What is a tax return?",
    "What does a customer service job involve?",
    "How do I install a Python package?",
    "How long is a running track?",
    # numbers and places that are not order ids or forecasts
    "What is 427 times 3?",
    "Is 1042 a prime number?",
    "I was born in 1990.",
    "How far is Osaka from Tokyo?",
    "Tell me about the history of Berlin.",
    "What language do they speak in Austria?",
)


def read_order_number(text: str) -> str | None:
    """An order id after "order", "package", "parcel" or "number", spoken or written."""
    for keyword in ("order", "package", "parcel", "number"):
        found = number_after(keyword)(text)
        if found:
            return found
    return None


# --- policy per agent: review mode can also be switched on with VOICECHAIN_REVIEW_AGENTS -------------------

policies = {
    "Support": AgentPolicy(block_patterns=(r"\bguarantee(d)?\b",)),
}
