"""Evidence in the request, risk-based approvals and rollback from Slack, end to end.

The story of issue #8: a change adds a NOT NULL column without a default to
`transactions`; the request shows the flag with file and line and needs a DBA on top of
the release manager; after the deployment a failed smoke test offers Roll back, which
plays the rollback job once, lands in the ledger and reaches the audit API.
"""

from __future__ import annotations

import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.integration.harness import Bot, request_id_of, wait_until
from tests.integration.wallet import (
    MIGRATION,
    approve_all,
    deployed_event,
    thread_replies,
    wallet_pipeline,
)

pytestmark = pytest.mark.integration
_ids = itertools.count(1)

RM, RM2, DBA, OUTSIDER = "U0RM00001", "U0RM00002", "U0DBA0001", "U0OUTSIDE"
RAVI = {"id": 12, "name": "Ravi", "username": "ravi", "email": "ravi@example.com"}
RISKY_SQL = "-- fees\nALTER TABLE transactions\n  ADD COLUMN fee_cents bigint NOT NULL;\n"
SAFE_SQL = "CREATE INDEX CONCURRENTLY idx_fee ON invoices (fee_cents);\n"


def test_risky_migration_needs_the_extra_approver_and_rollback_plays_once(live: Bot) -> None:
    event, message, rollback_job = wallet_pipeline(live, next(_ids), RISKY_SQL, user=RAVI)
    text = str(message["blocks"])
    # Evidence: the flag with file and line, why the DBA is needed, commits, earlier jobs.
    assert f"{MIGRATION}:2" in text
    assert "NOT NULL" in text
    assert "transactions" in text
    assert "Extra approval required" in text
    assert "1 dba" in text
    assert "Charge fees" in text
    assert "Full diff" in text
    assert "|lint>: failed (allowed to fail)" in text
    request_id = request_id_of(message)

    approve_all(live, request_id, RM)
    assert "Still needed: 1 dba" in live.responses_to(f"{RM}-approve")[-1]
    approve_all(live, request_id, DBA)
    gate = next(b["id"] for b in event["builds"] if b["name"] == "compliance-gate")
    live.gitlab.wait_for("POST", rf"/jobs/{gate}/play", timeout=15)
    signoff = wait_until(
        lambda: [e for e in live.ledger() if e["kind"] == "signoff" and e["job_id"] == gate],
        15,
        "the sign-off",
    )[0]
    assert any(MIGRATION in flag for flag in signoff["risk_flags"])
    assert {a["slack_user_id"] for a in signoff["approvers"]} == {RM, DBA}

    # Deployed, then the smoke test fails: the thread offers Roll back and alerts.
    answer = live.webhook(deployed_event(live, event, "failed"))
    assert answer.status_code == 202, answer.text
    alert = wait_until(lambda: thread_replies(live, "Smoke test"), 15, "the smoke-test alert")[-1]
    assert alert["reply_broadcast"] in (True, "true", "1")
    assert "rollback" in str(alert["blocks"])
    assert "<@U0RM00001>" in str(alert["blocks"])
    # Ravi triggered it, so the policy would refuse him: "who may roll back" leaves him out.
    assert "<@U0RM00002>" not in str(alert["blocks"])
    offer = wait_until(lambda: thread_replies(live, "Deployed to"), 15, "the rollback offer")[-1]
    who = "Who may roll back: <@U0DBA0001> <@U0RM00001> <!subteam^S0RELEASE>"
    assert who in str(offer["blocks"])

    # The triggerer may not roll back, nor may an outsider; a release manager may, once.
    assert live.click(RM2, "rollback", request_id).status_code == 200
    assert "triggered this pipeline" in live.wait_response(f"{RM2}-rollback")
    assert live.click(OUTSIDER, "rollback", request_id).status_code == 200
    assert "may not roll" in live.wait_response(f"{OUTSIDER}-rollback")
    assert live.gitlab.play_count(rollback_job) == 0

    started = time.monotonic()
    assert live.click(RM, "rollback", request_id).status_code == 200
    live.gitlab.wait_for("POST", rf"/jobs/{rollback_job}/play", timeout=15)
    elapsed = time.monotonic() - started
    assert live.click(RM, "rollback", request_id, response_url=live.slack.response_url("again"))
    assert "rollback: played" in live.wait_response("again")
    assert live.gitlab.play_count(rollback_job) == 1
    assert elapsed < 5, f"click to rollback played took {elapsed:.2f}s"

    entry = wait_until(
        lambda: [e for e in live.ledger() if e["kind"] == "rollback"], 15, "the rollback entry"
    )[-1]
    assert entry["job_id"] == rollback_job
    assert [a["slack_user_id"] for a in entry["approvers"]] == [RM]
    assert entry["reason"] == "smoke test failed"
    assert live.audit is not None
    posted = wait_until(
        lambda: [p for p in live.audit.posts if p.path == "/rollbacks"], 15, "POST /rollbacks"
    )
    assert posted[-1].body["rolled_back_by"] == [RM]
    assert posted[-1].key
    assert live.message_update("Rolled back")
    assert live.run("ledger", "verify").returncode == 0
    metrics = requests.get(f"{live.url}/metrics", timeout=5).text
    assert 'approval_bot_rollbacks_total{outcome="rolled-back"}' in metrics
    assert 'approval_bot_rollbacks_total{outcome="denied:self_approval"}' in metrics


def test_a_safe_change_needs_only_the_base_rules(live: Bot) -> None:
    _, message, _ = wallet_pipeline(live, next(_ids), SAFE_SQL)
    text = str(message["blocks"])
    assert "no risky statements found" in text
    assert "Extra approval required" not in text
    request_id = request_id_of(message)
    approve_all(live, request_id, RM)
    assert "completed the quorum" in live.responses_to(f"{RM}-approve")[-1]


def test_missing_evidence_is_named_and_treated_as_risky(live: Bot) -> None:
    live.gitlab.fail_next("GET", r"/repository/compare", 500, times=None)
    try:
        _, message, _ = wallet_pipeline(live, next(_ids), SAFE_SQL)
    finally:
        live.gitlab.clear_faults()
    text = str(message["blocks"])
    assert "Not available" in text
    assert "unavailable (" in text
    assert "could not be checked" in text
    assert "Extra approval required" in text  # fail safe: unknown changes may be risky


def test_first_deployment_shows_the_commit_and_its_migration(live: Bot) -> None:
    _, message, _ = wallet_pipeline(live, next(_ids), RISKY_SQL, deployed_before=False)
    text = str(message["blocks"])
    assert "no earlier production deployment" in text
    assert f"{MIGRATION}:2" in text


def test_two_people_rolling_back_at_once_play_the_job_once(live: Bot) -> None:
    # Waits for the gate's play: a deployment reported before it would look like a bypass.
    event, request_id, rollback_job = _played(live)
    assert live.webhook(deployed_event(live, event, "success")).status_code == 202
    wait_until(lambda: thread_replies(live, "Deployed to"), 15, "the rollback offer")
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda user: live.click(user, "rollback", request_id), [RM, RM2]))
    assert [a.status_code for a in answers] == [200, 200]
    live.gitlab.wait_for("POST", rf"/jobs/{rollback_job}/play", timeout=15)
    replies = [live.wait_response(f"{user}-rollback") for user in (RM, RM2)]
    assert any("Rolling back now" in r for r in replies), replies
    live.jobs_done(*answers)  # both clicks' jobs are over: no second play can follow
    assert live.gitlab.play_count(rollback_job) == 1
    entries = [e for e in live.ledger() if e["kind"] == "rollback" and e["job_id"] == rollback_job]
    assert len(entries) == 1
    assert entries[0]["reason"] == "rolled back from Slack"


def _played(live: Bot, migration: str | None = SAFE_SQL) -> tuple[dict[str, Any], str, int]:
    event, message, rollback_job = wallet_pipeline(live, next(_ids), migration)
    request_id = request_id_of(message)
    approve_all(live, request_id, RM)
    gate = next(b["id"] for b in event["builds"] if b["name"] == "compliance-gate")
    live.gitlab.wait_for("POST", rf"/jobs/{gate}/play", timeout=15)
    return event, request_id, rollback_job


def test_a_lost_offer_post_is_posted_by_the_retry(live: Bot) -> None:
    """Regression: the fact was recorded before the post, so a failed post was never redone."""
    event, request_id, _ = _played(live)
    live.slack.fail_next("chat.postMessage", error="fatal_error")
    assert live.webhook(deployed_event(live, event, "failed")).status_code == 202
    wait_until(lambda: thread_replies(live, "Deployed to"), 30, "the offer, after a retry")
    wait_until(lambda: thread_replies(live, "Smoke test"), 30, "the alert")
    assert request_id in str(thread_replies(live, "Deployed to")[-1]["blocks"])
    assert [c for c in live.slack.calls_to("chat.postMessage") if c.faulted]


def test_a_rollback_job_gitlab_will_not_list_fails_cleanly(live: Bot) -> None:
    """Regression: a permanent GitLab error while finding the rollback job crashed the job
    (and the sweep retried it forever) instead of failing the rollback."""
    event, request_id, rollback_job = _played(live)
    assert live.webhook(deployed_event(live, event, "failed")).status_code == 202
    wait_until(lambda: thread_replies(live, "Smoke test"), 15, "the alert")
    pipeline = event["object_attributes"]["id"]
    live.gitlab.fail_next("GET", rf"/pipelines/{pipeline}/jobs", 403, times=None)
    try:
        assert live.click(RM, "rollback", request_id).status_code == 200
        assert live.message_update("Roll back failed")
    finally:
        live.gitlab.clear_faults()
    assert live.gitlab.play_count(rollback_job) == 0
    again = live.slack.response_url("again-failed")
    assert live.click(RM, "rollback", request_id, response_url=again).status_code == 200
    assert "rollback: failed" in live.wait_response("again-failed")
    assert not [e for e in live.ledger() if e["kind"] == "rollback" and e["job_id"] == rollback_job]


def _play_newer(live: Bot, event: dict[str, Any]) -> None:
    """A newer pipeline of the same project, approved and its gate played."""
    newer = json.loads(json.dumps(event))
    newer["object_attributes"]["id"] += 100
    newer["builds"] = [{**b, "id": b["id"] + 1000} for b in event["builds"]]
    live.gitlab.seed_from_event(newer)
    before = len(
        [c for c in live.slack.calls_to("chat.postMessage") if "thread_ts" not in c.params]
    )
    assert live.webhook(newer).status_code == 202
    wait_until(
        lambda: (
            len([c for c in live.slack.calls_to("chat.postMessage") if "thread_ts" not in c.params])
            > before
        ),
        15,
        "the newer request",
    )
    newer_id = request_id_of(live.posted_request("C0WALLET", count=1))
    approve_all(live, newer_id, RM)
    newer_gate = next(b["id"] for b in newer["builds"] if b["name"] == "compliance-gate")
    live.gitlab.wait_for("POST", rf"/jobs/{newer_gate}/play", timeout=15)


def test_an_older_deployment_cannot_be_rolled_back_once_a_newer_one_is_out(live: Bot) -> None:
    """Regression: an old thread's Roll back would play an old pipeline's rollback job
    against a production that had moved on; and the old thread kept offering it (#17)."""
    event, request_id, rollback_job = _played(live)
    assert live.webhook(deployed_event(live, event, "success")).status_code == 202
    offer = wait_until(lambda: thread_replies(live, "Deployed to"), 15, "the offer")[-1]
    assert "rollback" in str(offer["blocks"])  # the button, while this deployment is out

    _play_newer(live, event)
    withdrawn = live.message_update("Roll back withdrawn")
    assert "production has moved on" in str(withdrawn["blocks"])
    assert '"action_id": "rollback"' not in json.dumps(withdrawn["blocks"])
    assert live.click(RM, "rollback", request_id).status_code == 200
    assert "Production has moved on" in live.wait_response(f"{RM}-rollback")
    assert live.gitlab.play_count(rollback_job) == 0


def test_no_rollback_is_offered_for_a_deployment_reported_after_a_newer_one(live: Bot) -> None:
    """Regression (#17): a late smoke-test failure of an older pipeline still got a Roll
    back alert, broadcast to the channel, whose button was then refused."""
    event, _, rollback_job = _played(live)
    _play_newer(live, event)
    before = _outcomes(live, "newer-deployment")
    assert live.webhook(deployed_event(live, event, "failed")).status_code == 202
    wait_until(
        lambda: _outcomes(live, "newer-deployment") > before,
        15,
        "the worker's verdict on the late deployment",
    )
    pipeline = f"pipeline #{event['object_attributes']['id']}"
    assert not [r for r in thread_replies(live, "Smoke test") if pipeline in str(r["blocks"])]
    assert live.gitlab.play_count(rollback_job) == 0


def _outcomes(live: Bot, outcome: str) -> float:
    """approval_bot_rollbacks_total for one outcome, as /metrics shows it now."""
    prefix = f'approval_bot_rollbacks_total{{outcome="{outcome}"}} '
    text = requests.get(f"{live.url}/metrics", timeout=5).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))
