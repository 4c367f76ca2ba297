"""GitLab's users API, read for separation of duties: who a GitLab user is, which e-mails
GitLab verified for them, and which user owns an e-mail a commit names.

What GitLab shows (doc/api/users.md, app/models/user.rb):

- `GET /users/:id` gives any token the user's `public_email`; GitLab only accepts an e-mail
  the user has verified there (User#public_email_verified). An administrator's token also
  gets `commit_email` (verified too, User#commit_email_verified) and the primary `email`
  with `confirmed_at` (verified once confirmed).
- `GET /users?username=` finds a user by username, in any case.
- `GET /users?search=` matches a whole e-mail address: the public one for any token, the
  private ones too for an administrator's. Name and username matches are fuzzy, so every
  candidate is read and its verified e-mails compared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from gitlab.exceptions import GitlabError

from bot.gitlab import GitLabClient, _translate
from bot.identity import normalized_email

# A search for a whole e-mail address finds at most its owner, plus fuzzy name matches.
SEARCH_CANDIDATES = 5


@dataclass(frozen=True)
class GitLabUser:
    id: int
    username: str
    verified_emails: frozenset[str]


def verified_emails(user: dict[str, Any]) -> frozenset[str]:
    """The e-mails GitLab verified for a user, as `GET /users/:id` shows them to this token."""
    found = {user.get("public_email"), user.get("commit_email")}
    if user.get("confirmed_at"):
        found.add(user.get("email"))
    return frozenset(str(e).strip() for e in found if e and str(e).strip())


class GitLabUsers:
    def __init__(self, client: GitLabClient) -> None:
        self._gl = client.api

    def _safely(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (GitlabError, requests.RequestException) as exc:
            raise _translate(exc, what) from None

    def user(self, user_id: int) -> GitLabUser:
        found = self._safely(f"user {user_id}", lambda: self._gl.http_get(f"/users/{user_id}"))
        return GitLabUser(int(found["id"]), str(found["username"]), verified_emails(found))

    def by_username(self, username: str) -> GitLabUser | None:
        found = self._safely(
            f"user {username}",
            lambda: self._gl.http_list("/users", query_data={"username": username}, get_all=False),
        )
        exact = [u for u in found if str(u.get("username", "")).lower() == username.lower()]
        return self.user(int(exact[0]["id"])) if exact else None

    def owner_of(self, email: str) -> GitLabUser | None:
        """The GitLab user who verified this e-mail (compared normalized), if GitLab shows one."""
        wanted = normalized_email(email)
        if wanted is None:
            return None
        for query in dict.fromkeys((email.strip(), wanted)):
            for candidate in self._search(query)[:SEARCH_CANDIDATES]:
                user = self.user(int(candidate["id"]))
                if wanted in {normalized_email(e) for e in user.verified_emails}:
                    return user
        return None

    def _search(self, query: str) -> list[dict[str, Any]]:
        found = self._safely(
            "users with an e-mail",
            lambda: self._gl.http_list("/users", query_data={"search": query}, get_all=False),
        )
        return [dict(u) for u in found]
