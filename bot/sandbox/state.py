"""What the sandbox page shows, read from the simulators and the ledger, as HTML fragments.

The page polls this every second; each fragment is escaped HTML (Block Kit through
`bot.sandbox.blockkit`), so the script only swaps fragments that changed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from bot import ledger
from bot.sandbox.blockkit import render_message, render_view
from bot.sandbox.driver import Click, Driver, Started
from bot.sandbox.mrkdwn import mrkdwn
from bot.sandbox.people import CHANNELS, display_name
from bot.store.db import Database

BOT_NAME = "approval-bot"
ONLY_YOU = "Only visible to {name}"
NO_MESSAGES = "No approval requests yet: start a pipeline."
NO_PIPELINES = "No pipelines yet."
DEPLOY_PASSES = "Deploy: smoke test passes"
DEPLOY_FAILS = "Deploy: smoke test fails"
NO_LEDGER = "The ledger is empty: approve or reject a request."
LEDGER_UNREADABLE = "The ledger cannot be read right now: {error}"
UNEXPECTED = "{service} answered {count} call(s) it does not simulate: {calls}"
MESSAGE_TIME = "%H:%M:%S"
LEDGER_TIME = "%Y-%m-%d %H:%M:%S UTC"


@dataclass(frozen=True)
class _Post:
    channel: str
    ts: str
    thread_ts: str | None


def snapshot(driver: Driver, db: Database) -> dict[str, Any]:
    return {
        "channels": channels(driver),
        "gitlab": gitlab_html(driver),
        "ledger": ledger_html(db),
        "modals": modals(driver),
        "problems": problems(driver),
    }


# --- Slack ------------------------------------------------------------------------------


def channels(driver: Driver) -> list[dict[str, Any]]:
    """Each channel's top-level messages, oldest first, with thread replies and ephemerals."""
    posts = [
        _Post(str(e["channel"]), str(e["ts"]), e.get("thread_ts"))
        for e in list(driver.slack.message_log)
        if e.get("action") == "post"
    ]
    replies: dict[tuple[str, str], list[_Post]] = defaultdict(list)
    for post in posts:
        if post.thread_ts:
            replies[(post.channel, str(post.thread_ts))].append(post)
    answers = _answers_by_message(driver)
    by_channel: dict[str, list[dict[str, str]]] = defaultdict(list)
    for post in sorted(posts, key=lambda p: p.ts):
        if post.thread_ts:
            continue
        html = _message_html(driver, post, replies[(post.channel, post.ts)], answers)
        by_channel[post.channel].append({"key": f"{post.channel}:{post.ts}", "html": html})
    for ephemeral in list(driver.slack.ephemerals):
        html = _ephemeral_html(str(ephemeral.get("user")), str(ephemeral.get("text") or ""))
        by_channel[str(ephemeral["channel"])].append(
            {"key": f"{ephemeral['channel']}:eph:{ephemeral['message_ts']}", "html": html}
        )
    return [
        {"id": channel, "name": _channel_name(channel), "messages": messages}
        for channel, messages in sorted(by_channel.items(), key=lambda kv: _channel_order(kv[0]))
    ]


def _channel_name(channel: str) -> str:
    if channel in CHANNELS:
        return f"#{CHANNELS[channel]}"
    if channel.startswith("D"):
        return f"DM to {display_name('U' + channel[1:])}"
    return f"#{channel}"


def _channel_order(channel: str) -> tuple[int, str]:
    known = list(CHANNELS)
    return (known.index(channel), channel) if channel in known else (len(known), channel)


def _answers_by_message(driver: Driver) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """response_url answers, filed under the message whose button was clicked."""
    answers: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for response in list(driver.slack.responses):
        click: Click | None = driver.clicks.get(response.name)
        if click is None or not isinstance(response.payload, dict):
            continue
        text = str(response.payload.get("text") or "")
        answers[(click.channel, click.message_ts)].append((click.user_id, text))
    return answers


def _message_html(
    driver: Driver,
    post: _Post,
    thread: Iterable[_Post],
    answers: dict[tuple[str, str], list[tuple[str, str]]],
) -> str:
    current = driver.slack.messages.get((post.channel, post.ts), {})
    body = render_message(current.get("text"), current.get("blocks"), display_name)
    parts = [
        f'<div class="msg" data-channel="{escape(post.channel)}" data-ts="{escape(post.ts)}">',
        f'<div class="msg-head"><b>{BOT_NAME}</b> <span class="app-tag">APP</span>'
        f" {_time_html(post.ts)}</div>",
        f'<div class="msg-body">{body}</div>',
    ]
    for user_id, text in answers.get((post.channel, post.ts), []):
        parts.append(_ephemeral_html(user_id, text))
    replies = list(thread)
    if replies:
        count = f"{len(replies)} {'reply' if len(replies) == 1 else 'replies'}"
        parts.append(f'<div class="thread"><div class="thread-head">{count}</div>')
        for reply in replies:
            message = driver.slack.messages.get((reply.channel, reply.ts), {})
            html = render_message(message.get("text"), message.get("blocks"), display_name)
            # Its own channel and ts: a click on a reply's button names the reply, as in Slack.
            where = f'data-channel="{escape(reply.channel)}" data-ts="{escape(reply.ts)}"'
            parts.append(f'<div class="reply" {where}><b>{BOT_NAME}</b> {html}</div>')
            for user_id, text in answers.get((reply.channel, reply.ts), []):
                parts.append(_ephemeral_html(user_id, text))
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)


def _time_html(ts: str) -> str:
    """A message's ts as Slack shows it: the local time it was posted (the ts in a tooltip)."""
    try:
        posted = datetime.fromtimestamp(float(ts)).astimezone()
    except (ValueError, OverflowError, OSError):
        return f'<span class="ts">{escape(ts)}</span>'
    return (
        f'<time class="ts" datetime="{posted.isoformat(timespec="seconds")}" '
        f'title="ts {escape(ts)}">{posted.strftime(MESSAGE_TIME)}</time>'
    )


def _ephemeral_html(user_id: str, text: str) -> str:
    who = escape(ONLY_YOU.format(name=display_name(user_id)))
    return (
        f'<div class="ephemeral" data-user="{escape(user_id)}"><div class="eph-head">'
        f"\U0001f441 {who}</div>{mrkdwn(text, display_name)}</div>"
    )


def modals(driver: Driver) -> list[dict[str, str]]:
    """Views the bot opened (views.open) and the page has not submitted or closed yet."""
    shown = []
    for opened in list(driver.slack.views):
        if opened["id"] in driver.closed_views:
            continue
        user_id = driver.modal_users.get(str(opened.get("trigger_id")), "")
        shown.append(
            {
                "view_id": str(opened["id"]),
                "user": user_id,
                "user_name": display_name(user_id),
                "html": render_view(opened["view"], display_name),
            }
        )
    return shown


# --- GitLab -----------------------------------------------------------------------------


def gitlab_html(driver: Driver) -> str:
    if not driver.pipelines:
        return f'<p class="empty">{NO_PIPELINES}</p>'
    rows = []
    for started in reversed(driver.pipelines):
        pipeline = driver.gitlab.pipelines.get(started.pipeline_id, {})
        jobs = sorted(
            (
                j
                for j in list(driver.gitlab.jobs.values())
                if j["pipeline_id"] == started.pipeline_id
            ),
            key=lambda j: j["id"],
        )
        cells = "".join(_job_html(driver, job) for job in jobs) + _deploy_buttons(driver, started)
        rows.append(
            f'<tr data-pipeline="{started.pipeline_id}"><td>{escape(started.project)}'
            f"<br><small>#{started.pipeline_id} · by {escape(started.triggered_by)}</small></td>"
            f'<td class="status-{escape(str(pipeline.get("status")))}">'
            f"{escape(str(pipeline.get('status', '?')))}</td><td>{cells}</td></tr>"
        )
    return (
        '<table class="gitlab"><tr><th>pipeline</th><th>status</th><th>jobs</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def _deploy_buttons(driver: Driver, started: Started) -> str:
    """Once the gate is played: let the pipeline deploy, with the smoke test passing or not."""
    if started.deployed or driver.gitlab.play_count(started.gate_job_id) == 0:
        return ""
    pipeline = started.pipeline_id
    return "".join(
        f'<button type="button" class="deploy" data-pipeline="{pipeline}" data-smoke="{smoke}">'
        f"{label}</button>"
        for smoke, label in (("passed", DEPLOY_PASSES), ("failed", DEPLOY_FAILS))
    )


def _job_html(driver: Driver, job: dict[str, Any]) -> str:
    plays = driver.gitlab.play_count(job["id"])
    played = f" · played {plays} time(s)" if plays else ""
    status = escape(str(job["status"]))
    return (
        f'<span class="job status-{status}" data-job="{escape(str(job["name"]))}">'
        f"{escape(str(job['name']))}: <b>{status}</b>{played}</span>"
    )


def problems(driver: Driver) -> list[str]:
    found = []
    for service, calls in (
        ("GitLab", [f"{c.method} {c.path}" for c in list(driver.gitlab.unexpected)]),
        ("Slack", [c.method for c in list(driver.slack.unexpected)]),
    ):
        if calls:
            shown = ", ".join(calls[-3:])
            found.append(UNEXPECTED.format(service=service, count=len(calls), calls=shown))
    return found


# --- ledger -----------------------------------------------------------------------------


def ledger_html(db: Database) -> str:
    try:
        with db.sessions() as session:
            records = list(ledger.records(session))
    except Exception as exc:  # the schema is being created, or SQLite is busy: say so
        return f'<p class="empty">{escape(LEDGER_UNREADABLE.format(error=type(exc).__name__))}</p>'
    if not records:
        return f'<p class="empty">{NO_LEDGER}</p>'
    rows = "".join(_ledger_row(r) for r in reversed(records))
    return (
        '<table class="ledger"><tr><th>#</th><th>record · hash</th><th>project · pipeline</th>'
        "<th>who</th></tr>" + rows + "</table>"
    )


def _ledger_time(recorded_at: object) -> str:
    """`2026-12-04T16:10:07.475832Z` as `2026-12-04 16:10:07 UTC` (as given if unparsable)."""
    try:
        return datetime.fromisoformat(str(recorded_at)).strftime(LEDGER_TIME)
    except ValueError:
        return str(recorded_at)


def _ledger_row(record: dict[str, Any]) -> str:
    approvers = record.get("approvers") or []
    who = ", ".join(
        f"{display_name(str(a.get('slack_user_id')))} ({a.get('role') or '?'})" for a in approvers
    )
    if record.get("rejected_by"):
        who = f"rejected by {display_name(str(record['rejected_by']))}: {record.get('reason')}"
    elif not who:
        who = str(record.get("reason") or "")
    return (
        f'<tr class="ledger-{escape(str(record.get("kind")))}">'
        f"<td>{escape(str(record.get('sequence')))}</td>"
        f"<td>{escape(str(record.get('kind')))} <code>"
        f"{escape(str(record.get('hash') or '')[:12])}</code><br><small>"
        f"{escape(_ledger_time(record.get('recorded_at')))}</small></td>"
        f"<td>{escape(str(record.get('project') or ''))}<br><small>#"
        f"{escape(str(record.get('pipeline_id') or ''))}</small></td>"
        f'<td class="who">{escape(who)}</td></tr>'
    )
