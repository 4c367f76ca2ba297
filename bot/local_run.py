"""`make run` (scripts/run-local): the bot's web and worker, and a Redis if there is none.

Runs `approval-bot config check` and `db upgrade`, then `worker` and `web` as children, and
watches them until one of these happens, then stops all of them (SIGTERM, so the worker
finishes its job and gunicorn drains) and exits:

- SIGINT (Ctrl-C), SIGTERM or SIGHUP to this process;
- the process that started it goes away (`make` got SIGTERM or was killed);
- any child exits (a crash, or someone stopped it).

The exit status is 0 after a stop, and 1 when a child failed on its own (its status is
shown). Without REDIS_URL and with nothing answering at 127.0.0.1:6379, a private Redis
is started for the run (bot.private_redis) and stopped last.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from types import FrameType

from bot.private_redis import (
    DIRECTORY,
    LOCAL_REDIS_URL,
    PrivateRedis,
    PrivateRedisError,
    answers,
    die_with_parent,
)
from bot.sandbox.processes import bot_command, redis_location
from bot.settings import redis_url_problem

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
POLL_S = 0.2
STOP_TIMEOUT_S = 30
PREFIX = "approval-bot: "
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
REDIS_NAME = "run"  # var/redis/run.rdb, run.log

REDIS_UNREACHABLE = (
    "Redis is not reachable at {where} (REDIS_URL): start it, or unset REDIS_URL to use "
    "127.0.0.1:6379 or else a private Redis"
)
SERVING = "web on http://{host}:{port}, worker running (Ctrl-C stops both)"
CHILD_EXITED = "`{name}` exited with status {code}: stopping the others"
PARENT_GONE = "the process that started it is gone: stopping"
STOPPING = "stopping …"
STOPPED = "stopped"


class _Stop(Exception):
    """A step before the bot runs failed: exit with `code` (its reason is already shown)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def say(line: str) -> None:
    print(PREFIX + line, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stop = _stop_on_signals()
    parent = os.getppid()
    children: dict[str, subprocess.Popen[bytes]] = {}
    with ExitStack() as stack:
        try:
            redis = _redis(stack)
            _prepare()
        except _Stop as failed:
            return failed.code
        stack.callback(_stop_children, children)  # before the private Redis stops
        children["approval-bot worker"] = _spawn("worker")
        children["approval-bot web"] = _spawn("web", "--host", args.host, "--port", str(args.port))
        say(SERVING.format(host=args.host, port=args.port))
        return _watch(children, redis, stop, parent)
    return EXIT_OK  # pragma: no cover - the with block always returns


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in STOP_SIGNALS:
        signal.signal(signum, handler)
    return stop


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/run-local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="the web's address")
    parser.add_argument("--port", type=int, default=8080, help="the web's port")
    return parser


def _redis(stack: ExitStack) -> PrivateRedis | None:
    """REDIS_URL when set (it must answer), else 127.0.0.1:6379, else a private Redis."""
    given = os.environ.get("REDIS_URL", "")
    if given:
        problem = redis_url_problem(given)
        if problem:
            say(f"REDIS_URL {problem}")
            raise _Stop(EXIT_INVALID)
        if not answers(given):
            say(REDIS_UNREACHABLE.format(where=redis_location(given)))
            raise _Stop(EXIT_FAILED)
        return None
    default = LOCAL_REDIS_URL.format(db=0)
    if answers(default):
        os.environ["REDIS_URL"] = default
        return None
    server = PrivateRedis(DIRECTORY, REDIS_NAME, persist=True)
    try:
        stack.enter_context(server)
    except PrivateRedisError as exc:
        say(str(exc))
        raise _Stop(EXIT_FAILED) from None
    os.environ["REDIS_URL"] = server.url
    say(server.announcement())
    return server


def _prepare() -> None:
    for step in (("config", "check"), ("db", "upgrade")):
        done = subprocess.run([*bot_command(), *step], check=False)  # noqa: S603 - our script
        if done.returncode != 0:
            raise _Stop(done.returncode)


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    # Own session: Ctrl-C reaches only this process, which stops the children in order
    # with SIGTERM (the graceful drain) instead of gunicorn's quick exit on SIGINT.
    return subprocess.Popen(  # noqa: S603 - our own console script
        [*bot_command(), *args],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent(),  # noqa: PLW1509 - only a prctl(2) call in the child
    )


def _watch(
    children: dict[str, subprocess.Popen[bytes]],
    redis: PrivateRedis | None,
    stop: threading.Event,
    parent: int,
) -> int:
    while not stop.wait(POLL_S):
        if os.getppid() != parent:
            say(PARENT_GONE)
            return EXIT_OK
        exited = _exited(children, redis)
        if exited is not None:
            name, code = exited
            say(CHILD_EXITED.format(name=name, code=code))
            return EXIT_OK if code == 0 else EXIT_FAILED
    say(STOPPING)
    return EXIT_OK


def _exited(
    children: dict[str, subprocess.Popen[bytes]], redis: PrivateRedis | None
) -> tuple[str, int] | None:
    for name, child in children.items():
        code = child.poll()
        if code is not None:
            return name, code
    code = None if redis is None else redis.exit_code()
    return None if code is None else ("redis-server", code)


def _stop_children(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    say(STOPPED)


if __name__ == "__main__":
    sys.exit(main())
