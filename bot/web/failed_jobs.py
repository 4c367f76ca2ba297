"""`/approvals failed` and `/approvals retry <job>`: admins see the jobs RQ gave up on
(after its retries) and put one back on the queue once the cause is fixed."""

from __future__ import annotations

from rq.job import Job
from rq.registry import FailedJobRegistry

from bot.outside_text import slack_code, slack_mrkdwn
from bot.runtime import Runtime
from workers.queue import make_queue

ONLY_ADMINS = "Only policy admins may see or retry failed jobs."
NONE_FAILED = "No failed jobs: everything the bot queued has run."
NO_SUCH_JOB = "No failed job {job} (see `/approvals failed`)."
RETRIED = "Job {job} ({function}) is queued again."
SHOWN = 15


def failed(rt: Runtime, user_id: str) -> str:
    if not rt.policy.current.policy.is_admin(user_id):
        return ONLY_ADMINS
    queue = make_queue(rt.redis)
    registry = FailedJobRegistry(queue=queue)
    ids = registry.get_job_ids()
    if not ids:
        return NONE_FAILED
    lines = [f"*{len(ids)} failed job(s)* (retry one with `/approvals retry <id>`):"]
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


def retry(rt: Runtime, user_id: str, job_id: str | None) -> str:
    if not rt.policy.current.policy.is_admin(user_id):
        return ONLY_ADMINS
    queue = make_queue(rt.redis)
    registry = FailedJobRegistry(queue=queue)
    if not job_id or job_id not in registry.get_job_ids():
        return NO_SUCH_JOB.format(job=slack_code(job_id))
    job = Job.fetch(job_id, connection=rt.redis, serializer=queue.serializer)
    registry.requeue(job_id)
    return RETRIED.format(job=slack_code(job_id), function=slack_code(job.func_name))
