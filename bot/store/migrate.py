"""`approval-bot db upgrade`: create or migrate the schema (idempotent)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from bot.store.db import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def upgrade(db: Database, revision: str = "head") -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
