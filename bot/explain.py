"""`approval-bot policy explain`: may this Slack user approve that gate, and why?

Answers an admin's "why can't I approve?" from the policy file alone: roles come from
`members` (user groups are resolved live in Slack and are listed, not expanded), and the
people behind the change are named by their GitLab usernames (resolved through
`identities`) or e-mails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TextIO

from bot.approvals import (
    ChangePerson,
    Clicker,
    Denied,
    decide_approval,
    decide_rollback,
    describe_missing,
    rollback_gate,
)
from bot.evidence import risk_reasons
from bot.identity import identify, ties, what_to_map
from bot.policy import LoadedPolicy

IdentityMap = Mapping[str, str]
CLICK_TIME = " (at click time an e-mail GitLab verified for them that Slack knows also ties them)"


@dataclass(frozen=True)
class Question:
    project: str
    job: str
    user: str
    user_email: str | None = None
    triggered_by: str | None = None
    author: str | None = None
    author_email: str | None = None
    # Risk facts of the change (migration_risk, failed_jobs): the gate's risk_rules apply.
    facts: Mapping[str, bool] = field(default_factory=dict)
    rollback: bool = False  # ask about rolling the deployment back, not approving it


def explain(loaded: LoadedPolicy, question: Question, out: TextIO) -> int:
    """Print the reasoning; 0 may approve, 1 may not, 2 no gate covers the job."""
    policy = loaded.policy
    base = policy.gate_for(question.project, question.job)
    if base is None:
        print(f"no gate in {loaded.path} covers {question.project} job {question.job}", file=out)
        return 2
    gate = base.for_change(question.facts)
    print(
        f"gate: {gate.project} job {gate.job} → channel {gate.channel} "
        f"(policy version {loaded.version[:12]})",
        file=out,
    )
    needed: dict[str, int] = {}
    for rule in rollback_gate(gate).require if question.rollback else gate.require:
        needed[rule.role] = needed.get(rule.role, 0) + rule.count
    what = "rollback requires" if question.rollback else "requires"
    print(f"{what}: {describe_missing(needed)} (distinct people)", file=out)
    for reason in risk_reasons(base, question.facts):
        print(f"  because of {reason}", file=out)
    roles = frozenset(policy.static_roles_of(question.user))
    groups = [
        f"{name} via user group {', '.join(role.usergroups)}"
        for name, role in policy.roles.items()
        if role.usergroups and name not in roles and name in needed
    ]
    print(f"{question.user} holds: {', '.join(sorted(roles)) or 'no role as a member'}", file=out)
    if groups:
        print(f"  (also possible, checked live in Slack: {'; '.join(groups)})", file=out)
    duties = rollback_gate(gate).duties if question.rollback else gate.duties
    print(f"separation of duties: {', '.join(duties) or 'none'}", file=out)
    clicker = Clicker(question.user, question.user_email, roles, policy.is_admin(question.user))
    people = stated_people(question)
    for relation in duties:
        person = next((p for p in people if p.relation == relation), None)
        print(f"  {relation}: {identity_line(clicker, person, policy.identities)}", file=out)
    decide = decide_rollback if question.rollback else decide_approval
    decision = decide(gate, policy.identities, clicker, people, [])
    verb = "ROLL BACK" if question.rollback else "APPROVE"
    if isinstance(decision, Denied):
        print(f"verdict: MAY NOT {verb} ({decision.code}): {decision.message}", file=out)
        return 1
    role = decision.assignment.get(question.user, "?")
    print(f"verdict: MAY {verb}, counting as {role}", file=out)
    return 0


def stated_people(question: Question) -> list[ChangePerson]:
    """The people behind the change the question names (those not named are not judged)."""
    people = []
    if question.triggered_by is not None:
        people.append(ChangePerson("triggerer", username=question.triggered_by))
    if question.author is not None or question.author_email is not None:
        people.append(
            ChangePerson("commit_author", username=question.author, email=question.author_email)
        )
    return people


def identity_line(clicker: Clicker, person: ChangePerson | None, identities: IdentityMap) -> str:
    """How the policy alone tells the clicker from the person: same, different, or unknown
    and what to map (at click time the bot also ties GitLab users through the e-mails GitLab
    verified for them that Slack knows)."""
    if person is None:
        return "not given (not checked)"
    who = person.username or person.email or "?"
    verdict = identify(clicker.slack_user_id, clicker.email, person, identities)
    if verdict == "same":
        return f"{who}: same person as {clicker.slack_user_id}"
    if verdict == "different":
        tied = ", ".join(sorted(ties(person, identities)))
        return f"{who}: different (identities ties them to {tied})"
    key = what_to_map(person)
    if key is None:
        return f"{who}: unknown: no usable e-mail or GitLab user, nobody can be told apart"
    what = "GitLab user" if person.username else "the e-mail (or the GitLab user who owns it)"
    return f"{who}: unknown: map {what} {key!r} in identities{CLICK_TIME}"
