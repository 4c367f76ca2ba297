"""Is the clicker one of the people behind the change? Pure functions, no I/O.

Separation of duties fails closed. The clicker is the *same* person on any evidence: an
e-mail match (the commit header's, the triggerer's, or one GitLab verified), an
`identities` entry, or a Slack user tied to the person. The clicker is *different* only when
the person is positively tied to a Slack user who is not the clicker: through `identities`
(a GitLab username, or an e-mail, mapped to a Slack user ID) or through an e-mail GitLab
verified for their GitLab user that Slack knows (`bot.identity_lookup` finds those). A
commit's author e-mail is whatever its author put in git config: it is evidence of sameness,
never of difference, unless it leads to such a tie. Anything else is *unknown*, and the
gate's `unknown_identity` decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Relation = Literal["triggerer", "commit_author", "merge_request_author", "merged_by"]
Verdict = Literal["same", "different", "unknown"]

# An address with one @, a dotted domain and no spaces, quotes or brackets: anything else
# (empty, GitLab's "[REDACTED]", "rita@laptop") ties to nobody.
_EMAIL = re.compile(r"[^@\s<>()\[\]\",;:]+@[^@\s<>()\[\]\",;:.]+(\.[^@\s<>()\[\]\",;:.]+)+")


@dataclass(frozen=True)
class ChangePerson:
    """Someone GitLab names as behind the change (who may therefore not approve it).

    `username` is their GitLab user (for a commit author: the user GitLab says owns the
    commit's e-mail, if any); `email` is the e-mail GitLab reported with them (the commit
    header's for an author). `verified_emails` and `slack_ids` are filled in by
    `bot.identity_lookup`: the e-mails GitLab verified for that user, and the Slack users
    those e-mails belong to. `unresolved` says why that lookup could not be made.
    """

    relation: Relation
    username: str | None = None
    email: str | None = None
    name: str | None = None
    verified_emails: frozenset[str] = frozenset()
    slack_ids: frozenset[str] = frozenset()
    unresolved: str | None = None


def normalized_email(email: str | None) -> str | None:
    """An e-mail as separation of duties compares it: lower case, the local part's `+tag`
    removed; None for an empty, redacted or malformed one."""
    if email is None:
        return None
    cleaned = email.strip().lower()
    if not _EMAIL.fullmatch(cleaned):
        return None
    local, _, domain = cleaned.rpartition("@")
    local = local.split("+", 1)[0]
    return f"{local}@{domain}" if local else None


def is_email_key(key: str) -> bool:
    """An `identities` key holding an e-mail (GitLab usernames never contain `@`)."""
    return "@" in key


def identity_key(key: str) -> str | None:
    """How an `identities` key is compared: usernames in any case, e-mails normalized."""
    return normalized_email(key) if is_email_key(key) else key.strip().lower() or None


def mapped_user(identities: Mapping[str, str], key: str | None) -> str | None:
    """The Slack user ID `identities` maps a GitLab username or an e-mail to, if any."""
    wanted = identity_key(key) if key else None
    if wanted is None:
        return None
    return next((slack_id for k, slack_id in identities.items() if identity_key(k) == wanted), None)


def emails_of(person: ChangePerson) -> set[str]:
    """Every usable e-mail known for the person, normalized (evidence of sameness)."""
    found = (normalized_email(e) for e in (person.email, *person.verified_emails))
    return {e for e in found if e is not None}


def ties(person: ChangePerson, identities: Mapping[str, str]) -> frozenset[str]:
    """The Slack users the person is positively tied to."""
    tied = set(person.slack_ids)
    keys: Iterable[str | None] = (person.username, person.email, *person.verified_emails)
    tied.update(filter(None, (mapped_user(identities, key) for key in keys)))
    return frozenset(tied)


def identify(
    clicker_id: str,
    clicker_email: str | None,
    person: ChangePerson,
    identities: Mapping[str, str],
) -> Verdict:
    """Is the clicker this person? Same on any evidence; different only on a positive tie."""
    tied = ties(person, identities)
    mine = normalized_email(clicker_email)
    if clicker_id in tied or (mine is not None and mine in emails_of(person)):
        return "same"
    return "different" if tied else "unknown"


def what_to_map(person: ChangePerson) -> str | None:
    """What an admin can add to `identities` to tie the person: their GitLab username, or
    the e-mail when GitLab knows no user with it; None when there is nothing to map."""
    if person.username:
        return person.username
    return person.email.strip() if normalized_email(person.email) and person.email else None
