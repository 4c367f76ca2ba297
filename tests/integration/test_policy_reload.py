"""The policy file is live: changes are in force within 10 s, invalid ones are refused."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from tests.integration.conftest import running_bot
from tests.integration.harness import Bot, request_id_of, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    # Reloading does not touch the database kind: SQLite only keeps the suite fast.
    with running_bot(request, tmp_path_factory, "sqlite") as running:
        yield running


NEW_MEMBER = "U0OUTSIDE"


def write_policy(bot: Bot, text: str, rename: bool = True) -> None:
    """Replace the policy as editors and `git checkout` do: a new file renamed over it."""
    path = bot.workdir / "approvers.yml"
    if rename:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    else:
        path.write_text(text)


def test_changes_invalid_files_and_sighup(live: Bot) -> None:
    path = live.workdir / "approvers.yml"
    original = path.read_text()
    try:
        # 1. A valid change: a new compliance officer may approve within 10 s.
        write_policy(
            live, original.replace("members: [U0CO00001]", f"members: [U0CO00001, {NEW_MEMBER}]")
        )
        started = time.monotonic()
        wait_until(
            lambda: "compliance-officer" in live.command(NEW_MEMBER, "whoami").json()["text"],
            10,
            "the web process to use the new policy",
        )
        event = live.pipeline(pipeline_id=91_001, gate_job_id=910_010)
        live.webhook(event)
        message = live.posted_request()
        live.click(NEW_MEMBER, "approve", request_id_of(message))
        assert "recorded" in live.wait_response(f"{NEW_MEMBER}-approve")
        assert time.monotonic() - started < 20

        # 2. An invalid file is refused: the old policy stays, admins are told why.
        refusals = {name: refusals_in(live, name) for name in ("web", "worker")}
        write_policy(live, original.replace("role: compliance-officer", "role: compliance-oficer"))
        dm = live.slack.wait_for("chat.postMessage", 2, timeout=15)[-1]
        assert "compliance-oficer" in dm.params["text"]
        assert live.slack.calls_to("conversations.open")[-1].params["users"] == "U0ADMIN01"
        for name, before in refusals.items():  # both processes judged the file
            wait_until(lambda n=name, b=before: refusals_in(live, n) > b, 15, f"{name} refusal")
        assert "compliance-officer" in live.command(NEW_MEMBER, "whoami").json()["text"]
        assert len(live.slack.calls_to("conversations.open")) == 1  # told once

        # 3. Written in place, and SIGHUP forces a reload in both processes.
        write_policy(live, original, rename=False)
        for name in ("web", "worker"):
            live.processes[name].send_signal(signal.SIGHUP)
        wait_until(
            lambda: "no approver role" in live.command(NEW_MEMBER, "whoami").json()["text"],
            10,
            "the original policy back in force",
        )
        changes = wait_until(
            lambda: [r for r in live.ledger() if r["kind"] == "policy_change"], 10, "ledger"
        )
        assert len(changes) >= 2
    finally:
        path.write_text(original)


REFUSED = "policy file refused"


def refusals_in(bot: Bot, process: str) -> int:
    """How many times `process` logged that it refused the policy file."""
    return bot.log(process).count(REFUSED)
