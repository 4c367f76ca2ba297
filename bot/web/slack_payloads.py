"""Slack interaction payloads, typed at the boundary (anything else is a 400)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.validation import first_problem


class _Model(BaseModel):
    # Strict: each field only from its own JSON type (no bool or number read as another).
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class SlackUserRef(_Model):
    id: str = Field(min_length=1, max_length=32, pattern=r"^[A-Z0-9]+$")
    name: str | None = None
    username: str | None = None

    @property
    def display(self) -> str | None:
        return self.name or self.username


class Action(_Model):
    action_id: str
    value: str = ""


class ChannelRef(_Model):
    id: str


class Container(_Model):
    channel_id: str | None = None
    message_ts: str | None = None


class BlockActions(_Model):
    type: Literal["block_actions"]
    user: SlackUserRef
    actions: list[Action] = Field(min_length=1)
    trigger_id: str = ""
    response_url: str | None = None
    channel: ChannelRef | None = None
    container: Container | None = None
    # Read loosely: only its `ts` matters, and a click whose message has none (or no
    # message at all) simply does not come from the request's message.
    message: Any = None

    @property
    def channel_id(self) -> str | None:
        if self.channel is not None:
            return self.channel.id
        return self.container.channel_id if self.container else None

    @property
    def message_origin(self) -> tuple[str | None, str | None]:
        """(channel, message ts) of the message whose button was clicked; None for a part
        the payload does not give, or gives twice in two different ways."""
        return (
            _agreed(self.channel.id if self.channel else None, self.container, "channel_id"),
            _agreed(_ts_of(self.message), self.container, "message_ts"),
        )


def _ts_of(message: Any) -> str | None:
    ts = message.get("ts") if isinstance(message, dict) else None
    return ts if isinstance(ts, str) and ts else None


def _agreed(value: str | None, container: Container | None, field: str) -> str | None:
    other = getattr(container, field) if container is not None else None
    if value is not None and other is not None and value != other:
        return None
    return value or other


class InputValue(_Model):
    value: str | None = None


class ViewState(_Model):
    values: dict[str, dict[str, InputValue]] = Field(default_factory=dict)


class View(_Model):
    id: str = ""
    callback_id: str = ""
    private_metadata: str = ""
    state: ViewState = Field(default_factory=ViewState)

    def input(self, block_id: str, action_id: str) -> str | None:
        return self.state.values.get(block_id, {}).get(action_id, InputValue()).value


class ViewSubmission(_Model):
    type: Literal["view_submission"]
    user: SlackUserRef
    view: View


class BadPayload(ValueError):
    """The interaction payload is not one we can read."""


def parse_interaction(payload: dict[str, Any]) -> BlockActions | ViewSubmission | None:
    """The typed interaction, None for kinds the bot does not handle."""
    kind = payload.get("type")
    model: type[BlockActions] | type[ViewSubmission]
    if kind == "block_actions":
        model = BlockActions
    elif kind == "view_submission":
        model = ViewSubmission
    else:
        return None
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise BadPayload(f"malformed {kind} payload: {first_problem(exc)}") from None
