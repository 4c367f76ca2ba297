"""Bypass marker and merge-request facts on approval requests.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.add_column(sa.Column("bypassed_at", sa.DateTime))
        batch.add_column(sa.Column("merge_request_iid", sa.BigInteger))
        batch.add_column(sa.Column("merge_request_url", sa.String(1024)))
        batch.add_column(sa.Column("merge_request_author_username", sa.String(255)))
        batch.add_column(sa.Column("merged_by_username", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.drop_column("merged_by_username")
        batch.drop_column("merge_request_author_username")
        batch.drop_column("merge_request_url")
        batch.drop_column("merge_request_iid")
        batch.drop_column("bypassed_at")
