"""The state and Web API methods behind FakeSlack, without any HTTP.

Each method takes the decoded request params and returns Slack's JSON answer
or raises SlackError (answered as HTTP 200 `{"ok": false, "error": ...}`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from bot.simulators.slack_signing import API_APP_ID, BOT_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID


class SlackError(Exception):
    """Raised by a method handler: becomes HTTP 200 `{"ok": false, "error": ...}`."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def dm_channel_for(user_id: str) -> str:
    """The DM channel id Slack reports when posting to a user id (U... -> D...)."""
    return "D" + user_id[1:] if user_id[:1] in ("U", "W") else user_id


class SlackWorkspace:
    """Channels, users, user groups and the messages/views the app created."""

    def __init__(self, channels: Iterable[str] | None = None) -> None:
        # None: every channel exists. A set: only these (plus DMs) exist.
        self.channels: set[str] | None = set(channels) if channels is not None else None
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self.methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self._views_open,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.open": self._conversations_open,
        }
        self.clear()

    def clear(self) -> None:
        """Forget what the app did; keep channels, users and groups."""
        with self._lock:
            self.messages: dict[tuple[str, str], dict[str, Any]] = {}
            self.message_log: list[dict[str, Any]] = []
            self.ephemerals: list[dict[str, Any]] = []
            self.views: list[dict[str, Any]] = []
            self._last_ts_us = 0  # the newest message ts, in microseconds
            self._view_counter = 0
            self._opened_dms: set[str] = set()

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
        real = real_name or name
        profile: dict[str, Any] = {
            "real_name": real,
            "real_name_normalized": real,
            "display_name": display_name if display_name is not None else name,
            "display_name_normalized": display_name if display_name is not None else name,
            "team": TEAM_ID,
        }
        if email is not None:  # bots/restricted users really have no email key
            profile["email"] = email
        user = {
            "id": user_id,
            "team_id": TEAM_ID,
            "name": name,
            "deleted": deleted,
            "real_name": real,
            "tz": "Europe/Berlin",
            "tz_label": "Central European Time",
            "tz_offset": 3600,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": 1700000000,
        }
        self.users[user_id] = user
        return user

    def set_usergroup(self, group_id: str, user_ids: Iterable[str]) -> None:
        self.usergroups[group_id] = list(user_ids)

    # ------------------------------------------------------------ the methods
    def _next_ts(self) -> str:
        """Like Slack's: the posting time (epoch seconds.microseconds), unique and rising."""
        with self._lock:
            now = max(time.time_ns() // 1000, self._last_ts_us + 1)
            self._last_ts_us = now
            return f"{now // 1_000_000}.{now % 1_000_000:06d}"

    def _channel(self, params: dict[str, Any], key: str = "channel") -> str:
        channel = str(params.get(key) or "")
        if not channel:
            raise SlackError("channel_not_found")
        if channel[:1] in ("U", "W", "D"):  # DMs always exist
            return dm_channel_for(channel)
        if self.channels is not None and channel not in self.channels:
            raise SlackError("channel_not_found")
        return channel

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": "Approval Bot Test",
            "user": "approval-bot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _message_body(self, params: dict[str, Any], ts: str) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "user": BOT_USER_ID,
            "type": "message",
            "ts": ts,
            "bot_id": BOT_ID,
            "app_id": API_APP_ID,
            "text": params.get("text", ""),
            "team": TEAM_ID,
        }
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if params.get(key) is not None:
                msg[key] = params[key]
        return msg

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        if not any(params.get(k) for k in ("text", "blocks", "attachments")):
            raise SlackError("no_text")
        ts = self._next_ts()
        with self._lock:
            self.messages[(channel, ts)] = {
                "text": params.get("text"),
                "blocks": params.get("blocks"),
            }
            self.message_log.append({"action": "post", "channel": channel, "ts": ts, **params})
        return {"ok": True, "channel": channel, "ts": ts, "message": self._message_body(params, ts)}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        ts = str(params.get("ts") or "")
        with self._lock:
            if (channel, ts) not in self.messages:
                raise SlackError("message_not_found")
            current = self.messages[(channel, ts)]
            # Slack keeps fields that the update does not mention.
            updated = {
                "text": params.get("text", current["text"]),
                "blocks": params.get("blocks", current["blocks"]),
            }
            self.messages[(channel, ts)] = updated
            self.message_log.append({"action": "update", "channel": channel, **params, "ts": ts})
        body = self._message_body({**params, **updated}, ts)
        return {"ok": True, "channel": channel, "ts": ts, "text": updated["text"], "message": body}

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        user = params.get("user")
        if not user:
            raise SlackError("user_not_found")
        if not any(params.get(k) for k in ("text", "blocks", "attachments")):
            raise SlackError("no_text")
        ts = self._next_ts()
        with self._lock:
            self.ephemerals.append(
                {
                    "channel": channel,
                    "user": user,
                    "text": params.get("text"),
                    "blocks": params.get("blocks"),
                    "thread_ts": params.get("thread_ts"),
                    "message_ts": ts,
                }
            )
        return {"ok": True, "message_ts": ts}

    def _chat_get_permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        ts = str(params.get("message_ts") or "")
        with self._lock:
            if (channel, ts) not in self.messages:
                raise SlackError("message_not_found")
        link = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        return {"ok": True, "channel": channel, "permalink": link}

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger_id, view = params.get("trigger_id"), params.get("view")
        if not trigger_id or not isinstance(view, dict):
            raise SlackError("invalid_arguments")
        with self._lock:
            self._view_counter += 1
            view_id = f"V{self._view_counter:010d}"
            self.views.append({"id": view_id, "trigger_id": trigger_id, "view": view})
        opened = {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": view.get("type", "modal"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"1700000000.{view_id}",
            "title": view.get("title"),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "clear_on_close": False,
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": API_APP_ID,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        }
        return {"ok": True, "view": opened}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user") or ""))
        if user is None:
            raise SlackError("user_not_found")
        return {"ok": True, "user": json.loads(json.dumps(user))}  # a copy

    def _users_lookup_by_email(self, params: dict[str, Any]) -> dict[str, Any]:
        # Slack's registered e-mail, matched whole and in any case; no match (or no e-mail
        # given) is `users_not_found`.
        wanted = str(params.get("email") or "").strip().lower()
        for user in self.users.values():
            email = str(user["profile"].get("email") or "").lower()
            if wanted and email == wanted:
                return {"ok": True, "user": json.loads(json.dumps(user))}
        raise SlackError("users_not_found")

    def _usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        members = self.usergroups.get(str(params.get("usergroup") or ""))
        if members is None:
            raise SlackError("no_such_subteam")
        return {"ok": True, "users": list(members)}

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if params.get("channel"):
            return {"ok": True, "channel": {"id": params["channel"]}, "no_op": True}
        if not users:
            raise SlackError("users_list_not_supplied")
        channel_id = dm_channel_for(users[0]) if len(users) == 1 else "G" + "".join(users)[:10]
        with self._lock:
            already = channel_id in self._opened_dms
            self._opened_dms.add(channel_id)
        body: dict[str, Any] = {"ok": True, "channel": {"id": channel_id}}
        if already:
            body.update({"no_op": True, "already_open": True})
        return body
