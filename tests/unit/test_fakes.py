"""The fakes answer the real client libraries like the real services do."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import gitlab
import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from bot.simulators.gitlab import FakeGitLab
from bot.simulators.gitlab_events import hook_headers, job_event, pipeline_event, to_body
from bot.simulators.slack import (
    FakeSlack,
    block_actions_body,
    sign,
    slash_command_body,
    view_submission_body,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake
        assert fake.server_errors == []


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return WebClient(token=slack.token, base_url=slack.api_url, timeout=5)


@pytest.fixture
def gl_fake() -> Iterator[FakeGitLab]:
    with FakeGitLab() as fake:
        fake.seed_from_event(pipeline_event())
        yield fake
        assert fake.server_errors == []


@pytest.fixture
def gl(gl_fake: FakeGitLab) -> gitlab.Gitlab:
    return gitlab.Gitlab(gl_fake.url, private_token=gl_fake.token, timeout=5)


# ---------------------------------------------------------------- Slack


def test_slack_post_update_permalink(slack: FakeSlack, client: WebClient) -> None:
    assert client.auth_test()["user_id"] == "U0BOT0001"
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Approve?*"}}]
    first = client.chat_postMessage(channel="C0APPROVALS", text="Approve?", blocks=blocks)
    second = client.chat_postMessage(channel="C0APPROVALS", text="again")
    assert first["ok"]
    assert first["channel"] == "C0APPROVALS"
    assert float(second["ts"]) > float(first["ts"])
    assert slack.messages[("C0APPROVALS", first["ts"])] == {"text": "Approve?", "blocks": blocks}

    updated = client.chat_update(channel="C0APPROVALS", ts=first["ts"], text="Approved", blocks=[])
    assert updated["ts"] == first["ts"]
    assert slack.message("C0APPROVALS", first["ts"]) == {"text": "Approved", "blocks": []}

    link = client.chat_getPermalink(channel="C0APPROVALS", message_ts=first["ts"])
    assert link["permalink"].endswith(first["ts"].replace(".", ""))
    assert [c.method for c in slack.calls] == [
        "auth.test",
        "chat.postMessage",
        "chat.postMessage",
        "chat.update",
        "chat.getPermalink",
    ]
    assert slack.calls[1].headers["Authorization"] == "Bearer xoxb-test-token"
    assert slack.unexpected == []


def test_slack_errors_like_slack(slack: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C1", ts="1.2", text="x")
    assert err.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as err:
        WebClient(token="xoxb-wrong", base_url=slack.api_url).auth_test()
    assert err.value.response.status_code == 200
    assert err.value.response["error"] == "invalid_auth"


def test_slack_channels_and_dms(client: WebClient) -> None:
    with FakeSlack(channels={"C0APPROVALS"}) as fake:
        strict = WebClient(token=fake.token, base_url=fake.api_url)
        with pytest.raises(SlackApiError) as err:
            strict.chat_postMessage(channel="C0NOPE", text="hi")
        assert err.value.response["error"] == "channel_not_found"
        dm = strict.chat_postMessage(channel="U0ALICE01", text="hi")
        # Like Slack: posting to a user id answers with the DM channel id.
        assert dm["channel"] == "D0ALICE01"
        assert fake.message("U0ALICE01", dm["ts"])["text"] == "hi"
        opened = strict.conversations_open(users="U0ALICE01")
        assert opened["channel"]["id"] == "D0ALICE01"


def test_slack_views_users_groups_ephemeral(slack: FakeSlack, client: WebClient) -> None:
    view = {
        "type": "modal",
        "callback_id": "reject_reason",
        "title": {"type": "plain_text", "text": "Why?"},
    }
    opened = client.views_open(trigger_id="123.456", view=view)
    assert opened["view"]["id"].startswith("V")
    assert slack.views[0]["view"] == view
    # A hand-rolled client may send `view` as a JSON string in a form body.
    raw = requests.post(
        f"{slack.api_url}views.open",
        data={"trigger_id": "t", "view": json.dumps(view)},
        headers={"Authorization": f"Bearer {slack.token}"},
        timeout=5,
    )
    assert raw.json()["ok"] is True
    assert slack.views[1]["view"] == view

    slack.add_user("U0ALICE01", "alice", email="alice@example.com", real_name="Alice A")
    slack.add_user("U0NOMAIL1", "svc")
    alice = client.users_info(user="U0ALICE01")["user"]
    assert alice["profile"]["email"] == "alice@example.com"
    assert alice["real_name"] == "Alice A"
    assert alice["deleted"] is False
    assert "email" not in client.users_info(user="U0NOMAIL1")["user"]["profile"]
    with pytest.raises(SlackApiError, match="user_not_found"):
        client.users_info(user="U0GHOST01")

    slack.set_usergroup("S0APPROVER", ["U0ALICE01"])
    assert client.usergroups_users_list(usergroup="S0APPROVER")["users"] == ["U0ALICE01"]
    with pytest.raises(SlackApiError, match="no_such_subteam"):
        client.usergroups_users_list(usergroup="S0NOPE")

    eph = client.chat_postEphemeral(channel="C0APPROVALS", user="U0ALICE01", text="not you")
    assert slack.ephemerals[0]["message_ts"] == eph["message_ts"]
    assert slack.unexpected == []


def test_slack_faults(slack: FakeSlack, client: WebClient) -> None:
    slack.fail_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] in ("7", ["7"])
    assert err.value.response["error"] == "ratelimited"

    slack.fail_next("chat.update", status=503, times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as err:
            client.chat_update(channel="C1", ts="1", text="x")
        assert err.value.response.status_code == 503

    slack.fail_next("chat.postMessage", error="channel_not_found")
    with pytest.raises(SlackApiError, match="channel_not_found"):
        client.chat_postMessage(channel="C1", text="x")
    assert client.chat_postMessage(channel="C1", text="x")["ok"]
    faulted = [c.faulted for c in slack.calls_to("chat.postMessage")]
    assert faulted == [True, True, False]


def test_slack_rate_limit_retry_handler(slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=0)
    retrying = WebClient(
        token=slack.token,
        base_url=slack.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    assert retrying.chat_postMessage(channel="C1", text="x")["ok"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]


def test_slack_per_channel_rate_limit() -> None:
    with FakeSlack(rate_limit_per_channel=1.0) as fake:
        c = WebClient(token=fake.token, base_url=fake.api_url)
        c.chat_postMessage(channel="C1", text="1")
        c.chat_postMessage(channel="C2", text="other channel is fine")
        with pytest.raises(SlackApiError) as err:
            c.chat_postMessage(channel="C1", text="2")
        assert err.value.response.status_code == 429


def test_slack_delay_makes_client_time_out(slack: FakeSlack) -> None:
    slack.delay("chat.postMessage", 5)
    impatient = WebClient(token=slack.token, base_url=slack.api_url, timeout=1)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        impatient.chat_postMessage(channel="C1", text="x")
    assert time.monotonic() - started < 3
    assert len(slack.calls_to("chat.postMessage")) == 1  # recorded before sleeping


def test_slack_unknown_method_is_loud(slack: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError, match="unknown_method"):
        client.api_call("reactions.add", params={"channel": "C1", "name": "x"})
    assert [c.method for c in slack.unexpected] == ["reactions.add"]


def test_slack_response_url(slack: FakeSlack) -> None:
    url = slack.response_url("click-1")
    resp = WebhookClient(url).send(text="Approved", replace_original=True)
    assert resp.status_code == 200
    assert resp.body == "ok"
    assert slack.responses[0].name == "click-1"
    assert slack.responses[0].payload == {"text": "Approved", "replace_original": True}


def test_slack_signing_and_bodies() -> None:
    body = block_actions_body("U0ALICE01", "approve", "req-1", message_ts="1700000000.000101")
    headers = sign(SECRET, body)
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert not SignatureVerifier("other").is_valid_request(body, headers)
    payload = json.loads(parse_qs(body.decode())["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["actions"][0] == payload["actions"][0] | {
        "action_id": "approve",
        "value": "req-1",
    }
    assert payload["container"]["message_ts"] == "1700000000.000101"

    sub = json.loads(
        parse_qs(view_submission_body("U1", "req-1", "too risky").decode())["payload"][0]
    )
    assert sub["view"]["private_metadata"] == "req-1"
    assert sub["view"]["state"]["values"]["reason"]["reason"]["value"] == "too risky"
    cmd = parse_qs(slash_command_body("U1", "pending").decode())
    assert cmd["command"] == ["/approvals"]
    assert cmd["text"] == ["pending"]
    old = sign(SECRET, body, timestamp=int(time.time()) - 3600)
    assert not SignatureVerifier(SECRET).is_valid_request(body, old)


# --------------------------------------------------------------- GitLab


def test_gitlab_get_and_play_with_python_gitlab(gl_fake: FakeGitLab, gl: gitlab.Gitlab) -> None:
    job = gl.projects.get(101, lazy=True).jobs.get(9001)
    assert (job.status, job.name, job.pipeline["id"]) == ("manual", "compliance-gate", 5001)
    job.play()
    assert gl_fake.job(9001)["status"] == "pending"
    assert gl_fake.play_count(9001) == 1
    with pytest.raises(gitlab.exceptions.GitlabJobPlayError) as err:
        job.play()
    assert err.value.response_code == 400
    assert err.value.error_message == "400 Bad request - Unplayable Job"
    assert gl_fake.play_count(9001) == 1
    assert gl_fake.calls_to("POST", r"/jobs/9001/play$")[0].headers["Private-Token"] == "glpat-test"
    assert gl_fake.unexpected == []


def test_gitlab_project_path_and_errors(gl_fake: FakeGitLab, gl: gitlab.Gitlab) -> None:
    project = gl.projects.get("fintech/payments-api")
    assert project.id == 101
    assert gl_fake.calls[0].path == "/api/v4/projects/fintech%2Fpayments-api"
    with pytest.raises(gitlab.exceptions.GitlabGetError) as err:
        project.jobs.get(424242)
    assert err.value.response_code == 404
    with pytest.raises(gitlab.exceptions.GitlabAuthenticationError):
        gitlab.Gitlab(gl_fake.url, private_token="nope").projects.get(101)
    assert gl_fake.unexpected == []


def test_gitlab_pipelines_list_and_cancel(gl_fake: FakeGitLab, gl: gitlab.Gitlab) -> None:
    pipeline = gl.projects.get(101, lazy=True).pipelines.get(5001)
    assert pipeline.status == "manual"
    manual = pipeline.jobs.list(scope=["manual"], get_all=True)
    assert [j.id for j in manual] == [9001]
    assert "scope[]" in gl_fake.calls_to("GET", r"/pipelines/5001/jobs")[0].query
    pipeline.cancel()
    # Real GitLab: manual jobs are not cancelable, so the gate stays manual.
    assert gl_fake.job(9002)["status"] == "canceled"
    assert gl_fake.job(9001)["status"] == "manual"


def test_gitlab_cancel_simplified_mode() -> None:
    with FakeGitLab(cancel_manual_jobs=True) as fake:
        fake.seed_from_event(pipeline_event())
        gitlab.Gitlab(fake.url, private_token=fake.token).projects.get(
            101, lazy=True
        ).pipelines.get(5001).cancel()
        assert fake.pipeline(5001)["status"] == "canceled"
        assert fake.job(9001)["status"] == "canceled"


def test_gitlab_faults(gl_fake: FakeGitLab, gl: gitlab.Gitlab) -> None:
    job = gl.projects.get(101, lazy=True).jobs.get(9001, lazy=True)
    gl_fake.fail_next("POST", r"/jobs/9001/play$", status=500)
    with pytest.raises(gitlab.exceptions.GitlabJobPlayError) as err:
        job.play()
    assert err.value.response_code == 500
    assert gl_fake.job(9001)["status"] == "manual"
    assert gl_fake.play_count(9001) == 0

    gl_fake.fail_next("POST", r"/jobs/9001/play$", side_effect_then_fail=True)
    with pytest.raises(gitlab.exceptions.GitlabJobPlayError):
        job.play()
    assert gl_fake.job(9001)["status"] == "pending"
    assert gl_fake.play_count(9001) == 1
    assert [c.faulted for c in gl_fake.calls_to("POST", "play")] == [True, True]


def test_gitlab_timeout_still_does_the_work(gl_fake: FakeGitLab) -> None:
    impatient = gitlab.Gitlab(gl_fake.url, private_token=gl_fake.token, timeout=0.3)
    gl_fake.fail_next("POST", r"/jobs/9001/play$", timeout=0.8)
    with pytest.raises(requests.exceptions.Timeout):
        impatient.projects.get(101, lazy=True).jobs.get(9001, lazy=True).play()
    deadline = time.monotonic() + 3
    while gl_fake.play_count(9001) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gl_fake.job(9001)["status"] == "pending"


def test_gitlab_429_is_retried_by_python_gitlab(gl_fake: FakeGitLab, gl: gitlab.Gitlab) -> None:
    gl_fake.fail_next("GET", r"/jobs/9001$", status=429, retry_after=0)
    assert gl.projects.get(101, lazy=True).jobs.get(9001).status == "manual"
    assert [c.status for c in gl_fake.calls_to("GET", r"/jobs/9001$")] == [429, 200]


def test_gitlab_replaying_finished_manual_job_retries_it(
    gl_fake: FakeGitLab, gl: gitlab.Gitlab
) -> None:
    gl_fake.job(9001)["status"] = "success"
    job = gl.projects.get(101, lazy=True).jobs.get(9001, lazy=True)
    job.play()
    assert job.id != 9001
    assert job.status == "pending"
    assert gl_fake.job(9001)["retried"] is True


def test_gitlab_unexpected_paths_are_recorded(gl_fake: FakeGitLab, gl: gitlab.Gitlab) -> None:
    with pytest.raises(gitlab.exceptions.GitlabGetError):
        gl.projects.get(101, lazy=True).issues.get(1)
    assert [c.path for c in gl_fake.unexpected] == ["/api/v4/projects/101/issues/1"]


# ------------------------------------------------------------- fixtures


def test_pipeline_event_shape() -> None:
    event = pipeline_event()
    assert event["object_kind"] == "pipeline"
    attrs = event["object_attributes"]
    assert (attrs["id"], attrs["status"], attrs["stages"]) == (
        5001,
        "manual",
        ["test", "approve", "deploy"],
    )
    assert attrs["created_at"] == "2026-11-25 10:00:00 UTC"
    gate = next(b for b in event["builds"] if b["name"] == "compliance-gate")
    assert gate == gate | {"id": 9001, "when": "manual", "manual": True, "environment": None}
    deploy = event["builds"][-1]
    assert deploy["environment"] == {
        "name": "production",
        "action": "start",
        "deployment_tier": "production",
    }
    assert event["project"]["path_with_namespace"] == "fintech/payments-api"
    assert "source_pipeline" not in event  # GitLab omits it unless triggered
    assert json.loads(to_body(event)) == event
    sample = Path(__file__).parents[1] / "fixtures" / "pipeline_hook.json"
    assert json.loads(sample.read_text()) == event
    assert hook_headers(event, token="s3cret")["X-Gitlab-Event"] == "Pipeline Hook"


def test_job_event_shape() -> None:
    event = job_event(status="pending")
    assert event["object_kind"] == "build"
    assert (event["build_id"], event["build_status"], event["pipeline_id"]) == (
        9001,
        "pending",
        5001,
    )
    assert event["commit"]["id"] == 5001  # GitLab puts the pipeline id there
    assert hook_headers(event)["X-Gitlab-Event"] == "Job Hook"


def test_wait_for_and_reset(slack: FakeSlack, gl_fake: FakeGitLab, gl: gitlab.Gitlab) -> None:
    client = WebClient(token=slack.token, base_url=slack.api_url)
    job = gl.projects.get(101, lazy=True).jobs.get(9001, lazy=True)
    workers = [
        threading.Thread(target=client.chat_postMessage, kwargs={"channel": "C1", "text": "x"}),
        threading.Thread(target=job.play),
        threading.Thread(target=WebhookClient(slack.response_url()).send, kwargs={"text": "y"}),
    ]
    for worker in workers:
        worker.start()
    assert len(slack.wait_for("chat.postMessage")) == 1
    assert len(gl_fake.wait_for("POST", r"/play$")) == 1
    assert slack.wait_for_responses()[0].payload == {"text": "y"}
    for worker in workers:
        worker.join()
    with pytest.raises(AssertionError, match="timed out"):
        slack.wait_for("chat.update", timeout=0.1)
    slack.reset()
    gl_fake.reset()
    assert (slack.calls, slack.messages, gl_fake.calls) == ([], {}, [])
    assert gl_fake.job(9001)["status"] == "pending"  # state survives reset()
