"""Tests for bot.policy: loading, validation messages with line numbers, matching."""

from __future__ import annotations

import hashlib
import itertools
import string
from datetime import timedelta
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.policy import (
    Gate,
    LoadedPolicy,
    Policy,
    PolicyError,
    PolicyProblem,
    Role,
    Rule,
    format_duration,
    load_policy,
    parse_duration,
    parse_policy,
)

REPO = Path(__file__).resolve().parents[2]

VALID = """\
version: 1
roles:
  release-manager:
    members: [U0RM00001, U0RM00002]
    usergroups: [S0RELEASE]
  compliance-officer:
    members: [U0CO00001]
admins: [U0ADMIN01]
identities:
  alice: U0DEV0001
gates:
  - project: fintech/payments-api
    job: compliance-gate
    channel: C0DEPLOYS
    require:
      - role: release-manager
        count: 1
      - role: compliance-officer
        count: 1
    forbid_self_approval: true
    expire_after: 24h
    on_reject: cancel_pipeline
"""

MINIMAL = """\
version: 1
roles:
  rm:
    members: [U0RM00001, U0RM00002]
gates:
  - project: group/app
    channel: C0DEPLOYS
    require:
      - role: rm
        count: 1
"""


def problems_of(text: str | bytes) -> list[PolicyProblem]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "approvers.yml")
    assert info.value.problems, "PolicyError without problems"
    return info.value.problems


def edit(base: str, old: str, new: str) -> str:
    assert old in base, old
    return base.replace(old, new, 1)


# --------------------------------------------------------------------------- valid policies


def test_valid_contract_example_parses() -> None:
    policy = parse_policy(VALID).policy
    assert policy.version == 1
    assert policy.roles["release-manager"] == Role(
        members=("U0RM00001", "U0RM00002"), usergroups=("S0RELEASE",)
    )
    assert policy.admins == ("U0ADMIN01",)
    assert policy.identities == {"alice": "U0DEV0001"}
    (gate,) = policy.gates
    assert gate.require == (
        Rule(role="release-manager", count=1),
        Rule(role="compliance-officer", count=1),
    )
    assert gate.expire_after == timedelta(hours=24)
    assert gate.expire_after_text == "1d"


def test_defaults() -> None:
    policy = parse_policy(MINIMAL).policy
    assert policy.admins == ()
    assert policy.identities == {}
    assert policy.roles["rm"].usergroups == ()
    gate = policy.gates[0]
    assert gate.job == "compliance-gate"
    assert gate.forbid_self_approval is True
    assert gate.expire_after == timedelta(hours=24)
    assert gate.on_reject == "cancel_pipeline"
    assert gate.unknown_identity == "deny"


def test_explicit_non_defaults() -> None:
    text = MINIMAL + "    forbid_self_approval: false\n    expire_after: 90m\n"
    text += "    on_reject: leave\n    unknown_identity: allow\n    job: deploy-prod\n"
    gate = parse_policy(text).policy.gates[0]
    assert gate.forbid_self_approval is False
    assert gate.expire_after == timedelta(minutes=90)
    assert gate.on_reject == "leave"
    assert gate.unknown_identity == "allow"
    assert gate.job == "deploy-prod"


def test_usergroup_only_role_and_anchor_alias() -> None:
    text = dedent(
        """\
        version: 1
        roles:
          sre: {usergroups: [S0SRE0001]}
          ops: {members: &ops [U0OPS0001, U0OPS0002]}
        admins: *ops
        gates:
          - project: a/b
            channel: G0PRIVATE
            require: [{role: sre, count: 5}, {role: ops, count: 2}]
        """
    )
    policy = parse_policy(text).policy
    assert policy.admins == ("U0OPS0001", "U0OPS0002")
    assert policy.gates[0].channel == "G0PRIVATE"


def test_models_are_frozen() -> None:
    policy = parse_policy(VALID).policy
    with pytest.raises(ValidationError):
        policy.gates[0].job = "other"  # type: ignore[misc]
    assert hash(policy.gates[0]) == hash(parse_policy(VALID).policy.gates[0])


@pytest.mark.parametrize("name", ["approvers.yml", "approvers.example.yml"])
def test_shipped_config_files_are_valid(name: str) -> None:
    path = REPO / "config" / name
    loaded = load_policy(path)
    assert isinstance(loaded, LoadedPolicy)
    assert loaded.path == path
    assert loaded.version == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.policy.gate_for("fintech/payments-api", "compliance-gate") is not None


def test_default_config_matches_contract_example() -> None:
    shipped = load_policy(REPO / "config" / "approvers.yml").policy
    assert shipped == parse_policy(VALID).policy


def test_version_is_sha256_of_exact_bytes(tmp_path: Path) -> None:
    path = tmp_path / "p.yml"
    raw = VALID.encode()
    path.write_bytes(raw)
    first = load_policy(str(path))
    assert first.version == hashlib.sha256(raw).hexdigest()
    assert first.path == path
    path.write_bytes(raw + b"# a comment changes the version\n")
    second = load_policy(path)
    assert second.version != first.version
    assert second.policy == first.policy


# --------------------------------------------------------------------------- matching


def test_gate_matching_globs_case_insensitive_and_first_match_wins() -> None:
    text = dedent(
        """\
        version: 1
        roles: {rm: {members: [U0RM00001]}}
        gates:
          - {project: fintech/payments-*, channel: C0A1, require: [{role: rm, count: 1}]}
          - {project: fintech/*, job: deploy, channel: C0B1, require: [{role: rm, count: 1}]}
          - {project: "fintech/*", channel: C0C1, require: [{role: rm, count: 1}]}
          - {project: "other/app-?", channel: C0D1, require: [{role: rm, count: 1}]}
        """
    )
    policy = parse_policy(text).policy
    gate = policy.gate_for("FinTech/Payments-API", "compliance-gate")
    assert gate is not None
    assert gate.channel == "C0A1"
    gate = policy.gate_for("fintech/ledger", "deploy")
    assert gate is not None
    assert gate.channel == "C0B1"
    gate = policy.gate_for("fintech/sub/ledger", "compliance-gate")  # `*` crosses "/"
    assert gate is not None
    assert gate.channel == "C0C1"
    assert policy.gate_for("fintech/ledger", "Deploy") is None  # job names are exact
    assert policy.gate_for("other/app-1", "compliance-gate") is not None
    assert policy.gate_for("other/app-12", "compliance-gate") is None
    assert policy.gate_for("elsewhere/app", "compliance-gate") is None
    assert [g.channel for g in policy.gates_for_project("fintech/payments-api")] == [
        "C0A1",
        "C0B1",
        "C0C1",
    ]
    assert policy.gates_for_project("nope/x") == []
    assert policy.gates[0].matches("fintech/payments-web", "compliance-gate")
    assert not policy.gates[0].matches("fintech/payments-web", "other-job")


def test_admins_roles_and_identities() -> None:
    policy = parse_policy(VALID).policy
    assert policy.is_admin("U0ADMIN01")
    assert not policy.is_admin("U0RM00001")
    assert policy.static_roles_of("U0RM00001") == {"release-manager"}
    assert policy.static_roles_of("U0CO00001") == {"compliance-officer"}
    assert policy.static_roles_of("S0RELEASE") == set()
    assert policy.static_roles_of("U0NOBODY1") == set()
    assert policy.slack_user_for("alice") == "U0DEV0001"
    assert policy.slack_user_for("Alice") == "U0DEV0001"
    assert policy.slack_user_for("bob") is None


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1s", timedelta(seconds=1)),
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("10d", timedelta(days=10)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize(
    "text", ["", "0h", "01h", "24", "h", "1.5h", "24 h", "24H", "1w", "-1h", " 1h"]
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_parse_duration_overflow() -> None:
    with pytest.raises(ValueError, match="too long"):
        parse_duration("9" * 30 + "d")


def test_format_duration_uses_largest_exact_unit() -> None:
    assert format_duration(timedelta(hours=24)) == "1d"
    assert format_duration(timedelta(hours=36)) == "36h"
    assert format_duration(timedelta(seconds=61)) == "61s"


# --------------------------------------------------------------------------- errors

# (id, policy text, expected line or None, expected substring of the reason)
ERROR_CASES: list[tuple[str, str | bytes, int | None, str]] = [
    ("version-2", edit(VALID, "version: 1", "version: 2"), 1, "version: unsupported version 2"),
    ("version-text", edit(VALID, "version: 1", 'version: "1"'), 1, "unsupported version '1'"),
    ("version-bool", edit(VALID, "version: 1", "version: true"), 1, "unsupported version"),
    ("version-missing", VALID.replace("version: 1\n", ""), 1, "missing required key 'version'"),
    (
        "unknown-top-key",
        VALID + "gate: []\n",
        23,
        "unknown key 'gate' (did you mean 'gates'?)",
    ),
    (
        "unknown-role-key",
        edit(VALID, "    usergroups:", "    usergroup:"),
        5,
        "roles.release-manager: unknown key 'usergroup'",
    ),
    (
        "unknown-gate-key",
        edit(VALID, "    channel: C0DEPLOYS", "    chanel: C0DEPLOYS"),
        14,
        "gates[0]: unknown key 'chanel' (did you mean 'channel'?)",
    ),
    (
        "missing-channel",
        VALID.replace("    channel: C0DEPLOYS\n", ""),
        12,
        "gates[0]: missing required key 'channel'",
    ),
    (
        "missing-project",
        edit(VALID, "  - project: fintech/payments-api\n    job:", "  - job:"),
        12,
        "gates[0]: missing required key 'project'",
    ),
    (
        "missing-count",
        VALID.replace("        count: 1\n", "", 1),
        16,
        "gates[0].require[0]: missing required key 'count'",
    ),
    (
        "unknown-rule-key",
        edit(VALID, "        count: 1\n", "        count: 1\n        min: 2\n"),
        18,
        "require[0]: unknown key 'min'",
    ),
    (
        "unknown-role",
        edit(VALID, "role: compliance-officer", "role: compliance-oficer"),
        18,
        "gates[0].require[1].role: unknown role 'compliance-oficer' "
        "(known: compliance-officer, release-manager)",
    ),
    (
        "bad-member",
        edit(VALID, "[U0RM00001, U0RM00002]", "[U0RM00001, bob]"),
        4,
        "roles.release-manager.members: 'bob' is not a Slack user ID (like U0123ABCD)",
    ),
    (
        "lowercase-member",
        edit(VALID, "U0CO00001", "u0co00001"),
        7,
        "'u0co00001' is not a Slack user ID",
    ),
    ("numeric-member", edit(VALID, "[U0CO00001]", "[12345]"), 7, "12345 is not a Slack user ID"),
    (
        "member-not-list",
        edit(VALID, "members: [U0CO00001]", "members: U0CO00001"),
        7,
        "members: must be a list, not the text 'U0CO00001'",
    ),
    (
        "bad-usergroup",
        edit(VALID, "S0RELEASE", "U0RELEASE"),
        5,
        "usergroups: 'U0RELEASE' is not a Slack user group ID",
    ),
    (
        "bad-admin",
        edit(VALID, "admins: [U0ADMIN01]", "admins: [U0ADMIN01, '@carol']"),
        8,
        "admins: '@carol' is not a Slack user ID",
    ),
    (
        "bad-identity",
        edit(VALID, "alice: U0DEV0001", "alice: alice@example.com"),
        10,
        "identities.alice: 'alice@example.com' is not a Slack user ID",
    ),
    (
        "bad-channel",
        edit(VALID, "channel: C0DEPLOYS", "channel: '#deploys'"),
        14,
        "gates[0].channel: '#deploys' is not a Slack channel ID",
    ),
    (
        "dm-channel",
        edit(VALID, "channel: C0DEPLOYS", "channel: D0DEPLOYS"),
        14,
        "not a Slack channel ID",
    ),
    (
        "count-zero",
        edit(VALID, "count: 1", "count: 0"),
        17,
        "gates[0].require[0].count: must be at least 1",
    ),
    ("count-negative", edit(VALID, "count: 1", "count: -2"), 17, "must be at least 1"),
    ("count-float", edit(VALID, "count: 1", "count: 1.5"), 17, "count: must be a whole number"),
    (
        "count-text",
        edit(VALID, "count: 1", 'count: "1"'),
        17,
        "must be a whole number, not the text '1'",
    ),
    (
        "count-bool",
        edit(VALID, "count: 1", "count: true"),
        17,
        "must be a whole number, not the boolean true",
    ),
    (
        "empty-require",
        VALID.replace(
            VALID[VALID.index("    require:") : VALID.index("    forbid")], "    require: []\n"
        ),
        15,
        "gates[0].require: must list at least one rule",
    ),
    (
        "empty-gates",
        VALID[: VALID.index("gates:")] + "gates: []\n",
        11,
        "gates: must list at least one gate",
    ),
    ("missing-gates", VALID[: VALID.index("gates:")], 1, "missing required key 'gates'"),
    (
        "gates-not-list",
        VALID[: VALID.index("gates:")] + "gates: {project: x}\n",
        11,
        "gates: must be a list, not a mapping",
    ),
    (
        "gate-not-mapping",
        VALID[: VALID.index("gates:")] + "gates:\n  - fintech/app\n",
        12,
        "gates[0]: must be a mapping",
    ),
    (
        "bad-expire",
        edit(VALID, "expire_after: 24h", "expire_after: 24 h"),
        21,
        "gates[0].expire_after: '24 h' is not a duration",
    ),
    (
        "expire-zero",
        edit(VALID, "expire_after: 24h", "expire_after: 0h"),
        21,
        "'0h' is not a duration",
    ),
    (
        "expire-number",
        edit(VALID, "expire_after: 24h", "expire_after: 3600"),
        21,
        "3600 is not a duration",
    ),
    (
        "expire-unit",
        edit(VALID, "expire_after: 24h", "expire_after: 1w"),
        21,
        "'1w' is not a duration like 30m, 24h or 7d",
    ),
    (
        "bad-on-reject",
        edit(VALID, "on_reject: cancel_pipeline", "on_reject: cancel"),
        22,
        "on_reject: must be 'cancel_pipeline' or 'leave', not the text 'cancel'",
    ),
    (
        "bad-unknown-identity",
        VALID + "    unknown_identity: maybe\n",
        23,
        "unknown_identity: must be 'deny' or 'allow'",
    ),
    (
        "bool-yes-unquoted",
        edit(VALID, "forbid_self_approval: true", "forbid_self_approval: yes"),
        20,
        "forbid_self_approval: must be true or false, not the text 'yes'",
    ),
    (
        "bool-yes-quoted",
        edit(VALID, "forbid_self_approval: true", 'forbid_self_approval: "true"'),
        20,
        "must be true or false, not the text 'true'",
    ),
    (
        "bool-number",
        edit(VALID, "forbid_self_approval: true", "forbid_self_approval: 1"),
        20,
        "must be true or false, not the number 1",
    ),
    (
        "empty-project",
        edit(VALID, "project: fintech/payments-api", "project: ''"),
        12,
        "gates[0].project: must not be empty",
    ),
    (
        "project-null",
        edit(VALID, "project: fintech/payments-api", "project:"),
        12,
        "project: must be text, not nothing (null)",
    ),
    (
        "role-empty",
        edit(VALID, "    members: [U0CO00001]", "    members: []"),
        6,
        "roles.compliance-officer: has neither members nor usergroups",
    ),
    (
        "role-null",
        edit(VALID, "  compliance-officer:\n    members: [U0CO00001]", "  compliance-officer:"),
        6,
        "roles.compliance-officer: must be a mapping",
    ),
    ("roles-not-mapping", edit(VALID, "roles:", "roles: [a]\nx:"), 2, "roles: must be a mapping"),
    (
        "duplicate-role",
        edit(VALID, "admins:", "  compliance-officer:\n    members: [U0CO00002]\nadmins:"),
        8,
        "roles: duplicate key 'compliance-officer' (first on line 6)",
    ),
    ("duplicate-top", VALID + "version: 1\n", 23, "duplicate key 'version' (first on line 1)"),
    (
        "duplicate-gate-key",
        VALID + "    job: other\n",
        23,
        "gates[0]: duplicate key 'job' (first on line 13)",
    ),
    (
        "duplicate-identity",
        edit(VALID, "  alice: U0DEV0001", "  alice: U0DEV0001\n  alice: U0DEV0002"),
        11,
        "identities: duplicate key 'alice'",
    ),
    (
        "count-exceeds-members",
        edit(
            VALID,
            "role: compliance-officer\n        count: 1",
            "role: compliance-officer\n        count: 2",
        ),
        19,
        "gates[0].require: needs 2 compliance-officer approvals but the role has only 1 member",
    ),
    (
        "counts-summed-per-role",
        MINIMAL + "      - role: rm\n        count: 2\n",
        12,
        "gates[0].require: needs 3 rm approvals but the role has only 2 members",
    ),
    (
        "duplicate-members-count-once",
        edit(
            edit(MINIMAL, "[U0RM00001, U0RM00002]", "[U0RM00001, U0RM00001]"),
            "count: 1",
            "count: 2",
        ),
        10,
        "needs 2 rm approvals but the role has only 1 member",
    ),
    ("yaml-syntax", VALID + "  - project: [unclosed\n", 24, "invalid YAML"),
    (
        "yaml-indent",
        edit(VALID, "admins: [U0ADMIN01]", "admins: [U0ADMIN01]\n   oops: 1"),
        9,
        "invalid YAML",
    ),
    ("yaml-tab", edit(VALID, "  alice:", "\talice:"), 10, "invalid YAML"),
    ("yaml-two-documents", VALID + "---\nversion: 1\n", 23, "single YAML document"),
    (
        "yaml-unknown-tag",
        edit(VALID, "version: 1", "version: !!python/int 1"),
        1,
        "unsupported YAML tag",
    ),
    (
        "yaml-merge-key",
        edit(VALID, "    members: [U0CO00001]", "    <<: {members: [U0CO00001]}"),
        7,
        "merge keys ('<<') are not supported",
    ),
    (
        "yaml-recursive-alias",
        edit(VALID, "admins: [U0ADMIN01]", "admins: &a [*a]"),
        8,
        "recursive anchor",
    ),
    ("yaml-complex-key", VALID + "? [a, b]\n: 1\n", 23, "a key must be plain text"),
    (
        "yaml-bad-date",
        edit(VALID, "version: 1", "version: 2024-13-45"),
        1,
        "cannot read value '2024-13-45'",
    ),
    (
        "top-level-list",
        "- version: 1\n",
        1,
        "the top level must be a mapping with version, roles and gates, not a list",
    ),
    ("top-level-text", "# just a comment\nhello\n", 2, "the top level must be a mapping"),
    ("top-level-null", "~\n", 1, "not nothing (null)"),
    ("empty-file", "", None, "the file is empty"),
    ("comments-only", "# nothing here\n\n", None, "the file is empty"),
    ("not-utf8", "version: 1\n".encode("latin-1") + b"roles: \xe9\n", None, "not valid utf-8 text"),
    (
        "empty-role-name",
        edit(VALID, "  compliance-officer:", "  '':"),
        6,
        "roles: a name must not be empty",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_validation_errors(text: str | bytes, line: int | None, reason: str) -> None:
    problems = problems_of(text)
    matching = [p for p in problems if reason in p.reason]
    assert matching, f"no problem mentions {reason!r}: {[str(p) for p in problems]}"
    assert line in {p.line for p in matching}, [str(p) for p in problems]
    for p in problems:
        assert "Input should be" not in p.reason
        assert "pydantic" not in p.reason


def test_unsatisfiable_with_distinct_people_is_its_own_error() -> None:
    text = dedent(
        """\
        version: 1
        roles:
          release-manager: {members: [U0ALICE01, U0BOB0001]}
          compliance-officer: {members: [U0ALICE01]}
          qa: {members: [U0ALICE01, U0CAROL01, U0DAVE001]}
        gates:
          - project: a/b
            channel: C0DEPLOYS
            require:
              - {role: release-manager, count: 2}
              - {role: compliance-officer, count: 1}
              - {role: qa, count: 1}
        """
    )
    (problem,) = problems_of(text)
    assert problem.line == 9  # the `require:` key
    assert problem.reason == (
        "gates[0].require: cannot be met by distinct people: 2 release-manager + "
        "1 compliance-officer approvals need 3 different approvers, but only 2 people hold "
        "those roles (U0ALICE01, U0BOB0001)"
    )


def test_usergroups_disable_count_checks() -> None:
    text = dedent(
        """\
        version: 1
        roles:
          rm: {members: [U0ALICE01], usergroups: [S0RM00001]}
          co: {members: [U0ALICE01]}
        gates:
          - project: a/b
            channel: C0DEPLOYS
            require: [{role: rm, count: 5}, {role: co, count: 1}]
        """
    )
    assert parse_policy(text).policy.gates[0].require[0].count == 5


def test_all_problems_are_reported_sorted_by_line() -> None:
    text = dedent(
        """\
        version: 3
        roles:
          rm: {members: [bob]}
        gates:
          - project: a/b
            chanel: C0DEPLOYS
            require:
              - {role: rn, count: 0}
          - project: c/d
            channel: C0DEPLOYS
            require: [{role: rm, count: 1}]
            expire_after: soon
        """
    )
    problems = problems_of(text)
    lines = [p.line or 0 for p in problems]
    assert lines == sorted(lines)
    reasons = "\n".join(p.reason for p in problems)
    for expected in [
        "unsupported version 3",
        "'bob' is not a Slack user ID",
        "missing required key 'channel'",
        "unknown key 'chanel'",
        "unknown role 'rn' (known: rm)",
        "count: must be at least 1",
        "'soon' is not a duration",
    ]:
        assert expected in reasons
    assert len(problems) == len(set(problems)) == 7


def test_unreadable_value_is_not_reported_twice() -> None:
    problems = problems_of(edit(VALID, "version: 1", "version: !!binary x"))
    assert len([p for p in problems if p.line == 1]) == 1


def test_problem_and_error_formatting() -> None:
    assert str(PolicyProblem("a.yml", 3, "boom")) == "a.yml:3: boom"
    assert str(PolicyProblem("a.yml", None, "boom")) == "a.yml: boom"
    err = PolicyError([PolicyProblem("a.yml", 1, "x"), PolicyProblem("a.yml", None, "y")])
    assert str(err) == "a.yml:1: x\na.yml: y"
    assert err.problems[1].reason == "y"


def test_error_messages_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "approvers.yml"
    path.write_text(edit(VALID, "count: 1", "count: 0"))
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert (
        str(info.value)
        == f"{path}:17: gates[0].require[0].count: must be at least 1, not the number 0"
    )


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "nope.yml")
    (problem,) = info.value.problems
    assert problem.line is None
    assert problem.reason == "file not found"
    assert problem.file == str(tmp_path / "nope.yml")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the file"):
        load_policy(tmp_path)


def test_programmatic_policy_runs_cross_checks() -> None:
    rm = Role(members=("U0RM00001",))
    gate = Gate(project="a/*", channel="C0X1", require=(Rule(role="rm", count=1),))
    assert Policy(version=1, roles={"rm": rm}, gates=(gate,)).gate_for("a/b", "compliance-gate")
    bad = Gate(project="a/*", channel="C0X1", require=(Rule(role="qa", count=1),))
    with pytest.raises(ValidationError, match="unknown role 'qa'"):
        Policy(version=1, roles={"rm": rm}, gates=(bad,))
    with pytest.raises(ValidationError, match="neither members nor usergroups"):
        Role()
    assert Gate(
        project="x",
        channel="C0X1",
        require=(Rule(role="rm", count=1),),
        expire_after=timedelta(hours=2),
    ).expire_after == timedelta(hours=2)


# --------------------------------------------------------------------------- properties

_ID_CHARS = string.ascii_uppercase + string.digits
user_ids = st.text(_ID_CHARS, min_size=2, max_size=10).map(lambda s: "U" + s)
group_ids = st.text(_ID_CHARS, min_size=2, max_size=10).map(lambda s: "S" + s)
channel_ids = st.builds(
    lambda p, s: p + s, st.sampled_from("CG"), st.text(_ID_CHARS, min_size=2, max_size=10)
)
role_names = st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True)
durations = st.builds(lambda n, u: f"{n}{u}", st.integers(1, 10_000), st.sampled_from("smhd"))


@st.composite
def valid_policies(draw: st.DrawFn) -> dict[str, Any]:
    """Roles with disjoint members, so any per-role counts within size are satisfiable."""
    names = draw(st.lists(role_names, min_size=1, max_size=4, unique=True))
    people = draw(st.lists(user_ids, min_size=len(names), max_size=12, unique=True))
    roles: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    for i, name in enumerate(names):
        members = people[i :: len(names)]
        role: dict[str, Any] = {"members": members}
        if draw(st.booleans()):
            role["usergroups"] = draw(st.lists(group_ids, max_size=2))
        roles[name] = role
        sizes[name] = 10**6 if role.get("usergroups") else len(members)
    gates = []
    for _ in range(draw(st.integers(1, 3))):
        chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))
        left = dict(sizes)
        require = []
        for name in chosen:
            if left[name] == 0:
                continue
            count = draw(st.integers(1, min(left[name], 5)))
            left[name] -= count
            require.append({"role": name, "count": count})
        assume(require)
        gate: dict[str, Any] = {
            "project": draw(st.from_regex(r"[a-z]{1,8}/[a-z*?-]{1,10}", fullmatch=True)),
            "channel": draw(channel_ids),
            "require": require,
        }
        optional = {
            "job": st.from_regex(r"[a-z][a-z-]{0,12}", fullmatch=True),
            "forbid_self_approval": st.booleans(),
            "expire_after": durations,
            "on_reject": st.sampled_from(["cancel_pipeline", "leave"]),
            "unknown_identity": st.sampled_from(["deny", "allow"]),
        }
        for key, strategy in optional.items():
            if draw(st.booleans()):
                gate[key] = draw(strategy)
        gates.append(gate)
    policy: dict[str, Any] = {"version": 1, "roles": roles, "gates": gates}
    if draw(st.booleans()):
        policy["admins"] = draw(st.lists(user_ids, max_size=3))
    if draw(st.booleans()):
        policy["identities"] = draw(
            st.dictionaries(
                st.from_regex(r"[a-z][a-z0-9._-]{0,10}", fullmatch=True), user_ids, max_size=3
            )
        )
    return policy


@given(valid_policies())
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_generated_valid_policies_round_trip(data: dict[str, Any]) -> None:
    text = yaml.safe_dump(data, sort_keys=False)
    loaded = parse_policy(text)
    assert loaded.policy == Policy.model_validate(data)
    assert loaded.version == hashlib.sha256(text.encode()).hexdigest()
    # and the model dumps back to an equivalent policy file
    again = parse_policy(yaml.safe_dump(loaded.policy.model_dump(mode="json"), sort_keys=False))
    assert again.policy == loaded.policy


yamlish = st.lists(
    st.sampled_from([*":-[]{}&*!|>'\"#?,%@`~\n\t ", "a", "U0", "C0", "\n  ", ": ", "- "]),
    max_size=60,
).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _only_policy_errors(raw: str | bytes) -> None:
    problems: list[PolicyProblem] = [PolicyProblem("ok", None, "ok")]
    try:
        parse_policy(raw)
    except PolicyError as exc:
        problems = exc.problems
    assert problems
    assert all(isinstance(p, PolicyProblem) and p.reason for p in problems)


@given(st.one_of(st.text(max_size=200), yamlish, st.binary(max_size=100)))
@settings(max_examples=300)
def test_garbage_never_raises_anything_but_policy_error(raw: str | bytes) -> None:
    _only_policy_errors(raw)


@given(valid_policies(), st.data())
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_policies_only_raise_policy_error(
    data: dict[str, Any], draw: st.DataObject
) -> None:
    # replace one value somewhere in a valid policy by arbitrary data
    target: Any = data
    while True:
        keys = list(target) if isinstance(target, dict) else list(range(len(target)))
        key = draw.draw(st.sampled_from(keys))
        child = target[key]
        if not isinstance(child, dict | list) or not child or draw.draw(st.booleans()):
            target[key] = draw.draw(json_values)
            break
        target = child
    _only_policy_errors(yaml.safe_dump(data))


def _brute_force_satisfiable(members: dict[str, list[str]], require: list[tuple[str, int]]) -> bool:
    slots = [name for name, count in require for _ in range(count)]
    people = sorted({p for ms in members.values() for p in ms})
    if len(slots) > len(people):
        return False
    return any(
        all(person in members[slot] for slot, person in zip(slots, chosen, strict=True))
        for chosen in itertools.permutations(people, len(slots))
    )


@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c"]),
        st.lists(
            st.sampled_from(["U0P1", "U0P2", "U0P3", "U0P4"]), min_size=1, max_size=4, unique=True
        ),
        min_size=1,
    ),
    st.data(),
)
@settings(max_examples=200)
def test_distinct_people_check_agrees_with_brute_force(
    members: dict[str, list[str]], draw: st.DataObject
) -> None:
    require = draw.draw(
        st.lists(
            st.tuples(st.sampled_from(sorted(members)), st.integers(1, 3)), min_size=1, max_size=3
        )
    )
    policy = {
        "version": 1,
        "roles": {name: {"members": ms} for name, ms in members.items()},
        "gates": [
            {
                "project": "a/b",
                "channel": "C0X1",
                "require": [{"role": r, "count": c} for r, c in require],
            }
        ],
    }
    problems: list[PolicyProblem] = []
    try:
        parse_policy(yaml.safe_dump(policy))
    except PolicyError as exc:
        problems = exc.problems
    assert all("needs" in p.reason or "distinct people" in p.reason for p in problems)
    assert (not problems) == _brute_force_satisfiable(members, require)
