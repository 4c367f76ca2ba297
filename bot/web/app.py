"""The Flask app factory: blueprints per caller, JSON errors, nothing else."""

from __future__ import annotations

import logging

from flask import Flask, Response
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from bot.logs import register_secrets
from bot.runtime import Runtime
from bot.web import gitlab_hooks, health, request_context, slack_routes, spool
from bot.web.metrics import app_registry
from bot.web.support import METRICS_KEY, edge, error, install
from workers.queue import make_queue

log = logging.getLogger(__name__)


def create_app(runtime: Runtime) -> Flask:
    app = Flask("approval_bot")
    # Werkzeug enforces this too, for bodies sent without Content-Length.
    # One byte of slack: read_body enforces the exact limit, and a chunked body of exactly
    # MAX_BODY_BYTES must be readable to its end.
    app.config["MAX_CONTENT_LENGTH"] = runtime.settings.MAX_BODY_BYTES + 1
    register_secrets(runtime.settings.secret_values())
    install(app, runtime, make_queue(runtime.redis))
    spool.install(app, spool.Spool(runtime.settings.WEBHOOK_SPOOL_DIR))
    with app.app_context():
        app.extensions[METRICS_KEY] = app_registry(edge())
    request_context.install(app)
    app.register_blueprint(gitlab_hooks.blueprint)
    app.register_blueprint(slack_routes.blueprint)
    app.register_blueprint(health.blueprint)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        return error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(DBAPIError)
    @app.errorhandler(RedisError)
    def _unavailable(exc: Exception) -> tuple[Response, int]:
        log.warning("dependency unavailable: %s", type(exc).__name__)
        return error(503, "not ready: Redis or the database is unavailable")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error: %s", type(exc).__name__)
        return error(500, "internal error")

    return app
