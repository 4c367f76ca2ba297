"""Starts the webhook spool's drainer in a web process (bot.web.spool)."""

from __future__ import annotations

from flask import Flask

from bot.web.gitlab_hooks import resubmit
from bot.web.spool import GRACE_S, Ready, Spool, SpoolDrainer, Spooled, Submit, spool_of
from bot.web.support import edge


def submitter(app: Flask) -> Submit:
    """Re-submits a spooled event through the webhook's normal path, in the app's context."""

    def submit(event: Spooled) -> bool:
        with app.app_context():
            return resubmit(edge(), event)

    return submit


def readiness(app: Flask) -> Ready:
    """Redis and the database answer now (a fresh check, not the edge's cached one)."""

    def ready() -> bool:
        with app.app_context():
            return all(edge().readiness.check(fresh=True).values())

    return ready


def drainer_for(app: Flask, grace: float = GRACE_S) -> SpoolDrainer:
    spool: Spool = spool_of(app)
    return SpoolDrainer(spool, submitter(app), readiness(app), grace=grace)


def start_drainer(app: Flask) -> SpoolDrainer:
    """Watches the spool every DRAIN_EVERY_S (what an earlier run left too) and drains it once
    Redis and the database have answered for GRACE_S."""
    drainer = drainer_for(app)
    drainer.start()
    return drainer
