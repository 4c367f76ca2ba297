"""Starts the webhook spool's drainer in a web process (bot.web.spool)."""

from __future__ import annotations

from flask import Flask

from bot.web.gitlab_hooks import resubmit
from bot.web.spool import Spool, SpoolDrainer, Spooled, Submit, spool_of
from bot.web.support import edge


def submitter(app: Flask) -> Submit:
    """Re-submits a spooled event through the webhook's normal path, in the app's context."""

    def submit(event: Spooled) -> bool:
        with app.app_context():
            return resubmit(edge(), event)

    return submit


def drainer_for(app: Flask) -> SpoolDrainer:
    spool: Spool = spool_of(app)
    return SpoolDrainer(spool, submitter(app))


def start_drainer(app: Flask) -> SpoolDrainer:
    """Drains at once (what an earlier run left), then every DRAIN_EVERY_S."""
    drainer = drainer_for(app)
    drainer.start()
    return drainer
