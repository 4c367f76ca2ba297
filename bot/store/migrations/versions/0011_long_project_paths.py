"""Project paths and GitLab URLs as long as GitLab makes them (20 nested groups of 255).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Sizes as they were, and as they are now (bot.store.limits, copied: a migration is frozen).
FULL_PATH_MAX = 5119
URL_MAX = 8192
WIDENED = {
    "project_path": (255, FULL_PATH_MAX),
    "project_url": (1024, URL_MAX),
    "pipeline_url": (1024, URL_MAX),
    "commit_url": (1024, URL_MAX),
    "merge_request_url": (1024, URL_MAX),
}


def _resize(sizes: dict[str, int]) -> None:
    # SQLite does not enforce a VARCHAR's length: only PostgreSQL needs the change (a
    # longer varchar is a catalogue change there, no rewrite of the table).
    if op.get_bind().dialect.name == "sqlite":
        return
    for column, size in sizes.items():
        op.alter_column("approval_requests", column, type_=sa.String(size))


def upgrade() -> None:
    _resize({column: new for column, (_, new) in WIDENED.items()})


def downgrade() -> None:
    # Fails on PostgreSQL while a stored value is longer than the old size: keep such rows.
    _resize({column: old for column, (old, _) in WIDENED.items()})
