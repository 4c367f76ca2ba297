"""Risk-based approvals and the rollback policy: the policy keys, their validation, and
the pure decisions made with them."""

from __future__ import annotations

from textwrap import dedent

import pytest

from bot.approvals import (
    ChangePerson,
    Clicker,
    Counted,
    DenialCode,
    Denied,
    Granted,
    decide_approval,
    decide_rollback,
)
from bot.evidence import Evidence, gate_for_request, risk_reasons
from bot.policy import Gate, PolicyError, parse_policy
from bot.risk import DEFAULT_FINANCIAL_TABLES, RiskFlag

RM, DBA, CO = "release-manager", "dba", "compliance-officer"
POLICY = """\
version: 1
roles:
  release-manager:
    members: [U0RM00001, U0RM00002]
  dba:
    members: [U0DBA0001]
  compliance-officer:
    members: [U0CO00001]
gates:
  - project: fintech/wallet-*
    channel: C0WALLET
    require:
      - role: release-manager
        count: 1
    risk_rules:
      - when: {migration_risk: true}
        require:
          - role: dba
            count: 1
      - when: {failed_jobs: true}
        require:
          - role: compliance-officer
            count: 1
"""
# Tied to Slack users, as bot.identity_lookup ties them through their verified e-mails.
TRIGGERER = ChangePerson(
    "triggerer", username="ravi", email="ravi@example.com", slack_ids=frozenset({"U0RM00002"})
)
AUTHOR = ChangePerson("commit_author", email="alice@example.com", slack_ids=frozenset({"U0DEV01"}))
PEOPLE = [TRIGGERER, AUTHOR]


def gate(text: str = POLICY) -> Gate:
    return parse_policy(text).policy.gates[0]


def clicker(uid: str, *roles: str, email: str | None = None) -> Clicker:
    return Clicker(uid, email or f"{uid.lower()}@example.com", frozenset(roles))


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "approvers.yml")
    return [str(p) for p in caught.value.problems]


# --------------------------------------------------------------------------- policy keys


def test_defaults_need_nothing_in_the_file() -> None:
    loaded = parse_policy(POLICY)
    assert loaded.policy.evidence.environment == "production"
    assert loaded.policy.evidence.financial_tables == DEFAULT_FINANCIAL_TABLES
    rollback = loaded.policy.gates[0].rollback
    assert (rollback.job, rollback.smoke_job, rollback.require) == (
        "rollback:production",
        "post-deploy",
        None,
    )
    assert rollback.forbid_self_approval is True


def test_risk_rules_apply_only_when_their_facts_hold() -> None:
    g = gate()
    assert g.for_change({}).require == g.require
    assert [r.role for r in g.for_change({"migration_risk": True}).require] == [RM, DBA]
    both = g.for_change({"migration_risk": True, "failed_jobs": True})
    assert [r.role for r in both.require] == [RM, DBA, CO]
    assert risk_reasons(g, {"migration_risk": True}) == ["migration risk: also needs 1 dba"]


def test_a_condition_may_require_a_fact_to_be_absent() -> None:
    text = POLICY.replace("when: {failed_jobs: true}", "when: {failed_jobs: false}")
    g = gate(text)
    assert [r.role for r in g.for_change({}).require] == [RM, CO]
    assert risk_reasons(g, {})[-1] == "no failed earlier jobs: also needs 1 compliance-officer"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("migration_risk: true", "migration_rsk: true"),
            "approvers.yml:16: gates[0].risk_rules[0].when: unknown key 'migration_rsk' "
            "(did you mean 'migration_risk'?)",
        ),
        (
            ("role: dba", "role: dbx"),
            "approvers.yml:18: gates[0].risk_rules[0].require[0].role: unknown role 'dbx'",
        ),
        (
            ("when: {migration_risk: true}", "when: {}"),
            "approvers.yml:16: gates[0].risk_rules[0].when: names no condition",
        ),
        (
            ("            count: 1\n      - when", "            count: 2\n      - when"),
            "approvers.yml:19: gates[0].risk_rules[0].require: needs 2 dba approvals but the "
            "role has only 1 member",
        ),
    ],
)
def test_risk_rule_mistakes_are_named_with_their_line(
    change: tuple[str, str], expected: str
) -> None:
    found = problems(POLICY.replace(*change, 1))
    assert any(p.startswith(expected) for p in found), found


def test_extras_must_be_met_by_people_other_than_the_base_approvers() -> None:
    text = POLICY.replace("role: dba", "role: release-manager").replace(
        "members: [U0RM00001, U0RM00002]", "members: [U0RM00001]"
    )
    found = problems(text)
    assert any(
        "risk_rules[0].require: needs 2 release-manager approvals but the role has only 1" in p
        for p in found
    ), found


def test_rollback_and_evidence_keys_are_validated() -> None:
    text = POLICY + dedent(
        """\
            rollback:
              job: rollback:prod
              require:
                - role: nobody
                  count: 1
              forbid_self_aproval: false
        evidence:
          migration_paths: []
          tables: [ledger]
        """
    )
    found = problems(text)
    joined = "\n".join(found)
    assert "gates[0].rollback.require[0].role: unknown role 'nobody'" in joined
    assert "gates[0].rollback: unknown key 'forbid_self_aproval'" in joined
    assert "evidence.migration_paths: must list at least one path" in joined
    assert "evidence: unknown key 'tables'" in joined


# --------------------------------------------------------------------------- decisions


def test_the_extra_role_is_needed_only_for_a_risky_change() -> None:
    g = gate()
    safe = decide_approval(g, {}, clicker("U0RM00001", RM), PEOPLE, [])
    assert isinstance(safe, Granted)
    assert safe.quorum_met
    risky_gate = g.for_change({"migration_risk": True})
    first = decide_approval(risky_gate, {}, clicker("U0RM00001", RM), PEOPLE, [])
    assert isinstance(first, Granted)
    assert first.missing == {DBA: 1}
    done = decide_approval(
        risky_gate, {}, clicker("U0DBA0001", DBA), PEOPLE, [Counted("U0RM00001", frozenset({RM}))]
    )
    assert isinstance(done, Granted)
    assert done.quorum_met


def test_a_request_is_judged_by_the_evidence_it_was_opened_with() -> None:
    policy = parse_policy(POLICY).policy
    flag = RiskFlag("db/migrations/1.sql", 2, "drop-column", "DROP COLUMN on transactions")

    class Stored:
        project_path = "fintech/wallet-api"
        job_name = "compliance-gate"
        evidence = Evidence(environment="production", flags=(flag,)).to_json()

    found = gate_for_request(policy, Stored())
    assert found is not None
    assert [r.role for r in found.require] == [RM, DBA]
    Stored.evidence = None  # opened before evidence existed: the base rules
    again = gate_for_request(policy, Stored())
    assert again is not None
    assert [r.role for r in again.require] == [RM]


def test_rollback_by_default_takes_one_person_with_any_of_the_gates_roles() -> None:
    g = gate()
    result = decide_rollback(g, {}, clicker("U0RM00001", RM), PEOPLE, [])
    assert isinstance(result, Granted)
    assert result.quorum_met


def test_rollback_refuses_those_without_a_gate_role() -> None:
    result = decide_rollback(gate(), {}, clicker("U0OUTSIDE"), PEOPLE, [])
    assert isinstance(result, Denied)
    assert result.code == DenialCode.NOT_AUTHORIZED
    assert result.message.startswith("You may not roll this deployment back")
    assert "release-manager" in result.message


def test_rollback_refuses_the_triggerer_unless_the_policy_relaxes_it() -> None:
    ravi = clicker("U0RM00002", RM, email="ravi@example.com")
    refused = decide_rollback(gate(), {}, ravi, PEOPLE, [])
    assert isinstance(refused, Denied)
    assert (
        refused.message == "You may not approve this rollback because you triggered this pipeline."
    )
    relaxed = gate(POLICY + "    rollback:\n      forbid_self_approval: false\n")
    assert isinstance(decide_rollback(relaxed, {}, ravi, PEOPLE, []), Granted)
    # A gate that allows self-approval does not relax the rollback's rule by itself.
    lax_gate = gate(POLICY + "    forbid_self_approval: false\n")
    assert isinstance(decide_approval(lax_gate, {}, ravi, PEOPLE, []), Granted)
    assert isinstance(decide_rollback(lax_gate, {}, ravi, PEOPLE, []), Denied)


def test_rollback_rules_of_its_own_need_their_quorum() -> None:
    text = POLICY + (
        "    rollback:\n      require:\n        - role: release-manager\n          count: 1\n"
        "        - role: dba\n          count: 1\n"
    )
    g = gate(text)
    first = decide_rollback(g, {}, clicker("U0RM00001", RM), PEOPLE, [])
    assert isinstance(first, Granted)
    assert first.missing == {DBA: 1}
    refused = decide_rollback(g, {}, clicker("U0CO00001", CO), PEOPLE, [])
    assert isinstance(refused, Denied)
    assert "dba or release-manager" in refused.message
