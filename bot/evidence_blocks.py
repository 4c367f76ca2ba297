"""Block Kit for a request's evidence: changes since the last deployment, earlier jobs,
migration risk flags, why extra approvals are needed, and what could not be gathered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.evidence import Evidence, StageJob
from bot.outside_text import mrkdwn_object, slack_code, slack_link, slack_mrkdwn

MAX_SECTION_CHARS = 2900  # Slack refuses section text over 3000 characters
MAX_FLAGS_SHOWN = 10
JOB_ICONS = {"success": ":white_check_mark:", "failed": ":x:", "canceled": ":no_entry_sign:"}

CHANGES_HEADING = "*Changes since the last {environment} deployment* ({base})"
FIRST_DEPLOYMENT = "*Changes* (no earlier {environment} deployment)"
MORE_COMMITS = "…and {n} earlier commits"
JOBS_HEADING = "*Earlier jobs*"
NO_FLAGS = ":white_check_mark: *Migrations*: {n} changed, no risky statements found"
FLAGS_HEADING = ":rotating_light: *Migration risk* ({n} found)"
MORE_FLAGS = "…and {n} more (see `approval-bot scan-migrations`)"
UNCHECKED = ":warning: Some changed migrations could not be checked: treated as risky."
EXTRA_APPROVAL = ":warning: *Extra approval required*: {reasons}"
NOT_AVAILABLE = ":grey_question: Not available: {what}"


def _clip(text: str, limit: int = MAX_SECTION_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(block_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "section",
        "block_id": block_id,
        "text": mrkdwn_object(_clip(text)),
    }


def _changes(evidence: Evidence) -> dict[str, Any] | None:
    if not evidence.commits:
        return None
    environment = slack_mrkdwn(evidence.environment)
    if evidence.base_sha:
        heading = CHANGES_HEADING.format(
            environment=environment, base=slack_code(evidence.base_sha[:8])
        )
    else:
        heading = FIRST_DEPLOYMENT.format(environment=environment)
    lines = [heading]
    earlier = evidence.commits_total - len(evidence.commits)
    if earlier > 0:
        lines.append(MORE_COMMITS.format(n=earlier))
    for commit in evidence.commits:
        title = slack_mrkdwn(commit.title or "")
        author = slack_mrkdwn(commit.author_name or commit.author_email or "unknown")
        sha = slack_link(commit.web_url, slack_code(commit.sha[:8]), label_is_mrkdwn=True)
        lines.append(f"• {sha} {title} — {author}")
    diff = slack_link(evidence.compare_url, "Full diff")
    if diff.startswith("<"):  # only when the URL is usable
        lines.append(diff)
    return _section("changes", "\n".join(lines))


def _job_text(job: StageJob) -> str:
    icon = JOB_ICONS.get(job.status, ":hourglass_flowing_sand:")
    shown = slack_link(job.web_url, job.name)
    if job.failed:
        allowed = " (allowed to fail)" if job.allow_failure else ""
        return f"{icon} *{shown}: failed{allowed}*"
    return f"{icon} {shown}"


def _jobs(evidence: Evidence) -> dict[str, Any] | None:
    if not evidence.jobs:
        return None
    text = "  ".join(_job_text(job) for job in evidence.jobs)
    return _section("jobs", f"{JOBS_HEADING}\n{text}")


def _flags(evidence: Evidence) -> dict[str, Any] | None:
    if not evidence.flags:
        if evidence.migrations and not evidence.migrations_unchecked:
            return _section("risk", NO_FLAGS.format(n=len(evidence.migrations)))
        return _section("risk", UNCHECKED) if evidence.migrations_unchecked else None
    lines = [FLAGS_HEADING.format(n=len(evidence.flags))]
    for flag in evidence.flags[:MAX_FLAGS_SHOWN]:
        where = slack_code(f"{flag.path}:{flag.line}")
        lines.append(f"• {where} {slack_mrkdwn(flag.message)}")
    if len(evidence.flags) > MAX_FLAGS_SHOWN:
        lines.append(MORE_FLAGS.format(n=len(evidence.flags) - MAX_FLAGS_SHOWN))
    if evidence.migrations_unchecked:
        lines.append(UNCHECKED)
    return _section("risk", "\n".join(lines))


def evidence_blocks(evidence: Evidence | None, reasons: Sequence[str]) -> list[dict[str, Any]]:
    """The evidence sections of a request message (none for a request without evidence)."""
    blocks: list[dict[str, Any]] = []
    if reasons:
        shown = "; ".join(slack_mrkdwn(reason) for reason in reasons)
        blocks.append(_section("extra", EXTRA_APPROVAL.format(reasons=shown)))
    if evidence is None:
        return blocks
    for block in (_flags(evidence), _changes(evidence), _jobs(evidence)):
        if block is not None:
            blocks.append(block)
    if evidence.missing:
        text = NOT_AVAILABLE.format(what="; ".join(evidence.missing))
        blocks.append(
            {
                "type": "context",
                "block_id": "missing",
                "elements": [mrkdwn_object(_clip(slack_mrkdwn(text, limit=None)))],
            }
        )
    return blocks
