"""`/approvals policy [project]` and `/approvals whoami`, on a stub runtime."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from bot.policy import LoadedPolicy, parse_policy
from bot.web import commands

ADMIN, RM, CO, GROUPIE, OUTSIDER = "U0ADMIN01", "U0RM00001", "U0CO00001", "U0GROUP01", "U0OUT0001"

POLICY = """\
version: 1
roles:
  release-manager:
    members: [U0RM00001, U0RM00002]
    usergroups: [S0RELEASE]
  compliance-officer:
    members: [U0CO00001]
admins: [U0ADMIN01]
gates:
  - project: fintech/payments-api
    channel: C0DEPLOYS
    require:
      - role: release-manager
        count: 1
      - role: compliance-officer
        count: 1
  - project: fintech/ledger-*
    job: release-gate
    channel: C0LEDGER
    require:
      - role: release-manager
        count: 1
    forbid_self_approval: false
    unknown_identity: allow
    expire_after: 2h
    on_reject: leave
"""


@dataclass
class StubSlack:
    groups: dict[str, list[str]] = field(default_factory=lambda: {"S0RELEASE": [GROUPIE]})

    def usergroup_members(self, group: str) -> list[str]:
        return self.groups.get(group, [])


def runtime(text: str = POLICY) -> Any:
    loaded: LoadedPolicy = parse_policy(text, "approvers.yml")
    return SimpleNamespace(policy=SimpleNamespace(current=loaded), slack=StubSlack())


def test_help_names_the_policy_command() -> None:
    assert "`/approvals policy [project]`" in commands.answer(runtime(), OUTSIDER, "help")
    assert commands.answer(runtime(), OUTSIDER, "") == commands.HELP


def test_only_admins_see_the_policy_and_others_are_told_why() -> None:
    for user in (RM, OUTSIDER):
        text = commands.answer(runtime(), user, "policy")
        assert text.startswith("Only policy admins may view the approver policy")
        assert f"<@{ADMIN}>" in text


def test_the_policy_lists_every_gate_with_its_rules_and_settings() -> None:
    rt = runtime()
    text = commands.answer(rt, ADMIN, "policy")
    version = rt.policy.current.version[:12]
    assert f"version `{version}`: 2 gate(s)" in text
    assert "*`fintech/payments-api`* job `compliance-gate` → <#C0DEPLOYS>" in text
    assert (
        "1 × release-manager: <@U0RM00001>, <@U0RM00002>, <!subteam^S0RELEASE>"  # noqa: RUF001
        in text
    )
    assert "1 × compliance-officer: <@U0CO00001>" in text  # noqa: RUF001
    assert "forbid_self_approval: true (may not approve: triggerer, commit author)" in text
    assert "unknown_identity: deny · expire_after: 1d · on_reject: cancel_pipeline" in text
    assert "*`fintech/ledger-*`* job `release-gate` → <#C0LEDGER>" in text
    assert "forbid_self_approval: false · unknown_identity: allow · expire_after: 2h" in text
    assert "on_reject: leave (leave the pipeline waiting)" in text
    assert len(text) < commands.MAX_TEXT


def test_the_policy_of_one_project_shows_only_its_gates() -> None:
    text = commands.answer(runtime(), ADMIN, "policy fintech/ledger-core")
    assert "1 gate(s) for `fintech/ledger-core`" in text
    assert "fintech/ledger-*" in text
    assert "payments-api" not in text
    none = commands.answer(runtime(), ADMIN, "policy other/project")
    assert none.startswith("No gate of the policy (version `")
    assert "`other/project`" in none


def test_a_long_policy_is_cut_below_slacks_limit_with_a_count_of_the_rest() -> None:
    members = ", ".join(f"U0M{i:06d}" for i in range(40))
    gates = "".join(
        f"""  - project: group/project-{i:03d}
    channel: C0CHAN{i:03d}
    require:
      - role: big
        count: 1
"""
        for i in range(60)
    )
    text = POLICY.split("gates:", maxsplit=1)[0].replace(
        "roles:\n", f"roles:\n  big:\n    members: [{members}]\n"
    )
    rt = runtime(text + "gates:\n" + gates)
    answer = commands.answer(rt, ADMIN, "policy")
    assert len(answer) <= commands.MAX_TEXT
    shown = answer.count("*`group/project-")
    assert 0 < shown < 60
    assert answer.endswith(f"…and {60 - shown} more gates")
    assert "…and 15 more" in answer  # members beyond 25 per role are counted, not listed


def test_whoami_names_the_gates_a_user_may_approve() -> None:
    rt = runtime()
    rm = commands.answer(rt, RM, "whoami")
    assert rm.startswith(f"You are <@{RM}>: release-manager.")
    assert "• `fintech/payments-api` job `compliance-gate` as release-manager" in rm
    assert "• `fintech/ledger-*` job `release-gate` as release-manager" in rm
    co = commands.answer(rt, CO, "whoami")
    assert "payments-api" in co
    assert "ledger" not in co
    # User group members hold the role live.
    assert "release-gate` as release-manager" in commands.answer(rt, GROUPIE, "whoami")
    outsider = commands.answer(rt, OUTSIDER, "whoami")
    assert "no approver role" in outsider
    assert "You may approve no gate." in outsider
    admin = commands.answer(rt, ADMIN, "whoami")
    assert "You are a policy admin." in admin
    assert admin.endswith("As a policy admin you may reject any gate.")
