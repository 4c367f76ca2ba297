"""Wallet pipelines for the evidence and rollback tests: a repository with an earlier
production deployment, a change (optionally with a migration), a smoke test and a rollback
job, as the fixture policy's `fintech/wallet-*` gate (risk rules: a DBA for risky migrations)
sees them."""

from __future__ import annotations

from typing import Any

from bot.simulators.gitlab_events import build, pipeline_event
from tests.integration.harness import Bot

MIGRATION = "db/migrations/20261125_add_fee.sql"


def _shas(n: int) -> tuple[str, str]:
    return f"{n:02d}aa" + "0" * 36, f"{n:02d}bb" + "1" * 36


def wallet_pipeline(
    bot: Bot, n: int, migration: str | None, *, deployed_before: bool = True, **kwargs: Any
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Gated wallet pipeline number `n`, whose commit changes `migration` (if given) and which
    carries a post-deploy smoke test and a rollback job; returns the event, the posted
    request and the rollback job id."""
    project_id, pipeline_id, gate = 300 + n, 70_000 + n, 700_000 + n * 10
    base, head = _shas(n)
    path = f"fintech/wallet-{n}"
    bot.gitlab.add_project(project_id, path)
    bot.gitlab.add_commit(project_id, base, title="Initial", files={"README.md": "wallet\n"})
    files: dict[str, str | None] = {"app/fees.py": "FEE = 1\n"}
    if migration is not None:
        files[MIGRATION] = migration
    bot.gitlab.add_commit(
        project_id, head, title="Charge fees", parent=base, author_name="Alice", files=files
    )
    if deployed_before:
        bot.gitlab.add_deployment(project_id, 10 + n, pipeline_id - 1000, base)
    rollback_job = gate + 5
    extra = [
        build(gate - 2, "lint", "test", "failed", allow_failure=True),
        build(gate + 2, "post-deploy", "verify", "created"),
        build(rollback_job, "rollback:production", "rollback", "manual", when="manual"),
    ]
    event = pipeline_event(
        project_id=project_id,
        project_path=path,
        pipeline_id=pipeline_id,
        sha=head,
        gate_job_id=gate,
        extra_builds=extra,
        gitlab_url=bot.gitlab.url,
        **kwargs,
    )
    bot.gitlab.seed_from_event(event)
    assert bot.webhook(event, key=f"wallet-{n}").status_code == 202
    before = len([c for c in bot.slack.calls_to("chat.postMessage") if _top(c, "C0WALLET")])
    return event, bot.posted_request("C0WALLET", count=before + 1), rollback_job


def _top(call: Any, channel: str) -> bool:
    return call.params.get("channel") == channel and "thread_ts" not in call.params


def approve_all(bot: Bot, request_id: str, *users: str) -> None:
    for user in users:
        assert bot.click(user, "approve", request_id).status_code == 200
        bot.wait_response(f"{user}-approve")


def deployed_event(bot: Bot, event: dict[str, Any], smoke: str) -> dict[str, Any]:
    """The pipeline event GitLab sends once the deploy ran and the smoke test finished."""
    later = {**event, "object_attributes": {**event["object_attributes"], "status": "failed"}}
    statuses = {"compliance-gate": "success", "deploy-production": "success", "post-deploy": smoke}
    later["builds"] = [
        {**b, "status": statuses.get(b["name"], b["status"])} for b in event["builds"]
    ]
    for job in later["builds"]:
        bot.gitlab.job(job["id"])["status"] = job["status"]
    return later


def thread_replies(bot: Bot, needle: str) -> list[dict[str, Any]]:
    """Thread replies Slack accepted (not the ones a test made fail) that mention `needle`."""
    return [
        c.params
        for c in bot.slack.calls_to("chat.postMessage")
        if not c.faulted and "thread_ts" in c.params and needle in str(c.params.get("blocks"))
    ]
