"""The intake baseline: a bare Flask endpoint served exactly like the bot's web process.

`python -m bench.bare_app --port P [--workers N] [--threads N]` serves `POST /webhooks/gitlab`
that only reads the body and answers 202 with a small JSON body, through the bot's own
`bot.web.server.WebServer` (gunicorn gthread, same keepalive and timeouts). Nothing else:
no token check, no parsing, no Redis, so the ratio bot/bare is the cost of the bot's work.

`--plain` serves it with a minimal gunicorn application instead, without importing
anything from `bot` (importing `bot.web.server` pulls in the bot's runtime: settings,
clients, SQLAlchemy). The memory benchmark uses it as "what gunicorn + Flask weigh".
"""

from __future__ import annotations

import argparse
from typing import Any

from flask import Flask, Response, jsonify, request


def create_app() -> Flask:
    app = Flask("bench_bare")

    @app.post("/webhooks/gitlab")
    def webhook() -> tuple[Response, int]:
        request.get_data()
        return jsonify(status="queued"), 202

    @app.get("/readyz")
    def ready() -> tuple[Response, int]:
        return jsonify(status="ready"), 200

    return app


def plain_server(app: Flask, bind: str, workers: int, threads: int) -> Any:
    from gunicorn.app.base import BaseApplication

    class Plain(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options = {"bind": bind, "workers": workers, "worker_class": "gthread"}
            options |= {"threads": threads, "keepalive": 5, "accesslog": None, "errorlog": "-"}
            options |= {"control_socket_disable": True}
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return app

    return Plain()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--plain", action="store_true", help="no bot import (memory baseline)")
    args = parser.parse_args()
    if args.plain:
        plain_server(create_app(), f"{args.host}:{args.port}", args.workers, args.threads).run()
        return
    from bot.web.server import WebServer

    app = create_app()  # built before the fork, as the bot's web process did until #15
    WebServer(lambda: app, args.host, args.port, args.workers, args.threads).run()


if __name__ == "__main__":
    main()
