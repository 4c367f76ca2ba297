"""`approval-bot web`: the Flask app under gunicorn (threads, graceful SIGTERM drain).

The worker class is bot.web.edge_worker.EdgeWorker: gthread, except that requests are read
whole in the event loop (within EdgeLimits) before a thread serves them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger

from bot.runtime import Runtime
from bot.settings import Settings
from bot.web.edge_worker import EdgeLimits, EdgeWorker

GRACEFUL_TIMEOUT_S = 30


class JsonLogger(GunicornLogger):  # type: ignore[misc]
    """Gunicorn's own lines through the root handler (bot.logs): JSON, secrets redacted."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                if getattr(handler, "_gunicorn", False):
                    log.removeHandler(handler)
            log.propagate = True


class WebServer(BaseApplication):  # type: ignore[misc]
    def __init__(
        self,
        app: Flask,
        host: str,
        port: int,
        workers: int,
        threads: int,
        on_fork: Callable[[], None] | None = None,
        limits: EdgeLimits | None = None,
    ) -> None:
        self._app = app
        self.edge_limits = limits or EdgeLimits()  # read by each EdgeWorker
        self._options: dict[str, Any] = {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": EdgeWorker,
            "threads": threads,
            "worker_connections": self.edge_limits.max_connections,
            "graceful_timeout": GRACEFUL_TIMEOUT_S,
            "timeout": 60,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "logger_class": JsonLogger,
            "loglevel": "info",
            "proc_name": "approval-bot-web",
            # No gunicornc control socket: a shared default path would clash between instances.
            "control_socket_disable": True,
            "post_fork": lambda _server, _worker: on_fork() if on_fork else None,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._app


def edge_limits(settings: Settings) -> EdgeLimits:
    return EdgeLimits(
        max_body_bytes=settings.MAX_BODY_BYTES,
        header_timeout_s=settings.HTTP_HEADER_TIMEOUT_SECONDS,
        body_timeout_s=settings.HTTP_BODY_TIMEOUT_SECONDS,
    )


def worker_setup(runtime: Runtime, app: Flask | None = None) -> Callable[[], None]:
    """What each new gunicorn worker does first: its own connections, policy watcher and
    (with `app`) the drainer of the webhook spool.

    Connections must not be shared across the fork. Gunicorn restarts its workers on
    SIGHUP, and a new worker re-reads the policy at once.
    """

    def setup() -> None:
        from bot.policy_audit import start_policy_watch

        runtime.db.engine.dispose(close=False)
        runtime.redis.connection_pool.reset()
        runtime.policy.request_reload()
        start_policy_watch(runtime)
        if app is not None:
            from bot.web.spool_drain import start_drainer

            start_drainer(app)

    return setup
