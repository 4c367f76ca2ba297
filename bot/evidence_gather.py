"""Gather a request's evidence from GitLab. Every piece is fetched on its own: one that
fails (timeout, 5xx, 404) is named in `missing` and the request is posted anyway."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.evidence import Commit, Evidence, earlier_jobs, flags_on_changes
from bot.gitlab import GitLabError
from bot.gitlab_reads import GitLabReads
from bot.policy import EvidenceSettings
from bot.risk import RiskFlag, ScanConfig, is_migration, scan_text

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_COMMITS_SHOWN = 10
MAX_MIGRATIONS_READ = 20
# Past this, the rest is reported missing rather than delaying the request further.
BUDGET_S = 20.0

UNAVAILABLE = "{what}: unavailable ({error})"
TOO_MANY_MIGRATIONS = "migrations: only the first {n} changed migration files were checked"
OUT_OF_TIME = "{what}: skipped, evidence took longer than {budget:.0f}s"


@dataclass(frozen=True)
class Target:
    """The change a request is about."""

    project_id: int
    pipeline_id: int
    job_id: int
    sha: str
    project_url: str | None = None


@dataclass
class _Gathering:
    reads: GitLabReads
    target: Target
    settings: EvidenceSettings
    deadline: float
    missing: list[str] = field(default_factory=list)
    unchecked: bool = False

    def fetch(self, what: str, call: Callable[[], T]) -> T | None:
        return self.attempt(what, call)[1]

    def attempt(self, what: str, call: Callable[[], T]) -> tuple[bool, T | None]:
        """(True, answer), or (False, None) with the reason added to `missing`."""
        if time.monotonic() > self.deadline:
            self.missing.append(OUT_OF_TIME.format(what=what, budget=BUDGET_S))
            return False, None
        try:
            return True, call()
        except GitLabError as exc:
            log.info("evidence %s unavailable: %s", what, exc)
            self.missing.append(UNAVAILABLE.format(what=what, error=exc))
            return False, None


def gather(
    reads: GitLabReads,
    target: Target,
    settings: EvidenceSettings,
    budget_s: float = BUDGET_S,
    rollback_jobs: frozenset[str] = frozenset({"rollback:production"}),
) -> Evidence:
    """Commits since the last deployment, earlier jobs and migration risk flags.

    Whatever cannot be established counts as risky: without the last deployment only the
    head commit can be scanned, so earlier commits' migrations are unchecked; without the
    job list, earlier jobs may have failed.
    """
    run = _Gathering(reads, target, settings, time.monotonic() + budget_s)
    known, base = run.attempt(
        f"last {settings.environment} deployment",
        lambda: reads.last_deployment(target.project_id, settings.environment, rollback_jobs),
    )
    run.unchecked = not known
    base_sha = base.sha if base is not None else None
    commits, diffs, compare_url = _changes(run, base_sha)
    jobs = run.fetch(
        "earlier jobs", lambda: reads.pipeline_jobs(target.project_id, target.pipeline_id)
    )
    migrations, flags = _migration_flags(run, diffs)
    return Evidence(
        environment=settings.environment,
        base_sha=base_sha,
        base_deployed_at=base.created_at if base is not None else None,
        compare_url=compare_url,
        commits=tuple(commits[-MAX_COMMITS_SHOWN:]),
        commits_total=len(commits),
        jobs=tuple(earlier_jobs(jobs, target.job_id)) if jobs is not None else (),
        migrations=tuple(migrations),
        flags=tuple(flags),
        migrations_unchecked=run.unchecked,
        jobs_unchecked=jobs is None,
        missing=tuple(run.missing),
    )


def _changes(
    run: _Gathering, base_sha: str | None
) -> tuple[list[Commit], list[dict[str, Any]] | None, str | None]:
    """The commits and file diffs since `base_sha` (or of the commit alone, without one)."""
    target = run.target
    if base_sha is None or base_sha == target.sha:
        commit = run.fetch("commit", lambda: run.reads.commit(target.project_id, target.sha))
        diffs = run.fetch(
            "changed files", lambda: run.reads.commit_diff(target.project_id, target.sha)
        )
        commits = [_commit(commit)] if commit is not None else []
        url = f"{target.project_url}/-/commit/{target.sha}" if target.project_url else None
        return commits, diffs, url
    compared = run.fetch(
        f"changes since {base_sha[:8]}",
        lambda: run.reads.compare(target.project_id, base_sha, target.sha),
    )
    if compared is None:
        return [], None, None
    url = compared.get("web_url")
    if not url and target.project_url:
        url = f"{target.project_url}/-/compare/{base_sha}...{target.sha}"
    commits = [_commit(c) for c in compared.get("commits") or []]
    return commits, list(compared.get("diffs") or []), url


def _commit(raw: dict[str, Any]) -> Commit:
    return Commit(
        sha=str(raw.get("id") or raw.get("short_id") or ""),
        title=raw.get("title"),
        author_name=raw.get("author_name"),
        author_email=raw.get("author_email"),
        web_url=raw.get("web_url"),
    )


def _migration_flags(
    run: _Gathering, diffs: list[dict[str, Any]] | None
) -> tuple[list[str], list[RiskFlag]]:
    """Scan the changed migration files at the new commit; keep what the change added."""
    if diffs is None:
        run.unchecked = True  # unknown changes may hold a risky migration
        return [], []
    config = ScanConfig(run.settings.migration_paths, run.settings.financial_tables)
    changed = [
        d
        for d in diffs
        if not d.get("deleted_file") and is_migration(str(d.get("new_path") or ""), config)
    ]
    if len(changed) > MAX_MIGRATIONS_READ:
        run.missing.append(TOO_MANY_MIGRATIONS.format(n=MAX_MIGRATIONS_READ))
        run.unchecked = True
    paths: list[str] = []
    flags: list[RiskFlag] = []
    for diff in changed[:MAX_MIGRATIONS_READ]:
        path = str(diff["new_path"])
        text = run.fetch(
            f"migration {path}",
            functools.partial(run.reads.file_at, run.target.project_id, path, run.target.sha),
        )
        if text is None:
            run.unchecked = True
            continue
        paths.append(path)
        found = scan_text(path, text, config)
        flags.extend(
            flags_on_changes(found, str(diff.get("diff") or ""), bool(diff.get("new_file")))
        )
    return paths, flags
