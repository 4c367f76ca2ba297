"""`make sandbox` and `make run` as a new user runs them on a machine with no Redis.

Run by tests/integration/test_fresh_machine_*.py inside new Linux namespaces (`unshare`):
a network namespace where only loopback exists (nothing listens on 6379), a PID namespace
(so "no process left" is exact, and everything dies with this process), and a mount
namespace where `var/` of the checkout is a fresh tmpfs and `.env`, if any, is hidden.
Each scenario prints one JSON line of what it saw; the tests assert on it.

    python -m tests.integration.fresh_machine sandbox|run-make|run-supervisor|run-worker
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any, TextIO

import redis
import requests

from bot.simulators.gitlab import FakeGitLab
from bot.simulators.slack import FakeSlack
from tests.integration.harness import Bot, bot_env, request_id_of, seed_users

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 40
WEB_PORT = 8080
SHARED = "redis://127.0.0.1:6379"  # a URL without a database number
PLAYS_KEY = "approval-bot:metrics:plays_total"
RM, CO = "U0RM00001", "U0CO00001"
BUTTON = re.compile(r'data-action-id="approve" data-value="([^"]*)" data-block-id="([^"]*)"')
MESSAGE = re.compile(r'data-channel="([^"]*)" data-ts="([^"]*)"')


def make(target: str, env: dict[str, str], out: TextIO, err: TextIO) -> subprocess.Popen[str]:
    """`make TARGET` with this venv, its install step taken as done (no network here)."""
    return subprocess.Popen(
        ["make", "-o", str(VENV / ".installed-stamp"), f"VENV={VENV}", target],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=err,
        text=True,
        start_new_session=True,  # its own group, as a shell's job: Ctrl-C goes to that group
    )


def fresh_machine() -> None:
    """Loopback up; `var/` a new tmpfs; `.env` and any redis-server outside the venv hidden
    (we are root in the user namespace; the mounts end with it)."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    (ROOT / "var").mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(ROOT / "var")], check=True)
    hidden = [ROOT / ".env", *_system_redis_servers()]
    for path in hidden:
        if path.exists():  # /dev/null in its place: not executable, so not found on PATH
            subprocess.run(["mount", "--bind", "/dev/null", str(path)], check=True)


def _system_redis_servers() -> list[Path]:
    found = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory or ".") / "redis-server"
        if candidate.exists() and VENV not in candidate.resolve().parents:
            found.append(candidate)
    return found


def others() -> list[str]:
    """Command lines of every process in this PID namespace but this one."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            raw = (entry / "cmdline").read_bytes()
            if raw:
                found.append(raw.replace(b"\0", b" ").decode(errors="replace").strip())
    return found


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException, OSError):
            found = check()
            if found:
                return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def ended(process: subprocess.Popen[str]) -> dict[str, Any]:
    """How it ended: make's status, what is left running, whether var/redis/ remains."""
    code = process.wait(STOP_TIMEOUT_S)
    left = wait_for("every process to stop", lambda: not others() or None, STOP_TIMEOUT_S)
    return {
        "make_status": code,
        "left": [] if left else others(),
        "web_port_free": port_free(WEB_PORT),
        "var_redis": sorted(p.name for p in (ROOT / "var" / "redis").glob("*")),
    }


# --- make sandbox -------------------------------------------------------------------------


def sandbox() -> dict[str, Any]:
    started = time.monotonic()
    err_path = ROOT / "var" / "sandbox.err"
    with err_path.open("w") as err:
        process = make("sandbox", dict(os.environ), subprocess.PIPE, err)  # type: ignore[arg-type]
        url = _first_url(process)
        seen: dict[str, Any] = {"url": url}
        seen["seconds_to_url"] = round(time.monotonic() - started, 1)
        seen.update(approve_in_the_page(url))
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in the terminal
        seen.update(ended(process))
    seen["stderr"] = err_path.read_text()
    return seen


def _forward(stream: TextIO, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def approve_in_the_page(url: str) -> dict[str, Any]:
    """Scenario 1 of the README through the page's own API: Rita, then Colette, approve."""
    answer = requests.post(
        url + "api/pipelines",
        json={
            "project": "fintech/payments-api",
            "ref": "main",
            "triggered_by": "devi",
            "author": "devi",
            "title": "Add payment retries",
        },
        timeout=10,
    ).json()
    message = wait_for(
        "the request", lambda: _request_in(requests.get(url + "api/state").json()), 30
    )
    replies = [_click(url, message, who) for who in ("rita", "colette")]
    state = wait_for(
        "the sign-off",
        lambda: (
            (s := requests.get(url + "api/state").json()) and "ledger-signoff" in s["ledger"] and s
        ),
        30,
    )
    return {
        "webhook_status": answer.get("status"),
        "click_statuses": [r.get("status") for r in replies],
        "played": "played 1 time" in state["gitlab"],
        "signoff_names_both": "Rita Release" in state["ledger"]
        and "Colette Compliance" in state["ledger"],
    }


def _request_in(state: dict[str, Any]) -> dict[str, str] | None:
    for channel in state["channels"]:
        for message in channel["messages"]:
            html = message["html"]
            button, head = BUTTON.search(html), MESSAGE.search(html)
            if button and head:
                return {
                    "value": unescape(button[1]),
                    "block_id": unescape(button[2]),
                    "channel": unescape(head[1]),
                    "ts": unescape(head[2]),
                }
    return None


def _click(url: str, message: dict[str, str], who: str) -> dict[str, Any]:
    body = {"user": who, "action_id": "approve", **message}
    answer: dict[str, Any] = requests.post(url + "api/click", json=body, timeout=10).json()
    return answer


# --- make sandbox REDIS_URL=… next to a real bot on the same Redis ------------------------


def sandbox_beside_a_real_bot() -> dict[str, Any]:
    """A Redis on 6379 with a real bot's web on database 0; the sandbox on the same server."""
    server = subprocess.Popen(
        [str(VENV / "bin" / "redis-server"), "--port", "6379", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    wait_for("redis on 6379", lambda: redis.Redis(port=6379).ping(), 10)
    redis.Redis(port=6379, db=14).set("someone-elses", "data")
    refused = subprocess.run(
        [
            str(VENV / "bin" / "approval-bot"),
            "sandbox",
            "--port",
            "0",
            "--redis-url",
            SHARED + "/14",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    seen: dict[str, Any] = {"refused_status": refused.returncode, "refused": refused.stderr}
    err_path = ROOT / "var" / "sandbox.err"
    with err_path.open("w") as err:
        env = {**os.environ, "REDIS_URL": SHARED}  # as `make sandbox REDIS_URL=…` passes it
        process = make("sandbox", env, subprocess.PIPE, err)  # type: ignore[arg-type]
        url = _first_url(process)
        seen.update(approve_in_the_page(url))
        real_bot = _real_web(SHARED + "/0")
        metrics = wait_for("/metrics", _metrics, 30)
        seen["metrics_content_type"] = metrics.headers["Content-Type"]
        seen["real_bot_plays"] = [x for x in metrics.text.splitlines() if "plays_total{" in x]
        seen["sandbox_db_plays"] = redis.Redis(port=6379, db=15, decode_responses=True).hgetall(
            PLAYS_KEY
        )
        real_bot.send_signal(signal.SIGTERM)
        real_bot.wait(STOP_TIMEOUT_S)
        os.killpg(process.pid, signal.SIGINT)
        seen["make_status"] = process.wait(STOP_TIMEOUT_S)
    server.terminate()
    server.wait()
    seen["stderr"] = err_path.read_text()
    return seen


def _first_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_forward, args=(process.stdout, lines), daemon=True).start()
    line = ""
    while "http://" not in line:
        line = lines.get(timeout=START_TIMEOUT_S)
    return str(re.findall(r"http://\S+", line)[0])


def _real_web(redis_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{ROOT / 'var' / 'real.db'}",
        "GITLAB_URL": "http://127.0.0.1:9",
        "GITLAB_TOKEN": "placeholder",
        "GITLAB_WEBHOOK_SECRET": "placeholder",
        "SLACK_BOT_TOKEN": "xoxb-placeholder",
        "SLACK_SIGNING_SECRET": "placeholder",
    }
    bot = [str(VENV / "bin" / "approval-bot")]
    subprocess.run([*bot, "db", "upgrade"], env=env, capture_output=True, check=True)
    return subprocess.Popen(
        [*bot, "web", "--port", str(WEB_PORT)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _metrics() -> requests.Response | None:
    answer = requests.get(f"http://127.0.0.1:{WEB_PORT}/metrics", timeout=2)
    return answer if "approval_bot_ready 1.0" in answer.text else None


# --- make run -----------------------------------------------------------------------------


def run(stop_by: str) -> dict[str, Any]:
    """`make run` against simulated GitLab and Slack; an approval; then one stop signal."""
    slack, gitlab = FakeSlack().start(), FakeGitLab().start()
    seed_users(slack, gitlab)
    workdir = ROOT / "var" / "run-test"
    workdir.mkdir()
    env = bot_env(workdir, slack, gitlab, "unused", "unused")
    for name in ("REDIS_URL", "DATABASE_URL"):  # as on a fresh machine: the defaults
        env.pop(name)
    out_path = workdir / "make-run.out"
    with out_path.open("w") as out:
        process = make("run", env, out, subprocess.STDOUT)  # type: ignore[arg-type]
        bot = Bot(workdir, env, slack, gitlab, port=WEB_PORT)
        wait_for(
            "the web to be ready",
            lambda: requests.get(f"{bot.url}/readyz", timeout=1).ok,
            START_TIMEOUT_S,
        )
        seen: dict[str, Any] = {"approved": approve_in_run(bot) if stop_by == "make" else None}
        target = _target(process.pid, stop_by)
        os.kill(target, signal.SIGTERM)
        seen.update(ended(process))
    slack.stop()
    gitlab.stop()
    seen["output"] = out_path.read_text()
    return seen


def approve_in_run(bot: Bot) -> bool:
    event = bot.pipeline(pipeline_id=7001, gate_job_id=70010)
    assert bot.webhook(event, key="fresh-1").status_code == 202
    request_id = request_id_of(bot.posted_request("C0DEPLOYS"))
    assert bot.click(RM, "approve", request_id).status_code == 200
    assert bot.click(CO, "approve", request_id).status_code == 200
    bot.gitlab.wait_for("POST", r"/jobs/70010/play", timeout=20)
    bot.message_update("Approved", 15)
    return bot.gitlab.play_count(70010) == 1


def _target(make_pid: int, stop_by: str) -> int:
    """make itself, the supervisor make runs (scripts/run-local), or the bot's worker."""
    if stop_by == "make":
        return make_pid
    supervisor = _children(make_pid)[0]
    if stop_by == "supervisor":
        return supervisor
    return next(p for p in _children(supervisor) if b" worker" in _cmdline(p))


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")


SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "sandbox": sandbox,
    "sandbox-shared": sandbox_beside_a_real_bot,
    "run-make": lambda: run("make"),
    "run-supervisor": lambda: run("supervisor"),
    "run-worker": lambda: run("worker"),
}


def main(argv: list[str]) -> int:
    fresh_machine()
    seen = SCENARIOS[argv[0]]()
    print(json.dumps(seen))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
