"""`approval-bot policy explain` answers "why can't I approve?" from the policy alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main

POLICY = str(Path(__file__).parents[1] / "fixtures" / "approvers.yml")


def explain(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["policy", "explain", "--policy", POLICY, *args])
    return code, capsys.readouterr().out


def test_member_may_approve(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(capsys, "--project", "fintech/payments-api", "--user", "U0RM00001")
    assert code == 0
    assert "MAY APPROVE, counting as release-manager" in out


def test_triggerer_may_not(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(
        capsys, "--project", "fintech/payments-api", "--user", "U0RM00002", "--triggered-by", "ravi"
    )
    assert code == 1
    assert "triggered this pipeline" in out


def test_unknown_triggerer_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(
        capsys, "--project", "fintech/payments-api", "--user", "U0RM00001", "--triggered-by", "zed"
    )
    assert code == 1
    assert "unknown_identity" in out
    assert "zed" in out


def test_outsider_and_user_groups(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(capsys, "--project", "fintech/payments-api", "--user", "U0OUTSIDE")
    assert code == 1
    assert "S0RELEASE" in out
    assert "hold none of these roles" in out


def test_no_gate(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(capsys, "--project", "other/thing", "--user", "U0RM00001")
    assert code == 2
    assert "no gate" in out


def test_risk_facts_add_the_gates_risk_rules(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(
        capsys, "--project", "fintech/wallet-api", "--user", "U0DBA0001", "--migration-risk"
    )
    assert code == 0
    assert "requires: 1 dba, 1 release-manager" in out
    assert "because of migration risk: also needs 1 dba" in out
    assert "MAY APPROVE, counting as dba" in out
    code, out = explain(capsys, "--project", "fintech/wallet-api", "--user", "U0DBA0001")
    assert code == 1
    assert "needs release-manager" in out


def test_rollback_is_explained_under_the_rollback_policy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = explain(
        capsys, "--project", "fintech/wallet-api", "--user", "U0RM00001", "--rollback"
    )
    assert code == 0
    assert "rollback requires: 1 approver of the gate" in out
    assert "MAY ROLL BACK" in out
    code, out = explain(
        capsys,
        "--project",
        "fintech/wallet-api",
        "--user",
        "U0RM00002",
        "--triggered-by",
        "ravi",
        "--rollback",
    )
    assert code == 1
    assert "may not approve this rollback because you triggered this pipeline" in out


def test_each_person_behind_the_change_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(
        capsys,
        *("--project", "fintech/payments-api", "--user", "U0RM00001"),
        *("--triggered-by", "zed", "--author-email", "rita@laptop.example"),
    )
    assert code == 1
    assert "triggerer: zed: unknown: map GitLab user 'zed' in identities" in out
    assert "commit_author: rita@laptop.example: unknown: map the e-mail" in out
    assert "`zed: <their Slack user ID>`" in out  # the verdict says what to add


def test_identities_are_matched_in_any_case(capsys: pytest.CaptureFixture[str]) -> None:
    """The fixture maps `Ravi` (capital R) and `alice`."""
    code, out = explain(
        capsys,
        *("--project", "fintech/payments-api", "--user", "U0RM00001"),
        *("--triggered-by", "RAVI", "--author", "Alice"),
    )
    assert code == 0
    assert "triggerer: RAVI: different (identities ties them to U0RM00002)" in out
    assert "commit_author: Alice: different (identities ties them to U0DEV0001)" in out
    code, out = explain(
        capsys,
        *("--project", "fintech/payments-api", "--user", "U0RM00002", "--triggered-by", "ravi"),
    )
    assert code == 1
    assert "triggerer: ravi: same person as U0RM00002" in out


@pytest.mark.parametrize("email", ["", "[REDACTED]", "rita+x@example.com"])
def test_a_commit_email_never_proves_someone_else(
    capsys: pytest.CaptureFixture[str], email: str
) -> None:
    code, out = explain(
        capsys,
        *("--project", "fintech/payments-api", "--user", "U0RM00001"),
        *("--user-email", "rita@example.com", "--author-email", email),
    )
    assert code == 1
    assert "MAY NOT APPROVE" in out


def test_people_not_given_are_not_judged(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(capsys, "--project", "fintech/payments-api", "--user", "U0RM00001")
    assert code == 0
    assert "triggerer: not given" in out
