"""Who may approve or reject a gate, and when a request is approved: pure functions, no I/O.

The worker gathers the facts (who clicked, their roles and e-mail, who triggered and wrote
the change, who approved so far) and these functions decide. Keeping the decision pure is
what lets the tests run it over thousands of generated policies and click sequences.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from bot.identity import ChangePerson, Relation, identify, what_to_map
from bot.outside_text import slack_code, slack_mrkdwn
from bot.policy import Gate, Rule

__all__ = ["ChangePerson", "Relation", "identify"]

# User-facing reasons, shown ephemerally to the person who clicked.
ALREADY_APPROVED = "You have already approved this request."
NOT_AUTHORIZED = (
    "You may not approve this gate: it needs {roles}, and you hold none of these roles."
)
NOT_AUTHORIZED_REJECT = (
    "You may not reject this gate: only {roles} or a policy admin may reject it."
)
SELF_APPROVAL = "You may not approve this deployment because you {relation}."
UNKNOWN_IDENTITY = (
    "You may not approve: the bot cannot confirm that you are not the {who} of this change. "
    "{detail}"
)
UNMAPPED = (
    "{whom} is not tied to any Slack user: ask an admin to add `{key}: <their Slack user ID>` "
    "to `identities` in the policy."
)
UNMAPPABLE = (
    "GitLab gives no usable e-mail or user for them, so no one can be shown to be someone "
    "else: the commit needs an author e-mail that a GitLab user has verified."
)
LOOKUP_FAILED = " (The bot could not check: {why}. Try again later.)"
NOT_NEEDED = (
    "Your approval would not count: {held} approvals are already complete. Still needed: {missing}."
)

RELATION_TEXT: Mapping[str, str] = {
    "triggerer": "triggered this pipeline",
    "commit_author": "wrote the commit being deployed",
    "merge_request_author": "opened the merge request that brought this change",
    "merged_by": "merged the merge request that brought this change",
}
RELATION_NOUN: Mapping[str, str] = {
    "triggerer": "triggerer",
    "commit_author": "commit author",
    "merge_request_author": "merge request author",
    "merged_by": "person who merged the merge request",
}


class DenialCode(StrEnum):
    ALREADY_APPROVED = "already_approved"
    NOT_AUTHORIZED = "not_authorized"
    SELF_APPROVAL = "self_approval"
    UNKNOWN_IDENTITY = "unknown_identity"
    NOT_NEEDED = "not_needed"


@dataclass(frozen=True)
class Clicker:
    """The Slack user who clicked, as the bot established it (never from the payload alone)."""

    slack_user_id: str
    email: str | None
    roles: frozenset[str]
    is_admin: bool = False


@dataclass(frozen=True)
class Denied:
    code: DenialCode
    message: str


@dataclass(frozen=True)
class Granted:
    """The approval counts; `assignment` maps each counted approver to the role they fill."""

    assignment: Mapping[str, str]
    missing: Mapping[str, int]

    @property
    def quorum_met(self) -> bool:
        return not self.missing


Decision = Granted | Denied


@dataclass(frozen=True)
class Counted:
    """An approval already counted toward a request: who, and which roles they held."""

    slack_user_id: str
    roles: frozenset[str] = field(default_factory=frozenset)


def gate_roles(gate: Gate) -> list[str]:
    return sorted({rule.role for rule in gate.require})


def check_separation(
    gate: Gate,
    clicker: Clicker,
    people: Iterable[ChangePerson],
    identities: Mapping[str, str],
) -> Denied | None:
    """Separation of duties: those behind the change, as the gate names them, may not approve."""
    unknown: list[ChangePerson] = []
    for person in (p for p in people if p.relation in gate.duties):
        verdict = identify(clicker.slack_user_id, clicker.email, person, identities)
        if verdict == "same":
            text = RELATION_TEXT[person.relation]
            return Denied(DenialCode.SELF_APPROVAL, SELF_APPROVAL.format(relation=text))
        if verdict == "unknown":
            unknown.append(person)
    if unknown and gate.unknown_identity == "deny":
        person = unknown[0]
        who = RELATION_NOUN[person.relation]
        return Denied(
            DenialCode.UNKNOWN_IDENTITY,
            UNKNOWN_IDENTITY.format(who=who, detail=unknown_detail(person)),
        )
    return None


def unknown_detail(person: ChangePerson) -> str:
    """Why the person could not be told apart from the clicker, and what to map."""
    key = what_to_map(person)
    if key is None:
        detail = UNMAPPABLE
    elif person.username:
        detail = UNMAPPED.format(
            whom=f"GitLab user {slack_code(key)}", key=slack_mrkdwn(key).replace("`", "\u02cb")
        )
    else:
        whom = f"No GitLab user has verified the e-mail {slack_code(key)}, which"
        detail = UNMAPPED.format(whom=whom, key=slack_mrkdwn(key).replace("`", "\u02cb"))
    if person.unresolved:
        detail += LOOKUP_FAILED.format(why=slack_mrkdwn(person.unresolved))
    return detail


def assign(rules: Sequence[Rule], approvers: Sequence[Counted]) -> dict[str, str]:
    """Largest assignment of distinct approvers to rule slots (each person fills one slot).

    Bipartite matching by augmenting paths: sizes are tiny (a handful of people and slots),
    and the result's size does not depend on the order approvals came in.
    """
    slots = [rule.role for rule in rules for _ in range(rule.count)]
    slot_owner: list[str | None] = [None] * len(slots)
    roles_of = {approver.slack_user_id: approver.roles for approver in approvers}

    def place(user: str, seen: set[int]) -> bool:
        for index, role in enumerate(slots):
            if role not in roles_of[user] or index in seen:
                continue
            seen.add(index)
            owner = slot_owner[index]
            if owner is None or place(owner, seen):
                slot_owner[index] = user
                return True
        return False

    for approver in approvers:
        place(approver.slack_user_id, set())
    return {owner: slots[i] for i, owner in enumerate(slot_owner) if owner is not None}


def missing_roles(rules: Sequence[Rule], assignment: Mapping[str, str]) -> dict[str, int]:
    """How many more approvals each role still needs, given an assignment."""
    needed: dict[str, int] = {}
    for rule in rules:
        needed[rule.role] = needed.get(rule.role, 0) + rule.count
    for role in assignment.values():
        needed[role] -= 1
    return {role: count for role, count in needed.items() if count > 0}


def describe_missing(missing: Mapping[str, int]) -> str:
    return ", ".join(f"{count} {role}" for role, count in sorted(missing.items())) or "nothing"


def decide_approval(
    gate: Gate,
    identities: Mapping[str, str],
    clicker: Clicker,
    people: Sequence[ChangePerson],
    counted: Sequence[Counted],
) -> Decision:
    """Decide one Approve click: validate → authorize → separation of duties → quorum."""
    if any(c.slack_user_id == clicker.slack_user_id for c in counted):
        return Denied(DenialCode.ALREADY_APPROVED, ALREADY_APPROVED)
    relevant = clicker.roles & set(gate_roles(gate))
    if not relevant:
        roles = " or ".join(gate_roles(gate))
        return Denied(DenialCode.NOT_AUTHORIZED, NOT_AUTHORIZED.format(roles=roles))
    denied = check_separation(gate, clicker, people, identities)
    if denied is not None:
        return denied
    before = assign(gate.require, counted)
    candidate = Counted(clicker.slack_user_id, frozenset(relevant))
    after = assign(gate.require, [*counted, candidate])
    if len(after) <= len(before):
        held = " and ".join(sorted(relevant))
        missing = describe_missing(missing_roles(gate.require, before))
        return Denied(DenialCode.NOT_NEEDED, NOT_NEEDED.format(held=held, missing=missing))
    return Granted(assignment=after, missing=missing_roles(gate.require, after))


def decide_rejection(gate: Gate, clicker: Clicker) -> Denied | None:
    """Anyone holding one of the gate's roles, and the admins, may reject it."""
    if clicker.is_admin or clicker.roles & set(gate_roles(gate)):
        return None
    roles = " or ".join(gate_roles(gate))
    return Denied(DenialCode.NOT_AUTHORIZED, NOT_AUTHORIZED_REJECT.format(roles=roles))


ANY_GATE_ROLE = "approver of the gate"
NOT_AUTHORIZED_ROLLBACK = (
    "You may not roll this deployment back: it needs {roles}, and you hold none of these roles."
)
ROLLBACK_SELF = "You may not approve this rollback because you {relation}."


def rollback_gate(gate: Gate) -> Gate:
    """The gate's rollback policy as a gate of its own: its rules (default: one person
    holding any of the gate's roles) and its separation of duties."""
    rollback = gate.rollback
    require = rollback.require or (Rule(role=ANY_GATE_ROLE, count=1),)
    # Relaxed only by the rollback policy itself: a gate that allows self-approval still
    # keeps the triggerer and the commit author from rolling back on their own.
    duties = (
        (gate.duties or ("triggerer", "commit_author")) if rollback.forbid_self_approval else ()
    )
    return gate.model_copy(
        update={"require": require, "separation_of_duties": duties, "risk_rules": ()}
    )


def rollback_roles(gate: Gate, roles: frozenset[str]) -> frozenset[str]:
    """The roles a person holds for the rollback rules (the default rule's role included)."""
    if gate.rollback.require is None and roles & set(gate_roles(gate)):
        return roles | {ANY_GATE_ROLE}
    return roles


def decide_rollback(
    gate: Gate,
    identities: Mapping[str, str],
    clicker: Clicker,
    people: Sequence[ChangePerson],
    counted: Sequence[Counted],
) -> Decision:
    """Decide one Roll back click under the gate's rollback policy."""
    rules_gate = rollback_gate(gate)
    held = Clicker(
        clicker.slack_user_id,
        clicker.email,
        rollback_roles(gate, clicker.roles),
        clicker.is_admin,
    )
    if not held.roles & set(gate_roles(rules_gate)):
        roles = gate_roles(rules_gate) if gate.rollback.require else gate_roles(gate)
        return Denied(
            DenialCode.NOT_AUTHORIZED, NOT_AUTHORIZED_ROLLBACK.format(roles=" or ".join(roles))
        )
    decision = decide_approval(rules_gate, identities, held, people, counted)
    if isinstance(decision, Denied) and decision.code == DenialCode.SELF_APPROVAL:
        relation = decision.message.removeprefix(SELF_APPROVAL.split("{", 1)[0]).rstrip(".")
        return Denied(decision.code, ROLLBACK_SELF.format(relation=relation))
    return decision
