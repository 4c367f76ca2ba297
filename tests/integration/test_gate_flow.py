"""The compliance gate end to end, driven only through the contract's HTTP surface."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
import requests

from tests.integration.harness import Bot, request_id_of, wait_until

pytestmark = pytest.mark.integration
_ids = itertools.count(1)

RM, RM2, CO = "U0RM00001", "U0RM00002", "U0CO00001"
ADMIN, OUTSIDER, GROUP_RM = "U0ADMIN01", "U0OUTSIDE", "U0GROUP01"


def gated(bot: Bot, **kwargs) -> tuple[dict, dict, int]:
    """Send a fresh gated pipeline; return the event, the posted message and the gate job id."""
    n = next(_ids)
    job_id = 100_000 + n * 10
    event = bot.pipeline(pipeline_id=50_000 + n, gate_job_id=job_id, **kwargs)
    answer = bot.webhook(event, key=f"delivery-{n}")
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "queued"
    channel = (
        "C0LEDGER" if kwargs.get("project_path", "").startswith("fintech/ledger") else "C0DEPLOYS"
    )
    before = len(
        [c for c in bot.slack.calls_to("chat.postMessage") if c.params.get("channel") == channel]
    )
    message = bot.posted_request(channel, count=before or 1)
    return event, message, job_id


def test_two_roles_approve_and_the_gate_is_played_once(live: Bot) -> None:
    event, message, job_id = gated(live)
    text = str(message["blocks"])
    assert "fintech/payments-api" in text
    assert str(event["object_attributes"]["id"]) in text
    assert event["object_attributes"]["sha"][:8] in text
    assert "Add payment retries" in text
    request_id = request_id_of(message)
    actions = next(b for b in message["blocks"] if b["type"] == "actions")
    assert {e["action_id"]: e["value"] for e in actions["elements"]} == {
        "approve": request_id,
        "reject": request_id,
    }

    started = time.monotonic()
    assert live.click(RM, "approve", request_id).status_code == 200
    assert "recorded" in live.wait_response(f"{RM}-approve")
    assert live.gitlab.play_count(job_id) == 0

    assert live.click(CO, "approve", request_id).status_code == 200
    live.gitlab.wait_for("POST", rf"/jobs/{job_id}/play", timeout=15)
    played_at = time.monotonic() - started
    assert played_at < 15
    assert live.gitlab.play_count(job_id) == 1

    update = live.message_update("Approved", 15)
    assert not [b for b in update["blocks"] if b["type"] == "actions"]

    records = wait_until(
        lambda: [r for r in live.ledger() if r["job_id"] == job_id], 10, "sign-off"
    )
    signoff = records[0]
    assert signoff["kind"] == "signoff"
    assert signoff["project"] == "fintech/payments-api"
    assert signoff["pipeline_id"] == event["object_attributes"]["id"]
    assert signoff["sha"] == event["object_attributes"]["sha"]
    assert signoff["environment"] == "production"
    assert signoff["recorded_at"].endswith("Z")
    assert {(a["slack_user_id"], a["role"]) for a in signoff["approvers"]} == {
        (RM, "release-manager"),
        (CO, "compliance-officer"),
    }
    assert len(signoff["policy_version"]) == 64
    verify = live.run("ledger", "verify", check=False)
    assert verify.returncode == 0, verify.stdout

    # The external audit API hears of it once, with a stable idempotency key.
    assert live.audit is not None
    posts = wait_until(
        lambda: [
            p
            for p in live.audit.posts
            if p.path == "/deployments" and p.body["pipeline_url"] == signoff["pipeline_url"]
        ],
        10,
        "the audit API post",
    )
    assert len(posts) == 1
    assert posts[0].path == "/deployments"
    assert set(posts[0].body["approved_by"]) == {RM, CO}
    assert posts[0].body["commit_sha"] == signoff["sha"]
    assert posts[0].body["environment"] == "production"
    assert posts[0].body["approved_at"].endswith("Z")
    assert posts[0].key

    # GitLab shows the sign-off on the commit: pending while waiting, then success, and a
    # note naming the approvers.
    sha = event["object_attributes"]["sha"]
    statuses = wait_until(
        lambda: [x for x in live.gitlab.statuses if x["sha"] == sha and x["state"] == "success"],
        15,
        "the success commit status",
    )
    assert statuses[-1]["name"] == "compliance/sign-off"
    assert statuses[-1]["target_url"].startswith("http")
    states = [x["state"] for x in live.gitlab.statuses if x["sha"] == sha]
    assert states[0] == "pending"
    note = wait_until(lambda: [n for n in live.gitlab.notes if n["target"] == sha], 15, "note")
    assert "Rita" in note[-1]["text"]
    assert "Colin" in note[-1]["text"]


def test_a_late_click_after_the_play_changes_nothing(live: Bot) -> None:
    _, message, job_id = gated(live)
    request_id = request_id_of(message)
    live.click(RM, "approve", request_id)
    live.wait_response(f"{RM}-approve")
    live.click(CO, "approve", request_id)
    live.gitlab.wait_for("POST", rf"/jobs/{job_id}/play", timeout=15)
    live.click(RM2, "approve", request_id)
    assert "already" in live.wait_response(f"{RM2}-approve")
    assert live.gitlab.play_count(job_id) == 1


def test_double_click_counts_once(live: Bot) -> None:
    _, message, job_id = gated(live)
    request_id = request_id_of(message)
    live.click(RM, "approve", request_id)
    live.click(RM, "approve", request_id)
    wait_until(lambda: len(live.responses_to(f"{RM}-approve")) >= 2, 15, "two replies")
    replies = live.responses_to(f"{RM}-approve")
    assert any("recorded" in r for r in replies)
    assert any("already approved" in r for r in replies)
    assert live.gitlab.play_count(job_id) == 0


def test_unauthorized_user_is_told_why_and_nothing_is_counted(live: Bot) -> None:
    _, message, job_id = gated(live)
    request_id = request_id_of(message)
    first = live.click(OUTSIDER, "approve", request_id)
    reply = live.wait_response(f"{OUTSIDER}-approve")
    assert "may not approve" in reply
    assert "release-manager" in reply
    # Claims in the payload (a forged name) grant nothing: roles come from the policy.
    forged = live.click(OUTSIDER, "approve", request_id, user_name="U0CO00001")
    counted = live.click(RM, "approve", request_id)
    assert "recorded" in live.wait_response(f"{RM}-approve")
    live.jobs_done(first, forged, counted)
    assert live.gitlab.play_count(job_id) == 0


def test_user_group_member_may_approve(live: Bot) -> None:
    _, message, job_id = gated(live)
    request_id = request_id_of(message)
    live.click(GROUP_RM, "approve", request_id)
    assert "recorded" in live.wait_response(f"{GROUP_RM}-approve")
    live.click(CO, "approve", request_id)
    live.gitlab.wait_for("POST", rf"/jobs/{job_id}/play", timeout=15)


def test_self_approval_is_refused(live: Bot) -> None:
    # Ravi triggered the pipeline; his Slack e-mail matches the webhook's user e-mail.
    user = {"id": 8, "name": "Ravi", "username": "ravi", "email": "RAVI@example.com"}
    _, message, job_id = gated(live, user=user)
    request_id = request_id_of(message)
    live.click(RM2, "approve", request_id)
    reply = live.wait_response(f"{RM2}-approve")
    assert "triggered this pipeline" in reply
    # The commit author (alice, by the identities map and e-mail) may not approve either.
    assert live.gitlab.play_count(job_id) == 0


def test_job_no_longer_manual_is_not_played(live: Bot) -> None:
    _, message, job_id = gated(live)
    request_id = request_id_of(message)
    live.click(RM, "approve", request_id)
    live.wait_response(f"{RM}-approve")
    live.gitlab.job(job_id)["status"] = "canceled"
    live.click(CO, "approve", request_id)
    update = live.message_update("no longer waiting", 15)
    assert not [b for b in update["blocks"] if b["type"] == "actions"]
    assert live.gitlab.calls_to("POST", rf"/jobs/{job_id}/play") == []


def test_transient_gitlab_errors_are_retried_and_the_job_played_once(live: Bot) -> None:
    _, message, job_id = gated(live)
    request_id = request_id_of(message)
    live.gitlab.fail_next("POST", rf"/jobs/{job_id}/play", status=502)
    live.gitlab.fail_next("POST", rf"/jobs/{job_id}/play", status=500, side_effect_then_fail=True)
    live.click(RM, "approve", request_id)
    live.wait_response(f"{RM}-approve")
    live.click(CO, "approve", request_id)
    live.message_update("Approved", 30)
    assert live.gitlab.play_count(job_id) == 1


def test_unknown_request_id(live: Bot) -> None:
    assert live.click(RM, "approve", "0" * 32).status_code == 200
    assert "unknown" in live.wait_response(f"{RM}-approve")


def test_reject_opens_a_modal_records_the_reason_and_cancels(live: Bot) -> None:
    event, message, job_id = gated(live)
    request_id = request_id_of(message)
    assert live.click(CO, "reject", request_id).status_code == 200
    view = live.slack.wait_for("views.open")[-1].params["view"]
    assert view["callback_id"] == "reject_reason"
    assert view["private_metadata"] == request_id
    reason_block = next(b for b in view["blocks"] if b.get("block_id") == "reason")
    assert reason_block["element"]["action_id"] == "reason"

    empty = live.submit_reason(CO, request_id, "  ")
    assert empty.json()["response_action"] == "errors"
    assert live.submit_reason(CO, request_id, "Migration not reviewed").status_code == 200
    pipeline_id = event["object_attributes"]["id"]
    live.gitlab.wait_for("POST", rf"/pipelines/{pipeline_id}/cancel", timeout=15)
    update = live.message_update("Rejected", 15)
    assert not [b for b in update["blocks"] if b["type"] == "actions"]
    assert "Migration not reviewed" in str(update["blocks"])
    record = wait_until(lambda: [r for r in live.ledger() if r["job_id"] == job_id], 10, "record")[
        0
    ]
    assert record["kind"] == "rejection"
    assert record["rejected_by"] == CO
    assert record["reason"] == "Migration not reviewed"
    # A later approval plays nothing.
    live.click(RM, "approve", request_id)
    assert "rejected" in live.wait_response(f"{RM}-approve")
    assert live.gitlab.calls_to("POST", rf"/jobs/{job_id}/play") == []


def test_reject_by_outsider_is_refused_without_a_modal(live: Bot) -> None:
    _, message, _ = gated(live)
    live.click(OUTSIDER, "reject", request_id_of(message))
    assert "may not reject" in live.wait_response(f"{OUTSIDER}-reject")
    assert live.slack.calls_to("views.open") == []


def test_on_reject_leave_does_not_cancel(live: Bot) -> None:
    _event, message, _ = gated(live, project_path="fintech/ledger-core")
    request_id = request_id_of(message)
    live.click(RM, "reject", request_id)
    live.slack.wait_for("views.open")
    live.submit_reason(RM, request_id, "not today")
    live.message_update("Rejected", 15)
    assert live.gitlab.calls_to("POST", r"/cancel") == []


def test_expired_request_cannot_be_approved(live: Bot) -> None:
    _, message, job_id = gated(live, project_path="fintech/ledger-core")
    time.sleep(2.2)
    live.click(RM, "approve", request_id_of(message))
    assert "expired" in live.wait_response(f"{RM}-approve")
    assert live.gitlab.play_count(job_id) == 0


def test_expired_request_is_closed_by_the_sweep(live: Bot) -> None:
    """Nobody clicks: within 60 s of expiry the message says so and has no buttons."""
    _, message, job_id = gated(live, project_path="fintech/ledger-api")
    request_id = request_id_of(message)
    update = live.message_update("Expired", 40)
    assert not [b for b in update["blocks"] if b["type"] == "actions"]
    record = wait_until(
        lambda: [r for r in live.ledger() if r["request_id"] == request_id], 10, "the record"
    )[0]
    assert record["kind"] == "expiry"
    assert live.gitlab.play_count(job_id) == 0


def test_newer_pipeline_supersedes_the_older_request(live: Bot) -> None:
    _, old_message, old_job = gated(live, ref="release/1.2")
    new_event, _, new_job = gated(live, ref="release/1.2")
    new_pipeline = new_event["object_attributes"]["id"]
    update = live.message_update(f"#{new_pipeline}", 15)
    assert "Superseded" in str(update["blocks"])
    assert not [b for b in update["blocks"] if b["type"] == "actions"]
    old_id = request_id_of(old_message)
    live.click(RM, "approve", old_id)
    assert "superseded" in live.wait_response(f"{RM}-approve")
    live.click(CO, "approve", old_id)
    assert "superseded" in live.wait_response(f"{CO}-approve")
    assert live.gitlab.play_count(old_job) == 0
    assert live.gitlab.play_count(new_job) == 0


def test_older_pipeline_arriving_late_is_superseded_at_once(live: Bot) -> None:
    n = next(_ids)
    newer = live.pipeline(
        pipeline_id=60_000 + n * 2 + 1, gate_job_id=200_000 + n * 10 + 5, ref="hotfix/late"
    )
    older = live.pipeline(
        pipeline_id=60_000 + n * 2, gate_job_id=200_000 + n * 10, ref="hotfix/late"
    )
    assert live.webhook(newer).status_code == 202
    live.posted_request()
    posts = len(live.slack.calls_to("chat.postMessage"))
    late = live.webhook(older)
    assert late.status_code == 202
    live.jobs_done(late)
    assert len(live.slack.calls_to("chat.postMessage")) == posts


def test_gate_played_in_gitlab_behind_the_bots_back_is_a_bypass(live: Bot) -> None:
    event, message, job_id = gated(live)
    event["object_attributes"]["status"] = "running"
    next(b for b in event["builds"] if b["id"] == job_id)["status"] = "running"
    live.gitlab.job(job_id)["status"] = "running"  # what GitLab shows, as the event says
    live.gitlab.pipeline(event["object_attributes"]["id"])["status"] = "running"
    answer = live.webhook(event)
    assert answer.status_code == 202
    update = live.message_update("without a sign-off", 15)
    assert not [b for b in update["blocks"] if b["type"] == "actions"]
    alert = wait_until(
        lambda: [
            c
            for c in live.slack.calls_to("chat.postMessage")
            if "bypassed" in str(c.params.get("text"))
        ],
        15,
        "the bypass alert",
    )
    assert {c.params["channel"] for c in alert} >= {"C0DEPLOYS"}
    # The admins' DM may follow the channel's alert: wait for it too.
    opened = wait_until(lambda: live.slack.calls_to("conversations.open"), 15, "the admins' DM")
    assert opened[-1].params["users"] == "U0ADMIN01"
    records = [r for r in live.ledger() if r["job_id"] == job_id]
    assert [r["kind"] for r in records] == ["bypass"]
    # GitLab's next events for the same state add nothing.
    assert live.webhook(event).json()["status"] == "duplicate"
    live.click(RM, "approve", request_id_of(message))
    assert "closed" in live.wait_response(f"{RM}-approve")
    assert live.gitlab.play_count(job_id) == 0


def test_job_hook_for_a_gate_never_seen_waiting_is_a_bypass(live: Bot) -> None:
    from bot.simulators.gitlab_events import job_event

    n = next(_ids)
    job_id = 400_000 + n * 10
    hook = job_event(
        pipeline_id=45_000 + n,
        job_id=job_id,
        status="success",
        pipeline_status="success",
        gitlab_url=live.gitlab.url,
    )
    live.gitlab.seed_from_job_event(hook)
    answer = live.webhook(hook, **{"X-Gitlab-Event": "Job Hook"})
    assert answer.status_code == 202, answer.text
    records = wait_until(
        lambda: [r for r in live.ledger() if r["job_id"] == job_id], 15, "the bypass record"
    )
    assert records[0]["kind"] == "bypass"
    assert "success" in records[0]["reason"]


def test_job_hook_for_a_waiting_gate_opens_nothing(live: Bot) -> None:
    from bot.simulators.gitlab_events import job_event

    hook = job_event(pipeline_id=46_000, job_id=460_000, gitlab_url=live.gitlab.url)
    answer = live.webhook(hook)
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"


def test_our_own_play_is_not_a_bypass(live: Bot) -> None:
    event, message, job_id = gated(live)
    request_id = request_id_of(message)
    live.click(RM, "approve", request_id)
    live.wait_response(f"{RM}-approve")
    live.click(CO, "approve", request_id)
    live.gitlab.wait_for("POST", rf"/jobs/{job_id}/play", timeout=15)
    next(b for b in event["builds"] if b["id"] == job_id)["status"] = "pending"
    event["object_attributes"]["status"] = "running"
    running = live.webhook(event)
    next(b for b in event["builds"] if b["id"] == job_id)["status"] = "success"
    succeeded = live.webhook(event)
    live.jobs_done(running, succeeded)
    kinds = [r["kind"] for r in live.ledger() if r["job_id"] == job_id]
    assert kinds == ["signoff"]


def test_reconcile_opens_missed_gates_and_flags_unsigned_deployments(live: Bot) -> None:
    # A gate waiting in GitLab whose webhook never arrived.
    n = next(_ids)
    missed_job = 600_000 + n * 10
    missed = live.pipeline(pipeline_id=66_000 + n, gate_job_id=missed_job, ref="missed")
    # One deployment signed off through the bot, one done behind its back.
    signed_event, message, signed_job = gated(live)
    request_id = request_id_of(message)
    live.click(RM, "approve", request_id)
    live.wait_response(f"{RM}-approve")
    live.click(CO, "approve", request_id)
    live.gitlab.wait_for("POST", rf"/jobs/{signed_job}/play", timeout=15)
    wait_until(lambda: [r for r in live.ledger() if r["job_id"] == signed_job], 10, "sign-off")
    live.gitlab.deployments.clear()
    signed_pipeline = signed_event["object_attributes"]["id"]
    live.gitlab.add_deployment(101, 7001, signed_pipeline, signed_event["object_attributes"]["sha"])
    live.gitlab.add_deployment(101, 7002, 99_999, "b" * 40)

    result = live.run("reconcile", "--since", "2026-01-01", check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"job {missed_job}" in result.stdout
    lines = result.stdout.splitlines()
    assert any("deployment 7001" in line and "signed off" in line for line in lines)
    assert any("deployment 7002" in line and "NO SIGN-OFF" in line for line in lines)
    assert "1 of 2 production deployments" in result.stdout
    posted = live.posted_request()
    assert str(missed["object_attributes"]["id"]) in str(posted["blocks"])

    # Nothing to open the second time; with only signed deployments, exit 0.
    live.gitlab.deployments.pop()
    again = live.run("reconcile", check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"job {missed_job}" not in again.stdout
    assert live.run("reconcile", "--since", "yesterday", check=False).returncode == 2


def test_merge_request_author_and_merger_may_not_approve(live: Bot) -> None:
    n = next(_ids)
    event = live.pipeline(
        project_id=303,
        project_path="fintech/cards-api",
        pipeline_id=77_000 + n,
        gate_job_id=770_000 + n * 10,
        sha=f"{77_000 + n:040x}",
    )
    sha = event["object_attributes"]["sha"]
    live.gitlab.add_merge_request(303, 40 + n, sha, author="alice", merged_by="ravi")
    assert live.webhook(event).status_code == 202
    message = live.posted_request(
        "C0CARDS",
        count=len(
            [
                c
                for c in live.slack.calls_to("chat.postMessage")
                if c.params.get("channel") == "C0CARDS"
            ]
        )
        or 1,
    )
    request_id = request_id_of(message)
    live.click(RM2, "approve", request_id)
    assert "merged the merge request" in live.wait_response(f"{RM2}-approve")
    live.click(RM, "approve", request_id)
    live.gitlab.wait_for("POST", rf"/jobs/{770_000 + n * 10}/play", timeout=15)


def test_unknown_merger_is_denied_by_default(live: Bot) -> None:
    n = next(_ids)
    event = live.pipeline(
        project_id=303,
        project_path="fintech/cards-api",
        pipeline_id=78_000 + n,
        gate_job_id=780_000 + n * 10,
        sha=f"{78_000 + n:040x}",
    )
    live.gitlab.add_merge_request(
        303, 60 + n, event["object_attributes"]["sha"], author="alice", merged_by="zed"
    )
    answer = live.webhook(event)
    assert answer.status_code == 202
    live.jobs_done(answer)  # its request is posted: the count below includes it
    message = live.posted_request(
        "C0CARDS",
        count=len(
            [
                c
                for c in live.slack.calls_to("chat.postMessage")
                if c.params.get("channel") == "C0CARDS"
            ]
        ),
    )
    live.click(RM, "approve", request_id_of(message))
    reply = live.wait_response(f"{RM}-approve")
    assert "cannot confirm" in reply
    assert "zed" in reply


def test_slack_rate_limits_and_errors_are_retried_without_duplicate_posts(live: Bot) -> None:
    live.slack.fail_next("chat.postMessage", 429, retry_after=1)
    live.slack.fail_next("chat.postMessage", 503)
    n = next(_ids)
    event = live.pipeline(pipeline_id=88_000 + n, gate_job_id=880_000 + n * 10, ref="rate-limit")
    started = time.monotonic()
    answer = live.webhook(event)
    assert answer.status_code == 202
    posts = wait_until(
        lambda: [c for c in live.slack.calls_to("chat.postMessage") if not c.faulted],
        20,
        "the post after the faults",
    )
    assert posts[0].at - started >= 1.0  # Retry-After was honoured
    live.jobs_done(answer)
    assert len([c for c in live.slack.calls_to("chat.postMessage") if not c.faulted]) == 1
    assert len(live.slack.calls_to("chat.postMessage")) == 3


def test_unplayable_answer_while_still_manual_is_retried_once_more(live: Bot) -> None:
    _, message, job_id = gated(live)
    request_id = request_id_of(message)
    body = {"message": "400 Bad request - Unplayable Job"}
    live.gitlab.fail_next("POST", rf"/jobs/{job_id}/play", status=400, body=body)
    live.click(RM, "approve", request_id)
    live.wait_response(f"{RM}-approve")
    live.click(CO, "approve", request_id)
    live.message_update("Approved", 30)
    assert live.gitlab.play_count(job_id) == 1


def test_play_timeout_that_went_through_is_not_played_again(live: Bot) -> None:
    """GitLab plays the job but the answer never arrives: the next status check sees it."""
    _, message, job_id = gated(live)
    request_id = request_id_of(message)
    live.gitlab.fail_next("POST", rf"/jobs/{job_id}/play", timeout=12)
    live.click(RM, "approve", request_id)
    live.wait_response(f"{RM}-approve")
    live.click(CO, "approve", request_id)
    live.message_update("Approved", 40)
    assert live.gitlab.play_count(job_id) == 1
    assert len([r for r in live.ledger() if r["job_id"] == job_id]) == 1


def test_reminders_in_the_thread_and_escalation(live: Bot) -> None:
    n = next(_ids)
    event = live.pipeline(
        project_id=404,
        project_path="fintech/treasury-api",
        pipeline_id=90_000 + n,
        gate_job_id=900_000 + n * 10,
    )
    assert live.webhook(event).status_code == 202
    message = live.posted_request("C0TREASURY")
    live.click(RM, "approve", request_id_of(message))
    live.wait_response(f"{RM}-approve")
    reminder = wait_until(
        lambda: [
            c
            for c in live.slack.calls_to("chat.postMessage")
            if c.params.get("thread_ts") == message.get("ts", c.params.get("thread_ts"))
            and "Still waiting" in str(c.params.get("text"))
        ],
        20,
        "a reminder in the thread",
    )[0].params
    assert "compliance-officer" in reminder["text"]
    assert "<@U0CO00001>" in reminder["text"]
    assert "<@U0RM00001>" not in reminder["text"]
    escalation = wait_until(
        lambda: [
            c
            for c in live.slack.calls_to("chat.postMessage")
            if c.params.get("channel") == "C0ESCALATE"
        ],
        20,
        "the escalation",
    )
    assert len(escalation) == 1
    assert "fintech/treasury-api" in escalation[0].params["text"]
    assert "<@U0ADMIN01>" in escalation[0].params["text"]


def test_removed_from_the_user_group_can_no_longer_approve(live: Bot) -> None:
    _, message, job_id = gated(live)
    request_id = request_id_of(message)
    live.slack.set_usergroup("S0RELEASE", [])  # the cache lives USERGROUP_CACHE_TTL=1 s
    time.sleep(1.2)
    live.click(GROUP_RM, "approve", request_id)
    assert "may not approve" in live.wait_response(f"{GROUP_RM}-approve")
    live.slack.set_usergroup("S0RELEASE", [GROUP_RM])
    assert live.gitlab.play_count(job_id) == 0


def test_new_pipeline_racing_the_final_approval_never_plays_both(live: Bot) -> None:
    import threading

    old_event, message, old_job = gated(live, ref="release/race")
    request_id = request_id_of(message)
    live.click(RM, "approve", request_id)
    live.wait_response(f"{RM}-approve")
    n = next(_ids)
    new_event = live.pipeline(
        pipeline_id=50_000 + n + 500, gate_job_id=100_000 + n * 10 + 5, ref="release/race"
    )
    answers: list[requests.Response] = []
    racers = [
        threading.Thread(target=lambda: answers.append(live.click(CO, "approve", request_id))),
        threading.Thread(target=lambda: answers.append(live.webhook(new_event))),
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    reply = live.wait_response(f"{CO}-approve", 20)
    live.jobs_done(*answers)
    played = live.gitlab.play_count(old_job)
    kinds = [r["kind"] for r in live.ledger() if r["job_id"] == old_job]
    if played:  # the approval won: the old gate played once, with its sign-off
        assert played == 1
        assert kinds == ["signoff"]
    else:  # the new pipeline won: the old request is superseded, nothing played
        assert "superseded" in reply
        assert kinds == ["supersession"]
    del old_event


def test_play_refused_by_gitlab_tells_the_channel_and_the_admins(live: Bot) -> None:
    _, message, job_id = gated(live)
    request_id = request_id_of(message)
    live.click(RM, "approve", request_id)
    live.wait_response(f"{RM}-approve")
    live.gitlab.fail_next("POST", rf"/jobs/{job_id}/play", status=403)
    live.click(CO, "approve", request_id)
    update = live.message_update("refused", 20)
    assert not [b for b in update["blocks"] if b["type"] == "actions"]
    dm = wait_until(
        lambda: [
            c
            for c in live.slack.calls_to("chat.postMessage")
            if "refused to play" in str(c.params.get("text"))
        ],
        15,
        "the admin notice",
    )
    assert live.slack.calls_to("conversations.open")[-1].params["users"] == ADMIN
    assert len(dm) == 1


def test_unknown_channel_is_reported_to_the_admins_once(live: Bot) -> None:
    # C0LEDGER is gone (archived, renamed, bot removed). Its gate's requests expire in 2 s,
    # so nothing is re-posted into later tests once the channel is back.
    live.slack.channels = {"C0DEPLOYS", "C0CARDS", "C0TREASURY", "C0ESCALATE"}
    try:
        answers = []
        for _ in range(2):
            n = next(_ids)
            event = live.pipeline(
                project_path="fintech/ledger-gone",
                pipeline_id=95_000 + n,
                gate_job_id=950_000 + n * 10,
                ref=f"gone-{n}",
            )
            answers.append(live.webhook(event))
            assert answers[-1].status_code == 202

        def admin_notices() -> list[Any]:
            return [
                c
                for c in live.slack.calls_to("chat.postMessage")
                if "cannot post approval requests" in str(c.params.get("text"))
            ]

        wait_until(admin_notices, 20, "the admin notice")
        live.jobs_done(*answers)
        notices = admin_notices()  # counted again once both jobs are done
        assert len(notices) == 1
        assert "channel_not_found" in notices[0].params["text"]
    finally:
        live.slack.channels = None
