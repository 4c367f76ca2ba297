"""`/approvals failed` and `/approvals retry <job>`: admins see the jobs RQ gave up on
(after its retries) and put one back on the queue once the cause is fixed; `/approvals retry
<request or pipeline id>` plays again a gate GitLab refused to play."""

from __future__ import annotations

from contextlib import suppress

from redis.exceptions import RedisError
from rq.job import Job
from rq.registry import FailedJobRegistry

from bot.outside_text import slack_code, slack_mrkdwn
from bot.runtime import Runtime
from bot.store.play_failures import failed_plays, find_failed_play, reopen_for_retry
from workers.queue import RETRY_PLAY, enqueue, make_queue

ONLY_ADMINS = "Only policy admins may see or retry failed jobs."
NONE_FAILED = "No failed jobs: everything the bot queued has run."
NO_SUCH_JOB = (
    "No failed job or refused play {job} (see `/approvals failed`; a play is named by its "
    "request or pipeline id)."
)
RETRIED = "Job {job} ({function}) is queued again."
PLAY_RETRIED = (
    "Playing the gate of {project} pipeline #{pipeline} again (request {request}); "
    "its message will say how it went."
)
REFUSED_PLAYS = (
    "*Gates GitLab refused to play* (retry one with `/approvals retry <request or pipeline "
    "id>` once GitLab allows it):"
)
SHOWN = 15


def failed(rt: Runtime, user_id: str) -> str:
    if not rt.policy.current.policy.is_admin(user_id):
        return ONLY_ADMINS
    plays = refused_plays(rt)
    queue = make_queue(rt.redis)
    registry = FailedJobRegistry(queue=queue)
    ids = registry.get_job_ids()
    if not ids:
        return "\n".join(plays) if plays else NONE_FAILED
    lines = [*plays, f"*{len(ids)} failed job(s)* (retry one with `/approvals retry <id>`):"]
    for job in Job.fetch_many(ids[:SHOWN], connection=rt.redis, serializer=queue.serializer):
        if job is None:
            continue
        result = job.latest_result()
        text = result.exc_string if result is not None and result.exc_string else ""
        error = text.strip().splitlines()[-1:] or ["?"]
        lines.append(
            f"• {slack_code(job.id)} {slack_code(job.func_name)}: {slack_mrkdwn(error[0][:200])}"
        )
    if len(ids) > SHOWN:
        lines.append(f"…and {len(ids) - SHOWN} more")
    return "\n".join(lines)


def refused_plays(rt: Runtime) -> list[str]:
    """Gates GitLab refused to play, newest first (none: an empty list)."""
    rows = failed_plays(rt.db, SHOWN)
    if not rows:
        return []
    lines = [REFUSED_PLAYS]
    for row in rows:
        lines.append(
            f"• {slack_code(row.id)} {slack_mrkdwn(row.project_path)} pipeline #{row.pipeline_id}"
        )
    return lines


def retry(rt: Runtime, user_id: str, job_id: str | None) -> str:
    if not rt.policy.current.policy.is_admin(user_id):
        return ONLY_ADMINS
    queue = make_queue(rt.redis)
    registry = FailedJobRegistry(queue=queue)
    if not job_id or job_id not in registry.get_job_ids():
        return retry_play(rt, job_id) or NO_SUCH_JOB.format(job=slack_code(job_id))
    job = Job.fetch(job_id, connection=rt.redis, serializer=queue.serializer)
    registry.requeue(job_id)
    return RETRIED.format(job=slack_code(job_id), function=slack_code(job.func_name))


def retry_play(rt: Runtime, request_or_pipeline: str | None) -> str | None:
    """Reopen a refused play for the exactly-once play path (None: no such refused play)."""
    found = find_failed_play(rt.db, request_or_pipeline) if request_or_pipeline else None
    reopened = reopen_for_retry(rt.db, found.id) if found is not None else None
    if reopened is None:
        return None
    with suppress(RedisError):  # the sweep plays approved requests nobody is playing
        enqueue(make_queue(rt.redis), RETRY_PLAY, {"request_id": reopened.id})
    return PLAY_RETRIED.format(
        project=slack_mrkdwn(reopened.project_path),
        pipeline=reopened.pipeline_id,
        request=slack_code(reopened.id),
    )
