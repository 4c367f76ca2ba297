"""Claiming a play (the gate's, or its rollback's) so exactly one worker performs it.

A claim is a conditional UPDATE that only one transaction can win; it carries a lease, so
the play of a worker that died is taken over once the lease ran out (by an RQ retry or the
sweep), and that worker's successor asks GitLab before playing again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, update

from bot.store.db import Database
from bot.store.models import ApprovalRequest, RequestState, utcnow


@dataclass(frozen=True)
class Play:
    """Which columns hold a play's state: the gate's own, or its rollback's."""

    state: Any
    claimed_at: Any
    ready: str
    playing: str


GATE_PLAY = Play(
    ApprovalRequest.state,
    ApprovalRequest.play_claimed_at,
    RequestState.APPROVED,
    RequestState.PLAYING,
)


def claim_lease(db: Database, request_id: str, play: Play, lease: timedelta) -> bool:
    """ready → playing, or take over a play whose worker died (lease expired).

    A conditional UPDATE: of any number of workers, exactly one sees one row changed.
    """
    now = utcnow()
    with db.transaction() as session:
        result = session.execute(
            update(ApprovalRequest)
            .where(
                ApprovalRequest.id == request_id,
                or_(
                    play.state == play.ready,
                    (play.state == play.playing) & (play.claimed_at < now - lease),
                ),
            )
            .values({play.state: play.playing, play.claimed_at: now})
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def release_lease(db: Database, request_id: str, play: Play) -> None:
    """playing → ready after a transient failure, so a retry can claim the play again."""
    with db.transaction() as session:
        session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == request_id, play.state == play.playing)
            .values({play.state: play.ready})
        )
