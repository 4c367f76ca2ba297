"""Where a signed Slack request came from: the workspace, the app and the Enterprise Grid
organization, checked against SLACK_TEAM_ID, SLACK_APP_ID and SLACK_ENTERPRISE_ID.

One Slack app (one signing secret) can be installed in several workspaces, so a valid
signature alone does not say the click came from the workspace the bot serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.settings import Settings

FOREIGN = "request from another Slack {what} than the one configured ({setting})"


@dataclass(frozen=True)
class Origin:
    team_id: str | None
    app_id: str | None
    enterprise_id: str | None


def _id(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _inner_id(value: Any) -> str | None:
    return _id(value.get("id")) if isinstance(value, Mapping) else None


def of_interaction(payload: Mapping[str, Any]) -> Origin:
    """Interactions carry `team.id`, `api_app_id` and `enterprise.id` (null outside a
    Grid org); a modal's view also names its app and team, which must agree."""
    view = payload.get("view")
    view_app = _id(view.get("app_id")) if isinstance(view, Mapping) else None
    view_team = _id(view.get("team_id")) if isinstance(view, Mapping) else None
    app = _id(payload.get("api_app_id"))
    team = _inner_id(payload.get("team"))
    if view_app is not None and view_app != app:
        app = None
    if view_team is not None and view_team != team:
        team = None
    return Origin(team, app, _inner_id(payload.get("enterprise")))


def of_command(form: Mapping[str, str]) -> Origin:
    """Slash commands carry `team_id`, `api_app_id` and `enterprise_id` as form fields."""
    return Origin(
        _id(form.get("team_id")), _id(form.get("api_app_id")), _id(form.get("enterprise_id"))
    )


def foreign(settings: Settings, origin: Origin) -> str | None:
    """Why this request is not from the configured workspace/app/org (None: it is, or no
    check is configured). A missing field counts as another one."""
    checks = (
        ("workspace", "SLACK_TEAM_ID", settings.SLACK_TEAM_ID, origin.team_id),
        ("app", "SLACK_APP_ID", settings.SLACK_APP_ID, origin.app_id),
        ("organization", "SLACK_ENTERPRISE_ID", settings.SLACK_ENTERPRISE_ID, origin.enterprise_id),
    )
    for what, setting, wanted, got in checks:
        if wanted is not None and got != wanted:
            return FOREIGN.format(what=what, setting=setting)
    return None
