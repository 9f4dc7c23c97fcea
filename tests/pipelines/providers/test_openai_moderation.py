"""The `openai` moderation provider, and the retry rules every `openai` provider shares.

No local server implements `moderations`, so this test runs a tiny stub HTTP server of its own (a real
socket server on loopback that answers in OpenAI's shape), scripted to fail before it succeeds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipelines.providers.base import ProviderError
from pipelines.providers.openai_client import Endpoint
from pipelines.providers.openai_moderation import OpenAIModerator

CATEGORIES = ["harassment", "hate", "self-harm", "sexual", "violence"]


class Stub:
    def __init__(self) -> None:
        self.script: list[int] = []  # statuses to answer, in order; 200 once empty
        self.requests: list[dict] = []


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            stub.requests.append(body)
            status = stub.script.pop(0) if stub.script else 200
            if status == 200:
                flagged = "hurt" in body["input"]
                result = {
                    "flagged": flagged,
                    "categories": {c: flagged and c == "violence" for c in CATEGORIES},
                    "category_scores": {c: 0.9 if flagged and c == "violence" else 0.01 for c in CATEGORIES},
                }
                payload = {"id": "modr-1", "model": body["model"], "results": [result]}
            else:
                payload = {"error": {"message": f"scripted {status}", "type": "x", "code": None}}
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:
            pass

    return Handler


@pytest.fixture
def stub() -> Iterator[tuple[Stub, str]]:
    state = Stub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_flags_and_passes(stub: tuple[Stub, str]) -> None:
    state, url = stub
    moderator = OpenAIModerator(Endpoint(model="omni-moderation-latest", base_url=url, api_key="k"))
    assert moderator.moderate("I will hurt you").categories == ("violence",)
    calm = moderator.moderate("Have a nice day")
    assert not calm.flagged and calm.categories == ()
    assert state.requests[0]["model"] == "omni-moderation-latest"


def test_429_and_5xx_are_retried_then_succeed(stub: tuple[Stub, str]) -> None:
    state, url = stub
    state.script = [429, 503]
    moderator = OpenAIModerator(Endpoint(model="m", base_url=url, attempts=3))
    assert moderator.moderate("I will hurt you").flagged
    assert len(state.requests) == 3


def test_retries_give_up_with_a_transient_error(stub: tuple[Stub, str]) -> None:
    state, url = stub
    state.script = [500, 502]
    with pytest.raises(ProviderError) as failed:
        OpenAIModerator(Endpoint(model="m", base_url=url, attempts=2)).moderate("hello")
    assert failed.value.transient and len(state.requests) == 2


def test_4xx_fails_at_once(stub: tuple[Stub, str]) -> None:
    state, url = stub
    state.script = [400]
    with pytest.raises(ProviderError, match="HTTP 400") as failed:
        OpenAIModerator(Endpoint(model="m", base_url=url, attempts=3)).moderate("hello")
    assert not failed.value.transient and len(state.requests) == 1
