"""Slack request signatures already accepted (replays refused even after Redis loses its
data), and the rejection forms the bot opened (a submission counts only for its own form).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_seen_requests",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_slack_seen_requests_expires_at", "slack_seen_requests", ["expires_at"])
    op.create_table(
        "reject_views",
        sa.Column("view_id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("slack_user_id", sa.String(32), nullable=False),
        sa.Column("opened_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_reject_views_request_id", "reject_views", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_reject_views_request_id", "reject_views")
    op.drop_table("reject_views")
    op.drop_index("ix_slack_seen_requests_expires_at", "slack_seen_requests")
    op.drop_table("slack_seen_requests")
