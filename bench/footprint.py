"""Resident memory of the bot's processes: web (gunicorn master + workers) and each RQ worker.

RSS is VmRSS from /proc/<pid>/status, summed over a process and its children (gunicorn's
workers; the RQ worker's scheduler process). Summing RSS counts pages shared after fork
twice, so PSS (/proc/<pid>/smaps_rollup, shared pages split between sharers) is given too.
Target: < 120 MB RSS each for web and a worker, after a 1,000-pipeline burst.

`python -m bench footprint` measures one burst (unlimited Slack, one worker) on its own;
`python -m bench burst` records the same figures for every burst configuration and writes
them to bench/results/footprint.json as well. Baseline in the same run: the same
processes idle, right after start (ratio after/idle), and `bench.bare_app --plain` idle
(gunicorn + Flask without importing the bot: what they alone weigh).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.stats import table, write

TARGET_MB = 120.0
ROOT = Path(__file__).parent.parent


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def children(pid: int) -> list[int]:
    """Direct and indirect children of `pid` (scanning /proc, no psutil needed)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent:
                found.append(child)
                frontier.append(child)
    return found


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cmd(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()[:80]
    except OSError:
        return ""


def tree(pid: int) -> dict[str, Any]:
    pids = [pid, *children(pid)]
    return {
        "each": [
            {
                "pid": p,
                "cmd": _cmd(p),
                "rss_mb": round(_status_kb(p, "VmRSS") / 1024, 1),
                "anon_mb": round(_status_kb(p, "RssAnon") / 1024, 1),
                "file_mb": round(_status_kb(p, "RssFile") / 1024, 1),
                "pss_mb": round(_pss_kb(p) / 1024, 1),
            }
            for p in pids
        ],
        "rss_mb": round(sum(_status_kb(p, "VmRSS") for p in pids) / 1024, 1),
        "pss_mb": round(sum(_pss_kb(p) for p in pids) / 1024, 1),
        "main_rss_mb": round(_status_kb(pid, "VmRSS") / 1024, 1),
        "main_hwm_mb": round(_status_kb(pid, "VmHWM") / 1024, 1),
        "processes": len(pids),
        "cpu_s": round(sum(_cpu_s(p) for p in pids), 2),
    }


def snapshot(pids: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Memory of each named process tree (e.g. {"web": pid, "worker": pid})."""
    return {name: tree(pid) for name, pid in pids.items()}


def bare_app_idle(workers: int = 1, threads: int = 8) -> dict[str, Any]:
    """RSS of bench.bare_app (gunicorn + Flask, nothing else) after a few requests."""
    import requests

    from tests.integration.harness import free_port, wait_until

    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "bench.bare_app", "--plain", "--port", str(port)),
            *("--workers", str(workers), "--threads", str(threads)),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def ready() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).ok
            except (requests.ConnectionError, requests.Timeout):  # the worker may still be booting
                return False

        wait_until(ready, 30, "the bare app")
        for _ in range(50):
            requests.post(f"http://127.0.0.1:{port}/webhooks/gitlab", data=b"{}", timeout=5)
        time.sleep(0.2)
        return tree(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def report(runs: list[dict[str, Any]], bare: dict[str, Any]) -> dict[str, Any]:
    """footprint.json from burst runs (each with `footprint_idle` and `footprint_after`)."""
    rows = []
    worst = {"web": 0.0, "worker": 0.0}
    for run in runs:
        for name, after in run["footprint_after"].items():
            idle = run["footprint_idle"].get(name, {})
            kind = "web" if name == "web" else "worker"
            worst[kind] = max(worst[kind], after["rss_mb"])
            rows.append(
                {
                    "run": run["name"],
                    "process": name,
                    "idle_rss_mb": idle.get("rss_mb"),
                    "after_rss_mb": after["rss_mb"],
                    "after_pss_mb": after["pss_mb"],
                    "main_hwm_mb": after["main_hwm_mb"],
                    "processes": after["processes"],
                    "after_to_idle": round(after["rss_mb"] / idle["rss_mb"], 2)
                    if idle.get("rss_mb")
                    else None,
                    "to_bare_app": round(after["rss_mb"] / bare["rss_mb"], 2)
                    if bare.get("rss_mb")
                    else None,
                }
            )
    return {
        "bare_app_idle": bare,
        "rows": rows,
        "targets": {
            f"{kind} RSS < {TARGET_MB:.0f} MB after the burst": {
                "value": value,
                "met": value < TARGET_MB,
            }
            for kind, value in worst.items()
        },
    }


def print_report(data: dict[str, Any]) -> None:
    rows = [(f"{r['run']}/{r['process']}", r) for r in data["rows"]]
    bare = data["bare_app_idle"]
    rows.append(
        (
            "bare app idle (gunicorn+Flask)",
            {
                "after_rss_mb": bare["rss_mb"],
                "after_pss_mb": bare["pss_mb"],
                "processes": bare["processes"],
            },
        )
    )
    columns = ["idle_rss_mb", "after_rss_mb", "after_pss_mb", "main_hwm_mb", "processes"]
    print(table(rows, [*columns, "after_to_idle", "to_bare_app"]))
    for target, verdict in data["targets"].items():
        print(f"target {target}: {verdict['value']} -> {'met' if verdict['met'] else 'MISSED'}")


def main(argv: list[str] | None = None) -> None:
    from bench import burst

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst-pipelines", type=int, default=1000)
    args, _unknown = parser.parse_known_args(argv)
    run = burst.run_burst(workers=1, rate_limit=None, pipelines=args.burst_pipelines)
    data = report([run], bare_app_idle())
    print_report(data)
    print(f"written to {write('footprint', data)}")


if __name__ == "__main__":
    main()
