"""The users API of FakeGitLab: `GET /users?username=`, `GET /users?search=`, `GET /users/:id`.

What a token sees follows GitLab's docs (doc/api/users.md) and its User model:

- a regular token gets the basic entity in lists (id, username, name, state, locked,
  avatar_url, web_url) and, from `GET /users/:id`, also `public_email`;
- an administrator's token also gets `email` (primary), `commit_email` and `confirmed_at`;
- `?search=` matches name and username fuzzily (substring, any case) and e-mails only as a
  whole address: the public e-mail for everyone, the private ones too for administrators;
- `?username=` is an exact match, case-insensitive.

GitLab only accepts a `public_email` or `commit_email` the user has verified (User#
public_email_verified, #commit_email_verified); the fake does not check what tests seed.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

_USER = re.compile(r"/api/v4/users/(\d+)")
_LIST = "/api/v4/users"
_ANSWER = tuple[Any, int]


class GitLabUsers:
    """The users a fake GitLab knows, and the answers of its users API."""

    def __init__(self, base_url: str = "https://gitlab.example.com") -> None:
        self.base_url = base_url
        self.users: dict[int, dict[str, Any]] = {}

    def add(
        self,
        user_id: int,
        username: str,
        name: str | None = None,
        *,
        public_email: str | None = None,
        email: str | None = None,
        commit_email: str | None = None,
        confirmed: bool = True,
        state: str = "active",
    ) -> dict[str, Any]:
        """A user; `email` is the private primary e-mail (default: the public one)."""
        user = {
            "id": user_id,
            "username": username,
            "name": name or username.title(),
            "state": state,
            "public_email": public_email or "",
            "email": email or public_email or f"{username}@users.invalid",
            "commit_email": commit_email or email or public_email,
            "confirmed_at": "2026-01-05T09:00:00.000Z" if confirmed else None,
        }
        self.users[user_id] = user
        return user

    def route(
        self, verb: str, path: str, query: dict[str, list[str]], admin: bool
    ) -> _ANSWER | None:
        """The answer to a users API call, or None when the path is not one of them."""
        if verb != "GET":
            return None
        if path == _LIST:
            return [self._basic(u, admin) for u in self._listed(query, admin)], 200
        found = _USER.fullmatch(path)
        if found is None:
            return None
        user = self.users.get(int(found[1]))
        if user is None:
            return {"message": "404 User Not Found"}, 404
        return self._single(user, admin), 200

    def _listed(self, query: dict[str, list[str]], admin: bool) -> list[dict[str, Any]]:
        users = sorted(self.users.values(), key=lambda u: -int(u["id"]))  # newest first
        if query.get("username"):
            username = unquote(query["username"][0]).lower()
            return [u for u in users if u["username"].lower() == username]
        if not query.get("search"):
            return users
        search = query["search"][0]
        wanted = search.strip().lower()
        return [u for u in users if self._matches(u, wanted, admin)]

    @staticmethod
    def _matches(user: dict[str, Any], wanted: str, admin: bool) -> bool:
        if wanted in user["name"].lower() or wanted in user["username"].lower():
            return True
        emails = [user["public_email"]]
        if admin:
            emails += [user["email"], user["commit_email"]]
        return wanted in {str(e).lower() for e in emails if e}

    def _basic(self, user: dict[str, Any], admin: bool) -> dict[str, Any]:
        basic = {
            "id": user["id"],
            "username": user["username"],
            "name": user["name"],
            "state": user["state"],
            "locked": False,
            "avatar_url": None,
            "web_url": f"{self.base_url}/{user['username']}",
        }
        if admin:
            basic.update(email=user["email"], confirmed_at=user["confirmed_at"], is_admin=False)
        return basic

    def _single(self, user: dict[str, Any], admin: bool) -> dict[str, Any]:
        single = {
            **self._basic(user, admin),
            "bio": "",
            "bot": False,
            "public_email": user["public_email"],
            "created_at": "2026-01-05T09:00:00.000Z",
        }
        if admin:
            single["commit_email"] = user["commit_email"]
        return single
