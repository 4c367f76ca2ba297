"""The quorum's locked transaction on real SQLite and PostgreSQL: expiry decided with the
time read under the lock, and approvals that no longer stand revoked (kept visible) before
the click is decided."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.approvals import Counted, Granted
from bot.authority import DEACTIVATED, Review, Standing, review
from bot.store import requests as store
from bot.store import rollbacks
from bot.store.db import Database
from bot.store.models import LedgerEntry, RequestState, utcnow
from tests.unit.test_store import complete, grant_all, request_fields
from tests.unit.test_store_rollbacks import played

RM, CO = "release-manager", "compliance-officer"


def test_an_expired_request_records_nothing_and_is_closed_with_its_ledger_entry(
    db: Database,
) -> None:
    # The click passed its early check a moment ago; by the time it is decided, it expired.
    req, _ = store.create(db, request_fields(expires_at=utcnow() - timedelta(milliseconds=1)))
    outcome = store.record_approval(db, req.id, "U1", "Una", frozenset({RM}), "v1", complete)
    assert outcome.expired
    assert outcome.decision is None
    assert outcome.request.state == RequestState.EXPIRED
    assert outcome.request.state_reason.startswith("Expired at ")
    assert store.get(db, req.id).state == RequestState.EXPIRED
    assert store.decisions(db, req.id) == []
    with db.transaction() as session:
        entries = session.execute(select(LedgerEntry).where(LedgerEntry.request_id == req.id))
        assert [e.kind for e in entries.scalars()] == ["expiry"]
    # A later click finds it closed.
    again = store.record_approval(db, req.id, "U2", "Ola", frozenset({CO}), "v1", complete)
    assert again.decision is None
    assert not again.expired


def revoke(user: str, reason: str):  # type: ignore[no-untyped-def]
    def recheck(counted: list[Counted]) -> Review:
        kept = [c for c in counted if c.slack_user_id != user]
        return Review(kept, {user: reason} if len(kept) < len(counted) else {})

    return recheck


def test_an_approval_that_no_longer_stands_is_revoked_and_stays_visible(db: Database) -> None:
    req, _ = store.create(db, request_fields())
    store.record_approval(db, req.id, "U1", "Una", frozenset({RM}), "v1", grant_all)
    seen: list[list[Counted]] = []

    def decide(counted: list[Counted]) -> Granted:
        seen.append(counted)
        return Granted(assignment={}, missing={RM: 1})

    outcome = store.record_approval(
        db, req.id, "U2", "Ola", frozenset({CO}), "v2", decide, revoke("U1", "no longer a rm")
    )
    assert seen == [[]]  # decided without Una's approval
    assert outcome.revoked == {"U1": "no longer a rm"}
    assert outcome.request.state == RequestState.PENDING
    assert [r.slack_user_id for r in store.decisions(db, req.id)] == ["U2"]
    [gone] = store.revoked_approvals(db, req.id)
    assert (gone.slack_user_id, gone.outcome, gone.reason) == ("U1", "revoked", "no longer a rm")
    assert gone.revoked_at is not None
    assert (gone.policy_version, gone.revoked_policy_version) == ("v1", "v2")
    # Una may approve again (with authority regained): one counted approval per person.
    back = store.record_approval(db, req.id, "U1", "Una", frozenset({RM}), "v3", complete)
    assert back.request.state == RequestState.APPROVED
    assert back.request.policy_version == "v3"


def test_a_narrowed_approval_keeps_only_the_roles_still_held(db: Database) -> None:
    req, _ = store.create(db, request_fields())
    store.record_approval(db, req.id, "U1", "Una", frozenset({RM, CO}), "v1", grant_all)
    standing = {"U1": Standing(frozenset({CO}))}

    def recheck(counted: list[Counted]) -> Review:
        return review(counted, standing, [RM, CO])

    store.record_approval(db, req.id, "U2", "Ola", frozenset({RM}), "v1", grant_all, recheck)
    rows = store.decisions(db, req.id)
    assert [(r.slack_user_id, r.roles) for r in rows] == [("U1", CO), ("U2", RM)]


def test_rollback_votes_are_rechecked_too(db: Database) -> None:
    request_id = played(db)
    rollbacks.note_deployment(db, request_id, "deployed")
    rollbacks.record_vote(db, request_id, "U1", "Una", frozenset({RM}), "v1", grant_all)
    outcome = rollbacks.record_vote(
        db, request_id, "U2", "Ola", frozenset({RM}), "v1", grant_all, revoke("U1", DEACTIVATED)
    )
    assert outcome.revoked == {"U1": DEACTIVATED}
    assert [v.slack_user_id for v in rollbacks.votes(db, request_id)] == ["U2"]
    assert [r.slack_user_id for r in store.revoked_approvals(db, request_id, "rollback")] == ["U1"]


# --- bot.authority.review, pure ----------------------------------------------------------

ROLES = [RM, CO, "dba"]
USERS = ["U1", "U2", "U3", "U4"]


@settings(max_examples=500, deadline=None)
@given(
    counted=st.lists(
        st.builds(
            Counted,
            st.sampled_from(USERS),
            st.frozensets(st.sampled_from(ROLES), min_size=1),
        ),
        unique_by=lambda c: c.slack_user_id,
    ),
    standing=st.dictionaries(
        st.sampled_from(USERS),
        st.builds(Standing, st.frozensets(st.sampled_from(ROLES)), st.booleans()),
    ),
    relevant=st.frozensets(st.sampled_from(ROLES), min_size=1),
)
def test_review_keeps_only_what_still_stands(
    counted: list[Counted], standing: dict[str, Standing], relevant: frozenset[str]
) -> None:
    result = review(counted, standing, relevant)
    kept = {c.slack_user_id: c.roles for c in result.kept}
    assert set(kept) | set(result.revoked) == {c.slack_user_id for c in counted}
    assert not set(kept) & set(result.revoked)
    for approval in counted:
        now = standing.get(approval.slack_user_id)
        if now is None:
            assert kept[approval.slack_user_id] == approval.roles
        elif approval.slack_user_id in kept:
            assert not now.deactivated
            assert kept[approval.slack_user_id] <= approval.roles & now.roles  # never widened
            assert kept[approval.slack_user_id] & relevant
        elif now.deactivated:
            assert result.revoked[approval.slack_user_id] == DEACTIVATED
        else:
            assert result.revoked[approval.slack_user_id].startswith("no longer a ")
