"""Slack's documented limits for what the bot sends, as one check.

`message_problems(text, blocks)` and `view_problems(view)` list every way a message or a
modal breaks Block Kit's limits (https://api.slack.com/reference/block-kit) or leaves
broken mrkdwn (a cut `<url|label>` link, a bare `&`): an empty list means Slack accepts
it. Tests run it over every message kind the bot sends; the sender runs it before
posting, so a message Slack would refuse goes out in its fallback form at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

# chat.postMessage: Slack truncates `text` at 40,000 characters and asks to keep it
# under 4,000; the bot's texts (and fallbacks next to blocks) stay under that.
MESSAGE_TEXT_LIMIT = 4000
MESSAGE_BLOCKS_LIMIT = 50
VIEW_BLOCKS_LIMIT = 100
SECTION_TEXT_LIMIT = 3000
FIELD_TEXT_LIMIT = 2000
FIELDS_LIMIT = 10
CONTEXT_ELEMENTS_LIMIT = 10
ACTIONS_ELEMENTS_LIMIT = 25
HEADER_TEXT_LIMIT = 150
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
BUTTON_URL_LIMIT = 3000
ID_LIMIT = 255  # block_id, action_id, callback_id
CONFIRM_LIMITS = {"title": 100, "text": 300, "confirm": 30, "deny": 30}
INPUT_LABEL_LIMIT = 2000
INPUT_MAX_LENGTH = 3000
MODAL_TEXT_LIMIT = 24  # title, submit, close
PRIVATE_METADATA_LIMIT = 3000
BUTTON_STYLES = frozenset({"primary", "danger"})

# In mrkdwn, `<` opens a link or mention that must close before the next `<`, and `&`
# starts one of the three entities Slack documents: anything else is markup cut short.
_BROKEN_TOKEN = re.compile(r"<[^>]*(?:<|$)|&(?!amp;|lt;|gt;)")


def message_problems(text: str, blocks: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """What Slack would refuse or mangle in a chat.postMessage/chat.update of `text` and
    `blocks` (None: a text-only message, which must not send `blocks: []`)."""
    problems: list[str] = []
    if not text.strip():
        problems.append("text: empty (notifications and clients without blocks show it)")
    if len(text) > MESSAGE_TEXT_LIMIT:
        problems.append(f"text: {len(text)} characters > {MESSAGE_TEXT_LIMIT}")
    problems += _mrkdwn_problems("text", text)
    if blocks is not None:
        problems += _blocks_problems("blocks", blocks, MESSAGE_BLOCKS_LIMIT)
    return problems


def view_problems(view: Mapping[str, Any]) -> list[str]:
    """What views.open would refuse in a modal."""
    problems: list[str] = []
    for key in ("title", "submit", "close"):
        if key in view:
            problems += _text_problems(f"view.{key}", view[key], MODAL_TEXT_LIMIT, plain=True)
    problems += _id_problems("view.callback_id", view.get("callback_id"))
    if len(str(view.get("private_metadata", ""))) > PRIVATE_METADATA_LIMIT:
        problems.append(f"view.private_metadata: > {PRIVATE_METADATA_LIMIT} characters")
    problems += _blocks_problems("view.blocks", view.get("blocks") or [], VIEW_BLOCKS_LIMIT)
    return problems


def _blocks_problems(where: str, blocks: Sequence[Mapping[str, Any]], limit: int) -> list[str]:
    if not blocks:
        return [f"{where}: empty list (omit `blocks` for a text-only message)"]
    problems: list[str] = []
    if len(blocks) > limit:
        problems.append(f"{where}: {len(blocks)} blocks > {limit}")
    ids = [block["block_id"] for block in blocks if "block_id" in block]
    if len(ids) != len(set(ids)):
        problems.append(f"{where}: repeated block_id")
    for index, block in enumerate(blocks):
        problems += _block_problems(f"{where}[{index}]", block)
    return problems


def _block_problems(where: str, block: Mapping[str, Any]) -> list[str]:
    problems = _id_problems(f"{where}.block_id", block.get("block_id"))
    kind = block.get("type")
    if kind == "section":
        problems += _section_problems(where, block)
    elif kind == "context":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= CONTEXT_ELEMENTS_LIMIT:
            problems.append(f"{where}: {len(elements)} context elements")
        for index, element in enumerate(elements):
            if element.get("type") != "image":
                problems += _text_problems(
                    f"{where}.elements[{index}]", element, SECTION_TEXT_LIMIT
                )
    elif kind == "actions":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= ACTIONS_ELEMENTS_LIMIT:
            problems.append(f"{where}: {len(elements)} actions elements")
        for index, element in enumerate(elements):
            problems += _element_problems(f"{where}.elements[{index}]", element)
    elif kind == "header":
        problems += _text_problems(
            f"{where}.text", block.get("text"), HEADER_TEXT_LIMIT, plain=True
        )
    elif kind == "input":
        problems += _text_problems(
            f"{where}.label", block.get("label"), INPUT_LABEL_LIMIT, plain=True
        )
        problems += _element_problems(f"{where}.element", block.get("element") or {})
    elif kind != "divider":
        problems.append(f"{where}: unknown block type {kind!r}")
    return problems


def _section_problems(where: str, block: Mapping[str, Any]) -> list[str]:
    fields = block.get("fields") or []
    if "text" not in block and not fields:
        return [f"{where}: a section needs text or fields"]
    problems: list[str] = []
    if "text" in block:
        problems += _text_problems(f"{where}.text", block["text"], SECTION_TEXT_LIMIT)
    if len(fields) > FIELDS_LIMIT:
        problems.append(f"{where}.fields: {len(fields)} > {FIELDS_LIMIT}")
    for index, field in enumerate(fields):
        problems += _text_problems(f"{where}.fields[{index}]", field, FIELD_TEXT_LIMIT)
    if "accessory" in block:
        problems += _element_problems(f"{where}.accessory", block["accessory"])
    return problems


def _element_problems(where: str, element: Mapping[str, Any]) -> list[str]:
    problems = _id_problems(f"{where}.action_id", element.get("action_id"))
    kind = element.get("type")
    if kind == "button":
        problems += _text_problems(
            f"{where}.text", element.get("text"), BUTTON_TEXT_LIMIT, plain=True
        )
        if len(str(element.get("value", ""))) > BUTTON_VALUE_LIMIT:
            problems.append(f"{where}.value: > {BUTTON_VALUE_LIMIT} characters")
        if len(str(element.get("url", ""))) > BUTTON_URL_LIMIT:
            problems.append(f"{where}.url: > {BUTTON_URL_LIMIT} characters")
        if "style" in element and element["style"] not in BUTTON_STYLES:
            problems.append(f"{where}.style: {element['style']!r}")
        for key, limit in CONFIRM_LIMITS.items():
            if "confirm" in element:
                plain = key != "text"
                problems += _text_problems(
                    f"{where}.confirm.{key}", element["confirm"].get(key), limit, plain=plain
                )
    elif kind == "plain_text_input":
        if int(element.get("max_length", 0)) > INPUT_MAX_LENGTH:
            problems.append(f"{where}.max_length: > {INPUT_MAX_LENGTH}")
    else:
        problems.append(f"{where}: unknown element type {kind!r}")
    return problems


def _text_problems(where: str, obj: Any, limit: int, *, plain: bool = False) -> list[str]:
    if not isinstance(obj, Mapping) or obj.get("type") not in ("plain_text", "mrkdwn"):
        return [f"{where}: not a text object"]
    if plain and obj["type"] != "plain_text":
        return [f"{where}: must be plain_text"]
    text = str(obj.get("text", ""))
    problems: list[str] = []
    if not text:
        problems.append(f"{where}: empty text")
    if len(text) > limit:
        problems.append(f"{where}: {len(text)} characters > {limit}")
    if obj["type"] == "mrkdwn":
        problems += _mrkdwn_problems(where, text)
    return problems


def _mrkdwn_problems(where: str, text: str) -> list[str]:
    broken = _BROKEN_TOKEN.search(text)
    if broken is None:
        return []
    return [f"{where}: broken markup at {broken.start()}: {text[broken.start() :][:40]!r}"]


def _id_problems(where: str, value: Any) -> list[str]:
    if value is not None and not 1 <= len(str(value)) <= ID_LIMIT:
        return [f"{where}: {len(str(value))} characters, not 1..{ID_LIMIT}"]
    return []


def mrkdwn_texts(blocks: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    """Every mrkdwn text in `blocks` (for tests that look at what a reader sees)."""
    for block in blocks:
        for obj in [
            block.get("text"),
            *(block.get("fields") or []),
            *(block.get("elements") or []),
        ]:
            if isinstance(obj, Mapping) and obj.get("type") == "mrkdwn":
                yield str(obj["text"])
