"""`approval-bot web`: the Flask app under gunicorn (threads, graceful SIGTERM drain).

The worker class is bot.web.edge_worker.EdgeWorker: gthread, except that requests are read
whole in the event loop (within EdgeLimits) before a thread serves them. The app is built by
`load_app` in each worker process (bot.web.serve), so this module imports no more than gunicorn
needs: the master process stays small.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger

from bot.web.edge_worker import EdgeLimits, EdgeWorker

if TYPE_CHECKING:
    from flask import Flask


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
        load_app: Callable[[], Flask],
        host: str,
        port: int,
        workers: int,
        threads: int,
        limits: EdgeLimits | None = None,
    ) -> None:
        self._load_app = load_app  # called in each worker process (gunicorn does not preload)
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
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._load_app()
