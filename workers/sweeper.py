"""Finds turns whose message was lost, or whose worker died mid-stage, and sends them again.

A chain's next step is published by the worker after a step succeeds, which is not atomic with the
database write; a Redis restart or flush also drops queued messages; and a worker that dies holding a
message (SIGKILL, OOM, a host cut off) gives it back only when the broker notices: RabbitMQ at once if
the TCP connection drops, Redis only after its visibility timeout, and kombu checks that timeout on a
slow timer (see docs/scaling.md). The database knows which stage is next and the liveness keys
(`workers.liveness`) say whether anybody still runs it, so the sweeper re-publishes from there within
seconds. Re-sending is safe because stages are idempotent; the checks below only avoid needless
duplicates of messages that are probably still waiting in line.

It also re-sends webhook deliveries whose publish failed (`workers.webhooks.resend_unpublished`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import redis

from pipelines.settings import STAGES, Settings
from pipelines.storage.database import session_scope
from pipelines.storage.models import StageRun, StageStatus, Turn, utcnow
from pipelines.storage.turns import first_unfinished_stage, stage_run, stalled_turns, turns_running_a_stage
from workers import liveness
from workers.broker import BrokerUnavailable, queue_depths
from workers.celery_app import STAGE_RETRY_BACKOFF_MAX_S, broker_url, configure, redis_url
from workers.dispatch import publish
from workers.webhooks import resend_unpublished

log = logging.getLogger(__name__)
LOCK_KEY = "voicechain:sweeper:lock"
#: A running stage younger than this is left alone even without a key (clock skew between hosts).
LIVENESS_GRACE_S = 2.0
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def quiet_after_s(settings: Settings) -> float:
    """How long a pending stage that nobody holds must have seen no progress before it counts as lost:
    a live holder refreshes its key every third of the TTL, so by then its key would be there."""
    return settings.worker_liveness_ttl_s + LIVENESS_GRACE_S


def looks_lost(
    settings: Settings,
    *,
    status: str,
    started_at: datetime | None,
    last_published: datetime,
    queue_depth: int,
    alive: bool | None,
    stalled: bool,
    now: datetime,
    held: bool | None = None,
    quiet_s: float = 0.0,
) -> bool:
    """Whether the stage's message is probably gone, so that re-sending it is worth a duplicate.

    A stage running the last message sent is lost as soon as its liveness key has expired (`alive`
    False): its worker died. Where liveness is unknown (`None`: Redis unreachable) it is lost only once
    it has outlived the hard time limit. A pending stage that nobody holds (`held` False: no worker's
    main process has its message) or runs, with nothing in its queue, is lost once the turn has been
    quiet for `quiet_after_s`: a worker died holding its message. Otherwise it is lost only once the
    turn has stalled and nothing waits in the stage's queue: the copy we sent is probably still in
    line, and sending another every sweep would only pile up duplicates behind it.
    """
    if status == StageStatus.RUNNING and alive:
        return False  # somebody holds its liveness key: it is running, however long it takes
    if status == StageStatus.RUNNING and started_at is not None and started_at >= last_published:
        age_s = (now - started_at).total_seconds()
        if alive is None:
            return age_s > settings.task_time_limit_s + 30
        return not alive and age_s > LIVENESS_GRACE_S
    if status == StageStatus.PENDING and held is False and alive is False and queue_depth == 0:
        return quiet_s >= quiet_after_s(settings)
    return stalled and queue_depth == 0


def _candidates(settings: Settings, session, now: datetime) -> list[Turn]:  # type: ignore[no-untyped-def]
    """Open turns quiet for `quiet_after_s` (the stall rule's turns among them) and turns running a stage."""
    quiet_for = timedelta(seconds=min(quiet_after_s(settings), settings.stall_after_s))
    quiet = stalled_turns(session, older_than=quiet_for)
    running = turns_running_a_stage(session, started_before=now - timedelta(seconds=LIVENESS_GRACE_S))
    return list({turn.id: turn for turn in (*quiet, *running)}.values())


def _quiet_s(turn: Turn, now: datetime) -> float:
    """Seconds since the turn last moved: its last publish or its last write, whichever is later."""
    last = max(turn.enqueued_at or turn.created_at, turn.updated_at)
    return (now - last).total_seconds()


def _waiting_for_retry(settings: Settings, run: StageRun, now: datetime) -> bool:
    """A failed attempt's retry message is held by a worker until its countdown ends: not lost."""
    if run.status != StageStatus.PENDING or not run.attempts or run.finished_at is None:
        return False
    return (now - run.finished_at).total_seconds() < settings.stall_after_s + STAGE_RETRY_BACKOFF_MAX_S


def _ask(
    check: Callable[[redis.Redis, str, str], bool], client: redis.Redis, turn_id: str, stage: str
) -> bool | None:
    """A liveness question (`liveness.is_alive`, `liveness.is_held`); None when Redis cannot answer."""
    try:
        return check(client, turn_id, stage)
    except redis.RedisError:
        return None


def sweep_once(settings: Settings, client: redis.Redis) -> list[str]:
    """Re-publish lost turns; returns their ids. Holds a Redis lock so replicas do not race."""
    token = uuid.uuid4().hex
    if not client.set(LOCK_KEY, token, nx=True, ex=max(10, int(settings.sweep_interval_s * 3))):
        return []
    try:
        resent = _find_lost(settings, client)
        for turn_id, stage in resent:
            log.warning("re-sending turn %s from stage %s", turn_id, stage)
            publish(settings.resolved_database_url, turn_id, stage, resend=True)  # ahead of the backlog
        resend_unpublished(settings)
    finally:
        client.eval(_RELEASE, 1, LOCK_KEY, token)
    return [turn_id for turn_id, _ in resent]


def _find_lost(settings: Settings, client: redis.Redis) -> list[tuple[str, str]]:
    now = utcnow()
    depths: dict[str, int] | None = None
    resent: list[tuple[str, str]] = []
    with session_scope(settings.resolved_database_url) as session:
        for turn in _candidates(settings, session, now):
            stage = first_unfinished_stage(turn)
            if stage is None:
                continue
            run = stage_run(turn, stage)
            quiet_s = _quiet_s(turn, now)
            if _waiting_for_retry(settings, run, now):
                quiet_s = 0.0  # its retry message is held until the countdown ends
            stalled = quiet_s >= settings.stall_after_s
            pending = run.status == StageStatus.PENDING
            if (stalled or pending) and depths is None:  # only these rules need the broker
                depths = _depths(settings)
            lost = looks_lost(
                settings,
                status=run.status,
                started_at=run.started_at,
                last_published=turn.enqueued_at or turn.created_at,
                queue_depth=(depths or {}).get(stage, 1),
                alive=_ask(liveness.is_alive, client, turn.id, stage),
                stalled=stalled,
                now=now,
                held=_ask(liveness.is_held, client, turn.id, stage) if pending else None,
                quiet_s=quiet_s,
            )
            if lost:
                resent.append((turn.id, stage))
    return resent


def _depths(settings: Settings) -> dict[str, int]:
    try:
        return queue_depths(broker_url(settings), STAGES)
    except BrokerUnavailable as exc:
        log.warning("queue depths unavailable (%s); judging by liveness only", exc)
        return dict.fromkeys(STAGES, 1)


def run_forever(settings: Settings, stop: threading.Event) -> None:
    """The loop `voicechain up` and `voicechain sweeper` run; errors are logged, never fatal.

    The app is pointed at `settings`' broker first: what this loop re-sends goes where the workers of
    these settings listen, whatever configured the process before."""
    configure(settings)
    client = redis.Redis.from_url(redis_url(settings), socket_timeout=5, socket_connect_timeout=5)
    log.info("sweeper: every %.1f s, broker %s", settings.sweep_interval_s, _redact(broker_url(settings)))
    while not stop.wait(settings.sweep_interval_s):
        try:
            sweep_once(settings, client)
        except Exception:
            log.exception("sweep failed; trying again in %.0f s", settings.sweep_interval_s)


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url
