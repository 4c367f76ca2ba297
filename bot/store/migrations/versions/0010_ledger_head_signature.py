"""The chain head is signed too (HMAC of its sequence and hash, with LEDGER_HMAC_KEY).

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nothing is signed here (a migration has no key): with LEDGER_HMAC_KEY set, run
    # `approval-bot ledger sign-existing` once after this upgrade (see the README).
    op.add_column("ledger_head", sa.Column("signature", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("ledger_head") as batch:
        batch.drop_column("signature")
