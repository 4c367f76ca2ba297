"""The identity rule of separation of duties, as a pure function: "same" on any evidence,
"different" only with a positive tie to another Slack user, "unknown" otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.approvals import Clicker, DenialCode, Denied, Granted, decide_approval, decide_rollback
from bot.identity import ChangePerson, identify, mapped_user, normalized_email, ties
from bot.policy import Gate, PolicyError, Rule, parse_policy

RM = "release-manager"
GATE = Gate(project="p/*", channel="C0X", require=(Rule(role=RM, count=1),))
RITA = Clicker("U0RITA", "rita@example.com", frozenset({RM}))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Rita@Example.COM", "rita@example.com"),
        (" rita@example.com ", "rita@example.com"),
        ("rita+x@example.com", "rita@example.com"),
        ("RITA+ci+more@example.com", "rita@example.com"),
        ("", None),
        ("   ", None),
        (None, None),
        ("[REDACTED]", None),
        ("rita", None),
        ("rita@laptop", None),
        ("@example.com", None),
        ("+x@example.com", None),
        ("a@@example.com", None),
        ("ri ta@example.com", None),
        ("<rita@example.com>", None),
        ("rita@example..com", None),
        ("rita@.example.com", None),
    ],
)
def test_normalized_email(value: str | None, expected: str | None) -> None:
    assert normalized_email(value) == expected


@pytest.mark.parametrize("header", ["", "[REDACTED]", "rita@laptop", "Rita", None])
def test_a_commit_email_that_ties_to_nobody_is_unknown_to_everyone(header: str | None) -> None:
    author = ChangePerson("commit_author", email=header, name="Rita")
    for clicker in ("U0RITA", "U0COLIN"):
        assert identify(clicker, f"{clicker}@example.com", author, {}) == "unknown"


@pytest.mark.parametrize("header", ["rita+x@example.com", "RITA@example.com", "rita+@example.com"])
def test_a_commit_email_that_is_ritas_refuses_rita(header: str) -> None:
    author = ChangePerson("commit_author", email=header)
    assert identify(RITA.slack_user_id, RITA.email, author, {}) == "same"
    result = decide_approval(GATE, {}, RITA, [author], [])
    assert isinstance(result, Denied)
    assert result.code == DenialCode.SELF_APPROVAL


def test_a_commit_email_slack_does_not_know_is_unknown_and_names_what_to_map() -> None:
    author = ChangePerson("commit_author", email="rita@laptop.example")
    result = decide_approval(GATE, {}, RITA, [author], [])
    assert isinstance(result, Denied)
    assert result.code == DenialCode.UNKNOWN_IDENTITY
    assert "`rita@laptop.example: <their Slack user ID>`" in result.message


def test_an_identities_email_key_ties_a_commit_email() -> None:
    author = ChangePerson("commit_author", email="Rita+laptop@Laptop.example")
    assert identify("U0COLIN", None, author, {"rita@laptop.example": "U0RITA"}) == "different"
    assert identify("U0RITA", None, author, {"rita@laptop.example": "U0RITA"}) == "same"


def test_identities_usernames_are_matched_in_any_case() -> None:
    bob = ChangePerson("triggerer", username="bob")
    assert identify("U0BOB", None, bob, {"Bob": "U0BOB"}) == "same"
    assert identify("U0RITA", None, bob, {"Bob": "U0BOB"}) == "different"
    assert mapped_user({"BOB": "U0BOB"}, "bob") == "U0BOB"
    assert mapped_user({"bob": "U0BOB"}, None) is None


def test_a_verified_email_slack_knows_ties_the_person() -> None:
    bob = ChangePerson(
        "triggerer",
        username="bob",
        verified_emails=frozenset({"bob@x.io"}),
        slack_ids=frozenset({"U0BOB"}),
    )
    assert identify("U0RITA", "rita@x.io", bob, {}) == "different"
    assert identify("U0BOB", None, bob, {}) == "same"


def test_a_matching_email_wins_over_a_tie_to_someone_else() -> None:
    """Fail closed: the map says bob is U0BOB, but bob's verified e-mail is Rita's."""
    bob = ChangePerson("triggerer", username="bob", verified_emails=frozenset({"rita@example.com"}))
    assert identify(RITA.slack_user_id, RITA.email, bob, {"bob": "U0BOB"}) == "same"


def test_a_failed_lookup_says_so_in_the_denial() -> None:
    bob = ChangePerson("triggerer", username="bob", unresolved="GitLab's users API failed (500)")
    result = decide_approval(GATE, {}, RITA, [bob], [])
    assert isinstance(result, Denied)
    assert "GitLab user `bob`" in result.message
    assert "could not check" in result.message


def test_unknown_identity_allow_lets_the_untied_through_but_never_the_same() -> None:
    gate = GATE.model_copy(update={"unknown_identity": "allow"})
    untied = ChangePerson("commit_author", email="")
    assert isinstance(decide_approval(gate, {}, RITA, [untied], []), Granted)
    same = ChangePerson("commit_author", email="rita+x@example.com")
    assert isinstance(decide_approval(gate, {}, RITA, [same], []), Denied)


def test_rollback_votes_follow_the_same_rule() -> None:
    for email, code in (("", DenialCode.UNKNOWN_IDENTITY), ("rita+x@example.com", None)):
        author = ChangePerson("commit_author", email=email)
        result = decide_rollback(GATE, {}, RITA, [author], [])
        assert isinstance(result, Denied)
        assert result.code == (code or DenialCode.SELF_APPROVAL)
    tied = ChangePerson("commit_author", email="bob@example.com", slack_ids=frozenset({"U0BOB"}))
    assert isinstance(decide_rollback(GATE, {}, RITA, [tied], []), Granted)


def test_identities_keys_differing_only_in_case_are_a_policy_error(tmp_path: Path) -> None:
    text = (Path(__file__).parents[1] / "fixtures" / "approvers.yml").read_text()
    text = text.replace("  Ravi: U0RM00002\n", "  Ravi: U0RM00002\n  ravi: U0RM00001\n")
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "approvers.yml")
    [problem] = caught.value.problems
    assert problem.line == text.splitlines().index("  ravi: U0RM00001") + 1
    assert "'ravi' is the same identity as 'Ravi'" in problem.reason


def test_an_identities_email_key_must_be_usable() -> None:
    text = (Path(__file__).parents[1] / "fixtures" / "approvers.yml").read_text()
    text = text.replace("  Ravi: U0RM00002\n", "  Ravi: U0RM00002\n  ravi@laptop: U0RM00002\n")
    with pytest.raises(PolicyError, match="'ravi@laptop' is not a usable e-mail"):
        parse_policy(text, "approvers.yml")


# --- properties --------------------------------------------------------------------------

USERS = ["U1", "U2", "U3"]
NAMES = ["bob", "Bob", "BOB", "alice", None]
EMAILS = [
    "rita@example.com",
    "Rita+x@example.com",
    "bob@example.com",
    "bob+ci@example.com",
    "",
    "[REDACTED]",
    "rita@laptop",
    None,
]
persons = st.builds(
    ChangePerson,
    relation=st.sampled_from(["triggerer", "commit_author", "merge_request_author", "merged_by"]),
    username=st.sampled_from(NAMES),
    email=st.sampled_from(EMAILS),
    verified_emails=st.frozensets(st.sampled_from([e for e in EMAILS if e]), max_size=2),
    slack_ids=st.frozensets(st.sampled_from(USERS), max_size=2),
)
identity_maps = st.dictionaries(
    st.sampled_from(["bob", "alice", "rita@example.com", "bob@example.com"]),
    st.sampled_from(USERS),
    max_size=3,
)


@settings(max_examples=2000, deadline=None)
@given(
    person=persons,
    identities=identity_maps,
    clicker=st.sampled_from(USERS),
    email=st.sampled_from(EMAILS),
)
def test_different_only_with_a_positive_tie_to_another_slack_user(
    person: ChangePerson, identities: dict[str, str], clicker: str, email: str | None
) -> None:
    verdict = identify(clicker, email, person, identities)
    tied = ties(person, identities)
    if verdict == "different":
        assert tied, "different without a tie"
        assert clicker not in tied, "different although tied to the clicker"
    mine = normalized_email(email)
    theirs = {normalized_email(e) for e in (person.email, *person.verified_emails)}
    if clicker in tied or (mine is not None and mine in theirs):
        assert verdict == "same"
    if not tied and verdict != "same":
        assert verdict == "unknown"


@settings(max_examples=500, deadline=None)
@given(person=persons, identities=identity_maps, clicker=st.sampled_from(USERS))
def test_the_gate_never_grants_an_unknown_identity_by_default(
    person: ChangePerson, identities: dict[str, str], clicker: str
) -> None:
    approver = Clicker(clicker, None, frozenset({RM}))
    result = decide_approval(GATE, identities, approver, [person], [])
    if person.relation in GATE.duties and isinstance(result, Granted):
        assert identify(clicker, None, person, identities) == "different"
