"""Authority re-checked when the quorum is decided: pure functions, no I/O.

An approval was granted for the roles its approver held when they clicked. Before it helps
complete a quorum, the worker reads what each counted approver holds now (the policy in
force, live user groups, whether Slack still has the account) and `review` drops the
approvals that no longer stand, saying why. An approval is only ever narrowed to the roles
still held, never widened.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from bot.approvals import Counted

DEACTIVATED = "their Slack account is deactivated"
NO_LONGER = "no longer a {roles}"


@dataclass(frozen=True)
class Standing:
    """What an approver holds now: their roles (policy members and live user groups), and
    whether their Slack account is deactivated."""

    roles: frozenset[str]
    deactivated: bool = False


@dataclass(frozen=True)
class Review:
    """The approvals that still count (with the roles they still hold) and, by approver,
    why the others no longer do."""

    kept: list[Counted]
    revoked: dict[str, str] = field(default_factory=dict)


def review(
    counted: Sequence[Counted], standing: Mapping[str, Standing], relevant: Collection[str]
) -> Review:
    """Re-check counted approvals against what their approvers hold now (`standing`);
    approvers without a standing (approved since it was read) keep what they were granted.
    `relevant` are the roles the request's rules need."""
    kept: list[Counted] = []
    revoked: dict[str, str] = {}
    for approval in counted:
        now = standing.get(approval.slack_user_id)
        if now is None:
            kept.append(approval)
            continue
        held = approval.roles & now.roles
        if now.deactivated:
            revoked[approval.slack_user_id] = DEACTIVATED
        elif not held & set(relevant):
            lost = sorted(approval.roles & set(relevant)) or sorted(approval.roles)
            revoked[approval.slack_user_id] = NO_LONGER.format(roles=" or ".join(lost))
        else:
            kept.append(Counted(approval.slack_user_id, held))
    return Review(kept, revoked)
