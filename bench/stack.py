"""A benchmark stack: real `approval-bot web` and workers on Redis DB 9, fake Slack and GitLab.

Every benchmark uses Redis DB 9 only (other DBs belong to the tests people run at the same
time) and flushes it before and after itself. Benchmarks therefore must not run in parallel
with each other on one machine.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests
from rq import Queue, Worker

from bot.simulators.gitlab import FakeGitLab
from bot.simulators.gitlab_events import pipeline_event
from bot.simulators.slack import FakeSlack
from tests.integration.harness import (
    WEBHOOK_SECRET,
    Bot,
    bot_env,
    seed_users,
    wait_until,
)
from workers.queue import QUEUE_NAME

# BENCH_REDIS_URL: another server for a run beside others (still its database 9 only).
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
CLIENT_NAME = "approval-bench"  # the bench's own Redis connections, told apart from others
BENCH_DIR = Path(__file__).parent
POLICY = BENCH_DIR / "policy.yml"
PROJECTS = 50
CHANNELS = 10


def connect() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL, client_name=CLIENT_NAME)


def flush() -> None:
    """Empty Redis DB 9 (and only it)."""
    connect().flushdb()


def project_path(index: int) -> str:
    """Project `index` (0..49): `bench/svc-NN`; the policy sends it to C0BENCH0{NN % 10}."""
    return f"bench/svc-{index:02d}"


def project_id(index: int) -> int:
    return 2000 + index


def channel_of(index: int) -> str:
    return f"C0BENCH0{index % CHANNELS}"


def bench_event(index: int, pipeline_id: int, gate_job_id: int, gitlab_url: str) -> dict[str, Any]:
    """A gated pipeline of project `index`, on its own branch.

    One branch per pipeline: the bot closes an older pending request when a newer pipeline
    of the same project, ref and gate arrives (superseded), so pipelines sharing `main`
    would not all keep their request.
    """
    return pipeline_event(
        project_id=project_id(index),
        project_path=project_path(index),
        pipeline_id=pipeline_id,
        ref=f"release/p{pipeline_id}",
        gate_job_id=gate_job_id,
        gitlab_url=gitlab_url,
    )


def queue_counts() -> dict[str, int]:
    """Jobs waiting, failed and scheduled for a retry in the bot's queue on DB 9."""
    queue = Queue(QUEUE_NAME, connection=connect())
    return {
        "queued": queue.count,
        "failed": queue.failed_job_registry.count,
        "scheduled": queue.scheduled_job_registry.count,
        "started": queue.started_job_registry.count,
    }


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo", encoding="utf-8") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    try:
        commit = subprocess.run(
            ["git", "-C", str(BENCH_DIR.parent), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "commit": commit,
        "python": platform.python_version(),
        "cpus": os.cpu_count() or 0,
        "cpu_model": model,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "system": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


@dataclass
class Stack:
    bot: Bot
    slack: FakeSlack
    gitlab: FakeGitLab
    workdir: Path
    exit_codes: dict[str, int] = field(default_factory=dict)
    stray: list[str] = field(default_factory=list)

    def start_web(self, workers: int = 1, threads: int = 8) -> None:
        self.bot.start(
            "web",
            "web",
            "--port",
            str(self.bot.port),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        )
        wait_until(lambda: self._alive() and self._ready(), 30, "the web process to be ready")

    def start_workers(self, count: int) -> None:
        connection = connect()
        for i in range(count):
            self.bot.start("worker" if i == 0 else f"worker{i + 1}", "worker")
        # Ready when every worker has registered itself in Redis (imports done, listening).
        wait_until(
            lambda: self._alive() and len(Worker.all(connection=connection)) >= count,
            30,
            "the workers",
        )

    def _alive(self) -> bool:
        """True while every process runs; raises with its log's tail when one has exited."""
        for name, process in self.bot.processes.items():
            if process.poll() is not None:
                tail = self.bot.log(name)[-1500:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
        return True

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.bot.processes.items()}

    def _ready(self) -> bool:
        try:
            return requests.get(f"{self.bot.url}/readyz", timeout=1).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # the worker may still be booting
            return False

    def webhook_headers(self, key: str) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-Gitlab-Event": "Pipeline Hook",
            "X-Gitlab-Token": WEBHOOK_SECRET,
            "Idempotency-Key": key,
        }


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def db9_clients() -> list[str]:
    """Other connections to Redis DB 9 (a leftover worker would steal the bench's jobs)."""
    return [
        f"{c.get('addr')} name={c.get('name')} cmd={c.get('cmd')} age={c.get('age')}s"
        for c in connect().client_list()
        if str(c.get("db")) == "9" and c.get("name") != CLIENT_NAME
    ]


def leftovers(workdir: Path) -> list[int]:
    """Processes still running in `workdir` (started by this stack, directly or not)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == str(workdir):
                    found.append(int(entry))
            except OSError:
                continue
    return found


def _end(pids: list[int]) -> None:
    """SIGTERM the given processes (ours), then SIGKILL what is left after 10 s."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
        time.sleep(0.2)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


@contextmanager
def stack(
    rate_limit_per_channel: float | None = None, policy: Path | None = POLICY
) -> Iterator[Stack]:
    """Fakes, a migrated SQLite database and the bench policy (`policy=None`: the test
    suite's, tests/fixtures/approvers.yml); processes started by the caller."""
    flush()
    others = db9_clients()
    if others:
        print(f"warning: other clients on Redis DB 9 (results may be wrong): {others}")
    with (
        tempfile.TemporaryDirectory(prefix="approval-bench-") as tmp,
        FakeSlack(rate_limit_per_channel=rate_limit_per_channel) as slack,
        FakeGitLab() as gitlab,
    ):
        workdir = Path(tmp)
        seed_users(slack, gitlab)
        env = bot_env(workdir, slack, gitlab, f"sqlite:///{workdir}/bench.db", REDIS_URL)
        if policy is not None:
            copied = workdir / "bench-policy.yml"
            shutil.copyfile(policy, copied)
            env["APPROVAL_POLICY"] = str(copied)
        bot = Bot(workdir, env, slack, gitlab)
        bot.run("db", "upgrade")
        running = Stack(bot, slack, gitlab, workdir)
        try:
            yield running
        finally:
            codes = bot.stop_all()
            running.exit_codes = codes
            stray = leftovers(workdir)
            if stray:
                running.stray = [f"pid {pid} ppid {_ppid(pid)}: {_cmdline(pid)}" for pid in stray]
                print(f"warning: processes left running after stop: {running.stray}")
                _end(stray)
            keep = os.environ.get("BENCH_KEEP_LOGS")
            if keep:  # e.g. BENCH_KEEP_LOGS=/tmp/bench-logs: the processes' logs, per run
                target = Path(keep) / f"{int(time.time())}-{workdir.name}"
                target.mkdir(parents=True, exist_ok=True)
                for log in workdir.glob("*.log"):
                    shutil.copyfile(log, target / log.name)
            bad = {name: code for name, code in codes.items() if code != 0}
            if bad:
                print(f"warning: processes exited with {bad}")
            flush()
