"""`approval-bot web`: the Flask app under gunicorn (threads, graceful SIGTERM drain)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

GRACEFUL_TIMEOUT_S = 30


class WebServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Flask, host: str, port: int, workers: int, threads: int) -> None:
        self._app = app
        self._options: dict[str, Any] = {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": threads,
            "graceful_timeout": GRACEFUL_TIMEOUT_S,
            "timeout": 60,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "info",
            "proc_name": "approval-bot-web",
            # No gunicornc control socket: a shared default path would clash between instances.
            "control_socket_disable": True,
            # Connections must not be shared across the fork: each worker opens its own.
            "post_fork": lambda _server, _worker: _reset_connections(app),
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._app


def _reset_connections(app: Flask) -> None:
    edge = app.extensions["approval_bot"]
    edge.runtime.db.engine.dispose(close=False)
    edge.runtime.redis.connection_pool.reset()
