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
