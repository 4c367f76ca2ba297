"""Who is this Slack user? Their profile from Slack and their roles from the policy.

Roles come from the policy on the server (members and live user groups), never from
anything the click payload says.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from bot.approvals import Clicker
from bot.authority import Standing
from bot.policy import Policy
from bot.slack import SlackClient, SlackError, SlackUnavailable, SlackUser

log = logging.getLogger(__name__)


def roles_of(
    policy: Policy,
    slack: SlackClient,
    user_id: str,
    strict: bool = False,
    unsure_raises: bool = False,
) -> frozenset[str]:
    """The roles the policy in force gives a Slack user: as a member, or through a live user
    group. A group that cannot be read grants nothing; with `strict` its error is raised, with
    `unsure_raises` only SlackUnavailable (rate limit, timeout: ask again later)."""
    roles = set(policy.static_roles_of(user_id))
    for name, role in policy.roles.items():
        if name in roles:
            continue
        for group in role.usergroups:
            try:
                if user_id in slack.usergroup_members(group):
                    roles.add(name)
                    break
            except SlackError as exc:
                if strict or (unsure_raises and isinstance(exc, SlackUnavailable)):
                    raise
                # A group we cannot read grants nothing: fail closed, and say so in the log.
                log.warning("cannot read Slack user group %s: %s", group, exc.error)
    return frozenset(roles)


def standings(policy: Policy, slack: SlackClient, user_ids: Iterable[str]) -> dict[str, Standing]:
    """What each approver holds now, to re-check their approval at the quorum: the policy in
    force, live user groups and Slack's `deleted` flag (each read at most the user group
    cache's TTL ago). A Slack error is raised, so the click is retried rather than an
    approval revoked on a hiccup."""
    found: dict[str, Standing] = {}
    for user_id in dict.fromkeys(user_ids):
        user = slack.user(user_id)
        if user.deleted or user.is_bot:
            found[user_id] = Standing(frozenset(), deactivated=user.deleted)
        else:
            found[user_id] = Standing(roles_of(policy, slack, user_id, strict=True))
    return found


def identify_clicker(policy: Policy, slack: SlackClient, user_id: str) -> tuple[Clicker, SlackUser]:
    """The clicker as the bot establishes it: Slack profile (e-mail) plus policy roles."""
    user = slack.user(user_id)
    roles = frozenset() if user.deleted or user.is_bot else roles_of(policy, slack, user_id)
    clicker = Clicker(
        slack_user_id=user_id,
        email=user.email,
        roles=roles,
        is_admin=policy.is_admin(user_id),
    )
    return clicker, user
