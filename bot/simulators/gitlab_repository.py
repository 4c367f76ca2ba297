"""A project's repository in the GitLab simulator: commits with parents and files, and the
commit, diff, compare and raw-file endpoints the bot reads evidence from."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

COMMIT_NOT_FOUND = "404 Commit Not Found"
FILE_NOT_FOUND = "404 File Not Found"
REF_NOT_FOUND = "404 Ref Not Found"


class RepositoryNotFound(Exception):
    """GitLab answers 404 with this message."""


@dataclass(frozen=True)
class RawText:
    """A plain-text answer (the raw file endpoint), not JSON."""

    text: str


@dataclass
class FakeCommit:
    sha: str
    title: str
    author_name: str
    author_email: str
    parent: str | None
    # path -> new content (None: the file was deleted)
    files: dict[str, str | None] = field(default_factory=dict)
    created_at: str = "2026-11-25T10:00:00.000+00:00"


class FakeRepository:
    def __init__(self, web_url: str) -> None:
        self.web_url = web_url
        self.commits: dict[str, FakeCommit] = {}

    def add(self, commit: FakeCommit) -> None:
        if commit.parent is not None and commit.parent not in self.commits:
            raise KeyError(f"add the parent commit {commit.parent} first")
        self.commits[commit.sha] = commit

    # -------------------------------------------------------------- history
    def _get(self, sha: str) -> FakeCommit:
        found = self.commits.get(sha) or next(
            (c for s, c in self.commits.items() if len(sha) >= 7 and s.startswith(sha)), None
        )
        if found is None:
            raise RepositoryNotFound(COMMIT_NOT_FOUND)
        return found

    def _history(self, sha: str) -> list[FakeCommit]:
        """`sha` and its ancestors, newest first."""
        chain = []
        commit: FakeCommit | None = self._get(sha)
        while commit is not None:
            chain.append(commit)
            commit = self.commits.get(commit.parent) if commit.parent else None
        return chain

    def content_at(self, path: str, sha: str) -> str | None:
        for commit in self._history(sha):
            if path in commit.files:
                return commit.files[path]
        return None

    # -------------------------------------------------------------- answers
    def commit_json(self, commit: FakeCommit) -> dict[str, Any]:
        return {
            "id": commit.sha,
            "short_id": commit.sha[:8],
            "title": commit.title,
            "message": commit.title + "\n",
            "author_name": commit.author_name,
            "author_email": commit.author_email,
            "authored_date": commit.created_at,
            "created_at": commit.created_at,
            "parent_ids": [commit.parent] if commit.parent else [],
            "web_url": f"{self.web_url}/-/commit/{commit.sha}",
        }

    def _diff(self, path: str, old: str | None, new: str | None) -> dict[str, Any]:
        lines = difflib.unified_diff(
            (old or "").splitlines(keepends=True), (new or "").splitlines(keepends=True), n=3
        )
        text = "".join(line for line in lines if not line.startswith(("---", "+++")))
        return {
            "old_path": path,
            "new_path": path,
            "a_mode": "100644",
            "b_mode": "100644",
            "diff": text,
            "new_file": old is None,
            "renamed_file": False,
            "deleted_file": new is None,
        }

    def diffs_between(self, base: str | None, head: str) -> list[dict[str, Any]]:
        changed: set[str] = set()
        for commit in self._history(head):
            if base is not None and commit.sha == base:
                break
            changed.update(commit.files)
        return [
            self._diff(
                path, self.content_at(path, base) if base else None, self.content_at(path, head)
            )
            for path in sorted(changed)
        ]

    def route(self, rest: str, query: dict[str, list[str]]) -> tuple[Any, int]:
        """GET /repository/… for one project."""
        if rest == "/repository/compare":
            return self._compare(query.get("from", [""])[0], query.get("to", [""])[0]), 200
        raw = re.fullmatch(r"/repository/files/(.+)/raw", rest)
        if raw:
            content = self.content_at(unquote(raw[1]), query.get("ref", ["main"])[0])
            if content is None:
                raise RepositoryNotFound(FILE_NOT_FOUND)
            return RawText(content), 200
        commit = re.fullmatch(r"/repository/commits/([0-9a-zA-Z]+)(/diff)?", rest)
        if commit is None:
            raise RepositoryNotFound("404 Not Found")
        found = self._get(commit[1])
        if commit[2]:
            return self.diffs_between(found.parent, found.sha), 200
        return self.commit_json(found), 200

    def _compare(self, base: str, head: str) -> dict[str, Any]:
        try:
            head_commit, base_commit = self._get(head), self._get(base)
        except RepositoryNotFound:
            raise RepositoryNotFound(REF_NOT_FOUND) from None
        commits = []
        for commit in self._history(head_commit.sha):
            if commit.sha == base_commit.sha:
                break
            commits.append(commit)
        commits.reverse()  # GitLab lists them oldest first
        return {
            "commit": self.commit_json(head_commit),
            "commits": [self.commit_json(c) for c in commits],
            "diffs": self.diffs_between(base_commit.sha, head_commit.sha),
            "compare_timeout": False,
            "compare_same_ref": base_commit.sha == head_commit.sha,
            "web_url": f"{self.web_url}/-/compare/{base_commit.sha}...{head_commit.sha}",
        }
