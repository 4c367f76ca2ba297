"""Counters kept in Redis, so what the worker counts is exposed by the web's /metrics.

The worker is another process (often several): it calls `incr(redis, "plays_total",
{"result": "played"})`, which is one HINCRBY on `approval-bot:metrics:plays_total` (the
field is the label values). The web process reads them at scrape time (`read`) and
exposes `approval_bot_<name>{labels}`. Counting never fails a job: a Redis error is logged
and the increment is lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

KEY = "approval-bot:metrics:{}"
PREFIX = "approval_bot_"

# name -> (label names, help text). Only these may be counted.
COUNTERS: dict[str, tuple[tuple[str, ...], str]] = {
    "decisions_total": (
        ("outcome",),
        "Approve and reject decisions made by the worker, by outcome",
    ),
    "plays_total": (("result",), "Gate job plays attempted by the worker, by result"),
    "rollbacks_total": (
        ("outcome",),
        "Roll back clicks and deployment facts handled by the worker, by outcome",
    ),
    "webhook_refusals_total": (
        ("reason",),
        "Webhook claims the worker refused after asking GitLab (mismatch, not_found, out_of_scope)",
    ),
}


class UnknownMetric(ValueError):
    """A counter or label set not declared in COUNTERS (a programming error)."""


def _field(name: str, labels: Mapping[str, str]) -> str:
    if name not in COUNTERS:
        raise UnknownMetric(f"unknown counter {name!r} (known: {', '.join(sorted(COUNTERS))})")
    names = COUNTERS[name][0]
    if set(labels) != set(names):
        raise UnknownMetric(f"counter {name!r} takes the labels {list(names)}, not {list(labels)}")
    return json.dumps([str(labels[label]) for label in names])


def incr(redis: Redis, name: str, labels: Mapping[str, str], amount: int = 1) -> None:
    """Add `amount` to counter `name` with these label values (never raises on Redis errors)."""
    field = _field(name, labels)
    try:
        redis.hincrby(KEY.format(name), field, amount)
    except RedisError as exc:
        log.warning("metric %s not counted, Redis unavailable: %s", name, type(exc).__name__)


def read(redis: Redis, name: str) -> list[tuple[dict[str, str], int]]:
    """Every (labels, value) of counter `name` (raises RedisError if Redis is down)."""
    names = COUNTERS[name][0]
    found: list[tuple[dict[str, str], int]] = []
    raw: Mapping[bytes | str, bytes | str] = redis.hgetall(KEY.format(name))
    for field, value in sorted(raw.items()):
        try:
            values = json.loads(field)
            count = int(value)
        except ValueError:
            continue  # not written by incr(): ignore rather than break the scrape
        if isinstance(values, list) and len(values) == len(names):
            found.append((dict(zip(names, map(str, values), strict=True)), count))
    return found
