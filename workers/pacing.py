"""Slack pacing without sleeping in a job (issue #15 item 1).

Slack allows about one message per second per channel and answers more with HTTP 429 and a
`Retry-After`. Sleeping on that inside the one-job-at-a-time worker stalls every other
channel, so instead:

- a 429 sets the channel's "next allowed" time in Redis (`Retry-After` from now) and reserves
  the refused message the first slot from then on; every later message for a channel that is
  still cooling reserves the next slot, `SPACING_S` after the one before (one Lua call, so
  workers never hand out the same slot);
- the message waits in a Redis sorted set scored by its slot; a `Mover` thread in every
  worker queues it (at the front of the queue) when its slot comes, and the worker meanwhile
  runs the other channels' jobs; a slot's job that ran late (behind a long job) still keeps
  `SPACING_S` after the one before it, so a late slot and a punctual one do not collide;
- a waiting message is one member per request and kind (`post:<id>`, `refresh:<id>`), so a
  request is never waiting twice, and the job that posts it posts only a pending request that
  has no message yet: a deferred post never posts twice.

`chat.update` is paced per message the same way; a deferred update renders the request's state
when its slot comes, so a burst of clicks on one message ends in one update.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from redis.exceptions import RedisError
from rq import Queue

from bot.runtime import Runtime
from bot.slack import SlackClient, SlackError
from bot.store import requests as store
from bot.store.models import ApprovalRequest, RequestState
from workers import queue as jobqueue
from workers.context import runtime

log = logging.getLogger(__name__)

# Slack's chat.postMessage limit is one message per second per channel. Slots are handed out
# a little further apart than the gap kept between one paced call's answer and the next
# call, so a schedule that runs a little late is not deferred again and again.
SPACING_S = 1.05
MIN_GAP_S = 1.0
MOVE_EVERY_S = 0.05
MOVE_BATCH = 100
PACE_KEY = "approval-bot:slack-pace:{target}"
LAST_KEY = "approval-bot:slack-last:{target}"
DEFERRED_KEY = "approval-bot:slack-deferred"
RATE_LIMITED = "ratelimited"
POST = "post"
REFRESH = "refresh"
POST_DUE = "workers.pacing.post_due"
REFRESH_DUE = "workers.pacing.refresh_due"
JOBS = {POST: POST_DUE, REFRESH: REFRESH_DUE}

# KEYS[1]: the target's next-allowed time, KEYS[2]: when its last paced call was answered.
# ARGV: now, earliest start, spacing, force (1 = a 429 answered: reserve even if the target
# is free), gap. A paced call answered less than `gap` ago (its slot ran late) also cools.
# Returns the reserved slot (a string: Redis would truncate a Lua number), or nil when the
# target is free and nothing was forced.
_RESERVE = """
local now = tonumber(ARGV[1])
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local start = math.max(nxt, tonumber(ARGV[2]), last + tonumber(ARGV[5]))
if ARGV[4] ~= '1' and start <= now then return false end
local after = start + tonumber(ARGV[3])
redis.call('SET', KEYS[1], string.format('%.6f', after), 'PX',
           math.ceil((after - now) * 1000) + 60000)
return string.format('%.6f', start)
"""
# KEYS[1]: when the target's last paced call was answered (or, while it is in flight, made).
# ARGV: now, gap. A slot's job can run late (behind a long job) and the next one on time: it
# then waits until `gap` after the last (returned, as a string), else it goes out now (nil).
_GAP = """
local now = tonumber(ARGV[1])
local due = tonumber(redis.call('GET', KEYS[1]) or '0') + tonumber(ARGV[2])
if now < due then return string.format('%.6f', due) end
redis.call('SET', KEYS[1], string.format('%.6f', now), 'PX', 60000)
return false
"""
# The members due by ARGV[1] (at most ARGV[2]), removed: exactly one mover gets each.
_POP_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do redis.call('ZREM', KEYS[1], member) end
return due
"""


def post_target(channel: str) -> str:
    return f"post:{channel}"


def update_target(channel: str, ts: str) -> str:
    return f"update:{channel}:{ts}"


def client(rt: Runtime) -> SlackClient:
    """The Slack client for paced calls: a 429 raises at once (`SlackError.retry_after`)
    instead of sleeping in slack_sdk's retry handler."""
    slack = rt.slack
    if isinstance(slack, SlackClient):
        return slack.without_rate_limit_retries()
    return slack  # a test double: it has no retry handler to bypass


def _reserve(rt: Runtime, target: str, earliest: float, force: bool) -> float | None:
    slot = rt.redis.eval(
        _RESERVE,
        2,
        PACE_KEY.format(target=target),
        LAST_KEY.format(target=target),
        repr(time.time()),
        repr(earliest),
        repr(SPACING_S),
        "1" if force else "0",
        repr(MIN_GAP_S),
    )
    return None if slot is None else float(slot)


def _member(task: str, request: ApprovalRequest) -> str:
    return f"{task}:{request.id}"


def _wait(rt: Runtime, task: str, request: ApprovalRequest, slot: float) -> None:
    rt.redis.zadd(DEFERRED_KEY, {_member(task, request): slot}, nx=True)
    # DEBUG: a burst defers hundreds; the 429s themselves are counted by the caller's logs.
    log.debug("Slack %s of %s deferred %.1fs", task, request.id, slot - time.time())


def waiting(rt: Runtime, task: str) -> set[str]:
    """The ids of the requests whose `task` waits for its slot (their job will do it)."""
    prefix = f"{task}:"
    members = rt.redis.zrange(DEFERRED_KEY, 0, -1)
    names = (m.decode() if isinstance(m, bytes) else str(m) for m in members)
    return {name.removeprefix(prefix) for name in names if name.startswith(prefix)}


def defer_if_cooling(
    rt: Runtime, task: str, request: ApprovalRequest, target: str, slotted: bool = False
) -> bool:
    """True when the call must wait: it already waits for a slot, or `target` is cooling
    down (then it now waits for the next slot). `slotted`: its slot came; it waits only
    if the slot before it went out less than SPACING_S ago (it ran late)."""
    if slotted:
        gap = rt.redis.eval(
            _GAP, 1, LAST_KEY.format(target=target), repr(time.time()), repr(MIN_GAP_S)
        )
        if gap is None:
            return False
        _wait(rt, task, request, float(gap))
        return True
    if rt.redis.zscore(DEFERRED_KEY, _member(task, request)) is not None:
        return True
    slot = _reserve(rt, target, time.time(), force=False)
    if slot is None:
        return False
    _wait(rt, task, request, slot)
    return True


def answered(rt: Runtime, target: str, slotted: bool) -> None:
    """A paced call was answered: the next one keeps MIN_GAP_S from now (Slack counts the
    gap between arrivals; an answer comes after its call arrived)."""
    if slotted:
        rt.redis.set(LAST_KEY.format(target=target), f"{time.time():.6f}", px=60_000)


def defer_if_rate_limited(
    rt: Runtime, task: str, request: ApprovalRequest, target: str, exc: SlackError
) -> bool:
    """After a 429: mark `target` cooling for its `Retry-After` and wait for a slot."""
    if exc.error != RATE_LIMITED:
        return False
    retry_after = exc.retry_after if exc.retry_after is not None else SPACING_S
    slot = _reserve(rt, target, time.time() + retry_after, force=True)
    _wait(rt, task, request, slot if slot is not None else time.time() + retry_after)
    return True


def _pending_request(payload: dict[str, Any]) -> ApprovalRequest | None:
    try:
        return store.get(runtime().db, str(payload["request_id"]))
    except store.RequestNotFound:
        return None


def post_due(payload: dict[str, Any]) -> str:
    """A deferred post's slot came: post the request unless it is posted or decided."""
    from workers.jobs import post_request  # jobs imports this module

    request = _pending_request(payload)
    if request is None or request.state != RequestState.PENDING or request.message_ts:
        return "nothing-to-post"
    post_request(runtime(), request, slotted=True)
    return "posted"


def refresh_due(payload: dict[str, Any]) -> str:
    """A deferred update's slot came: show the request's state as it is now."""
    from workers.support import refresh_message  # support imports this module

    request = _pending_request(payload)
    if request is None or request.message_ts is None:
        return "nothing-to-update"
    refresh_message(runtime(), request, None, slotted=True)
    return "updated"


class Mover(threading.Thread):
    """Queues each deferred Slack call when its slot comes (at the queue's front: its slot
    is now, and the other channels' jobs do not wait on it)."""

    def __init__(self, rt: Runtime, queue: Queue, every: float = MOVE_EVERY_S) -> None:
        super().__init__(name="approval-bot-slack-pacing", daemon=True)
        self.rt = rt
        self.queue = queue
        self.every = every
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.every):
            try:
                self.move()
            except RedisError as exc:  # the worker loop reports a lost Redis
                log.debug("pacing move skipped: %s", type(exc).__name__)

    def move(self) -> int:
        due = self.rt.redis.eval(_POP_DUE, 1, DEFERRED_KEY, repr(time.time()), MOVE_BATCH)
        for raw in due:
            member = raw.decode() if isinstance(raw, bytes) else str(raw)
            task, request_id = member.split(":", 1)
            try:
                jobqueue.enqueue(self.queue, JOBS[task], {"request_id": request_id}, at_front=True)
            except RedisError:
                self.rt.redis.zadd(DEFERRED_KEY, {member: time.time()}, nx=True)
                raise
        return len(due)

    def stop(self) -> None:
        self.stopping.set()
