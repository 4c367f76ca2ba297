"""Ties the people behind a change to Slack users, through GitLab and Slack (the I/O side of
bot.identity).

For each person a gate forbids: their GitLab user (by username for the triggerer and the
merge requests' authors and mergers; for the commit author, the user GitLab shows owning the
commit's e-mail), the e-mails GitLab verified for that user, and the Slack users registered
with those e-mails (`users.lookupByEmail`). An `identities` entry ties a person without any
lookup. A GitLab or Slack error leaves the person untied, with `unresolved` saying why: the
verdict is then "unknown", never "different". Answers are cached in the process: a found
user or tie for 5 minutes, a "nobody" for 1 minute; errors are not cached.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import TypeVar

from bot.gitlab import GitLabClient, GitLabError
from bot.gitlab_users import GitLabUser, GitLabUsers
from bot.identity import ChangePerson, mapped_user, normalized_email
from bot.slack import SlackClient, SlackError

log = logging.getLogger(__name__)
T = TypeVar("T")

FOUND_TTL_S = 300.0
MISSING_TTL_S = 60.0
GITLAB_FAILED = "GitLab's users API failed ({error})"
SLACK_FAILED = "Slack's users.lookupByEmail failed ({error})"


class _Answers:
    """Answers by key, kept FOUND_TTL_S when something was found, MISSING_TTL_S when not."""

    def __init__(self, found_ttl: float, missing_ttl: float) -> None:
        self._ttl = (found_ttl, missing_ttl)
        self._items: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def get_or_ask(self, key: str, ask: Callable[[], T | None]) -> T | None:
        now = time.monotonic()
        with self._lock:
            item = self._items.get(key)
        if item is not None and now < item[0]:
            return item[1]  # type: ignore[return-value]
        answer = ask()
        ttl = self._ttl[0] if answer is not None else self._ttl[1]
        with self._lock:
            self._items[key] = (now + ttl, answer)
        return answer


class IdentityLookups:
    def __init__(
        self,
        gitlab: GitLabClient,
        slack: SlackClient,
        found_ttl: float = FOUND_TTL_S,
        missing_ttl: float = MISSING_TTL_S,
    ) -> None:
        self._users = GitLabUsers(gitlab)
        self._slack = slack
        self._answers = _Answers(found_ttl, missing_ttl)

    def resolve(
        self,
        people: Sequence[ChangePerson],
        relations: Collection[str],
        identities: Mapping[str, str],
    ) -> list[ChangePerson]:
        """The people, those in `relations` tied to Slack users where GitLab and Slack can."""
        return [
            self._resolve(person, identities) if person.relation in relations else person
            for person in people
        ]

    def _resolve(self, person: ChangePerson, identities: Mapping[str, str]) -> ChangePerson:
        if mapped_user(identities, person.username) or mapped_user(identities, person.email):
            return person  # an admin tied them: nothing to look up
        try:
            user = self._gitlab_user(person)
        except GitLabError as exc:
            log.warning("cannot look up the %s in GitLab: %s", person.relation, exc)
            return replace(person, unresolved=GITLAB_FAILED.format(error=exc))
        if user is None:
            return person
        found = replace(
            person, username=person.username or user.username, verified_emails=user.verified_emails
        )
        if mapped_user(identities, found.username):
            return found
        try:
            tied = {self._slack_user(email) for email in sorted(user.verified_emails)}
        except SlackError as exc:
            log.warning("cannot look up the %s in Slack: %s", person.relation, exc.error)
            return replace(found, unresolved=SLACK_FAILED.format(error=exc.error))
        return replace(found, slack_ids=frozenset(filter(None, tied)))

    def _gitlab_user(self, person: ChangePerson) -> GitLabUser | None:
        if person.username:
            username = person.username
            return self._answers.get_or_ask(
                f"gitlab-user:{username.lower()}", lambda: self._users.by_username(username)
            )
        email = normalized_email(person.email)
        if person.relation != "commit_author" or email is None or person.email is None:
            return None
        header = person.email
        return self._answers.get_or_ask(
            f"gitlab-owner:{header.strip().lower()}", lambda: self._users.owner_of(header)
        )

    def _slack_user(self, email: str) -> str | None:
        """The Slack user registered with this e-mail, or else with it normalized."""
        for address in dict.fromkeys((email.strip().lower(), normalized_email(email))):
            found = self._slack_user_at(address) if address else None
            if found is not None:
                return found
        return None

    def _slack_user_at(self, address: str) -> str | None:
        return self._answers.get_or_ask(
            f"slack:{address}", lambda: self._slack.lookup_by_email(address)
        )
