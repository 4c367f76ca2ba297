"""Policy versions in the database, so every change to approver rules is auditable."""

from __future__ import annotations

import difflib

from sqlalchemy import select

from bot import ledger
from bot.store.db import Database
from bot.store.models import LedgerHead, PolicyVersion, utcnow


def diff(old_text: str, new_text: str, path: str) -> str:
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile=f"{path} (before)",
        tofile=f"{path} (after)",
    )
    return "".join(lines)


def record(db: Database, version: str, path: str, content: str) -> bool:
    """Record the policy now in force, unless it is already the latest recorded (True: new).

    Every process (web, workers) sees the same change; locking the ledger head first makes
    them take turns, so exactly one of them records it, with the diff from the one before
    and (for a change, not the first version) a `policy_change` ledger entry.
    """
    now = utcnow()
    with db.transaction() as session:
        session.execute(select(LedgerHead).where(LedgerHead.id == 1).with_for_update())
        latest = session.execute(
            select(PolicyVersion).order_by(PolicyVersion.id.desc()).limit(1)
        ).scalar_one_or_none()
        if latest is not None and latest.version == version:
            return False
        change = diff(latest.content, content, path) if latest else None
        session.add(
            PolicyVersion(
                version=version,
                previous_version=latest.version if latest else None,
                path=path,
                content=content,
                diff=change,
                loaded_at=now,
            )
        )
        if latest is not None:  # the first version is stored; changes are evidence
            fields = {
                "policy_version": version,
                "previous_policy_version": latest.version,
                "policy_path": path,
                "diff": change,
                "reason": "policy changed",
            }
            ledger.append(session, "policy_change", fields, now)
    return True


def history(db: Database) -> list[PolicyVersion]:
    with db.transaction() as session:
        return list(session.execute(select(PolicyVersion).order_by(PolicyVersion.id)).scalars())
