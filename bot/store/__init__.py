"""Persistence: the approvals database and the sign-off ledger (SQLAlchemy + Alembic)."""
