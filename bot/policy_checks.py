"""Cross checks of a policy that pydantic cannot make one field at a time: every role a
rule names exists, and each gate's rules can be met by distinct people."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from bot.identity import identity_key, is_email_key
from bot.policy_yaml import Loc


class _Members(Protocol):
    @property
    def members(self) -> tuple[str, ...]: ...

    @property
    def usergroups(self) -> tuple[str, ...]: ...


# (loc shown in the message, loc whose line is reported, reason)
Found = tuple[Loc, Loc, str]
# Rules that must hold together (a gate's base rules, plus one risk rule's extras, or a
# rollback's), as (loc of the list, [(loc of the rule, role name, count or None if invalid)]).
RuleSet = tuple[Loc, list[tuple[Loc, str, int | None]]]


def check_rule_sets(roles: Mapping[str, _Members | None], sets: Sequence[RuleSet]) -> list[Found]:
    """Unknown roles, and counts that no set of distinct people could ever satisfy.

    ``roles`` maps every declared role name to its model, or to ``None`` if it is invalid.
    Only roles without usergroups are checked for counts, as user groups can grow.
    """
    found: list[Found] = []
    known = ", ".join(sorted(name for name in roles if name)) or "none"
    for where, rules in sets:
        needed: dict[str, tuple[int, Loc]] = {}  # role -> (total count, loc of last rule)
        checkable = True  # every rule valid and every role a fixed list of members
        for rule_loc, name, count in rules:
            role = roles.get(name)
            if name not in roles:
                loc: Loc = (*rule_loc, "role")
                found.append((loc, loc, f"unknown role '{name}' (known: {known})"))
            if count is None or role is None or role.usergroups:
                checkable = False
            else:
                needed[name] = (needed.get(name, (0, ()))[0] + count, rule_loc)
        members = {name: set(r.members) for name, r in roles.items() if r is not None}
        for name, (count, last) in needed.items():
            if count > len(members[name]):
                checkable = False
                have = len(members[name])
                reason = f"needs {count} {name} approvals but the role has only {have} member"
                found.append((where, (*last, "count"), reason + "s" * (have != 1)))
        if checkable:
            counts = [(name, count or 0) for _, name, count in rules]
            problem = _unmatchable(counts, members)
            if problem:
                found.append((where, where, problem))
    return list(dict.fromkeys(found))  # a base rule shared by several sets is reported once


def _unmatchable(rules: list[tuple[str, int]], members: Mapping[str, set[str]]) -> str | None:
    """Match distinct people to rule slots (bipartite matching); explain any shortfall."""
    slots = [k for k, (_, count) in enumerate(rules) for _ in range(count)]
    if len(slots) > 300:  # far beyond any real policy; skip rather than recurse deeply
        return None
    people = [sorted(members[name]) for name, _ in rules]
    owner: dict[str, int] = {}  # person -> slot

    def assign(slot: int, seen_people: set[str], seen_slots: set[int]) -> bool:
        seen_slots.add(slot)
        for person in people[slots[slot]]:
            if person not in seen_people:
                seen_people.add(person)
                if person not in owner or assign(owner[person], seen_people, seen_slots):
                    owner[person] = slot
                    return True
        return False

    for slot in range(len(slots)):
        seen_slots: set[int] = set()
        if not assign(slot, set(), seen_slots):
            # The rules reached by the failed search need more people than they can reach
            # (Hall's theorem), so report exactly those rules.
            need: dict[str, int] = {}
            for k in sorted({slots[s] for s in seen_slots}):
                need[rules[k][0]] = need.get(rules[k][0], 0) + rules[k][1]
            who = sorted({p for name in need for p in members[name]})
            what = " + ".join(f"{n} {name}" for name, n in need.items())
            those = "that role" if len(need) == 1 else "those roles"
            holders = "1 person holds" if len(who) == 1 else f"{len(who)} people hold"
            return (
                f"cannot be met by distinct people: {what} approvals need "
                f"{sum(need.values())} different approvers, but only {holders} {those}"
                f" ({', '.join(who)})"
            )
    return None


def check_identity_keys(identities: Mapping[str, object]) -> list[Found]:
    """`identities` keys are compared as the bot compares them (GitLab usernames in any case,
    e-mails normalized): two keys for the same person, or an e-mail no one can have, are
    errors, since only one of them could ever be used."""
    found: list[Found] = []
    first: dict[str, str] = {}
    for key in identities:
        loc: Loc = ("identities", key)
        compared = identity_key(key)
        if compared is None:
            what = "a usable e-mail" if is_email_key(key) else "a GitLab username"
            found.append((loc, loc, f"'{key}' is not {what}"))
        elif compared in first:
            reason = f"'{key}' is the same identity as '{first[compared]}' (compared in any case)"
            found.append((loc, loc, reason))
        else:
            first[compared] = key
    return found
