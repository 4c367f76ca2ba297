"""`FakeSlack`: a local Slack Web API that answers like the real one.

Point the code under test at `fake.api_url` (slack_sdk's `base_url`). Every
request is recorded; anything the fake does not implement is answered with
`unknown_method` *and* recorded in `.unexpected`, so tests fail loudly.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from bot.blockkit_limits import message_problems
from bot.simulators.server import FakeServer, FaultBook, FaultRule, json_response
from bot.simulators.slack_signing import (
    block_actions_body,
    block_actions_payload,
    sign,
    signed_headers,
    slash_command_body,
    view_submission_body,
    view_submission_payload,
)
from bot.simulators.slack_workspace import SlackError, SlackWorkspace, dm_channel_for

__all__ = [
    "Call",
    "FakeSlack",
    "ResponseUrlPost",
    "SlackError",
    "SlackWorkspace",
    "block_actions_body",
    "block_actions_payload",
    "dm_channel_for",
    "sign",
    "signed_headers",
    "slash_command_body",
    "view_submission_body",
    "view_submission_payload",
]

# Arguments slack_sdk (or a hand-rolled client) may send as a JSON string
# inside a form body; decoded so tests can compare structures.
_JSON_STRING_ARGS = ("blocks", "attachments", "view", "metadata")
_DEFAULT_5XX_ERRORS = {500: "internal_error", 502: "bad_gateway", 503: "service_unavailable"}


@dataclass
class Call:
    """One recorded Web API call. `faulted` is True for injected faults and
    rate-limit answers; `status`/`response` are what the fake answered."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    faulted: bool = False
    status: int | None = None
    response: Any = None
    # When the fake received it (time.monotonic()), for latency measurements.
    at: float = field(default_factory=time.monotonic)


@dataclass
class ResponseUrlPost:
    """One POST the code under test made to a fake `response_url`."""

    name: str
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeSlack(FakeServer):
    """Fake Slack Web API + response_url sink. See module docstring."""

    def __init__(
        self,
        token: str = "xoxb-test-token",
        *,
        channels: Iterable[str] | None = None,
        rate_limit_per_channel: float | None = None,
    ) -> None:
        super().__init__()
        self.token = token
        self.workspace = SlackWorkspace(channels)
        self.rate_limit_per_channel = rate_limit_per_channel
        # The channels `rate_limit_per_channel` applies to; None: every channel.
        self.rate_limited_channels: set[str] | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._faults = FaultBook()
        self._delays = FaultBook()
        self._init_state()

    def _init_state(self) -> None:
        self.calls: list[Call] = []
        self.unexpected: list[Call] = []
        self.responses: list[ResponseUrlPost] = []
        self._last_post: dict[str, float] = {}
        self._refuse: tuple[Callable[[list[Any]], bool], str] | None = None

    # ------------------------------------------------------------------ setup
    @property
    def api_url(self) -> str:
        """Value for SLACK_API_URL / WebClient(base_url=...)."""
        return f"{self.url}/api/"

    def response_url(self, name: str = "default") -> str:
        """A response_url on this fake; POSTs to it land in `.responses`."""
        return f"{self.url}/response/{name}"

    def add_user(
        self,
        user_id: str,
        name: str,
        email: str | None = None,
        real_name: str | None = None,
        *,
        deleted: bool = False,
        is_bot: bool = False,
        display_name: str | None = None,
    ) -> dict[str, Any]:
        """Register a user for users.info; `email=None` omits profile.email."""
        return self.workspace.add_user(
            user_id,
            name,
            email,
            real_name,
            deleted=deleted,
            is_bot=is_bot,
            display_name=display_name,
        )

    def set_usergroup(self, group_id: str, user_ids: Iterable[str]) -> None:
        self.workspace.set_usergroup(group_id, user_ids)

    # Views on the workspace state, so tests can write `slack.messages`.
    @property
    def messages(self) -> dict[tuple[str, str], dict[str, Any]]:
        return self.workspace.messages

    @property
    def message_log(self) -> list[dict[str, Any]]:
        return self.workspace.message_log

    @property
    def ephemerals(self) -> list[dict[str, Any]]:
        return self.workspace.ephemerals

    @property
    def views(self) -> list[dict[str, Any]]:
        return self.workspace.views

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        return self.workspace.users

    @property
    def usergroups(self) -> dict[str, list[str]]:
        return self.workspace.usergroups

    @property
    def channels(self) -> set[str] | None:
        """Known channel ids; None means every channel exists."""
        return self.workspace.channels

    @channels.setter
    def channels(self, value: set[str] | None) -> None:
        self.workspace.channels = value

    # -------------------------------------------------------- fault injection
    def fail_next(
        self,
        method: str,
        status: int | None = None,
        *,
        error: str | None = None,
        retry_after: int = 1,
        times: int | None = 1,
        body: Any = None,
    ) -> None:
        """Make the next `times` calls of `method` fail.

        - default / `status=429`: HTTP 429, `Retry-After`, error "ratelimited";
        - `status=500|502|503|...`: that status with an ok-false JSON body;
        - `error="x"` without status: HTTP 200 `{"ok": false, "error": "x"}`.
        `method` may also be "response_url". `times=None` fails until reset().
        """
        if status is None:
            status = 200 if error is not None else 429
        self._faults.add(
            FaultRule(
                matches=lambda key: key == method,
                times=times,
                status=status,
                error=error,
                retry_after=retry_after,
                body=body,
            )
        )

    def refuse_blocks(
        self, when: Callable[[list[Any]], bool] | None = None, *, error: str = "invalid_blocks"
    ) -> None:
        """Answer `{"ok": false, "error": error}` to chat.postMessage and chat.update calls
        whose blocks break Slack's Block Kit limits (bot.blockkit_limits), as Slack does,
        or (with `when`) whose blocks `when` says to refuse. Until reset()."""
        self._refuse = (when or (lambda _blocks: False), error)

    def _refused(self, method: str, params: dict[str, Any]) -> str | None:
        if self._refuse is None or method not in ("chat.postMessage", "chat.update"):
            return None
        if "blocks" not in params:
            return None
        blocks = params["blocks"]
        when, error = self._refuse
        if not isinstance(blocks, list) or when(blocks):
            return error
        return error if message_problems(str(params.get("text", "")), blocks) else None

    def delay(self, method: str, seconds: float, *, times: int | None = None) -> None:
        """Sleep `seconds` before answering `method` (default: every call)."""
        self._delays.add(FaultRule(matches=lambda key: key == method, times=times, delay=seconds))

    # -------------------------------------------------------------- recording
    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return self._calls_to_unlocked(method)

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Block until `count` calls to `method` were recorded (async workers)."""
        self._wait(lambda: len(self._calls_to_unlocked(method)) >= count, timeout, method)
        return self.calls_to(method)

    def wait_for_responses(self, count: int = 1, timeout: float = 5.0) -> list[ResponseUrlPost]:
        """Block until `count` POSTs reached the fake response_url(s)."""
        self._wait(lambda: len(self.responses) >= count, timeout, "response_url")
        with self._lock:
            return list(self.responses)

    def _calls_to_unlocked(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def _wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [c.method for c in self.calls]
                    raise AssertionError(f"timed out waiting for {what}; calls so far: {seen}")
                self._changed.wait(remaining)

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        """Latest {"text", "blocks"} of a posted message (DM user ids accepted)."""
        return self.workspace.messages[(dm_channel_for(channel), ts)]

    def reset(self) -> None:
        """Forget calls, messages and faults; keep users, groups and channels."""
        with self._lock:
            self._init_state()
        self.workspace.clear()
        self._faults.clear()
        self._delays.clear()

    # ------------------------------------------------------------ dispatching
    def handle(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/response/"):
            return self._handle_response_url(request, path.removeprefix("/response/"))
        method = path.removeprefix("/api/")
        call = Call(method=method, params=self._params(request), headers=dict(request.headers))
        self._record(call)
        if not path.startswith("/api/"):
            with self._lock:
                self.unexpected.append(call)
            return self._finish(call, {"ok": False, "error": "unknown_method"}, 404)

        delay = self._delays.take(method)
        if delay is not None and delay.delay:
            self.sleep(delay.delay)
        fault = self._faults.take(method)
        if fault is not None:
            call.faulted = True
            return self._finish(call, *self._fault_answer(fault))

        auth = request.headers.get("Authorization", "")
        if not auth:
            return self._finish(call, {"ok": False, "error": "not_authed"})
        if auth != f"Bearer {self.token}":
            return self._finish(call, {"ok": False, "error": "invalid_auth"})

        handler = self.workspace.methods.get(method)
        if handler is None:
            with self._lock:
                self.unexpected.append(call)
            return self._finish(call, {"ok": False, "error": "unknown_method"})
        refused = self._refused(method, call.params)
        if refused is not None:
            call.faulted = True
            return self._finish(call, {"ok": False, "error": refused})
        if method == "chat.postMessage" and self._over_rate_limit(call.params):
            call.faulted = True
            return self._finish(
                call, {"ok": False, "error": "ratelimited"}, 429, {"Retry-After": "1"}
            )
        try:
            body = handler(call.params)
        except SlackError as exc:
            body = {"ok": False, "error": exc.error}
        return self._finish(call, body)

    def _record(self, call: Call) -> None:
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    @staticmethod
    def _finish(
        call: Call, body: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        call.status, call.response = status, body
        return json_response(body, status, headers)

    @staticmethod
    def _params(request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.args.items())
        if request.mimetype == "application/json":
            data = request.get_json(silent=True)
            if isinstance(data, dict):
                params.update(data)
        else:  # x-www-form-urlencoded or multipart
            params.update(request.form.items())
        for key in _JSON_STRING_ARGS:
            value = params.get(key)
            if isinstance(value, str):
                # Not JSON after all: leave it, the handler sees the raw string.
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(value)
        return params

    @staticmethod
    def _fault_answer(rule: FaultRule) -> tuple[Any, int, dict[str, str]]:
        status = rule.status or 429
        headers: dict[str, str] = {}
        if status == 429:
            headers["Retry-After"] = str(1 if rule.retry_after is None else rule.retry_after)
        error = rule.error or (
            "ratelimited" if status == 429 else _DEFAULT_5XX_ERRORS.get(status, "fatal_error")
        )
        body = rule.body if rule.body is not None else {"ok": False, "error": error}
        return body, status, headers

    def _over_rate_limit(self, params: dict[str, Any]) -> bool:
        if not self.rate_limit_per_channel:
            return False
        channel = dm_channel_for(str(params.get("channel", "")))
        if self.rate_limited_channels is not None and channel not in self.rate_limited_channels:
            return False
        now = time.monotonic()
        with self._lock:
            last = self._last_post.get(channel)
            if last is not None and now - last < 1.0 / self.rate_limit_per_channel:
                return True
            self._last_post[channel] = now
        return False

    def _handle_response_url(self, request: Request, name: str) -> Response:
        headers = dict(request.headers)
        fault = self._faults.take("response_url")
        if request.method != "POST":
            return Response("invalid_method", status=405)
        payload = request.get_json(silent=True)
        if payload is None:  # Slack also accepts a form-encoded `payload`
            raw = request.form.get("payload")
            payload = json.loads(raw) if raw else request.get_data(as_text=True)
        with self._changed:
            self.responses.append(ResponseUrlPost(name=name, payload=payload, headers=headers))
            self._changed.notify_all()
        if fault is not None:
            body, status, extra = self._fault_answer(fault)
            return json_response(body, status, extra)
        # The real response_url answers a bare "ok" text body, not JSON.
        return Response("ok", status=200, content_type="text/plain")
