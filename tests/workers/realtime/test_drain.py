"""SIGTERM drains a worker: it stops listening at once, live sessions go on, then it exits."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from typing import Any

import pytest
import uvicorn
from openai import AsyncOpenAI

from tests.pipelines.realtime.fakes import fake_engines
from tests.workers.realtime.conftest import API_KEY, free_port
from workers.realtime.app import create_app
from workers.realtime.auth import Authenticator
from workers.realtime.server import DrainingServer, reuseport_socket


def test_sigterm_drains_then_exits() -> None:
    engines = fake_engines()

    async def load() -> Any:
        return engines

    app = create_app(engines=load, authenticator=Authenticator([API_KEY], None))
    port = free_port()
    server = DrainingServer(uvicorn.Config(app, lifespan="on", log_level="warning"), app.state.pool)
    sock = reuseport_socket("127.0.0.1", port)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    base = f"ws://127.0.0.1:{port}/v1"

    async def main() -> None:
        client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=base)
        async with client.realtime.connect(model="x") as conn:
            await conn.recv()
            server.handle_exit(signal.SIGTERM, None)
            await asyncio.sleep(0.3)
            with pytest.raises(OSError):  # no longer listening: the kernel refuses new connections
                async with AsyncOpenAI(api_key=API_KEY, websocket_base_url=base).realtime.connect(
                    model="x"
                ) as c2:
                    await c2.recv()
            # the live session still works
            await conn.session.update(
                session={"type": "realtime", "audio": {"input": {"turn_detection": None}}}
            )
            await conn.recv()
            await conn.conversation.item.create(
                item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
            )
            await conn.response.create()
            async for ev in conn:
                if ev.type == "response.done":
                    assert ev.response.status == "completed"
                    break
            assert thread.is_alive()
        thread.join(10)
        assert not thread.is_alive(), "the worker should exit once its last session ended"

    asyncio.run(main())
