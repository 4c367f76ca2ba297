"""When a request was last reminded about and when it was escalated.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.add_column(sa.Column("reminded_at", sa.DateTime))
        batch.add_column(sa.Column("escalated_at", sa.DateTime))


def downgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.drop_column("escalated_at")
        batch.drop_column("reminded_at")
