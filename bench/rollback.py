"""Evidence and rollback latency: webhook → request posted with and without evidence, and
Roll back click → rollback job played.

Real `approval-bot web` + `worker` (SQLite, local Redis DB 9), the GitLab and Slack
simulators. "With evidence": the project has an earlier production deployment, two commits
since, and a changed migration that is flagged (so GitLab answers deployments, compare,
pipeline jobs and a raw file). "Without": the same pipeline in a project whose repository
GitLab does not know (every evidence call answers 404 at once). The baseline, in the same
run, is one bare HTTP POST to the fake Slack server.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench import stack as stacks
from bench.e2e import baseline
from bench.stack import machine
from bench.stats import summary, table, write
from bot.simulators.gitlab_events import build, pipeline_event
from tests.integration.harness import Bot, request_id_of, wait_until

RM, DBA = "U0RM00001", "U0DBA0001"
RISKY = "ALTER TABLE transactions ADD COLUMN fee bigint NOT NULL;\n"


def _pipeline(bot: Bot, i: int, evidence: bool) -> tuple[dict[str, Any], int]:
    project_id, gate = 5000 + i, 600_000 + i * 10
    base, head = f"{i:06d}" + "a" * 34, f"{i:06d}" + "b" * 34
    bot.gitlab.add_project(project_id, f"fintech/wallet-bench-{i}")
    if evidence:
        bot.gitlab.add_commit(project_id, base, files={"README.md": "x\n"})
        mid = f"{i:06d}" + "c" * 34
        bot.gitlab.add_commit(project_id, mid, parent=base, files={"app.py": "A = 1\n"})
        files: dict[str, str | None] = {"db/migrations/1.sql": RISKY}
        bot.gitlab.add_commit(project_id, head, parent=mid, files=files)
        bot.gitlab.add_deployment(project_id, i + 1, 1, base)
    event = pipeline_event(
        project_id=project_id,
        project_path=f"fintech/wallet-bench-{i}",
        pipeline_id=700_000 + i,
        sha=head,
        gate_job_id=gate,
        gitlab_url=bot.gitlab.url,
        extra_builds=[
            build(gate + 2, "post-deploy", "verify", "created"),
            build(gate + 5, "rollback:production", "rollback", "manual", when="manual"),
        ],
    )
    bot.gitlab.seed_from_event(event)
    return event, gate + 5


def _one(bot: Bot, i: int, evidence: bool) -> tuple[float, float]:
    """Webhook → post, and Roll back click → rollback play, for one pipeline."""
    event, rollback_job = _pipeline(bot, i, evidence)
    posts = len(bot.slack.calls_to("chat.postMessage"))
    sent = time.monotonic()
    assert bot.webhook(event, key=f"rb-{i}").status_code == 202
    posted = bot.slack.wait_for("chat.postMessage", posts + 1, timeout=30)[-1]
    request_id = request_id_of(posted.params)
    for user in (RM, DBA):  # unknown changes count as risky too: the DBA is needed either way
        bot.click(user, "approve", request_id)
    gate = next(b["id"] for b in event["builds"] if b["name"] == "compliance-gate")
    bot.gitlab.wait_for("POST", rf"/jobs/{gate}/play", timeout=30)
    done = {"compliance-gate": "success", "deploy-production": "success", "post-deploy": "failed"}
    later = {**event, "object_attributes": {**event["object_attributes"], "status": "failed"}}
    later["builds"] = [{**b, "status": done.get(b["name"], b["status"])} for b in event["builds"]]
    for job in later["builds"]:  # what GitLab shows: the worker confirms it before acting
        bot.gitlab.job(job["id"])["status"] = job["status"]
    assert bot.webhook(later).status_code == 202
    wait_until(
        lambda: any(
            request_id in str(c.params.get("blocks")) and "thread_ts" in c.params
            for c in bot.slack.calls_to("chat.postMessage")
        ),
        30,
        "the Roll back offer",
    )
    clicked = time.monotonic()
    bot.click(RM, "rollback", request_id)
    played = bot.gitlab.wait_for("POST", rf"/jobs/{rollback_job}/play", timeout=30)[-1]
    return posted.at - sent, played.at - clicked


def run(n: int) -> dict[str, object]:
    samples: dict[str, list[float]] = {k: [] for k in ("post_with", "post_without", "rb")}
    with stacks.stack(policy=None) as running:  # the test suite's policy: the wallet gates
        running.start_web()
        running.start_workers(1)
        for i in range(2 * n + 4):  # the first 4 warm up; then alternate the two kinds
            evidence = i % 2 == 0
            post, rollback = _one(running.bot, i, evidence)
            if i >= 4:
                samples["post_with" if evidence else "post_without"].append(post)
                samples["rb"].append(rollback)
        base = baseline(running.slack, n)
    codes = running.exit_codes
    results: dict[str, Any] = {
        "machine": machine(),
        "pipelines": 2 * n,
        "webhook_to_post_with_evidence": summary(samples["post_with"]),
        "webhook_to_post_without_evidence": summary(samples["post_without"]),
        "rollback_click_to_play": summary(samples["rb"]),
        "baseline_http_post": summary(base),
        "exit_codes": codes,
    }
    base_p50 = results["baseline_http_post"]["p50_ms"]
    for key in KEYS[:-1]:
        results[key]["ratio_p50_to_baseline"] = round(results[key]["p50_ms"] / base_p50, 1)
    return results


KEYS = (
    "webhook_to_post_with_evidence",
    "webhook_to_post_without_evidence",
    "rollback_click_to_play",
    "baseline_http_post",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipelines", type=int, default=25)
    args, _unknown = parser.parse_known_args(argv)
    results = run(args.pipelines)
    rows = [(k, results[k]) for k in KEYS]
    print(table(rows, ["n", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "ratio_p50_to_baseline"]))  # type: ignore[arg-type]
    print(f"written to {write('rollback', results)}")


if __name__ == "__main__":
    main()
