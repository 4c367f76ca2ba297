"""What keeps a captured Slack request from counting twice, kept in the database so that
losing Redis loses none of it: the signatures already accepted (for as long as Slack's
5-minute window lets them be replayed), and the rejection forms the bot opened (a
`view_submission` counts only for a form the bot opened for that request and person)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, DateTime, String, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Database
from bot.store.models import Base, utcnow

# Rows outlive their window by this much, so clocks a little apart between processes
# never free a signature early.
CLOCK_MARGIN_S = 60
# A rejection form left open longer than this must be opened again.
VIEW_LIFETIME = timedelta(days=1)


class SeenSlackRequest(Base):
    """A Slack request signature already accepted, until it can no longer be replayed."""

    __tablename__ = "slack_seen_requests"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Unix seconds after which Slack's signature check refuses the request anyway.
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class RejectView(Base):
    """A rejection form (modal) the bot opened: for which request and for whom."""

    __tablename__ = "reject_views"

    view_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(32), index=True)
    slack_user_id: Mapped[str] = mapped_column(String(32))
    opened_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


def signature_key(signature: str) -> str:
    return hashlib.sha256(signature.encode()).hexdigest()


def first_sighting(db: Database, signature: str, expires_at: int) -> bool:
    """Record a verified request signature; False when it was recorded before (a replay).

    One unique insert decides, so two copies racing each other cannot both be first.
    """
    row = {"key": signature_key(signature), "expires_at": expires_at}
    dialect = db.engine.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(SeenSlackRequest)
        .values(**row)
        .on_conflict_do_nothing()
        .returning(SeenSlackRequest.key)
    )
    with db.transaction() as session:
        inserted = session.execute(statement).scalar_one_or_none()
    return inserted is not None


def prune_seen(db: Database, now: int) -> int:
    """Forget signatures that Slack's 5-minute window already makes worthless."""
    with db.transaction() as session:
        result = session.execute(
            delete(SeenSlackRequest).where(SeenSlackRequest.expires_at < now - CLOCK_MARGIN_S)
        )
        return int(getattr(result, "rowcount", 0) or 0)


def record_view(db: Database, view_id: str, request_id: str, user_id: str) -> None:
    with db.transaction() as session:
        session.merge(RejectView(view_id=view_id, request_id=request_id, slack_user_id=user_id))


def view_opened_for(db: Database, view_id: str, request_id: str, user_id: str) -> bool:
    """Did the bot open this form for this request and this person (and recently)?"""
    with db.sessions() as session:
        view = session.scalar(select(RejectView).where(RejectView.view_id == view_id))
    return (
        view is not None
        and view.request_id == request_id
        and view.slack_user_id == user_id
        and utcnow() - view.opened_at < VIEW_LIFETIME
    )


def prune_views(db: Database) -> int:
    with db.transaction() as session:
        result = session.execute(
            delete(RejectView).where(RejectView.opened_at < utcnow() - VIEW_LIFETIME)
        )
        return int(getattr(result, "rowcount", 0) or 0)
