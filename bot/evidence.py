"""The evidence an approver needs, as plain data: what changed since the last deployment,
how the pipeline's earlier jobs went, and the risky statements in changed migrations.

Gathered by the worker (bot.evidence_gather) when a request opens, stored with the request
as JSON, shown in the Slack message and recorded in the sign-off. No I/O here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from bot.policy import Gate, Policy
from bot.risk import RiskFlag

# Statuses of an earlier job an approver should look at.
FAILED_STATUSES = frozenset({"failed"})
# Statuses of jobs that have run (or are running): the stages before a blocking manual gate.
RAN_STATUSES = frozenset({"success", "failed", "canceled", "running", "pending"})
MIGRATIONS_UNCHECKED = "changed migrations could not all be checked: treated as risky"
JOBS_UNCHECKED = "earlier jobs could not be read: treated as failed"
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Commit:
    sha: str
    title: str | None = None
    author_name: str | None = None
    author_email: str | None = None
    web_url: str | None = None


@dataclass(frozen=True)
class StageJob:
    name: str
    stage: str | None
    status: str
    allow_failure: bool = False
    web_url: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES


@dataclass(frozen=True)
class Evidence:
    """Everything gathered for one request; `missing` says what could not be, and why."""

    environment: str
    base_sha: str | None = None
    base_deployed_at: str | None = None
    compare_url: str | None = None
    commits: tuple[Commit, ...] = ()
    commits_total: int = 0
    jobs: tuple[StageJob, ...] = ()
    migrations: tuple[str, ...] = ()
    flags: tuple[RiskFlag, ...] = ()
    # True when changed migrations could not all be read: treated as risky (fail safe).
    migrations_unchecked: bool = False
    # True when the pipeline's jobs could not be read: an earlier one may have failed.
    jobs_unchecked: bool = False
    missing: tuple[str, ...] = field(default_factory=tuple)

    @property
    def failed_jobs(self) -> tuple[StageJob, ...]:
        return tuple(job for job in self.jobs if job.failed)

    def facts(self) -> dict[str, bool]:
        """The risk facts a gate's `risk_rules` are matched against."""
        return {
            "migration_risk": bool(self.flags) or self.migrations_unchecked,
            "failed_jobs": bool(self.failed_jobs) or self.jobs_unchecked,
        }

    def flag_lines(self) -> list[str]:
        """The flags as the sign-off records them, and why risk was assumed without them."""
        lines = [str(flag) for flag in self.flags]
        if self.migrations_unchecked:
            lines.append(MIGRATIONS_UNCHECKED)
        if self.jobs_unchecked:
            lines.append(JOBS_UNCHECKED)
        return lines

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> Evidence | None:
        if not text:
            return None
        data: dict[str, Any] = json.loads(text)
        return cls(
            environment=data["environment"],
            base_sha=data.get("base_sha"),
            base_deployed_at=data.get("base_deployed_at"),
            compare_url=data.get("compare_url"),
            commits=tuple(Commit(**c) for c in data.get("commits", ())),
            commits_total=int(data.get("commits_total", 0)),
            jobs=tuple(StageJob(**j) for j in data.get("jobs", ())),
            migrations=tuple(data.get("migrations", ())),
            flags=tuple(RiskFlag(**f) for f in data.get("flags", ())),
            migrations_unchecked=bool(data.get("migrations_unchecked", False)),
            jobs_unchecked=bool(data.get("jobs_unchecked", False)),
            missing=tuple(data.get("missing", ())),
        )


def facts_of(evidence_json: str | None) -> dict[str, bool]:
    """Risk facts of a stored request; a request opened before evidence existed has none."""
    evidence = Evidence.from_json(evidence_json)
    return evidence.facts() if evidence is not None else {}


def added_lines(diff: str) -> set[int] | None:
    """Line numbers (in the new file) that a unified diff adds; None if it shows no hunks
    (GitLab leaves `diff` empty for files too large to show)."""
    lines: set[int] = set()
    current: int | None = None
    for line in diff.splitlines():
        hunk = _HUNK.match(line)
        if hunk:
            current = int(hunk[1])
        elif current is None or line.startswith("\\"):
            continue
        elif line.startswith("+"):
            lines.add(current)
            current += 1
        elif not line.startswith("-"):
            current += 1
    return lines if current is not None else None


def flags_on_changes(flags: Iterable[RiskFlag], diff: str, new_file: bool) -> list[RiskFlag]:
    """The flags a change introduced: all of a new file's, else those on added lines.

    A statement spanning lines is flagged on its first line; when that line was not added
    but the diff touched the file in an unreadable way, every flag is kept (fail safe).
    """
    kept = list(flags)
    if new_file:
        return kept
    added = added_lines(diff)
    if added is None:
        return kept
    return [flag for flag in kept if flag.line in added]


def earlier_jobs(jobs: Iterable[Mapping[str, Any]], gate_job_id: int) -> list[StageJob]:
    """Jobs that ran before the gate: a blocking manual gate holds every later stage, so
    anything that has run (or runs) belongs to an earlier stage."""
    return [
        StageJob(
            name=str(job.get("name")),
            stage=job.get("stage"),
            status=str(job.get("status")),
            allow_failure=bool(job.get("allow_failure")),
            web_url=job.get("web_url"),
        )
        for job in sorted(jobs, key=lambda j: int(j.get("id") or 0))
        if job.get("id") != gate_job_id and job.get("status") in RAN_STATUSES
    ]


class _GatedRequest(Protocol):
    project_path: str
    job_name: str
    evidence: str | None


def gate_for_request(policy: Policy, request: _GatedRequest) -> Gate | None:
    """The gate of a request as its change calls for: the base rules plus the risk rules
    its evidence meets (a request is judged by the facts it was opened with)."""
    gate = policy.gate_for(request.project_path, request.job_name)
    return gate.for_change(facts_of(request.evidence)) if gate is not None else None


def risk_reasons(gate: Gate, facts: Mapping[str, bool]) -> list[str]:
    """Why a gate needs more than its base rules for this change, one line per risk rule."""
    return [
        f"{rule.when.describe()}: also needs "
        + ", ".join(f"{r.count} {r.role}" for r in rule.require)
        for rule in gate.applying_risk_rules(facts)
    ]
