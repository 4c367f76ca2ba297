"""Approval requests, decisions and the append-only ledger.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY_SQLITE = """
CREATE TRIGGER ledger_entries_no_{op} BEFORE {OP} ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END
"""
APPEND_ONLY_POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION ledger_entries_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'ledger_entries is append-only'; END;
$$ LANGUAGE plpgsql
"""
APPEND_ONLY_POSTGRES_TRIGGER = """
CREATE TRIGGER ledger_entries_no_{op} BEFORE {OP} ON ledger_entries
FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()
"""


def upgrade() -> None:
    op.create_table(
        "approval_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("project_id", sa.BigInteger, nullable=False),
        sa.Column("project_path", sa.String(255), nullable=False),
        sa.Column("project_url", sa.String(1024)),
        sa.Column("pipeline_id", sa.BigInteger, nullable=False),
        sa.Column("pipeline_url", sa.String(1024)),
        sa.Column("job_id", sa.BigInteger, nullable=False),
        sa.Column("job_name", sa.String(255), nullable=False),
        sa.Column("ref", sa.String(255)),
        sa.Column("sha", sa.String(64)),
        sa.Column("commit_title", sa.Text),
        sa.Column("commit_url", sa.String(1024)),
        sa.Column("commit_author_name", sa.String(255)),
        sa.Column("commit_author_email", sa.String(255)),
        sa.Column("triggered_by_username", sa.String(255)),
        sa.Column("triggered_by_name", sa.String(255)),
        sa.Column("triggered_by_email", sa.String(255)),
        sa.Column("environment", sa.String(255)),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("message_ts", sa.String(32)),
        sa.Column("policy_version", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason", sa.Text),
        sa.Column("rejected_by", sa.String(32)),
        sa.Column("reject_reason", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("approved_at", sa.DateTime),
        sa.Column("play_claimed_at", sa.DateTime),
        sa.Column("played_at", sa.DateTime),
        sa.Column("closed_at", sa.DateTime),
        sa.UniqueConstraint("project_id", "job_id", name="uq_request_gate_job"),
    )
    op.create_index("ix_approval_requests_state", "approval_requests", ["state"])
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "request_id", sa.String(32), sa.ForeignKey("approval_requests.id"), nullable=False
        ),
        sa.Column("slack_user_id", sa.String(32), nullable=False),
        sa.Column("slack_user_name", sa.String(255)),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(32)),
        sa.Column("reason", sa.Text),
        sa.Column("roles", sa.String(1024), nullable=False),
        sa.Column("policy_version", sa.String(64), nullable=False),
        sa.Column("decided_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_decisions_request_id", "decisions", ["request_id"])
    counted_once = sa.text("action = 'approve' AND outcome = 'granted'")
    op.create_index(
        "uq_decision_counted_once",
        "decisions",
        ["request_id", "slack_user_id"],
        unique=True,
        sqlite_where=counted_once,
        postgresql_where=counted_once,
    )
    op.create_table(
        "ledger_entries",
        sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(32)),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    op.create_index("ix_ledger_entries_request_id", "ledger_entries", ["request_id"])
    head = op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    # The head row exists from the start, so appenders always have a row to lock.
    op.bulk_insert(head, [{"id": 1, "sequence": 0, "hash": "0" * 64}])
    _append_only(op.get_bind().dialect.name)


def _append_only(dialect: str) -> None:
    """The database itself refuses to change or remove ledger entries."""
    if dialect == "postgresql":
        op.execute(APPEND_ONLY_POSTGRES_FUNCTION)
        for name in ("update", "delete"):
            op.execute(APPEND_ONLY_POSTGRES_TRIGGER.format(op=name, OP=name.upper()))
    elif dialect == "sqlite":
        for name in ("update", "delete"):
            op.execute(APPEND_ONLY_SQLITE.format(op=name, OP=name.upper()))


def downgrade() -> None:
    op.drop_table("ledger_head")
    op.drop_table("ledger_entries")
    op.drop_table("decisions")
    op.drop_table("approval_requests")
    op.execute("DROP FUNCTION IF EXISTS ledger_entries_append_only()")
