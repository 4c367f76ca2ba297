"""POST /webhooks/gitlab: verify → size → JSON → in the token's scope? → ready? → is it a
gate? → dedupe → enqueue. What a body says is only a claim: the worker confirms it with
GitLab's API before acting on it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from flask import Blueprint, Response, request
from prometheus_client import Counter
from redis import Redis
from redis.exceptions import RedisError

from bot import deploy_events
from bot.deploy_events import DeployEvent
from bot.events import (
    FINISHED_PIPELINE,
    GATE_TTL_S,
    PLAYED_JOB,
    BadEvent,
    Build,
    GateEvent,
    JobEvent,
    PipelineEvent,
    gate_event,
    gate_jobs,
    gate_key,
    gate_status,
    job_gate_event,
    parse_job,
    usable_pipeline,
)
from bot.policy import Gate, LoadedPolicy, Policy
from bot.policy_secrets import Scope, scope_of
from bot.web import job_hooks
from bot.web.edge_claims import Claim, ClaimKind, ClaimScript, DeliverySeen, Outcome
from bot.web.security import (
    WEBHOOK_ID,
    WEBHOOK_SIGNATURE,
    WEBHOOK_TIMESTAMP,
    gitlab_signature_ok,
)
from bot.web.spool import Spooled, SpoolFull, current_spool
from bot.web.support import BodyTooLarge, Edge, answer, edge, error, parse_json, read_body
from workers import queue as jobs

log = logging.getLogger(__name__)
blueprint = Blueprint("gitlab", __name__)

WEBHOOKS = Counter("approval_bot_webhooks_total", "GitLab webhooks by outcome", ["outcome"])
DELIVERY_TTL_S = 7 * 24 * 3600
DELIVERY_KEY = "approval-bot:delivery:{}"
UNAUTHORIZED = "missing or invalid X-Gitlab-Token"
OUT_OF_SCOPE = "X-Gitlab-Token is not valid for this project"
# The contract's 503, and an operator sees the event was kept: it is acted on after recovery.
NOT_READY_KEPT = (
    "not ready: Redis or the database is unavailable; the event was kept and is acted on"
    " once both answer (a redelivery is processed too)"
)
NOT_TAKEN = "not ready: Redis or the database is unavailable, and the event could not be spooled"


@dataclass
class Routing:
    """What a pipeline event leads to; undo() forgets it if enqueueing fails."""

    queued: list[str] = field(default_factory=list)
    duplicates: int = 0
    reasons: list[str] = field(default_factory=list)
    claimed: list[str] = field(default_factory=list)
    # Gate keys whose earlier status must come back if the delivery is not taken.
    restore: list[tuple[str, str]] = field(default_factory=list)
    # A spooled copy, drained late: it never opens a gate whose key is already there (a
    # redelivery, or a later status change, got there first).
    late: bool = False


@blueprint.post("/webhooks/gitlab")
def gitlab_webhook() -> tuple[Response, int]:
    ctx = edge()
    settings = ctx.runtime.settings
    loaded = ctx.runtime.policy.current
    scope = scope_of(
        request.headers.get("X-Gitlab-Token"), settings.webhook_secrets, loaded.webhook_keys
    )
    if scope is None:
        log.info("webhook refused: missing or invalid X-Gitlab-Token")
        return _count("unauthorized", error(401, UNAUTHORIZED))
    try:
        body = read_body(settings.MAX_BODY_BYTES)
    except BodyTooLarge:
        return _count("too_large", error(413, f"body larger than {settings.MAX_BODY_BYTES} bytes"))
    signing_key = settings.webhook_signing_key
    if not _signed(body, signing_key):
        log.info("webhook refused: missing, invalid or stale webhook-signature")
        return _count("bad_signature", error(401, "missing, invalid or stale webhook-signature"))
    try:
        payload = parse_json(body)
    except ValueError:
        return _count("bad_request", error(400, "body is not valid JSON"))
    if not isinstance(payload, dict) or not isinstance(payload.get("object_kind"), str):
        return _count(
            "bad_request", error(400, "body must be a JSON object with a string object_kind")
        )
    if not _speaks_for(payload, scope, loaded):
        return _count("out_of_scope", error(401, OUT_OF_SCOPE))
    key = request.headers.get("Idempotency-Key")
    if key is None and signing_key is not None:
        key = request.headers.get(WEBHOOK_ID)  # signed, and the same on GitLab's redeliveries
    try:
        return _take(ctx, payload, loaded.policy, scope, key)
    except Unreachable:  # 503 as the contract says; GitLab will not retry it, so keep it too
        return _spool(Spooled(payload, scope.to_json(), key, time.time()))


class Unreachable(Exception):
    """Redis or the database cannot be reached: the event is not taken (nothing remembered)."""


def resubmit(ctx: Edge, event: Spooled) -> bool:
    """A spooled event through the normal path; False while still unreachable.

    Without its Idempotency-Key: the delivery was answered 503, so the contract has its
    redelivery processed, not remembered. The gate key and the deploy keys still make each
    effect happen once: a redelivery before the drain makes the drain a no-op, and one after
    it is a 200 `duplicate` of the gate that already has its request."""
    scope = Scope.from_json(event.scope) or Scope()
    try:
        _take(ctx, event.payload, ctx.runtime.policy.current.policy, scope, None, late=True)
    except Unreachable:
        return False
    return True


def _spool(event: Spooled) -> tuple[Response, int]:
    try:
        current_spool().keep(event)
    except (SpoolFull, OSError) as exc:
        log.error("webhook not taken: Redis or the database is down, and %s", exc)
        return _count("unavailable", error(503, NOT_TAKEN))
    log.warning("webhook answered 503 and kept in the spool: Redis or the database is down")
    return _count("kept", answer(503, error=NOT_READY_KEPT, kept=True))


def _take(
    ctx: Edge,
    payload: dict[str, Any],
    policy: Policy,
    scope: Scope,
    key: str | None,
    late: bool = False,
) -> tuple[Response, int]:
    """An authentic event in the token's scope: what it leads to, queued once (raises
    Unreachable when Redis or the database is down)."""
    try:
        event = _parse(payload)
    except BadEvent as exc:
        return _count("bad_request", error(400, str(exc)))
    if isinstance(event, str):
        return _ignored(event)
    if isinstance(event, JobEvent) and (event.project is None or event.pipeline is None):
        return _take_unresolved(ctx, event, policy, scope, key)
    if isinstance(event, PipelineEvent):
        gated = gate_jobs(event, policy)  # once: the gates are sighted, and their deployments
        sightings = _pipeline_sightings(event, gated)
        deploys = deploy_events.from_pipeline(event, gated)
    else:
        sightings = _job_sightings(policy, event)
        deploys = deploy_events.from_job(event, policy)
    if isinstance(sightings, str) and not deploys:
        return _ignored(sightings)
    if not ctx.readiness.ready():
        raise Unreachable
    found = sightings if isinstance(sightings, list) else []
    return _route(ctx, found, deploys, key, scope, Routing(late=late))


def _signed(body: bytes, signing_key: bytes | None) -> bool:
    """GitLab's webhook signature, when a signing key is configured."""
    return signing_key is None or gitlab_signature_ok(
        body,
        request.headers.get(WEBHOOK_ID),
        request.headers.get(WEBHOOK_TIMESTAMP),
        request.headers.get(WEBHOOK_SIGNATURE),
        signing_key,
    )


def _speaks_for(payload: dict[str, Any], scope: Scope, loaded: LoadedPolicy) -> bool:
    """May the secret this webhook carried speak for the project its body names?

    (The worker checks the project GitLab names too: the body's path is only a claim.)"""
    project = payload.get("project")
    path = project.get("path_with_namespace") if isinstance(project, dict) else None
    if not isinstance(path, str) or scope.allows(path, loaded.webhook_keys):
        return True
    log.warning(
        "webhook refused: its X-Gitlab-Token (%s) is not valid for project %r",
        scope.describe(),
        path[:255],
    )
    return False


@dataclass(frozen=True)
class Sighting:
    """A gate job seen in an event; only pipeline events may open a request."""

    event: GateEvent
    can_open: bool


def _parse(payload: dict[str, Any]) -> PipelineEvent | JobEvent | str:
    """The typed event, or why its kind needs no action."""
    kind = payload["object_kind"]
    if kind == "pipeline":
        return usable_pipeline(payload)
    if kind == "build":
        return parse_job(payload)
    return f"object_kind '{kind}' needs no action"


def _pipeline_sightings(
    event: PipelineEvent, gated: list[tuple[Gate, Build]]
) -> list[Sighting] | str:
    """The policy's gate jobs in this pipeline event, or why it needs no action."""
    found = [Sighting(gate_event(event, build), True) for _, build in gated]
    where = event.project.path_with_namespace
    return found or f"no gate job of the policy in this pipeline of {where}"


def _job_sightings(policy: Policy, event: JobEvent) -> list[Sighting] | str:
    """A gate job's own status change, or why this job event needs no action."""
    project, pipeline_id = event.project, event.pipeline
    if project is None or pipeline_id is None:  # older GitLab: _take_unresolved
        return job_hooks.NO_PIPELINE
    if policy.gate_for(project.path_with_namespace, event.build_name) is None:
        return f"job {event.build_name} of {project.path_with_namespace} is not a gate"
    return [Sighting(job_gate_event(event, project, pipeline_id), False)]


def _take_unresolved(
    ctx: Edge, event: JobEvent, policy: Policy, scope: Scope, key: str | None
) -> tuple[Response, int]:
    """A Job Hook without `project` (older GitLab): the worker reads the project first."""
    claim = job_hooks.unresolved_claim(event, policy)
    if isinstance(claim, str):
        return _ignored(claim)
    if not ctx.readiness.ready():
        raise Unreachable
    claim["scope"] = scope.to_json()
    redis = ctx.runtime.redis
    delivery = DELIVERY_KEY.format(key) if key else None
    try:
        if delivery is not None and not redis.set(delivery, "1", nx=True, ex=DELIVERY_TTL_S):
            return _count("duplicate", answer(200, status="duplicate"))
        queued = job_hooks.pass_on(redis, ctx.queue, claim)
    except RedisError as exc:
        _forget(redis, [job_hooks.status_key(claim), *([delivery] if delivery else [])], [])
        raise Unreachable from exc
    if queued is None:
        return _count("duplicate", answer(200, status="duplicate"))
    return _count("queued", answer(202, status="queued", jobs=[queued]))


def _route(
    ctx: Edge,
    sightings: list[Sighting],
    deploys: list[DeployEvent],
    key: str | None,
    scope: Scope,
    routing: Routing,
) -> tuple[Response, int]:
    """Two Redis round trips: one script claims the delivery and every gate and deployment
    key (bot.web.edge_claims), one pipeline queues the jobs the claims lead to."""
    redis = ctx.runtime.redis
    delivery = DELIVERY_KEY.format(key) if key else None
    planned = [p for s in sightings if (p := _plan_gate(s, scope, routing)) is not None]
    planned += [_plan_deploy(deploy, scope) for deploy in deploys]
    try:
        outcomes = _claims(redis).claim(
            delivery, [p.claim for p in planned], DELIVERY_TTL_S, GATE_TTL_S
        )
    except DeliverySeen:
        return _count("duplicate", answer(200, status="duplicate"))
    except RedisError as exc:  # the script is atomic: nothing was claimed
        log.warning("webhook not taken, Redis failed: %s", type(exc).__name__)
        raise Unreachable from exc
    calls = [p.call for p, o in zip(planned, outcomes, strict=True) if _taken(p, o, routing)]
    try:
        routing.queued = jobs.enqueue_all(ctx.queue, calls)
    except RedisError as exc:
        log.warning("webhook not taken, Redis failed: %s", type(exc).__name__)
        _forget(redis, [*routing.claimed, *([delivery] if delivery else [])], routing.restore)
        raise Unreachable from exc
    if routing.queued:
        return _count("queued", answer(202, status="queued", jobs=routing.queued))
    if routing.duplicates:
        return _count("duplicate", answer(200, status="duplicate"))
    return _ignored("; ".join(routing.reasons))


@dataclass(frozen=True)
class Planned:
    """A key to claim, the job to queue when the claim is taken, and why not when absent."""

    claim: Claim
    call: jobs.Call
    absent_reason: str = ""


def _plan_gate(sighting: Sighting, scope: Scope, routing: Routing) -> Planned | None:
    """Open a request for a waiting gate once; pass each later status change to the worker.

    The per-gate key (bot.events.gate_key) holds the last status seen, so GitLab's repeated
    events for the same state are duplicates, and only changes (cancelled, played behind
    the bot's back) reach the worker, which confirms them with GitLab before acting.
    """
    event = sighting.event
    event["scope"] = scope.to_json()
    key = gate_key(event)
    status = gate_status(event["pipeline_status"], event["job_status"])
    waiting = event["job_status"] == "manual" and event["pipeline_status"] not in FINISHED_PIPELINE
    if waiting and not sighting.can_open:
        routing.reasons.append("job events do not open requests; the pipeline event does")
        return None
    if waiting:
        job_id = f"open-{event['project_id']}-{event['job_id']}-{key.rsplit(':', 1)[1]}"
        # A late spooled copy never reopens a gate whose key is there (a redelivery or a
        # later status change got there first): it claims the key only when absent.
        kind = ClaimKind.ONCE if routing.late else ClaimKind.ANY
        return Planned(Claim(key, kind, status), jobs.Call(jobs.OPEN_REQUEST, dict(event), job_id))
    call = jobs.Call(jobs.PIPELINE_UPDATE, dict(event))
    if event["job_status"] in PLAYED_JOB:
        return Planned(Claim(key, ClaimKind.ANY, status), call)
    why = f"gate job {event['job_name']} is not waiting (status: {event['job_status']})"
    return Planned(Claim(key, ClaimKind.EXISTING, status), call, why)


def _plan_deploy(deploy: DeployEvent, scope: Scope) -> Planned:
    """A deployment fact (deployed, smoke test failed) is acted on once per pipeline."""
    deploy["scope"] = scope.to_json()
    key = deploy_events.deploy_key(deploy)
    return Planned(Claim(key, ClaimKind.ONCE), jobs.Call(jobs.DEPLOYMENT_UPDATE, dict(deploy)))


def _taken(planned: Planned, outcome: Outcome, routing: Routing) -> bool:
    """Note what the claim found; True when its job is to be queued."""
    if outcome.absent:
        routing.reasons.append(planned.absent_reason)
    elif outcome.duplicate:
        routing.duplicates += 1
    elif outcome.previous is None:
        routing.claimed.append(planned.claim.key)
    else:
        routing.restore.append((planned.claim.key, outcome.previous))
    return outcome.taken


@lru_cache(maxsize=4)
def _claims(redis: Redis) -> ClaimScript:
    return ClaimScript(redis)


def _forget(redis: Redis, keys: list[str], restore: list[tuple[str, str]]) -> None:
    """A delivery not taken is not remembered: its redelivery (or its spooled copy) is
    processed."""
    try:
        with redis.pipeline(transaction=True) as pipe:
            if keys:
                pipe.delete(*keys)
            for key, previous in restore:
                pipe.set(key, previous, ex=GATE_TTL_S)
            pipe.execute()
    except RedisError:
        log.warning("could not forget %d keys after a failed delivery", len(keys) + len(restore))


def _ignored(reason: str) -> tuple[Response, int]:
    return _count("ignored", answer(200, status="ignored", reason=reason))


def _count(outcome: str, result: tuple[Response, int]) -> tuple[Response, int]:
    WEBHOOKS.labels(outcome=outcome).inc()
    return result
