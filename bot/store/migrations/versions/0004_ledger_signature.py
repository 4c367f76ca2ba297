"""Optional HMAC signature of each ledger entry.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Adding a nullable column is not an UPDATE of rows: the append-only triggers allow it.
    op.add_column("ledger_entries", sa.Column("signature", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_column("signature")
