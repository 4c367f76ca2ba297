"""Separation of duties fails closed, expiry is decided with the quorum, and authority is
re-checked when the quorum is decided: the stories of issue #13 (items 2, 4 and 6), told
through HTTP to the real `web` and `worker` against the fake GitLab and Slack."""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import running_bot
from tests.integration.harness import Bot, request_id_of, wait_until

pytestmark = pytest.mark.integration
_ids = itertools.count(1)

RITA, RAVI, COLIN = "U0RM00001", "U0RM00002", "U0CO00001"
UNKNOWN_IDENTITY = "cannot confirm that you are not"
NO_LONGER_COUNTS = "approval no longer counts"


@pytest.fixture(scope="module")
def bot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    # Identity and authority do not depend on the database kind (the locked transaction is
    # tested on both in tests/unit/test_store_quorum.py): SQLite keeps the module fast.
    with running_bot(request, tmp_path_factory, "sqlite") as running:
        yield running


def gated(
    bot: Bot,
    project_path: str = "fintech/payments-api",
    user: dict[str, Any] | None = None,
    author: dict[str, str] | None = None,
) -> tuple[str, int]:
    """A fresh gated pipeline; the request id and the gate job id once it is posted."""
    n = next(_ids)
    job_id = 1_300_000 + n * 10
    event = bot.pipeline(
        project_path=project_path,
        project_id=1300 + n,
        pipeline_id=130_000 + n,
        gate_job_id=job_id,
        user=user,
        author=author,
    )
    if user is not None:  # GitLab's jobs API names the same triggerer as the hook
        bot.gitlab.job(job_id)["user"] = {
            k: user[k] for k in ("id", "name", "username") if k in user
        } | {"public_email": user.get("email", "")}
    channel = "C0LEDGER" if project_path.startswith("fintech/ledger") else "C0DEPLOYS"
    before = [c for c in bot.slack.calls_to("chat.postMessage") if c.params["channel"] == channel]
    assert bot.webhook(event, key=f"sep-{n}").status_code == 202
    message = bot.posted_request(channel, count=len(before) + 1)
    return request_id_of(message), job_id


def reply(bot: Bot, user: str, request_id: str) -> str:
    """Click Approve as `user` and wait for the bot's ephemeral answer."""
    name = f"{user}-approve-{request_id[:6]}"
    bot.click(user, "approve", request_id, response_url=bot.slack.response_url(name))
    return bot.wait_response(name)


def signoff_of(bot: Bot, request_id: str) -> dict[str, Any]:
    return wait_until(  # type: ignore[no-any-return]
        lambda: [r for r in bot.ledger() if r["request_id"] == request_id], 10, "the ledger"
    )[0]


# --- item 2: "different" only with a positive tie ---------------------------------------


@pytest.mark.parametrize("email", ["", "[REDACTED]", "rita@laptop.localdomain"])
def test_commit_author_email_that_ties_to_nobody_refuses_rita(live: Bot, email: str) -> None:
    """Rita wrote the commit, but its e-mail proves nothing: she may not approve it."""
    request_id, job_id = gated(live, author={"name": "Rita", "email": email})
    answer = reply(live, RITA, request_id)
    assert UNKNOWN_IDENTITY in answer
    assert "commit author" in answer
    if email.endswith("localdomain"):  # the denial says what to add to `identities`
        assert email in answer
    assert live.gitlab.play_count(job_id) == 0


def test_commit_author_with_a_plus_tag_is_rita(live: Bot) -> None:
    request_id, job_id = gated(live, author={"name": "Rita", "email": "Rita+x@example.com"})
    answer = reply(live, RITA, request_id)
    assert "wrote the commit" in answer
    # Colin is not behind the change: the author's e-mail ties to GitLab user rita, who is
    # Slack's rita@example.com.
    assert "recorded" in reply(live, COLIN, request_id)
    assert live.gitlab.play_count(job_id) == 0


def test_triggerer_with_a_plus_tag_email_is_refused(live: Bot) -> None:
    live.gitlab.users.add(61, "rita-ci", "Rita (CI)", public_email="rita+ci@example.com")
    user = {"id": 61, "name": "Rita (CI)", "username": "rita-ci", "email": "rita+ci@example.com"}
    request_id, job_id = gated(live, user=user)
    assert "triggered this pipeline" in reply(live, RITA, request_id)
    assert live.gitlab.play_count(job_id) == 0


def test_identities_keys_match_gitlab_usernames_in_any_case(live: Bot) -> None:
    """The policy maps `Ravi` (capital R); GitLab's user is `ravi`, who hides his e-mail."""
    live.gitlab.users.users[8]["public_email"] = ""
    user = {"id": 8, "name": "Ravi", "username": "ravi", "email": "[REDACTED]"}
    request_id, job_id = gated(live, user=user)
    assert "triggered this pipeline" in reply(live, RAVI, request_id)
    assert live.gitlab.play_count(job_id) == 0


def test_a_normal_team_approves_as_before(live: Bot) -> None:
    """Bob triggered it (tied to Slack by his verified GitLab e-mail), Alice wrote it (tied
    by the identities map): Rita and Colin are neither, and the gate is played once."""
    request_id, job_id = gated(live)
    assert "recorded" in reply(live, RITA, request_id)
    reply(live, COLIN, request_id)
    live.gitlab.wait_for("POST", rf"/jobs/{job_id}/play", timeout=15)
    assert live.gitlab.play_count(job_id) == 1


# --- item 6: authority re-checked when the quorum is decided -----------------------------


def test_approvers_removed_from_the_group_or_deactivated_no_longer_count(live: Bot) -> None:
    """Gus and Dora (release managers through the S0RELEASE user group) each approve a
    request; then Gus leaves the group and Dora's Slack account is deactivated. Colin's
    approval would complete each quorum: it does not, the messages say why, and another
    release manager completes each."""
    gus, dora = "U0GROUP07", "U0GROUP08"
    live.slack.add_user(gus, "gus", "gus@example.com", real_name="Gus")
    live.slack.add_user(dora, "dora", "dora@example.com", real_name="Dora")
    live.slack.set_usergroup("S0RELEASE", ["U0GROUP01", gus, dora])
    expire_slack_cache(live, time.monotonic())
    (gus_request, gus_job), (dora_request, dora_job) = gated(live), gated(live)
    assert "recorded" in reply(live, gus, gus_request)
    assert "recorded" in reply(live, dora, dora_request)

    live.slack.set_usergroup("S0RELEASE", ["U0GROUP01", dora])
    live.slack.users[dora]["deleted"] = True
    expire_slack_cache(live, time.monotonic())
    for request_id, why in (
        (gus_request, "no longer a release-manager"),
        (dora_request, "deactivated"),
    ):
        answer = reply(live, COLIN, request_id)
        assert "recorded" in answer
        assert "Still needed: 1 release-manager" in answer
        assert NO_LONGER_COUNTS in answer
        update = live.message_update(why, 15)
        assert NO_LONGER_COUNTS in str(update["blocks"])
    assert live.gitlab.play_count(gus_job) == live.gitlab.play_count(dora_job) == 0

    assert "completed the quorum" in reply(live, RITA, gus_request)
    assert "completed the quorum" in reply(live, RAVI, dora_request)
    for request_id, job_id, other in ((gus_request, gus_job, RITA), (dora_request, dora_job, RAVI)):
        live.gitlab.wait_for("POST", rf"/jobs/{job_id}/play", timeout=15)
        approvers = {a["slack_user_id"] for a in signoff_of(live, request_id)["approvers"]}
        assert approvers == {other, COLIN}


def test_approver_removed_from_the_policy_no_longer_counts(live: Bot) -> None:
    path = live.workdir / "approvers.yml"
    original = path.read_text()
    request_id, job_id = gated(live)
    assert "recorded" in reply(live, RAVI, request_id)
    try:
        reload_policy(live, original.replace("[U0RM00001, U0RM00002]", "[U0RM00001]"))
        assert "1 release-manager" in reply(live, COLIN, request_id)
        update = live.message_update(NO_LONGER_COUNTS, 15)
        assert "no longer a release-manager" in str(update["blocks"])
        reply(live, RITA, request_id)
        live.gitlab.wait_for("POST", rf"/jobs/{job_id}/play", timeout=15)
        signoff = signoff_of(live, request_id)
        assert {a["slack_user_id"] for a in signoff["approvers"]} == {RITA, COLIN}
    finally:
        reload_policy(live, original)


def expire_slack_cache(bot: Bot, changed_at: float) -> None:
    """Let the worker's Slack cache run out (USERGROUP_CACHE_TTL, 1 s here): the contract
    lets user groups and profiles be re-read up to that long after a change."""
    ttl = float(bot.env["USERGROUP_CACHE_TTL"])
    wait_until(lambda: time.monotonic() - changed_at > ttl, ttl + 1, "the Slack cache TTL")


def reload_policy(bot: Bot, text: str) -> None:
    """Write the policy and SIGHUP both processes; wait until the worker says it reloaded."""
    path = bot.workdir / "approvers.yml"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    before = bot.log("worker").count("policy reloaded")
    bot.processes["worker"].send_signal(signal.SIGHUP)
    wait_until(
        lambda: bot.log("worker").count("policy reloaded") > before, 15, "the worker's reload"
    )


# --- item 4: expiry decided inside the locked transaction --------------------------------


def test_an_approval_whose_lookups_end_after_expiry_does_not_count(live: Bot) -> None:
    """fintech/ledger-* requests expire after 2 s; the clicker's Slack profile takes 2 s
    to come back, so the click is decided after the request expired."""
    member = "U0GROUP09"
    live.slack.add_user(member, "sven", "sven@example.com", real_name="Sven")
    live.slack.set_usergroup("S0RELEASE", ["U0GROUP01", member])
    expire_slack_cache(live, time.monotonic())
    request_id, job_id = gated(live, project_path="fintech/ledger-race")
    live.slack.delay("users.info", 2.0, times=1)
    answer = reply(live, member, request_id)
    assert "expired" in answer
    update = live.message_update("Expired", 15)
    assert not [b for b in update["blocks"] if b["type"] == "actions"]
    record = signoff_of(live, request_id)
    assert record["kind"] == "expiry"
    assert live.gitlab.calls_to("POST", rf"/jobs/{job_id}/play") == []
