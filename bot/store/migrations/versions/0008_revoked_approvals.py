"""Approvals revoked when the quorum is re-checked: when, and under which policy version.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("revoked_at", sa.DateTime))
        batch.add_column(sa.Column("revoked_policy_version", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("revoked_policy_version")
        batch.drop_column("revoked_at")
