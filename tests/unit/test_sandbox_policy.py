"""The sandbox's example policy is valid and names exactly the people the sandbox seeds."""

from __future__ import annotations

from pathlib import Path

from bot.policy import load_policy
from bot.sandbox.people import CHANNELS, PEOPLE, roles_of, seed_slack, write_policy
from bot.simulators.slack import FakeSlack


def test_the_example_policy_is_valid_and_matches_the_cast(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path)).policy
    ids = {p.slack_id for p in PEOPLE}
    members = {m for role in policy.roles.values() for m in role.members}
    assert members | set(policy.admins) <= ids
    assert policy.identities == {p.name: p.slack_id for p in PEOPLE}
    assert {gate.channel for gate in policy.gates} <= set(CHANNELS)
    # Someone with no role at all runs the pipelines; every role has a holder.
    roles = {p.name: roles_of(policy, p.slack_id) for p in PEOPLE}
    assert roles["devi"] == []
    assert roles["ada"] == ["admin"]
    assert {r for held in roles.values() for r in held} >= set(policy.roles)


def test_an_edited_policy_is_kept(tmp_path: Path) -> None:
    path = write_policy(tmp_path)
    path.write_text("# mine\n", encoding="utf-8")
    assert write_policy(tmp_path).read_text(encoding="utf-8") == "# mine\n"


def test_seeded_slack_users_have_the_e_mails_gitlab_shows() -> None:
    slack = FakeSlack()
    seed_slack(slack)
    for person in PEOPLE:
        profile = slack.users[person.slack_id]["profile"]
        assert profile["email"] == person.email == person.gitlab_user["email"]
        assert person.commit_author["email"] == person.email
