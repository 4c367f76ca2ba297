"""Workers killed with SIGKILL at each step of an approval, and one in the middle of a
rollback: in the end, exactly one play and one sign-off per gate, and one rollback play and
entry, finished by a new worker within 120 s."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.integration.conftest import running_bot
from tests.integration.harness import Bot, request_id_of, wait_until
from tests.integration.wallet import approve_all, deployed_event, thread_replies, wallet_pipeline

pytestmark = pytest.mark.integration

RM, CO = "U0RM00001", "U0CO00001"


@pytest.fixture(scope="module")
def bot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    # PostgreSQL, as in production; the shortest play lease, so recovery fits a test.
    env = {
        "PLAY_LEASE_SECONDS": "45",
        "LEDGER_AUDIT_CHANNEL": "C0AUDIT",
        "LEDGER_PUBLISH_INTERVAL_SECONDS": "1",
    }
    with running_bot(request, tmp_path_factory, "postgresql", env) as running:
        yield running


def test_sigkill_at_every_step(live: Bot) -> None:
    # Three gates, each with its first approval in.
    gates = {}
    for n, step in enumerate(("before-play", "after-play", "after-record"), start=1):
        request_id, job_id = open_gate_named(live, n)
        gates[step] = (request_id, job_id)
    rollback_id, rollback_job = deployed_with_smoke_failure(live)
    # Hold each final approval at a different step, and the rollback inside its play (GitLab
    # plays it, the answer comes too late), then kill every worker mid-job.
    before_id, after_play_job = gates["before-play"][1], gates["after-play"][1]
    live.gitlab.fail_next("GET", rf"/jobs/{before_id}$", timeout=8)
    live.gitlab.fail_next("POST", rf"/jobs/{after_play_job}/play", timeout=3)
    live.gitlab.fail_next("POST", rf"/jobs/{rollback_job}/play", timeout=4)
    live.slack.delay("chat.update", 8)
    for name in ("worker2", "worker3", "worker4"):
        live.start(name, "worker")
    wait_until(lambda: live.workers_listening() == 4, 30, "four workers on the queue")
    updates_before = len(live.slack.calls_to("chat.update"))
    for request_id, _ in gates.values():
        live.click(CO, "approve", request_id)
    live.click(RM, "rollback", rollback_id)
    wait_until(lambda: live.gitlab.play_count(gates["after-record"][1]) == 1, 15, "a play")
    wait_until(lambda: live.gitlab.calls_to("POST", rf"/jobs/{after_play_job}/play"), 15, "play")
    wait_until(lambda: live.gitlab.calls_to("POST", rf"/jobs/{rollback_job}/play"), 15, "rollback")
    # The worker of the gate to kill "after-record" is inside chat.update, after the sign-off.
    signed_off = live.message_with_button("approve", gates["after-record"][0])
    assert signed_off is not None
    wait_until(
        lambda: [
            c
            for c in live.slack.calls_to("chat.update")[updates_before:]
            if c.params.get("ts") == signed_off[1]
        ],
        15,
        "the sign-off's message update",
    )
    killed_at = time.monotonic()
    for name in ("worker", "worker2", "worker3", "worker4"):
        live.stop(name, signal.SIGKILL)
    live.slack.reset()
    live.start("worker", "worker")

    for step, (_request_id, job_id) in gates.items():
        wait_until(
            lambda job_id=job_id: [r for r in live.ledger() if r["job_id"] == job_id],
            120 - (time.monotonic() - killed_at),
            f"the sign-off of the gate killed {step}",
        )
        assert live.gitlab.play_count(job_id) == 1, step
    wait_until(
        lambda: [r for r in live.ledger() if r["kind"] == "rollback"],
        120 - (time.monotonic() - killed_at),
        "the rollback entry",
    )
    assert time.monotonic() - killed_at < 120
    # A killed job may stay "started" until RQ cleans up; the sweep takes orphaned plays up
    # again: once a whole sweep ran after the recovery, any second play would have happened.
    recovered = datetime.now(UTC)
    wait_until(lambda: live.sweep_finished_since(recovered), 30, "a sweep after the recovery")
    assert live.gitlab.play_count(rollback_job) == 1
    assert len([r for r in live.ledger() if r["kind"] == "rollback"]) == 1
    records = [r for r in live.ledger() if r["kind"] == "signoff"]
    for step, (_, job_id) in gates.items():
        assert len([r for r in records if r["job_id"] == job_id]) == 1, step
        assert live.gitlab.play_count(job_id) == 1, step
    # The chain head is published outside the database, so truncation would be visible.
    last = max(r["sequence"] for r in live.ledger())
    wait_until(
        lambda: [
            c
            for c in live.slack.calls_to("chat.postMessage")
            if c.params.get("channel") == "C0AUDIT" and f"#{last}," in c.params["text"]
        ],
        15,
        "the published ledger head",
    )


def open_gate_named(bot: Bot, n: int) -> tuple[str, int]:
    job_id = 500_000 + n * 10
    event = bot.pipeline(pipeline_id=55_000 + n, gate_job_id=job_id, ref=f"crash-{n}")
    assert bot.webhook(event).status_code == 202
    request_id = request_id_of(bot.posted_request(count=n))
    bot.click(RM, "approve", request_id, response_url=bot.slack.response_url(f"first-{n}"))
    wait_until(lambda: bot.responses_to(f"first-{n}"), 15, "the first approval")
    return request_id, job_id


def deployed_with_smoke_failure(bot: Bot) -> tuple[str, int]:
    """A wallet gate approved, played and deployed, whose smoke test failed: Roll back is
    offered. Returns the request id and the rollback job id."""
    event, message, rollback_job = wallet_pipeline(bot, 1, None)
    request_id = request_id_of(message)
    approve_all(bot, request_id, RM)  # no migration changed: the base rule is enough
    gate = next(b["id"] for b in event["builds"] if b["name"] == "compliance-gate")
    bot.gitlab.wait_for("POST", rf"/jobs/{gate}/play", timeout=15)
    assert bot.webhook(deployed_event(bot, event, "failed")).status_code == 202
    wait_until(lambda: thread_replies(bot, "Smoke test"), 15, "the Roll back offer")
    return request_id, rollback_job
