"""Per-project GitLab webhook secrets (the policy's `webhook_secrets`), and the projects a
webhook may speak for, given the secret token it carried.

A hook's secret token is readable by every maintainer of the project the hook belongs to
(GitLab's "Test" button sends it anywhere). With one secret shared by every hook, any of
them could speak for any project. With `webhook_secrets`, the token a webhook carried
decides its *scope*: the projects of the entries whose secret it is, plus, for the default
`GITLAB_WEBHOOK_SECRET`, the projects no entry covers. Several entries for one project
are a rotation in progress: each of their secrets is accepted.

The values are read when the policy is loaded (and reloaded), kept out of every repr, and
compared in constant time; only the scope (project globs, never a secret) leaves the edge.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator
from pydantic_core import PydanticCustomError

Loc = tuple[str | int, ...]
Text = Annotated[StrictStr, Field(min_length=1)]
KEY = "webhook_secrets"

EXACTLY_ONE = "set exactly one of secret_file and secret_env"
UNREADABLE = "cannot read {path}: {reason}"
NOT_TEXT = "cannot read {path}: not UTF-8 text"
UNSET = "environment variable {name} is not set"
EMPTY = "the secret is empty"


class WebhookSecret(BaseModel):
    """One `webhook_secrets` entry: the secret of the hooks of projects matching `project`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: Text
    # A file holding the secret (relative paths: from the policy file's directory).
    secret_file: Text | None = None
    # An environment variable holding it.
    secret_env: Text | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.secret_file is None) == (self.secret_env is None):
            raise PydanticCustomError("policy", EXACTLY_ONE)
        return self


def project_matches(path: str, pattern: str) -> bool:
    """As the gates match: fnmatch, case-insensitive, `*` also crosses `/`."""
    return fnmatchcase(path.lower(), pattern.lower())


def _digest(value: str) -> bytes:
    # Comparing digests keeps every comparison the same length, whatever the secret's.
    return hashlib.sha256(value.encode()).digest()


@dataclass(frozen=True)
class ProjectSecret:
    project: str
    digest: bytes = field(repr=False)
    value: str = field(repr=False)


@dataclass(frozen=True)
class WebhookKeys:
    """The secrets `webhook_secrets` names, read when the policy was loaded."""

    entries: tuple[ProjectSecret, ...] = ()
    # The files they came from (watched: a changed file reloads the policy).
    files: tuple[Path, ...] = ()

    @property
    def globs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(entry.project for entry in self.entries))

    def values(self) -> list[str]:
        """Every secret value, for log redaction only."""
        return [entry.value for entry in self.entries]

    def covered(self, path: str) -> bool:
        """Does some entry (hence no default secret) cover this project?"""
        return any(project_matches(path, glob) for glob in self.globs)


@dataclass(frozen=True)
class Scope:
    """What a webhook may speak for: the globs of the entries whose secret it carried, and
    (`default`) the projects no entry covers, when it carried GITLAB_WEBHOOK_SECRET."""

    projects: tuple[str, ...] = ()
    default: bool = False

    def allows(self, path: str, keys: WebhookKeys) -> bool:
        if any(project_matches(path, glob) for glob in self.projects):
            return True
        return self.default and not keys.covered(path)

    def describe(self) -> str:
        parts = [f"the webhook secret of {glob}" for glob in self.projects]
        if self.default:
            parts.append("the default GITLAB_WEBHOOK_SECRET")
        return " or ".join(parts) or "no secret"

    def to_json(self) -> dict[str, Any]:
        return {"projects": list(self.projects), "default": self.default}

    @classmethod
    def from_json(cls, data: Any) -> Scope | None:
        """The scope a queued event carries; None when it has none (not from a webhook)."""
        if not isinstance(data, dict):
            return None
        projects = data.get("projects")
        globs = tuple(str(p) for p in projects) if isinstance(projects, list) else ()
        return cls(globs, data.get("default") is True)


def scope_of(token: str | None, defaults: Sequence[str], keys: WebhookKeys) -> Scope | None:
    """The scope of the secret `token` is, or None when it is none of them.

    Every configured secret is compared (in constant time, digests of equal length) with
    no early exit: the time taken says how many secrets there are, never which matched.
    """
    if not token:
        return None
    received = _digest(token)
    default = False
    for secret in defaults:
        default |= hmac.compare_digest(received, _digest(secret))
    projects: list[str] = []
    for entry in keys.entries:
        if hmac.compare_digest(received, entry.digest):
            projects.append(entry.project)
    if not default and not projects:
        return None
    return Scope(tuple(dict.fromkeys(projects)), default)


def read_secrets(
    raw: Any, base: Path, environ: Mapping[str, str] | None = None
) -> tuple[WebhookKeys, list[tuple[Loc, str]]]:
    """Read the secrets of the raw `webhook_secrets` list: (keys, [(location, problem)]).

    Entries that are malformed are left to the schema's own errors.
    """
    env = os.environ if environ is None else environ
    entries: list[ProjectSecret] = []
    files: list[Path] = []
    problems: list[tuple[Loc, str]] = []
    for index, item in enumerate(raw if isinstance(raw, list) else []):
        source = _source(item)
        if source is None:
            continue
        project, kind, name = source
        where: Loc = (KEY, index, kind)
        if kind == "secret_file":
            path = Path(name) if Path(name).is_absolute() else base / name
            files.append(path)
            value, problem = _read_file(path)
        else:
            value, problem = _read_env(env, name)
        if problem is not None:
            problems.append((where, problem))
        elif value is not None:
            entries.append(ProjectSecret(project, _digest(value), value))
    return WebhookKeys(tuple(entries), tuple(files)), problems


def _source(item: Any) -> tuple[str, str, str] | None:
    """(project, "secret_file" or "secret_env", its value) of a well-formed entry."""
    if not isinstance(item, dict) or not isinstance(item.get("project"), str):
        return None
    given = [
        (kind, item[kind])
        for kind in ("secret_file", "secret_env")
        if isinstance(item.get(kind), str) and item[kind]
    ]
    if len(given) != 1 or not item["project"]:
        return None
    return item["project"], given[0][0], given[0][1]


def _read_file(path: Path) -> tuple[str | None, str | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return None, UNREADABLE.format(path=path, reason=reason)
    except UnicodeDecodeError:
        return None, NOT_TEXT.format(path=path)
    return _non_empty(text.rstrip("\r\n"))


def _read_env(env: Mapping[str, str], name: str) -> tuple[str | None, str | None]:
    if name not in env:
        return None, UNSET.format(name=name)
    return _non_empty(env[name])


def _non_empty(value: str) -> tuple[str | None, str | None]:
    return (None, EMPTY) if not value.strip() else (value, None)
