"""End-to-end latency on this machine: webhook → chat.postMessage, final click → GitLab play.

Starts real `approval-bot web` and `worker` processes (SQLite, local Redis) with the fake
Slack and GitLab servers, and drives N gated pipelines through two approvals each. The
baseline, measured in the same run, is one bare HTTP POST to the same fake Slack server:
the ratio says how many such round trips the bot's whole path costs.
"""

from __future__ import annotations

import argparse
import time

import requests

from bench import stack as stacks
from bench.stack import machine
from bench.stats import summary, table, write
from bot.simulators.slack import FakeSlack
from tests.integration.harness import request_id_of, wait_until


def baseline(slack: FakeSlack, n: int) -> list[float]:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {slack.token}"}
    samples = []
    for i in range(n):
        started = time.monotonic()
        session.post(
            f"{slack.api_url}chat.postMessage",
            json={"channel": "C0BASE", "text": f"baseline {i}"},
            headers=headers,
            timeout=5,
        )
        samples.append(time.monotonic() - started)
    return samples


def run(n: int) -> dict[str, object]:
    with stacks.stack(policy=None) as running:  # the test suite's policy: payments-api
        running.start_web()
        running.start_workers(1)
        bot, slack, gitlab = running.bot, running.slack, running.gitlab
        post, play = [], []
        for i in range(n + 3):  # the first 3 warm up caches and connections
            job_id = 900_000 + i * 10
            event = bot.pipeline(pipeline_id=800_000 + i, gate_job_id=job_id)
            posts_before = len(slack.calls_to("chat.postMessage"))
            sent = time.monotonic()
            assert bot.webhook(event, key=f"bench-{i}").status_code == 202
            calls = slack.wait_for("chat.postMessage", posts_before + 1, timeout=10)
            posted = calls[-1]
            request_id = request_id_of(posted.params)
            bot.click("U0RM00001", "approve", request_id)
            wait_until(lambda: bot.responses_to("U0RM00001-approve"), 10, "first approval")
            slack.responses.clear()
            clicked = time.monotonic()
            bot.click("U0CO00001", "approve", request_id)
            played = gitlab.wait_for("POST", rf"/jobs/{job_id}/play", timeout=10)[-1]
            if i >= 3:
                post.append(posted.at - sent)
                play.append(played.at - clicked)
        base = baseline(slack, n)
    codes = running.exit_codes
    results = {
        "machine": machine(),
        "pipelines": n,
        "webhook_to_post": summary(post),
        "click_to_play": summary(play),
        "baseline_http_post": summary(base),
        "exit_codes": codes,
    }
    base_p50 = results["baseline_http_post"]["p50_ms"]  # type: ignore[index]
    for key in ("webhook_to_post", "click_to_play"):
        results[key]["ratio_p50_to_baseline"] = round(results[key]["p50_ms"] / base_p50, 1)  # type: ignore[index]
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipelines", type=int, default=50)
    args, _unknown = parser.parse_known_args(argv)
    results = run(args.pipelines)
    rows = [(k, results[k]) for k in ("webhook_to_post", "click_to_play", "baseline_http_post")]
    print(table(rows, ["n", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "ratio_p50_to_baseline"]))  # type: ignore[arg-type]
    print(f"written to {write('e2e', results)}")


if __name__ == "__main__":
    main()
