"""Block Kit for a request's evidence: changes since the last deployment, earlier jobs,
migration risk flags, why extra approvals are needed, and what could not be gathered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.blockkit_fit import clip_mrkdwn, fit_items
from bot.blockkit_limits import SECTION_TEXT_LIMIT
from bot.evidence import Evidence, StageJob
from bot.outside_text import mrkdwn_object, slack_code, slack_link, slack_mrkdwn

MAX_FLAGS_SHOWN = 10
JOB_ICONS = {"success": ":white_check_mark:", "failed": ":x:", "canceled": ":no_entry_sign:"}

CHANGES_HEADING = "*Changes since the last {environment} deployment* ({base})"
FIRST_DEPLOYMENT = "*Changes* (no earlier {environment} deployment)"
MORE_COMMITS = "…and {n} more commits"
JOBS_HEADING = "*Earlier jobs*"
MORE_JOBS = "…and {n} more jobs"
MORE_REASONS = "…and {n} more"
NO_FLAGS = ":white_check_mark: *Migrations*: {n} changed, no risky statements found"
FLAGS_HEADING = ":rotating_light: *Migration risk* ({n} found)"
MORE_FLAGS = "…and {n} more (see `approval-bot scan-migrations`)"
UNCHECKED = ":warning: Some changed migrations could not be checked: treated as risky."
EXTRA_APPROVAL = ":warning: *Extra approval required*: {reasons}"
NOT_AVAILABLE = ":grey_question: Not available: {what}"


def _section(block_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "section",
        "block_id": block_id,
        "text": mrkdwn_object(clip_mrkdwn(text, SECTION_TEXT_LIMIT)),
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
    items = []
    for commit in evidence.commits:
        title = slack_mrkdwn(commit.title or "")
        author = slack_mrkdwn(commit.author_name or commit.author_email or "unknown")
        sha = slack_link(commit.web_url, slack_code(commit.sha[:8]), label_is_mrkdwn=True)
        items.append(f"• {sha} {title} — {author}")
    diff = slack_link(evidence.compare_url, "Full diff")
    # The heading and the diff link always show; the commits get the room between them.
    diff = clip_mrkdwn(diff, 1000) if diff.startswith("<") else ""  # only a usable URL
    heading = clip_mrkdwn(heading, 500)
    earlier = max(evidence.commits_total - len(evidence.commits), 0)
    budget = SECTION_TEXT_LIMIT - len(heading) - len(diff) - 2
    shown = fit_items(items, budget, hidden=earlier, more=MORE_COMMITS)
    return _section("changes", "\n".join(part for part in (heading, shown, diff) if part))


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
    budget = SECTION_TEXT_LIMIT - len(JOBS_HEADING) - 1
    text = fit_items(
        [_job_text(job) for job in evidence.jobs], budget, separator="  ", more=MORE_JOBS
    )
    return _section("jobs", f"{JOBS_HEADING}\n{text}")


def _flags(evidence: Evidence) -> dict[str, Any] | None:
    if not evidence.flags:
        if evidence.migrations and not evidence.migrations_unchecked:
            return _section("risk", NO_FLAGS.format(n=len(evidence.migrations)))
        return _section("risk", UNCHECKED) if evidence.migrations_unchecked else None
    heading = FLAGS_HEADING.format(n=len(evidence.flags))
    items = [
        f"• {slack_code(f'{flag.path}:{flag.line}')} {slack_mrkdwn(flag.message)}"
        for flag in evidence.flags[:MAX_FLAGS_SHOWN]
    ]
    tail = UNCHECKED if evidence.migrations_unchecked else ""
    budget = SECTION_TEXT_LIMIT - len(heading) - len(tail) - 2
    hidden = max(len(evidence.flags) - MAX_FLAGS_SHOWN, 0)
    shown = fit_items(items, budget, hidden=hidden, more=MORE_FLAGS)
    return _section("risk", "\n".join(part for part in (heading, shown, tail) if part))


def evidence_blocks(evidence: Evidence | None, reasons: Sequence[str]) -> list[dict[str, Any]]:
    """The evidence sections of a request message (none for a request without evidence)."""
    blocks: list[dict[str, Any]] = []
    if reasons:
        budget = SECTION_TEXT_LIMIT - len(EXTRA_APPROVAL)
        items = [slack_mrkdwn(reason) for reason in reasons]
        shown = fit_items(items, budget, separator="; ", more=MORE_REASONS)
        blocks.append(_section("extra", EXTRA_APPROVAL.format(reasons=shown)))
    if evidence is None:
        return blocks
    for block in (_flags(evidence), _changes(evidence), _jobs(evidence)):
        if block is not None:
            blocks.append(block)
    if evidence.missing:
        items = [slack_mrkdwn(what) for what in evidence.missing]
        budget = SECTION_TEXT_LIMIT - len(NOT_AVAILABLE)
        what = fit_items(items, budget, separator="; ", more=MORE_REASONS)
        blocks.append(
            {
                "type": "context",
                "block_id": "missing",
                "elements": [mrkdwn_object(NOT_AVAILABLE.format(what=what))],
            }
        )
    return blocks
