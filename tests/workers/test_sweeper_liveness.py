"""Liveness keys against a real Redis, and the Celery app's configuration being read when used.

The end-to-end proof (kill a worker, its turn is re-sent within seconds) is tests/faults/; these pin the
pieces: a key held while a stage runs, refused to a second copy, taken over from a dead process,
expiring when its holder stops refreshing it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import redis

from tests.services import RedisServer
from workers import liveness


def _client(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url)


def test_a_held_key_is_refreshed_and_refused_to_a_second_copy(redis_server: RedisServer) -> None:
    holder = liveness.Liveness(_client(redis_server), ttl_s=1.5)
    assert holder.claim("job_live_1", "stt") == (True, None)
    time.sleep(2.5)  # longer than the TTL: only the refresh thread keeps it
    assert liveness.is_alive(_client(redis_server), "job_live_1", "stt")
    other = liveness.Liveness(_client(redis_server), ttl_s=1.5)
    other.me = "another-host:1"
    claimed, by = other.claim("job_live_1", "stt")
    assert not claimed and by == holder.me
    holder.release("job_live_1", "stt")
    assert not liveness.is_alive(_client(redis_server), "job_live_1", "stt")


def test_a_key_expires_when_its_holder_stops(redis_server: RedisServer) -> None:
    holder = liveness.Liveness(_client(redis_server), ttl_s=1.0)
    holder.claim("job_live_2", "tts")
    holder.stop.set()  # as if the process died: nothing refreshes the key any more
    time.sleep(1.5)
    assert not liveness.is_alive(_client(redis_server), "job_live_2", "tts")


def test_a_key_of_a_dead_process_on_this_host_is_taken_over_at_once(redis_server: RedisServer) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    client = _client(redis_server)
    client.set(liveness.key("job_live_3", "agent"), f"{liveness.identity().rpartition(':')[0]}:{dead.pid}")
    assert liveness.Liveness(client, ttl_s=5).claim("job_live_3", "agent") == (True, None)


def test_a_held_message_key_lives_until_a_pool_process_starts_it(redis_server: RedisServer) -> None:
    main = liveness.Liveness(_client(redis_server), ttl_s=1.5)
    main.reserve("job_held_1", "policy")
    time.sleep(2.5)  # past the TTL: only the main process's refresh keeps it
    assert liveness.is_held(_client(redis_server), "job_held_1", "policy")
    pool = liveness.Liveness(_client(redis_server), ttl_s=1.5)
    assert pool.claim("job_held_1", "policy") == (True, None)
    pool.started("job_held_1", "policy")
    time.sleep(1.0)  # the main process's next refresh finds it gone and lets it go
    assert not liveness.is_held(_client(redis_server), "job_held_1", "policy")
    assert "voicechain:held:job_held_1:policy" not in main.reserved
    main.reserve("job_held_2", "policy")
    main.stop.set()  # the main process died: nothing refreshes it
    time.sleep(2.0)
    assert not liveness.is_held(_client(redis_server), "job_held_2", "policy")


def test_the_celery_app_reads_its_broker_when_used_not_at_import(tmp_path) -> None:
    """What `voicechain up` does: import the sweeper, then learn the embedded Redis URL."""
    code = (
        "import os\n"
        "from workers import sweeper\n"
        "from workers.celery_app import app\n"
        "from pipelines.settings import get_settings\n"
        "assert not app.configured\n"
        "os.environ['VOICECHAIN_REDIS_URL'] = 'redis://127.0.0.1:1/0'\n"
        "get_settings.cache_clear()\n"
        "print(app.conf.broker_url)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECHAIN_")}
    env["VOICECHAIN_DATA_DIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "redis://127.0.0.1:1/0"
