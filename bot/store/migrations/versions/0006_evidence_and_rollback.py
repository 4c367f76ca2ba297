"""Evidence gathered for a request, and the rollback that may follow its deployment.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = (
    ("evidence", sa.Text),
    ("deployed_at", sa.DateTime),
    ("smoke_failed_at", sa.DateTime),
    ("rollback_state", lambda: sa.String(16)),
    ("rollback_job_id", sa.BigInteger),
    ("rollback_claimed_at", sa.DateTime),
    ("rolled_back_at", sa.DateTime),
    ("rollback_offer_ts", lambda: sa.String(32)),
    ("rollback_alert_ts", lambda: sa.String(32)),
)


def upgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind()))


def downgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
