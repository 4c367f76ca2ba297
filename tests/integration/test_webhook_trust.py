"""Trust nothing a webhook says: facts come from GitLab, the job is re-checked right before
it is played, status events are confirmed with the API, and a project's own webhook secret
speaks only for that project.

The bot here runs with the fixture policy plus `webhook_secrets`: the wallet projects have
a secret read from a file, payments-api two secrets from environment variables (a rotation
in progress), and GITLAB_WEBHOOK_SECRET holds an old and a new default value.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from bot.simulators.gitlab_events import build
from tests.integration.conftest import running_bot
from tests.integration.harness import FIXTURES, WEBHOOK_SECRET, Bot, request_id_of, wait_until
from tests.integration.wallet import thread_replies

pytestmark = pytest.mark.integration

RM, CO, ADMIN = "U0RM00001", "U0CO00001", "U0ADMIN01"
WALLET_SECRET = "wallet-hook-secret-7f3a9c"
PAYMENTS_OLD = "payments-hook-secret-old-51d0"
PAYMENTS_NEW = "payments-hook-secret-new-e28b"
DEFAULT_NEW = "default-hook-secret-new-c41f"
PAYMENTS = (101, "fintech/payments-api")
SECRETS_POLICY = """
webhook_secrets:
  - project: fintech/wallet-*
    secret_file: wallet.secret
  - project: fintech/payments-api
    secret_env: PAYMENTS_HOOK_OLD
  - project: fintech/payments-api
    secret_env: PAYMENTS_HOOK_NEW
"""
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def bot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    """SQLite only: what is tested here does not depend on the database."""
    policy_dir = tmp_path_factory.mktemp("trust-policy")
    (policy_dir / "wallet.secret").write_text(WALLET_SECRET + "\n")
    policy = policy_dir / "approvers.yml"
    policy.write_text((FIXTURES / "approvers.yml").read_text() + SECRETS_POLICY)
    extra = {
        "APPROVAL_POLICY": str(policy),
        "PAYMENTS_HOOK_OLD": PAYMENTS_OLD,
        "PAYMENTS_HOOK_NEW": PAYMENTS_NEW,
        "GITLAB_WEBHOOK_SECRET": f"{WEBHOOK_SECRET},{DEFAULT_NEW}",
    }
    with running_bot(request, tmp_path_factory, "sqlite", extra) as running:
        yield running


def fresh(live: Bot, **kwargs: Any) -> dict[str, Any]:
    """A genuine gated pipeline, known to the fake GitLab (payments-api unless told)."""
    n = next(_ids)
    kwargs.setdefault("pipeline_id", 160_000 + n)
    kwargs.setdefault("gate_job_id", 1_600_000 + n * 10)
    return live.pipeline(ref=f"trust-{n}", **kwargs)


def gate_id(event: dict[str, Any]) -> int:
    return int(next(b["id"] for b in event["builds"] if b["name"] == "compliance-gate"))


def requests_in(live: Bot, channel: str) -> list[dict[str, Any]]:
    return [
        c.params
        for c in live.slack.calls_to("chat.postMessage")
        if c.params.get("channel") == channel and "thread_ts" not in c.params
    ]


def admin_alerts(live: Bot, needle: str) -> list[str]:
    """Direct messages to the admin (the fake Slack's DM channel of U0ADMIN01 is D0ADMIN01)."""
    return [
        str(c.params.get("text"))
        for c in live.slack.calls_to("chat.postMessage")
        if c.params.get("channel") == "D" + ADMIN[1:] and needle in str(c.params.get("text"))
    ]


def refused_alert(live: Bot, job_id: int) -> str:
    texts = wait_until(
        lambda: admin_alerts(live, f"job {job_id}"), 15, f"the admin alert about job {job_id}"
    )
    assert len(texts) == 1, texts
    return texts[0]


def opened(live: Bot, event: dict[str, Any], token: str, channel: str = "C0DEPLOYS") -> str:
    before = len(requests_in(live, channel))
    answer = live.webhook(event, token=token)
    assert answer.status_code == 202, answer.text
    return request_id_of(live.posted_request(channel, count=before + 1))


def approve(live: Bot, request_id: str, *users: str) -> None:
    for user in users:
        assert live.click(user, "approve", request_id).status_code == 200
        live.wait_response(f"{user}-approve")


def ledger_kinds(live: Bot, job_id: int) -> list[str]:
    return [r["kind"] for r in live.ledger() if r["job_id"] == job_id]


# --- the webhook body never decides the project, the job or the gate -----------------------


def test_forged_project_path_opens_nothing_and_the_genuine_event_still_opens(live: Bot) -> None:
    """Project 101 is payments-api in GitLab; a wallet hook's secret sends it as wallet-app,
    whose looser gate one release manager could approve alone."""
    genuine = fresh(live)
    job_id = gate_id(genuine)
    forged = copy.deepcopy(genuine)
    forged["project"]["path_with_namespace"] = "fintech/wallet-app"
    forged["project"]["web_url"] = f"{live.gitlab.url}/fintech/wallet-app"
    answer = live.webhook(forged, token=WALLET_SECRET)
    assert answer.status_code == 202, answer.text

    alert = refused_alert(live, job_id)
    assert "fintech/payments-api" in alert
    assert "fintech/wallet-app" in alert
    assert requests_in(live, "C0WALLET") == []
    assert requests_in(live, "C0DEPLOYS") == []

    # The genuine event, sent by payments-api's own hook, opens the request under the
    # payments-api gate: a release manager alone cannot get it played.
    request_id = opened(live, genuine, PAYMENTS_NEW)
    approve(live, request_id, RM)
    assert live.gitlab.play_count(job_id) == 0
    approve(live, request_id, CO)
    live.gitlab.wait_for("POST", rf"/jobs/{job_id}/play", timeout=15)
    assert live.gitlab.play_count(job_id) == 1
    assert len(admin_alerts(live, f"job {job_id}")) == 1  # told once


def test_a_gate_build_carrying_another_manual_jobs_id_is_never_played(live: Bot) -> None:
    n = next(_ids)
    drop = 1_700_000 + n * 10 + 7
    genuine = fresh(
        live,
        pipeline_id=170_000 + n,
        gate_job_id=1_700_000 + n * 10,
        extra_builds=[build(drop, "drop-prod-db", "danger", "manual", when="manual")],
    )
    forged = copy.deepcopy(genuine)
    next(b for b in forged["builds"] if b["name"] == "compliance-gate")["id"] = drop
    forged["builds"] = [b for b in forged["builds"] if b["name"] != "drop-prod-db"]
    assert live.webhook(forged, token=PAYMENTS_OLD).status_code == 202

    alert = refused_alert(live, drop)
    assert "drop-prod-db" in alert
    assert requests_in(live, "C0DEPLOYS") == []
    assert live.gitlab.play_count(drop) == 0


@pytest.mark.parametrize("field", ["ref", "sha"])
def test_a_body_whose_ref_or_sha_differs_from_gitlab_is_refused(live: Bot, field: str) -> None:
    genuine = fresh(live)
    job_id = gate_id(genuine)
    forged = copy.deepcopy(genuine)
    forged["object_attributes"][field] = "main" if field == "ref" else "e" * 40
    assert live.webhook(forged, token=PAYMENTS_NEW).status_code == 202
    alert = refused_alert(live, job_id)
    assert field in alert
    assert requests_in(live, "C0DEPLOYS") == []


def test_a_gate_gitlab_does_not_show_waiting_opens_nothing(live: Bot) -> None:
    genuine = fresh(live)
    job_id = gate_id(genuine)
    live.gitlab.job(job_id)["status"] = "canceled"  # the body still says manual
    assert live.webhook(genuine, token=PAYMENTS_NEW).status_code == 202
    live.gitlab.wait_for("GET", rf"/jobs/{job_id}$", timeout=15)
    live.gitlab.job(job_id)["status"] = "manual"  # a later, true event opens it
    later = fresh(live)
    opened(live, later, PAYMENTS_NEW)
    assert len(requests_in(live, "C0DEPLOYS")) == 1
    assert admin_alerts(live, f"job {job_id}") == []  # not a forgery


# --- right before the play, the job must still be the one approved -------------------------


@pytest.mark.parametrize("change", ["renamed", "moved"])
def test_a_job_changed_between_approval_and_play_is_not_played(live: Bot, change: str) -> None:
    genuine = fresh(live)
    job_id = gate_id(genuine)
    request_id = opened(live, genuine, PAYMENTS_NEW)
    approve(live, request_id, RM)
    project = live.gitlab.projects[PAYMENTS[0]]
    if change == "renamed":
        live.gitlab.job(job_id)["name"] = "drop-prod-db"
    else:  # the project was transferred: same ids, another path (and maybe another gate)
        project["path_with_namespace"] = "fintech/moved-away"
    try:
        approve(live, request_id, CO)
        update = live.message_update("changed in GitLab", 15)
    finally:
        project["path_with_namespace"] = PAYMENTS[1]
    assert not [b for b in update["blocks"] if b["type"] == "actions"]
    assert live.gitlab.play_count(job_id) == 0
    alert = refused_alert(live, job_id)
    assert "not played" in alert
    assert "signoff" not in ledger_kinds(live, job_id)


# --- status events are confirmed with the API --------------------------------------------


def test_a_forged_pipeline_canceled_event_does_not_close_the_request(live: Bot) -> None:
    genuine = fresh(live)
    job_id = gate_id(genuine)
    request_id = opened(live, genuine, PAYMENTS_NEW)
    forged = copy.deepcopy(genuine)
    forged["object_attributes"]["status"] = "canceled"
    assert live.webhook(forged, token=PAYMENTS_NEW).status_code == 202
    live.gitlab.wait_for("GET", rf"/jobs/{job_id}$", count=2, timeout=15)
    approve(live, request_id, RM)
    assert "recorded" in live.responses_to(f"{RM}-approve")[-1]

    # The same event once it is true closes the request: the forged one did not make
    # GitLab's genuine event a duplicate.
    live.gitlab.pipeline(genuine["object_attributes"]["id"])["status"] = "canceled"
    assert live.webhook(forged, token=PAYMENTS_NEW).status_code == 202
    live.message_update("canceled", 15)


def test_a_forged_bypass_event_raises_no_alert(live: Bot) -> None:
    genuine = fresh(live)
    job_id = gate_id(genuine)
    request_id = opened(live, genuine, PAYMENTS_NEW)
    forged = copy.deepcopy(genuine)
    forged["object_attributes"]["status"] = "running"
    next(b for b in forged["builds"] if b["id"] == job_id)["status"] = "running"
    assert live.webhook(forged, token=PAYMENTS_NEW).status_code == 202
    live.gitlab.wait_for("GET", rf"/jobs/{job_id}$", count=2, timeout=15)
    approve(live, request_id, RM)  # the worker runs one job at a time: the event is done
    assert "recorded" in live.responses_to(f"{RM}-approve")[-1]
    # The same event once it is true is a bypass: the forged one did not make GitLab's
    # genuine event a duplicate.
    live.gitlab.job(job_id)["status"] = "running"
    assert live.webhook(forged, token=PAYMENTS_NEW).status_code == 202
    wait_until(lambda: ledger_kinds(live, job_id) == ["bypass"], 15, "the bypass record")
    texts = admin_alerts(live, "bypassed")
    assert len([t for t in texts if f"#{genuine['object_attributes']['id']}" in t]) == 1


def test_a_forged_deployment_fact_offers_no_rollback(live: Bot) -> None:
    n = next(_ids)
    gate = 1_800_000 + n * 10
    extra = [
        build(gate + 2, "post-deploy", "verify", "created"),
        build(gate + 5, "rollback:production", "rollback", "manual", when="manual"),
    ]
    event = fresh(
        live,
        project_id=390,
        project_path="fintech/wallet-trust",
        pipeline_id=180_000 + n,
        gate_job_id=gate,
        extra_builds=extra,
    )
    request_id = opened(live, event, WALLET_SECRET, "C0WALLET")
    approve(live, request_id, RM, "U0DBA0001")  # evidence unavailable: a DBA too
    live.gitlab.wait_for("POST", rf"/jobs/{gate}/play", timeout=15)
    done = {"compliance-gate": "success", "deploy-production": "success", "post-deploy": "failed"}
    forged = copy.deepcopy(event)
    forged["object_attributes"]["status"] = "failed"
    forged["builds"] = [{**b, "status": done.get(b["name"], b["status"])} for b in event["builds"]]
    assert live.webhook(forged, token=WALLET_SECRET).status_code == 202
    live.gitlab.wait_for("GET", rf"/pipelines/{180_000 + n}/jobs", timeout=15)
    approve(live, request_id, "U0RM00002")  # the worker runs one job at a time: it is done
    assert thread_replies(live, "Roll back") == []

    # Once GitLab shows it, the same facts are acted on: the forged ones did not use them up.
    for job in forged["builds"]:
        live.gitlab.job(job["id"])["status"] = job["status"]
    assert live.webhook(forged, token=WALLET_SECRET).status_code == 202
    wait_until(lambda: thread_replies(live, "Smoke test"), 15, "the smoke-test alert")


def test_a_forged_deployment_fact_for_another_project_does_not_use_up_the_genuine_one(
    live: Bot,
) -> None:
    """Regression: the wallet secret, a wallet path and payments-api's project and pipeline
    ids claimed the deployment key of payments-api's pipeline: while the forgery waited in
    the queue, GitLab's genuine smoke-test failure was answered `duplicate` and lost."""
    n = next(_ids)
    gate = 1_900_000 + n * 10
    extra = [
        build(gate + 2, "post-deploy", "verify", "created"),
        build(gate + 5, "rollback:production", "rollback", "manual", when="manual"),
    ]
    event = fresh(live, pipeline_id=190_000 + n, gate_job_id=gate, extra_builds=extra)
    request_id = opened(live, event, PAYMENTS_OLD)
    approve(live, request_id, RM, CO)
    live.gitlab.wait_for("POST", rf"/jobs/{gate}/play", timeout=15)
    done = {"compliance-gate": "success", "deploy-production": "success", "post-deploy": "failed"}
    genuine = copy.deepcopy(event)
    genuine["object_attributes"]["status"] = "failed"
    genuine["builds"] = [{**b, "status": done.get(b["name"], b["status"])} for b in event["builds"]]
    for job in genuine["builds"]:
        live.gitlab.job(job["id"])["status"] = job["status"]
    forged = copy.deepcopy(genuine)
    forged["project"]["path_with_namespace"] = "fintech/wallet-forged"

    live.stop("worker")  # the forgery waits in the queue, as behind a busy worker
    try:
        taken = live.webhook(forged, token=WALLET_SECRET)
        assert taken.status_code == 202, taken.text
        answer = live.webhook(genuine, token=PAYMENTS_OLD)
    finally:
        live.start("worker", "worker")
    assert answer.status_code == 202, answer.text
    wait_until(
        lambda: [r for r in thread_replies(live, "Smoke test") if f"#{190_000 + n}" in str(r)],
        15,
        "the smoke-test alert of the genuine event",
    )


def test_a_refused_deployment_fact_names_its_job_escaped_to_the_admins(live: Bot) -> None:
    """Regression: a refused deployment fact named the deploy job from the body verbatim in
    the admins' alert, so a forged job name became a working Slack link there."""
    n = next(_ids)
    gate = 1_950_000 + n * 10
    event = fresh(live, pipeline_id=195_000 + n, gate_job_id=gate)
    request_id = opened(live, event, PAYMENTS_OLD)
    approve(live, request_id, RM, CO)
    live.gitlab.wait_for("POST", rf"/jobs/{gate}/play", timeout=15)
    hostile = "<https://evil.example/sso|Re-authenticate here> <!channel>"
    forged = copy.deepcopy(event)
    forged["project"]["path_with_namespace"] = "fintech/wallet-forged"
    forged["builds"] = [
        {
            **b,
            "status": "success",
            "name": hostile if b["name"] == "deploy-production" else b["name"],
        }
        for b in event["builds"]
    ]
    assert live.webhook(forged, token=WALLET_SECRET).status_code == 202
    alert = wait_until(
        lambda: admin_alerts(live, "Re-authenticate"), 15, "the admins' alert about the forgery"
    )[-1]
    assert "&lt;https://evil.example/sso|Re-authenticate here&gt; &lt;!channel&gt;" in alert
    assert "<https://evil" not in alert
    assert "<!channel>" not in alert


# --- per-project webhook secrets ---------------------------------------------------------


def test_a_project_secret_speaks_only_for_its_projects(live: Bot) -> None:
    payments = fresh(live)
    refused = live.webhook(payments, token=WALLET_SECRET)
    assert refused.status_code == 401
    assert "error" in refused.json()
    for default in (WEBHOOK_SECRET, DEFAULT_NEW):  # payments-api has secrets of its own
        assert live.webhook(payments, token=default).status_code == 401
    assert live.webhook(payments, token="not-a-secret").status_code == 401
    assert live.webhook(payments, token=PAYMENTS_OLD).status_code == 202
    live.posted_request("C0DEPLOYS")

    # Rotation: the new payments secret works as well as the old one.
    assert live.webhook(fresh(live), token=PAYMENTS_NEW).status_code == 202
    # A project no entry covers takes the default secret, old or new.
    for default in (WEBHOOK_SECRET, DEFAULT_NEW):
        ledger = fresh(live, project_id=202, project_path="fintech/ledger-core")
        assert live.webhook(ledger, token=default).status_code == 202
        assert live.webhook(ledger, token=PAYMENTS_NEW, key="again").status_code == 401
    assert requests_in(live, "C0WALLET") == []
    for name in ("web", "worker"):
        log = live.log(name)
        for secret in (WALLET_SECRET, PAYMENTS_OLD, PAYMENTS_NEW, DEFAULT_NEW, WEBHOOK_SECRET):
            assert secret not in log, f"a webhook secret in the {name} log"


def test_config_check_reports_bad_webhook_secrets_with_lines(live: Bot) -> None:
    policy = live.workdir / "secrets-check.yml"
    (live.workdir / "empty.secret").write_text("\n")
    (live.workdir / "good.secret").write_text("a-good-secret-value\n")
    base = (FIXTURES / "approvers.yml").read_text()
    lines = base.count("\n")
    policy.write_text(
        base
        + "webhook_secrets:\n"  # line lines+1
        + "  - project: fintech/a-*\n"
        + "    secret_file: missing.secret\n"  # +3: unreadable
        + "  - project: fintech/b-*\n"
        + "    secret_env: TRUST_TEST_UNSET\n"  # +5: unset
        + "  - project: fintech/c-*\n"
        + "    secret_file: empty.secret\n"  # +7: empty
        + "  - project: fintech/d-*\n"  # +8: both
        + "    secret_file: good.secret\n"
        + "    secret_env: PAYMENTS_HOOK_OLD\n"
        + "  - project: fintech/e-*\n"  # +11: neither
        + "  - project: fintech/f-*\n"
        + "    secret_file: good.secret\n"
        + "    secrets: nope\n"  # +14: unknown key
    )
    result = live.run("config", "check", "--policy", str(policy), check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    out = result.stdout
    expected = {3: "cannot read", 5: "TRUST_TEST_UNSET", 7: "empty", 8: "exactly one", 11: "one"}
    for offset, words in expected.items():
        assert any(
            line.startswith(f"{policy}:{lines + offset}:") and words in line
            for line in out.splitlines()
        ), (offset, out)
    assert f"{policy}:{lines + 14}: webhook_secrets[5]: unknown key 'secrets'" in out
    for secret in ("a-good-secret-value", PAYMENTS_OLD):
        assert secret not in out + result.stderr
