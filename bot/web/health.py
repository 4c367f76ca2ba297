"""/healthz, /readyz and /metrics."""

from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.web.support import answer, edge

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> tuple[Response, int]:
    return answer(200, status="ok")


@blueprint.get("/readyz")
def readyz() -> tuple[Response, int]:
    checks = edge().readiness.check(fresh=True)
    ready = all(checks.values())
    return answer(200 if ready else 503, status="ready" if ready else "unavailable", checks=checks)


@blueprint.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)
