"""`python -m bench slack_ack [--clicks N] [--redis URL]`: how fast the edge answers Reject
clicks (which call Slack inside the 3-second ack) while Slack is fine, slow or rate-limiting.

Each scenario clicks Reject N times (default 50) on the real Flask app against the Slack
simulator; the ack time is the click's HTTP round trip. Slack's deadline is 3 s.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench.stack import REDIS_URL
from bench.stats import summary, table, write
from bot.simulators.slack import FakeSlack
from tests.unit.slack_edge import slack_edge


def _slow(slack: FakeSlack) -> None:
    slack.delay("usergroups.users.list", 3)
    slack.delay("views.open", 3)


SCENARIOS: dict[str, Callable[[FakeSlack], None]] = {
    "slack answers at once": lambda _slack: None,
    "slack answers after 3 s": _slow,
    "usergroups.users.list 429 (Retry-After 4)": lambda slack: slack.fail_next(
        "usergroups.users.list", 429, retry_after=4, times=None
    ),
    "views.open 429 (Retry-After 4)": lambda slack: slack.fail_next(
        "views.open", 429, retry_after=4, times=None
    ),
}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench slack_ack")
    parser.add_argument("--clicks", type=int, default=50)
    parser.add_argument("--redis", default=REDIS_URL)
    args, _ = parser.parse_known_args(argv)
    rows: list[tuple[str, dict[str, Any]]] = []
    for name, make_slack_misbehave in SCENARIOS.items():
        redis.Redis.from_url(args.redis).flushdb()
        with tempfile.TemporaryDirectory() as tmp, slack_edge(Path(tmp), args.redis) as edge:
            make_slack_misbehave(edge.slack)
            timings = [edge.reject_click() for _ in range(args.clicks)]
        rows.append((name, summary(timings)))
        print(f"{name}: {rows[-1][1]}", flush=True)
    print(table(rows, ["n", "p50_ms", "p90_ms", "p99_ms", "mean_ms"]))
    write("slack_ack", dict(rows))
