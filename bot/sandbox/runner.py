"""`approval-bot sandbox`: simulators, the real web and worker processes, and the page.

Order matters: Redis is chosen and checked first (a clear line and exit 2 instead of a
worker that waits forever; a private redis-server when there is none, see
bot.sandbox.redis_choice), the page's port is bound before anything is started (a busy
port fails fast), and on Ctrl-C or SIGTERM the children get SIGTERM before the simulators
stop, so the worker drains against a GitLab and Slack that still answer; a private Redis
stops last.
"""

from __future__ import annotations

import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from bot.private_redis import PrivateRedis
from bot.sandbox.driver import Driver
from bot.sandbox.env import Credentials, bot_env
from bot.sandbox.page import create_page
from bot.sandbox.people import seed_gitlab, seed_slack, write_policy
from bot.sandbox.processes import BotProcesses, ChildDied, SandboxError, redis_location
from bot.sandbox.redis_choice import choose
from bot.simulators.gitlab import FakeGitLab
from bot.simulators.slack import FakeSlack
from bot.store.db import Database

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
DATABASE_FILE = "sandbox.db"
# The sweep runs often so expiry and reminders show up while someone watches.
SANDBOX_SETTINGS = {"SWEEP_INTERVAL_SECONDS": "2", "USERGROUP_CACHE_TTL": "5"}

STARTING = "approval-bot sandbox: starting the bot in {workdir} (Redis {redis}) …"
READY = "approval-bot sandbox: open {url}  (Ctrl-C stops it)"
STOPPING = "approval-bot sandbox: stopping …"
PORT_BUSY = "cannot listen on {host}:{port} ({reason}); pass --port with a free port"
PREFIX = "approval-bot sandbox: "
REDIS_DIED = "the private redis-server stopped unexpectedly (exit {code}); its log:\n{log}"


@dataclass(frozen=True)
class Options:
    host: str
    port: int
    redis_url: str | None  # None: REDIS_URL, else 127.0.0.1:6379, else a private one
    workdir: Path | None


class _QuietHandler(WSGIRequestHandler):
    """No access log line for every poll of the page."""

    def log_request(self, *_args: object) -> None:
        return


def run(options: Options) -> int:
    """Run until Ctrl-C or SIGTERM: 0 after a clean stop, 2 when it cannot start, 1 when
    the web or worker process dies while it runs."""
    stop = threading.Event()
    _on_stop_signals(stop)
    try:
        with ExitStack() as stack:  # closed in reverse: the private Redis stops last
            redis_url, private = choose(options.redis_url, stack)
            workdir = stack.enter_context(_workdir(options.workdir))
            return _serve(options, _Redis(redis_url, private), workdir, stack, stop)
    except ChildDied as exc:
        print(PREFIX + str(exc), file=sys.stderr)
        return EXIT_FAILED
    except SandboxError as exc:
        print(PREFIX + str(exc), file=sys.stderr)
        return EXIT_INVALID


@dataclass(frozen=True)
class _Redis:
    url: str
    private: PrivateRedis | None

    def check_alive(self) -> None:
        """A private Redis that died ends the sandbox with its log, as a dead child does."""
        if self.private is None:
            return
        code = self.private.exit_code()
        if code is not None:
            raise ChildDied(REDIS_DIED.format(code=code, log=self.private.log_tail()))


def _serve(
    options: Options, redis: _Redis, workdir: Path, stack: ExitStack, stop: threading.Event
) -> int:
    credentials = Credentials()
    slack, gitlab = _simulators(stack, credentials)
    policy = write_policy(workdir)
    database_url = f"sqlite:///{workdir / DATABASE_FILE}"
    env = bot_env(
        database_url=database_url,
        redis_url=redis.url,
        gitlab_url=gitlab.url,
        slack_api_url=slack.api_url,
        policy=policy,
        credentials=credentials,
        extra=SANDBOX_SETTINGS,
    )
    bot = BotProcesses(workdir, env, _free_port())
    db = Database(database_url)  # no connection yet: the schema comes with `db upgrade`
    stack.callback(db.dispose)
    driver = Driver(bot.web_url, credentials, slack, gitlab)
    page = _bind(options.host, options.port, create_page(driver, db, policy))
    stack.callback(page.server_close)
    shown = redis_location(redis.url)
    print(STARTING.format(workdir=workdir, redis=shown), file=sys.stderr, flush=True)
    stack.callback(bot.stop)  # registered after the simulators: runs before they stop
    bot.start(stopping=stop.is_set)  # Ctrl-C while starting stops at once
    if stop.is_set():
        return EXIT_OK
    _serve_in_thread(page, stack)
    print(READY.format(url=_page_url(options.host, page.port)), flush=True)
    while not stop.wait(0.5):
        bot.check_alive()  # a crashed child ends the sandbox with its log, not silently
        redis.check_alive()
    print(STOPPING, file=sys.stderr, flush=True)
    return EXIT_OK


def _on_stop_signals(stop: threading.Event) -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


@contextmanager
def _workdir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given.resolve()
        return
    made = Path(tempfile.mkdtemp(prefix="approval-bot-sandbox-"))
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


def _simulators(stack: ExitStack, credentials: Credentials) -> tuple[FakeSlack, FakeGitLab]:
    slack = FakeSlack(token=credentials.slack_token).start()
    stack.callback(slack.stop)
    gitlab = FakeGitLab(token=credentials.gitlab_token).start()
    stack.callback(gitlab.stop)
    seed_slack(slack)
    seed_gitlab(gitlab)
    return slack, gitlab


def _bind(host: str, port: int, app: Flask) -> BaseWSGIServer:
    """The page's server, bound before the bot starts so a busy port fails at once.

    The socket is bound here rather than by werkzeug, which exits the process on a busy port.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
        return make_server(
            host, port, app, threaded=True, request_handler=_QuietHandler, fd=sock.fileno()
        )
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SandboxError(PORT_BUSY.format(host=host, port=port, reason=reason)) from None
    finally:
        sock.close()  # the server keeps its own duplicate of the socket


def _serve_in_thread(server: BaseWSGIServer, stack: ExitStack) -> None:
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="sandbox-page", daemon=True
    )
    thread.start()
    stack.callback(thread.join, 5)
    stack.callback(server.shutdown)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _page_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - only for display
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"
