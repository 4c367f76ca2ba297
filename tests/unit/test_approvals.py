"""The approval decision as a pure function: authorization, separation of duties, quorum."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.approvals import (
    ChangePerson,
    Clicker,
    Counted,
    DenialCode,
    Denied,
    Granted,
    assign,
    decide_approval,
    decide_rejection,
    identify,
)
from bot.policy import Gate, Rule

RM, CO = "release-manager", "compliance-officer"
GATE = Gate(
    project="fintech/payments-api",
    channel="C0DEPLOYS",
    require=(Rule(role=RM, count=1), Rule(role=CO, count=1)),
)
# As bot.identity_lookup leaves them: each tied to the Slack user their verified e-mail is.
TRIGGERER = ChangePerson(
    "triggerer", username="bob", email="bob@example.com", slack_ids=frozenset({"U0BOB"})
)
AUTHOR = ChangePerson(
    "commit_author", username="alice", email="alice@example.com", slack_ids=frozenset({"U0ALICE"})
)
PEOPLE = [TRIGGERER, AUTHOR]


def clicker(uid: str, *roles: str, email: str | None = None, admin: bool = False) -> Clicker:
    return Clicker(uid, email or f"{uid.lower()}@example.com", frozenset(roles), admin)


def decide(c: Clicker, counted: list[Counted] | None = None, gate: Gate = GATE, identities=None):
    return decide_approval(gate, identities or {}, c, PEOPLE, counted or [])


def test_first_approval_counts_and_names_what_is_missing() -> None:
    result = decide(clicker("U1", RM))
    assert isinstance(result, Granted)
    assert not result.quorum_met
    assert result.assignment == {"U1": RM}
    assert result.missing == {CO: 1}


def test_second_role_completes_the_quorum() -> None:
    result = decide(clicker("U2", CO), [Counted("U1", frozenset({RM}))])
    assert isinstance(result, Granted)
    assert result.quorum_met
    assert result.assignment == {"U1": RM, "U2": CO}


def test_user_without_a_role_is_told_which_roles_are_needed() -> None:
    result = decide(clicker("U9"))
    assert isinstance(result, Denied)
    assert result.code == DenialCode.NOT_AUTHORIZED
    assert RM in result.message
    assert CO in result.message


def test_same_person_twice_is_refused() -> None:
    result = decide(clicker("U1", RM, CO), [Counted("U1", frozenset({RM, CO}))])
    assert isinstance(result, Denied)
    assert result.code == DenialCode.ALREADY_APPROVED


def test_second_release_manager_does_not_count_when_the_role_is_full() -> None:
    result = decide(clicker("U3", RM), [Counted("U1", frozenset({RM}))])
    assert isinstance(result, Denied)
    assert result.code == DenialCode.NOT_NEEDED
    assert "compliance-officer" in result.message


def test_person_with_two_roles_fills_whichever_rule_is_open() -> None:
    result = decide(clicker("U4", RM, CO), [Counted("U1", frozenset({RM}))])
    assert isinstance(result, Granted)
    assert result.quorum_met
    assert result.assignment["U4"] == CO


@pytest.mark.parametrize(
    ("email", "relation"),
    [("bob@example.com", "triggered"), ("ALICE@Example.com", "wrote the commit")],
)
def test_self_approval_by_email_is_refused(email: str, relation: str) -> None:
    result = decide(clicker("U1", RM, email=email))
    assert isinstance(result, Denied)
    assert result.code == DenialCode.SELF_APPROVAL
    assert relation in result.message


def test_self_approval_through_the_identities_map_is_refused() -> None:
    result = decide(clicker("U1", RM), identities={"bob": "U1"})
    assert isinstance(result, Denied)
    assert result.code == DenialCode.SELF_APPROVAL


def test_self_approval_allowed_when_the_gate_says_so() -> None:
    gate = GATE.model_copy(update={"forbid_self_approval": False})
    assert isinstance(decide(clicker("U1", RM, email="bob@example.com"), gate=gate), Granted)


@pytest.mark.parametrize("hidden", ["", "[REDACTED]", None])
def test_unknown_triggerer_identity_is_denied_by_default(hidden: str | None) -> None:
    people = [ChangePerson("triggerer", username="bob", email=hidden), AUTHOR]
    result = decide_approval(GATE, {}, clicker("U1", RM), people, [])
    assert isinstance(result, Denied)
    assert result.code == DenialCode.UNKNOWN_IDENTITY
    assert "bob" in result.message


def test_unknown_identity_allowed_when_the_gate_allows_it() -> None:
    gate = GATE.model_copy(update={"unknown_identity": "allow"})
    people = [ChangePerson("triggerer", username="bob", email="[REDACTED]"), AUTHOR]
    assert isinstance(decide_approval(gate, {}, clicker("U1", RM), people, []), Granted)


def test_identities_map_resolves_a_redacted_email() -> None:
    people = [ChangePerson("triggerer", username="bob", email="[REDACTED]"), AUTHOR]
    assert isinstance(decide_approval(GATE, {"bob": "U7"}, clicker("U1", RM), people, []), Granted)
    denied = decide_approval(GATE, {"bob": "U1"}, clicker("U1", RM), people, [])
    assert isinstance(denied, Denied)
    assert denied.code == DenialCode.SELF_APPROVAL


def test_an_untied_author_cannot_be_told_apart_even_by_a_clicker_without_email() -> None:
    untied = ChangePerson("commit_author", email="alice@example.com")
    for email in (None, "rita@example.com"):
        result = decide_approval(GATE, {}, Clicker("U1", email, frozenset({RM})), [untied], [])
        assert isinstance(result, Denied)
        assert result.code == DenialCode.UNKNOWN_IDENTITY
        assert "alice@example.com" in result.message  # what an admin can map


def test_a_tied_author_is_told_apart_from_a_clicker_without_email() -> None:
    result = decide_approval(GATE, {}, Clicker("U1", None, frozenset({RM})), [AUTHOR], [])
    assert isinstance(result, Granted)


def test_identify_by_the_identities_map_only_ties_the_person() -> None:
    person = ChangePerson("triggerer", username="bob", email=None)
    assert identify("U1", None, person, {"bob": "U1"}) == "same"
    assert identify("U1", None, person, {"BOB": "U2"}) == "different"
    # The map saying who the clicker is in GitLab proves nothing about bob.
    assert identify("U1", None, person, {"carol": "U1"}) == "unknown"
    assert identify("U1", None, person, {}) == "unknown"


def test_rejection_by_role_holder_or_admin_only() -> None:
    assert decide_rejection(GATE, clicker("U1", RM)) is None
    assert decide_rejection(GATE, clicker("U0", admin=True)) is None
    denied = decide_rejection(GATE, clicker("U9"))
    assert isinstance(denied, Denied)
    assert "may not reject" in denied.message


# --- properties over random policies and click sequences --------------------------------

ROLES = ["r0", "r1", "r2"]
USERS = [f"U{i}" for i in range(6)]


@st.composite
def scenarios(draw: st.DrawFn):
    rules = draw(
        st.lists(
            st.tuples(st.sampled_from(ROLES), st.integers(1, 3)),
            min_size=1,
            max_size=3,
            unique_by=lambda r: r[0],
        )
    )
    gate = Gate(
        project="p/*",
        channel="C0X",
        require=tuple(Rule(role=r, count=n) for r, n in rules),
        forbid_self_approval=True,
    )
    holdings = {
        u: frozenset(draw(st.lists(st.sampled_from(ROLES), max_size=3, unique=True))) for u in USERS
    }
    selfish = draw(st.sets(st.sampled_from(USERS), max_size=2))
    clicks = draw(st.lists(st.sampled_from(USERS), max_size=12))
    return gate, holdings, selfish, clicks


def run_clicks(gate, holdings, selfish, clicks):
    people = [
        ChangePerson("triggerer", email=f"{u.lower()}@example.com", slack_ids=frozenset({u}))
        for u in selfish
    ]
    counted: list[Counted] = []
    met = False
    for uid in clicks:
        c = Clicker(uid, f"{uid.lower()}@example.com", holdings[uid])
        result = decide_approval(gate, {}, c, people, counted)
        if isinstance(result, Granted):
            counted.append(Counted(uid, holdings[uid] & {r.role for r in gate.require}))
            met = result.quorum_met
            if met:
                break
    return counted, met


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_never_approves_without_enough_distinct_eligible_people(scenario) -> None:
    gate, holdings, selfish, clicks = scenario
    counted, met = run_clicks(gate, holdings, selfish, clicks)
    ids = [c.slack_user_id for c in counted]
    assert len(ids) == len(set(ids)), "a person counted twice"
    assert not set(ids) & selfish, "a self-approver counted"
    if met:
        assignment = assign(gate.require, counted)
        assert len(assignment) == sum(r.count for r in gate.require)
        assert len(set(assignment)) >= sum(r.count for r in gate.require)
        for uid, role in assignment.items():
            assert role in holdings[uid]


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_order_of_clicks_does_not_matter(scenario) -> None:
    gate, holdings, selfish, clicks = scenario
    distinct = list(dict.fromkeys(clicks))[:5]
    outcomes = {
        run_clicks(gate, holdings, selfish, list(order))[1]
        for order in itertools.permutations(distinct)
    }
    assert len(outcomes) <= 1


MR_GATE = GATE.model_copy(
    update={"separation_of_duties": ("triggerer", "merge_request_author", "merged_by")}
)
MR_PEOPLE = [
    TRIGGERER,
    AUTHOR,
    ChangePerson("merge_request_author", username="alice"),
    ChangePerson("merged_by", username="ravi"),
]


def test_merger_and_merge_request_author_may_not_approve() -> None:
    identities = {"alice": "U5", "ravi": "U6"}
    merger = decide_approval(MR_GATE, identities, clicker("U6", RM), MR_PEOPLE, [])
    assert isinstance(merger, Denied)
    assert "merged the merge request" in merger.message
    author = decide_approval(MR_GATE, identities, clicker("U5", RM), MR_PEOPLE, [])
    assert isinstance(author, Denied)
    assert "opened the merge request" in author.message


def test_duties_not_listed_are_not_enforced() -> None:
    # The commit author (alice@example.com) may approve when the gate does not list it.
    identities = {"alice": "U5", "ravi": "U6"}
    result = decide_approval(
        MR_GATE, identities, clicker("U1", RM, email="alice@example.com"), MR_PEOPLE, []
    )
    assert isinstance(result, Granted)


def test_unmapped_merger_is_unknown() -> None:
    result = decide_approval(MR_GATE, {"alice": "U5"}, clicker("U1", RM), MR_PEOPLE, [])
    assert isinstance(result, Denied)
    assert result.code == DenialCode.UNKNOWN_IDENTITY
    assert "ravi" in result.message
