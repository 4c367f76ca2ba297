"""Webhook intake: `POST /webhooks/gitlab` throughput and latency against a bare endpoint.

The bot's `approval-bot web` (token check, body limit, JSON, pydantic event, policy match,
Redis delivery + gate dedupe, RQ enqueue; no worker running, jobs pile up in Redis DB 9)
is compared, in the same run, with `bench.bare_app`: a Flask endpoint that only reads the
body and answers 202, served by the same `WebServer` (gunicorn gthread) with the same
workers and threads. Every request is a different gated pipeline with its own
Idempotency-Key, so the bot's dedupe and enqueue really happen each time.

(a) max throughput: wrk, closed loop (2 threads, 16 connections, 10 s), runs ordered
    bare, bot, bot, bare so drift on the shared machine hits both alike;
(b) latency at a fixed 200 requests/s for 10 s: bench.loadgen, open loop (latency counted
    from each request's due time, so queueing is not hidden).
Targets: bot throughput >= 0.7x bare; bot p99 < 50 ms at 200/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from bench import stack as stacks
from bench.loadgen import open_loop
from bench.stats import summary, table, write
from tests.integration.harness import WEBHOOK_SECRET, free_port, wait_until

LUA = Path(__file__).with_name("intake.lua")
ROOT = Path(__file__).parent.parent
PIPELINE_MARK, JOB_MARK = 7770777077, 9990999090
THROUGHPUT_TARGET = 0.7
P99_TARGET_MS = 50.0


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is not installed: apt-get install -y wrk")
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("running as root: trying `apt-get install -y wrk`")
        attempt = ["apt-get", "install", "-y", "wrk"]
        if subprocess.run(attempt, check=False).returncode != 0:
            subprocess.run(["apt-get", "update"], check=False)
            subprocess.run(attempt, check=False)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit(
        "bench intake needs wrk (Debian package `wrk`): run `apt-get install -y wrk` as root"
    )


def template(gitlab_url: str) -> str:
    """A real gated Pipeline Hook body with markers where the ids go (see intake.lua)."""
    body = json.dumps(stacks.bench_event(0, PIPELINE_MARK, JOB_MARK, gitlab_url))
    for mark, value in (
        ("{P}", PIPELINE_MARK),
        ("{T}", JOB_MARK - 1),
        ("{J}", JOB_MARK),
        ("{D}", JOB_MARK + 1),
    ):
        assert str(value) in body
        body = body.replace(str(value), mark)
    return body


def fill(text: str, pipeline_id: int) -> bytes:
    job = pipeline_id * 10
    return (
        text.replace("{P}", str(pipeline_id))
        .replace("{T}", str(job - 1))
        .replace("{J}", str(job))
        .replace("{D}", str(job + 1))
        .encode()
    )


class Bare:
    """The baseline server process (bench.bare_app)."""

    def __init__(self, workdir: Path, workers: int, threads: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = (workdir / "bare.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.bare_app",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--threads",
                str(threads),
            ],
            cwd=ROOT,
            stdout=self._log,
            stderr=self._log,
        )
        wait_until(self._ready, 30, "the bare app")

    def _ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # the worker may still be booting
            return False

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            self._log.close()


def run_wrk(
    wrk: str, url: str, template_path: Path, base: int, seconds: float, threads: int, conns: int
) -> dict[str, Any]:
    env = {
        **os.environ,
        "BENCH_TEMPLATE": str(template_path),
        "BENCH_TOKEN": WEBHOOK_SECRET,
        "BENCH_BASE": str(base),
    }
    command = [
        wrk,
        f"-t{threads}",
        f"-c{conns}",
        f"-d{int(seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"{url}/webhooks/gitlab",
    ]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    data: dict[str, Any] = {}
    non_2xx_3xx = 0
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line.removeprefix("BENCH_JSON "))
        elif "Non-2xx or 3xx responses:" in line:
            non_2xx_3xx = int(line.split(":")[1])
    if not data:
        raise RuntimeError(f"no result from wrk: {done.stdout} {done.stderr}")
    seconds_run = data["duration_us"] / 1e6
    lat = data["latency_us"]
    return {
        "requests": data["requests"],
        "rps": round(data["requests"] / seconds_run, 1),
        "p50_ms": round(lat["p50"] / 1000, 2),
        "p90_ms": round(lat["p90"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2),
        "max_ms": round(lat["max"] / 1000, 2),
        "non_2xx_3xx": non_2xx_3xx,
        "socket_errors": {k: v for k, v in data["errors"].items() if k != "status"},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    wrk = ensure_wrk()
    results: dict[str, Any] = {
        "machine": stacks.machine(),
        "config": {
            "gunicorn_workers": args.web_workers,
            "gunicorn_threads": args.web_threads,
            "wrk": {"threads": 2, "connections": args.connections, "seconds": args.seconds},
            "open_loop": {"rate_per_s": args.rate, "seconds": args.seconds},
            "redis": stacks.REDIS_URL,
            "database": "sqlite (not touched by intake except the readiness ping)",
        },
    }
    with stacks.stack() as running:
        running.start_web(args.web_workers, args.web_threads)
        bare = Bare(running.workdir, args.web_workers, args.web_threads)
        try:
            body_template = template(running.gitlab.url)
            template_path = running.workdir / "template.json"
            template_path.write_text(body_template)
            servers = {"bare": bare.url, "bot": running.bot.url}

            # Warm up both (imports on first request, connection pools, pydantic).
            for name, url in servers.items():
                run_wrk(wrk, url, template_path, 10_000_000 + len(name), 2, 2, args.connections)
            stacks.flush()

            wrk_runs: dict[str, list[dict[str, Any]]] = {"bare": [], "bot": []}
            order = ["bare", "bot", "bot", "bare"]
            for i, name in enumerate(order):
                base = 100_000_000 * (i + 1)
                stacks.flush()
                measured = run_wrk(
                    wrk, servers[name], template_path, base, args.seconds, 2, args.connections
                )
                if name == "bot":
                    counts = stacks.queue_counts()
                    measured["enqueued"] = counts["queued"]
                wrk_runs[name].append(measured)
                print(f"  wrk {name}: {measured['rps']} req/s, p99 {measured['p99_ms']} ms")
            stacks.flush()

            loop_runs: dict[str, list[dict[str, Any]]] = {"bare": [], "bot": []}
            pooled: dict[str, list[float]] = {"bare": [], "bot": []}
            for i, name in enumerate(order):
                base = 1_000_000_000 * (i + 1)
                stacks.flush()

                def request_for(n: int, base: int = base) -> tuple[bytes, dict[str, str]]:
                    headers = running.webhook_headers(f"loop-{base}-{n}")
                    return fill(body_template, base + n), headers

                outcome = open_loop(
                    f"{servers[name]}/webhooks/gitlab", request_for, args.rate, args.seconds
                )
                measured = {
                    "from_due": summary(outcome.from_due_s),
                    "service": summary(outcome.service_s),
                    "statuses": outcome.statuses,
                    "errors": outcome.errors,
                    "late_sends": outcome.late_sends,
                    "achieved_rps": round(len(outcome.from_due_s) / outcome.elapsed_s, 1)
                    if outcome.elapsed_s
                    else 0,
                }
                if name == "bot":
                    measured["enqueued"] = stacks.queue_counts()["queued"]
                loop_runs[name].append(measured)
                pooled[name] += outcome.from_due_s
                print(
                    f"  open loop {name}: p99 {measured['from_due']['p99_ms']} ms from due, "
                    f"statuses {outcome.statuses}"
                )
        finally:
            bare_code = bare.stop()
        if args.breakdown:
            stacks.flush()
            done = subprocess.run(
                [sys.executable, "-m", "bench.intake_breakdown"],
                cwd=ROOT,
                env=running.bot.env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if done.returncode == 0:
                results["breakdown"] = json.loads(done.stdout.strip().splitlines()[-1])
            else:
                print(f"  breakdown failed: {done.stderr[-2000:]}")
    results["wrk_runs"] = wrk_runs
    results["open_loop_runs"] = loop_runs
    results["open_loop_pooled"] = {name: summary(values) for name, values in pooled.items()}
    results["bare_exit_code"] = bare_code
    results["summary"] = summarize(wrk_runs, loop_runs, results["open_loop_pooled"])
    return results


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 2) if values else float("nan")


def summarize(
    wrk_runs: dict[str, list[dict[str, Any]]],
    loop_runs: dict[str, list[dict[str, Any]]],
    pooled: dict[str, dict[str, float]],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("bare", "bot"):
        out[name] = {
            "rps": _mean([r["rps"] for r in wrk_runs[name]]),
            "wrk_p50_ms": _mean([r["p50_ms"] for r in wrk_runs[name]]),
            "wrk_p99_ms": _mean([r["p99_ms"] for r in wrk_runs[name]]),
            "at200_p50_ms": pooled[name]["p50_ms"],
            "at200_p99_ms": pooled[name]["p99_ms"],
            "at200_p99_service_ms": _mean([r["service"]["p99_ms"] for r in loop_runs[name]]),
            "at200_max_p99_ms": max(r["from_due"]["p99_ms"] for r in loop_runs[name]),
        }
    bare, bot = out["bare"], out["bot"]
    ratio = round(bot["rps"] / bare["rps"], 2) if bare["rps"] else float("nan")
    out["throughput_ratio"] = ratio
    out["p99_ratio_at200"] = (
        round(bot["at200_p99_ms"] / bare["at200_p99_ms"], 1) if bare["at200_p99_ms"] else None
    )
    out["targets"] = {
        "throughput >= 0.7x bare": {"value": ratio, "met": ratio >= THROUGHPUT_TARGET},
        "p99 < 50 ms at 200/s (both runs pooled)": {
            "value": bot["at200_p99_ms"],
            "met": bot["at200_p99_ms"] < P99_TARGET_MS,
        },
    }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--web-workers", type=int, default=1, help="gunicorn workers (both servers)"
    )
    parser.add_argument(
        "--web-threads", type=int, default=8, help="gunicorn threads (both servers)"
    )
    parser.add_argument(
        "--no-breakdown",
        dest="breakdown",
        action="store_false",
        help="skip the in-process cost breakdown per stage (bench.intake_breakdown)",
    )
    args, _unknown = parser.parse_known_args(argv)
    started = time.monotonic()
    results = run(args)
    results["wall_s"] = round(time.monotonic() - started, 1)
    s = results["summary"]
    rows = [
        (name, {**s[name], "ratio_to_bare": s["throughput_ratio"] if name == "bot" else 1.0})
        for name in ("bare", "bot")
    ]
    columns = ["rps", "ratio_to_bare", "wrk_p50_ms", "wrk_p99_ms", "at200_p50_ms"]
    columns += ["at200_p99_ms", "at200_max_p99_ms"]
    print(table(rows, columns))
    for target, verdict in s["targets"].items():
        print(f"target {target}: {verdict['value']} -> {'met' if verdict['met'] else 'MISSED'}")
    if "breakdown" in results:
        print("CPU per request, in process (Flask test client), one stage added per row:")
        print(table(list(results["breakdown"].items()), ["cpu_ms", "wall_ms"]))
    print(f"written to {write('intake', results)}")


if __name__ == "__main__":
    main()
