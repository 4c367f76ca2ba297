"""Slack Web API client: timeouts, Retry-After-aware retries and named errors."""

from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

log = logging.getLogger(__name__)

SLACK_TIMEOUT_S = 10
# Every message is posted with `parse: none` (and never `link_names`): Slack then links
# no bare URL, `@here` or `#channel` in its text; only the markup the bot wrote is live
# (bot.outside_text escapes everything else).
NO_PARSING = "none"
USER_CACHE_TTL_S = 300
HTTP_TOO_MANY_REQUESTS = 429


class SlackError(Exception):
    """A Slack Web API call failed; `error` is Slack's error code (e.g. channel_not_found).
    `retry_after`: the seconds a 429 answer asked to wait (its `Retry-After`), else None."""

    def __init__(self, method: str, error: str, retry_after: float | None = None) -> None:
        super().__init__(f"Slack {method} failed: {error}")
        self.method = method
        self.error = error
        self.retry_after = retry_after


def retry_after_of(exc: SlackApiError) -> float | None:
    """The `Retry-After` seconds of a 429 answer (None for any other answer)."""
    response = exc.response
    if response is None or response.status_code != HTTP_TOO_MANY_REQUESTS:
        return None
    headers = {str(k).lower(): v for k, v in (response.headers or {}).items()}
    value = headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


class SlackUnavailable(SlackError):
    """Slack did not answer: a timeout, a broken connection, the request's deadline passed."""


class SlackRateLimited(SlackUnavailable):
    """Slack answered 429 and asked us to wait `retry_after` seconds."""

    def __init__(self, method: str, retry_after: int) -> None:
        super().__init__(method, "ratelimited", retry_after)


@dataclass(frozen=True)
class SlackUser:
    id: str
    name: str
    email: str | None
    is_bot: bool = False
    deleted: bool = False


class _TTLCache:
    """A tiny thread-safe cache; entries are re-read after `ttl` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._items: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            item = self._items.get(key)
        if item is None or time.monotonic() - item[0] >= self.ttl:
            return None
        return item[1]

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), value)


class SlackClient:
    def __init__(
        self,
        token: str,
        base_url: str,
        usergroup_ttl: float = 60,
        timeout: float = SLACK_TIMEOUT_S,
        rate_limit_retries: int = 5,
    ) -> None:
        self._web = WebClient(
            token=token,
            base_url=base_url,
            timeout=int(timeout),
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=2),
                RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
                ServerErrorRetryHandler(max_retry_count=2),
            ],
        )
        self._timeout = timeout
        self._deadline: float | None = None
        self._settings = (token, base_url, usergroup_ttl, timeout)
        self._unretried: SlackClient | None = None
        # A deactivated account must stop counting soon (authority is re-checked at the
        # quorum): profiles are re-read as often as user groups, and at least every 5 min.
        self._users = _TTLCache(min(USER_CACHE_TTL_S, usergroup_ttl))
        self._groups = _TTLCache(usergroup_ttl)

    def within(self, budget_s: float) -> SlackClient:
        """A copy for answering a Slack request inside its 3 seconds: no retries, and all its
        calls together end within `budget_s` (then SlackUnavailable "deadline"). The caches
        are shared with this client."""
        bounded = copy.copy(self)
        bounded._web = WebClient(
            token=self._web.token, base_url=self._web.base_url, retry_handlers=[]
        )
        bounded._deadline = time.monotonic() + budget_s
        return bounded

    def without_rate_limit_retries(self) -> SlackClient:
        """The same client, except that a 429 raises SlackError (with `retry_after`) at once
        instead of sleeping: for callers that pace themselves (workers.pacing)."""
        if self._unretried is None:
            token, base_url, usergroup_ttl, timeout = self._settings
            self._unretried = SlackClient(
                token, base_url, usergroup_ttl, timeout, rate_limit_retries=0
            )
        return self._unretried

    def _call(self, method: str, **params: Any) -> dict[str, Any]:
        return self._request(method, json=params)

    def _web_get(self, method: str, **params: str) -> dict[str, Any]:
        # users.info and usergroups.users.list take form parameters, not JSON bodies.
        return self._request(method, params=params)

    def _request(self, method: str, **kwargs: Any) -> dict[str, Any]:
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise SlackUnavailable(method, "deadline")
            self._web.timeout = left  # type: ignore[assignment]  # urllib takes float seconds
        try:
            response = self._web.api_call(method, **kwargs)
        except SlackApiError as exc:
            if exc.response is not None and exc.response.status_code == 429:
                raise SlackRateLimited(method, _retry_after(exc.response.headers)) from None
            error = exc.response.get("error") if exc.response is not None else None
            raise SlackError(
                method, str(error or exc.response.status_code), retry_after_of(exc)
            ) from None
        except (SlackClientError, OSError) as exc:
            raise SlackUnavailable(method, type(exc).__name__) from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    def post_message(
        self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> str:
        """A message; without blocks a text-only one (Slack refuses `blocks: []`)."""
        with_blocks = {"blocks": blocks} if blocks else {}
        data = self._call(
            "chat.postMessage", channel=channel, text=text, parse=NO_PARSING, **with_blocks
        )
        return str(data["ts"])

    def update_message(
        self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]
    ) -> None:
        self._call(
            "chat.update", channel=channel, ts=ts, text=text, blocks=blocks, parse=NO_PARSING
        )

    def post_ephemeral(self, channel: str, user: str, text: str) -> None:
        self._call("chat.postEphemeral", channel=channel, user=user, text=text, parse=NO_PARSING)

    def post_thread(self, channel: str, thread_ts: str, text: str) -> None:
        self._call(
            "chat.postMessage", channel=channel, thread_ts=thread_ts, text=text, parse=NO_PARSING
        )

    def post_reply(
        self,
        channel: str,
        thread_ts: str,
        text: str,
        blocks: list[dict[str, Any]],
        broadcast: bool = False,
    ) -> str:
        """A reply with blocks in a thread (also shown in the channel when `broadcast`)."""
        data = self._call(
            "chat.postMessage",
            channel=channel,
            thread_ts=thread_ts,
            text=text,
            blocks=blocks,
            reply_broadcast=broadcast,
            parse=NO_PARSING,
        )
        return str(data["ts"])

    def direct_message(self, user: str, text: str) -> None:
        channel = self._call("conversations.open", users=user)["channel"]["id"]
        self._call("chat.postMessage", channel=channel, text=text, parse=NO_PARSING)

    def permalink(self, channel: str, ts: str) -> str:
        data = self._web_get("chat.getPermalink", channel=channel, message_ts=ts)
        return str(data["permalink"])

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> str | None:
        """Open a modal; its view id (what its submission will carry), if Slack gave one."""
        opened = self._call("views.open", trigger_id=trigger_id, view=view).get("view")
        view_id = opened.get("id") if isinstance(opened, dict) else None
        return view_id if isinstance(view_id, str) and view_id else None

    def user(self, user_id: str) -> SlackUser:
        """The user's profile; the e-mail is what separation of duties compares."""
        cached = self._users.get(user_id)
        if isinstance(cached, SlackUser):
            return cached
        data = self._web_get("users.info", user=user_id)["user"]
        profile = data.get("profile") or {}
        user = SlackUser(
            id=str(data["id"]),
            name=str(
                profile.get("real_name") or data.get("real_name") or data.get("name") or user_id
            ),
            email=profile.get("email") or None,
            is_bot=bool(data.get("is_bot")),
            deleted=bool(data.get("deleted")),
        )
        self._users.put(user_id, user)
        return user

    def lookup_by_email(self, email: str) -> str | None:
        """The Slack user who registered this e-mail (`users.lookupByEmail`, scope
        `users:read.email`); None when Slack knows no one by it or it is a bot."""
        try:
            data = self._web_get("users.lookupByEmail", email=email)["user"]
        except SlackError as exc:
            if exc.error == "users_not_found":
                return None
            raise
        return None if data.get("is_bot") else str(data["id"])

    def usergroup_members(self, usergroup: str) -> frozenset[str]:
        cached = self._groups.get(usergroup)
        if isinstance(cached, frozenset):
            return cached
        data = self._web_get("usergroups.users.list", usergroup=usergroup)
        members = frozenset(str(u) for u in data.get("users", []))
        self._groups.put(usergroup, members)
        return members

    def respond(self, response_url: str, text: str) -> None:
        """An ephemeral reply through a response_url; it never replaces the original message."""
        body = {
            "response_type": "ephemeral",
            "replace_original": False,
            "text": text,
            "parse": NO_PARSING,
        }
        try:
            answer = requests.post(response_url, json=body, timeout=self._timeout)
        except requests.RequestException as exc:
            raise SlackError("response_url", type(exc).__name__) from None
        if answer.status_code >= 400:
            raise SlackError("response_url", f"HTTP {answer.status_code}")


def _retry_after(headers: Any) -> int:
    """Slack's Retry-After in whole seconds (1 when absent or unreadable)."""
    for name, value in dict(headers or {}).items():
        if name.lower() == "retry-after":
            try:
                return max(1, int(str(value[0] if isinstance(value, list) else value)))
            except ValueError:
                break
    return 1
