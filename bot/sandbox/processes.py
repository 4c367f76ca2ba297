"""The real bot as child processes: `db upgrade`, then `web` and `worker`, stopped with SIGTERM."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis
import requests

READY_TIMEOUT_S = 45
STOP_TIMEOUT_S = 20
LOG_TAIL_CHARS = 2000

REDIS_UNREACHABLE = (
    "Redis is not reachable at {where}: start one (`apt-get install redis-server`, or "
    "`docker run -p 6379:6379 redis`) or pass --redis-url redis://HOST:PORT/DB"
)
CHILD_DIED = "`approval-bot {name}` stopped unexpectedly (exit {code}); its log:\n{log}"
NOT_READY = "the web process did not become ready within {seconds} s; its log:\n{log}"
UPGRADE_FAILED = "`approval-bot db upgrade` failed: {reason}"


class SandboxError(Exception):
    """A reason the sandbox cannot run, shown to the user as one line (plus a log tail)."""


def redis_location(url: str) -> str:
    """host:port/db of a Redis URL, without credentials."""
    return url.split("://", 1)[-1].rsplit("@", 1)[-1] or url


def check_redis(url: str) -> None:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
    except (redis.RedisError, ValueError, OSError):
        raise SandboxError(REDIS_UNREACHABLE.format(where=redis_location(url))) from None


def bot_command() -> list[str]:
    """The `approval-bot` script of this installation (the venv's), else this Python."""
    beside = Path(sys.executable).with_name("approval-bot")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("approval-bot")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]


class ChildDied(SandboxError):
    """The web or worker process exited on its own."""


class BotProcesses:
    """`approval-bot web --port N` and `approval-bot worker` in `workdir`, logging there."""

    def __init__(self, workdir: Path, env: dict[str, str], web_port: int) -> None:
        self.workdir = workdir
        self.env = env
        self.web_port = web_port
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self, stopping: Callable[[], bool] = lambda: False) -> None:
        """Migrate, spawn both, and wait until the web answers (or `stopping()` says so)."""
        self._upgrade()
        self._spawn("web", "web", "--port", str(self.web_port))
        self._spawn("worker", "worker")
        self._wait_ready(stopping)

    def _upgrade(self) -> None:
        done = subprocess.run(  # noqa: S603 - our own console script, fixed arguments
            [*bot_command(), "db", "upgrade"],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            raise SandboxError(UPGRADE_FAILED.format(reason=reason))

    def _spawn(self, name: str, *args: str) -> None:
        with (self.workdir / f"{name}.log").open("ab") as log:
            # Own session: Ctrl-C in the terminal reaches only the sandbox, which then
            # stops the children in order with SIGTERM (the bot's graceful drain).
            self.children[name] = subprocess.Popen(  # noqa: S603 - our own console script
                [*bot_command(), *args],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _wait_ready(self, stopping: Callable[[], bool]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and not stopping():
            self.check_alive()
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.web_url}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        if stopping():
            return
        raise SandboxError(NOT_READY.format(seconds=READY_TIMEOUT_S, log=self.log_tail("web")))

    def check_alive(self) -> None:
        for name, child in self.children.items():
            code = child.poll()
            if code is not None:
                raise ChildDied(CHILD_DIED.format(name=name, code=code, log=self.log_tail(name)))

    def log_tail(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return text[-LOG_TAIL_CHARS:]

    def stop(self) -> dict[str, int]:
        """SIGTERM to every child, then wait; a child that does not drain in time is killed."""
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        codes = {name: self._wait(child) for name, child in self.children.items()}
        self.children.clear()
        return codes

    @staticmethod
    def _wait(child: subprocess.Popen[bytes]) -> int:
        try:
            return child.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            return child.wait()
