"""Liveness keys: which worker process is running which (turn, stage), kept alive by that process.

A worker process that starts a stage sets `voicechain:live:<turn>:<stage>` to its identity
(`host:pid`) with a short TTL and refreshes it from a thread while the stage runs. A process that dies
(SIGKILL, OOM, a host pulled off the network) stops refreshing, and the key expires within
`worker_liveness_ttl_s`: the sweeper then knows, in seconds, that a stage the database still calls
`running` has nobody running it, instead of waiting for the hard time limit or Redis's visibility
timeout. The key also keeps two copies of one message from running the same stage at once: a copy that
finds the key held by a live process is dropped (the holder continues the chain; if it dies, the
sweeper re-sends).

A second kind of key covers the moment before a stage starts: a worker's main process that receives a
stage message sets `voicechain:held:<turn>:<stage>` (its own `host:pid`) and refreshes it until a pool
process claims the stage, which deletes it. On Redis a message reserved by a worker that is then
SIGKILLed stays unacknowledged until the visibility timeout, and the database calls the stage only
`pending`; without this key the sweeper could tell it from a message still in line only by the slow
stall rule (15 s with nothing in the queue). With it: pending, nothing in the queue, nobody holding it
or running it, for a few seconds, is lost now.

Redis being down never stops a stage: the claim is then granted without a key (a stalled key is only a
missed fast path, the sweeper's slow rules still apply).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from typing import Any

import redis

log = logging.getLogger(__name__)
PREFIX = "voicechain:live:"
HELD_PREFIX = "voicechain:held:"
#: A held key whose message never reached a pool process (revoked, rejected) is let go after this.
MAX_HOLD_S = 900.0

# Set the key to us if it is ours or free; refresh its TTL. Returns 1 if we hold it afterwards.
_REFRESH = """
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# Extend the key's TTL only while it is still ours; 0 once a pool process has claimed the stage (deleted it).
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# Delete the key only if we hold it: a stalled holder must not remove its successor's key.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def key(turn_id: str, stage: str) -> str:
    return f"{PREFIX}{turn_id}:{stage}"


def held_key(turn_id: str, stage: str) -> str:
    return f"{HELD_PREFIX}{turn_id}:{stage}"


def identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_is_dead(holder: str) -> bool:
    """A holder on this host whose process is gone (a SIGKILLed pool child whose key has not expired)."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Liveness:
    """The keys one worker process holds, refreshed every third of the TTL by a daemon thread."""

    def __init__(self, client: redis.Redis, ttl_s: float) -> None:
        self.client = client
        self.ttl_ms = max(1000, int(ttl_s * 1000))
        self.me = identity()
        self.held: set[str] = set()
        #: held keys of messages received but not started yet, with when they were received
        self.reserved: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._refresh_loop, name="liveness", daemon=True)
        self.thread.start()

    def claim(self, turn_id: str, stage: str) -> tuple[bool, str | None]:
        """(True, None) if this process may run the stage now; (False, holder) if a live process does."""
        name = key(turn_id, stage)
        try:
            if self.client.set(name, self.me, nx=True, px=self.ttl_ms):
                return self._hold(name)
            holder = self.client.get(name)
            holder_text = holder.decode() if isinstance(holder, bytes) else str(holder or "")
            if not holder_text or holder_text == self.me or holder_is_dead(holder_text):
                self.client.set(name, self.me, px=self.ttl_ms)
                return self._hold(name)
            return False, holder_text
        except redis.RedisError as exc:
            log.warning("liveness key %s not set (%s); running without it", name, exc)
            return True, None

    def _hold(self, name: str) -> tuple[bool, str | None]:
        with self.lock:
            self.held.add(name)
        return True, None

    def reserve(self, turn_id: str, stage: str) -> None:
        """A worker's main process received this stage's message: hold its key until a pool process
        claims the stage (`started`)."""
        name = held_key(turn_id, stage)
        try:
            self.client.set(name, self.me, px=self.ttl_ms)
        except redis.RedisError as exc:
            log.warning("held key %s not set (%s)", name, exc)
            return
        with self.lock:
            self.reserved[name] = time.monotonic()

    def started(self, turn_id: str, stage: str) -> None:
        """A pool process took this stage's message (to run it, or to drop it as a duplicate): it is no
        longer waiting in a main process. The main process notices at its next refresh."""
        with contextlib.suppress(redis.RedisError):  # else it expires by itself
            self.client.delete(held_key(turn_id, stage))

    def release(self, turn_id: str, stage: str) -> None:
        name = key(turn_id, stage)
        with self.lock:
            self.held.discard(name)
        with contextlib.suppress(redis.RedisError):  # else it expires by itself
            self.client.eval(_RELEASE, 1, name, self.me)

    def _refresh_loop(self) -> None:
        interval = self.ttl_ms / 3000
        while not self.stop.wait(interval):
            with self.lock:
                names = list(self.held)
            for name in names:
                try:
                    if not self.client.eval(_REFRESH, 1, name, self.me, self.ttl_ms):
                        log.warning("liveness key %s was taken over by another worker", name)
                except redis.RedisError:
                    break  # Redis is down: try again next round
            self._extend_reserved()

    def _extend_reserved(self) -> None:
        with self.lock:
            reserved = list(self.reserved.items())
        for name, since in reserved:
            try:
                ours = self.client.eval(_EXTEND, 1, name, self.me, self.ttl_ms)
            except redis.RedisError:
                return
            if not ours or time.monotonic() - since > MAX_HOLD_S:
                with self.lock:
                    self.reserved.pop(name, None)


def is_alive(client: redis.Redis, turn_id: str, stage: str) -> bool:
    return bool(client.exists(key(turn_id, stage)))


def is_held(client: redis.Redis, turn_id: str, stage: str) -> bool:
    """Whether a live worker's main process holds this stage's message, not started yet."""
    return bool(client.exists(held_key(turn_id, stage)))


_per_process: dict[tuple[int, str, float], Liveness] = {}
_per_process_lock = threading.Lock()


def for_process(redis_url: str, ttl_s: float) -> Liveness:
    """One Liveness per process (a forked pool child gets its own thread and connections)."""
    index: Any = (os.getpid(), redis_url, ttl_s)
    with _per_process_lock:
        found = _per_process.get(index)
        if found is None:
            client = redis.Redis.from_url(redis_url, socket_timeout=3, socket_connect_timeout=3)
            found = _per_process[index] = Liveness(client, ttl_s)
        return found
