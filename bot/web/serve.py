"""The gunicorn master of `approval-bot web`, small: it holds gunicorn and nothing of the bot.

`approval-bot web` checks the settings, the policy and the database first (exit 2 with one
line when something is wrong), then replaces itself (exec, same process id) with
`python -m bot.web.serve`, whose master imports only gunicorn and the edge worker class. Each
worker process builds the bot itself (runtime, Flask app, policy watcher) after the fork: no
connection crosses a fork, and the master's memory is not a second copy of the bot's.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from bot.web.edge_worker import EdgeLimits
from bot.web.server import WebServer

if TYPE_CHECKING:
    from flask import Flask

    from bot.settings import Settings


def exec_web(settings: Settings, host: str, port: int, workers: int, threads: int) -> NoReturn:
    """Become the small gunicorn master (the settings were checked; the environment is kept)."""
    argv = [sys.executable, "-m", "bot.web.serve", "--host", host, "--port", str(port)]
    argv += ["--workers", str(workers), "--threads", str(threads)]
    argv += ["--max-body-bytes", str(settings.MAX_BODY_BYTES)]
    argv += ["--header-timeout", str(settings.HTTP_HEADER_TIMEOUT_SECONDS)]
    argv += ["--body-timeout", str(settings.HTTP_BODY_TIMEOUT_SECONDS)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)  # noqa: S606 -- our own interpreter and module, no shell


def build_app() -> Flask:
    """Run in each gunicorn worker: the bot's runtime and app, its policy watcher and the
    drainer of the webhook spool."""
    from bot.policy_audit import start_policy_watch
    from bot.runtime import build_runtime
    from bot.settings import load_settings
    from bot.web.app import create_app
    from bot.web.spool_drain import start_drainer

    runtime = build_runtime(load_settings())
    app = create_app(runtime)
    start_policy_watch(runtime)
    start_drainer(app)
    return app


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="approval-bot web (gunicorn master)")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--max-body-bytes", type=int, required=True)
    parser.add_argument("--header-timeout", type=float, required=True)
    parser.add_argument("--body-timeout", type=float, required=True)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    from bot.logs import configure

    args = parse(argv)
    configure()
    limits = EdgeLimits(args.max_body_bytes, args.header_timeout, args.body_timeout)
    WebServer(build_app, args.host, args.port, args.workers, args.threads, limits).run()


if __name__ == "__main__":
    main()
