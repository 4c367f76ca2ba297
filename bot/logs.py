"""Structured JSON logs (structlog over the standard library), secrets never included."""

from __future__ import annotations

import logging
import sys

import structlog

QUIET = ("urllib3", "slack_sdk", "gitlab", "alembic")


def configure(level: str = "INFO", json: bool = True) -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        processor=renderer,
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Client libraries log request details (headers included) at DEBUG: keep them quieter.
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
