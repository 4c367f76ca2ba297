"""POST /webhooks/gitlab: verify → size → JSON → ready? → is it a gate? → dedupe → enqueue."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, request
from prometheus_client import Counter
from redis import Redis
from redis.exceptions import RedisError

from bot.events import FINISHED_PIPELINE, BadEvent, gate_event, gate_jobs, parse_pipeline
from bot.web.security import gitlab_token_ok
from bot.web.support import BodyTooLarge, answer, edge, error, read_body
from workers import queue as jobs

log = logging.getLogger(__name__)
blueprint = Blueprint("gitlab", __name__)

WEBHOOKS = Counter("approval_bot_webhooks_total", "GitLab webhooks by outcome", ["outcome"])
DELIVERY_TTL_S = 7 * 24 * 3600
GATE_TTL_S = 90 * 24 * 3600
DELIVERY_KEY = "approval-bot:delivery:{}"
GATE_KEY = "approval-bot:gate:{}:{}"


@dataclass
class Routing:
    """What a pipeline event leads to; undo() forgets it if enqueueing fails."""

    queued: list[str] = field(default_factory=list)
    duplicates: int = 0
    reasons: list[str] = field(default_factory=list)
    claimed: list[str] = field(default_factory=list)


@blueprint.post("/webhooks/gitlab")
def gitlab_webhook() -> tuple[Response, int]:
    ctx = edge()
    settings = ctx.runtime.settings
    if not gitlab_token_ok(
        request.headers.get("X-Gitlab-Token"), settings.GITLAB_WEBHOOK_SECRET.get_secret_value()
    ):
        return _count("unauthorized", error(401, "missing or invalid X-Gitlab-Token"))
    try:
        body = read_body(settings.MAX_BODY_BYTES)
    except BodyTooLarge:
        return _count("too_large", error(413, f"body larger than {settings.MAX_BODY_BYTES} bytes"))
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _count("bad_request", error(400, "body is not valid JSON"))
    if not isinstance(payload, dict) or not isinstance(payload.get("object_kind"), str):
        return _count(
            "bad_request", error(400, "body must be a JSON object with a string object_kind")
        )
    if not ctx.readiness.ready():
        return _count("unavailable", error(503, "not ready: Redis or the database is unavailable"))
    if payload["object_kind"] != "pipeline":
        return _ignored(f"object_kind '{payload['object_kind']}' needs no action")
    try:
        event = parse_pipeline(payload)
    except BadEvent as exc:
        return _count("bad_request", error(400, str(exc)))
    gates = gate_jobs(event, ctx.runtime.policy.current.policy)
    if not gates:
        return _ignored(
            f"no gate job of the policy in this pipeline of {event.project.path_with_namespace}"
        )
    return _route(ctx.runtime.redis, ctx, event, gates, request.headers.get("Idempotency-Key"))


def _route(
    redis: Redis, ctx: Any, event: Any, gates: list[Any], key: str | None
) -> tuple[Response, int]:
    delivery = DELIVERY_KEY.format(key) if key else None
    routing = Routing()
    try:
        if delivery is not None and not redis.set(delivery, "1", nx=True, ex=DELIVERY_TTL_S):
            return _count("duplicate", answer(200, status="duplicate"))
        for _gate, build in gates:
            _route_gate(redis, ctx, event, build, routing)
    except RedisError as exc:
        log.warning("webhook not taken, Redis failed: %s", type(exc).__name__)
        _forget(redis, [*routing.claimed, *([delivery] if delivery else [])])
        return _count("unavailable", error(503, "queue unavailable, please redeliver"))
    if routing.queued:
        return _count("queued", answer(202, status="queued", jobs=routing.queued))
    if routing.duplicates:
        return _count("duplicate", answer(200, status="duplicate"))
    return _ignored("; ".join(routing.reasons))


def _route_gate(redis: Redis, ctx: Any, event: Any, build: Any, routing: Routing) -> None:
    gate_key = GATE_KEY.format(event.project.id, build.id)
    status = f"{event.object_attributes.status}/{build.status}"
    waiting = build.status == "manual" and event.object_attributes.status not in FINISHED_PIPELINE
    if waiting:
        if not redis.set(gate_key, status, nx=True, ex=GATE_TTL_S):
            routing.duplicates += 1
            return
        routing.claimed.append(gate_key)
        job = jobs.enqueue(
            ctx.queue,
            jobs.OPEN_REQUEST,
            dict(gate_event(event, build)),
            job_id=f"open-{event.project.id}-{build.id}",
        )
        routing.queued.append(job.id)
        return
    previous = redis.get(gate_key)
    if previous is None:
        routing.reasons.append(f"gate job {build.name} is not waiting (status: {build.status})")
        return
    if (previous.decode() if isinstance(previous, bytes) else previous) == status:
        routing.duplicates += 1
        return
    redis.set(gate_key, status, ex=GATE_TTL_S)
    job = jobs.enqueue(ctx.queue, jobs.PIPELINE_UPDATE, dict(gate_event(event, build)))
    routing.queued.append(job.id)


def _forget(redis: Redis, keys: list[str]) -> None:
    """A delivery answered 5xx is not remembered, so GitLab's redelivery is processed."""
    if not keys:
        return
    try:
        redis.delete(*keys)
    except RedisError:
        log.warning("could not forget %d keys after a failed delivery", len(keys))


def _ignored(reason: str) -> tuple[Response, int]:
    return _count("ignored", answer(200, status="ignored", reason=reason))


def _count(outcome: str, result: tuple[Response, int]) -> tuple[Response, int]:
    WEBHOOKS.labels(outcome=outcome).inc()
    return result
