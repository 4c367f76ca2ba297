"""/healthz, /readyz and /metrics."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from bot.web.metrics import exposition
from bot.web.support import METRICS_KEY, answer, edge

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
    registry = current_app.extensions[METRICS_KEY]
    assert isinstance(registry, CollectorRegistry)
    # CONTENT_TYPE_LATEST carries its charset: as `mimetype` Flask would add a second one.
    return Response(exposition(registry), content_type=CONTENT_TYPE_LATEST)
