"""Block Kit -> HTML for the sandbox page: messages and modals as the Slack client shows them.

Every string from a block is escaped (mrkdwn through `bot.sandbox.mrkdwn`), so a commit
title or a reason cannot inject markup. Buttons carry their `action_id`, `value` and
`block_id` as data attributes for the page's script; a `confirm` object is rendered as a
hidden `<dialog>` next to its button, which the script shows before the click is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from bot.sandbox.mrkdwn import Names, mrkdwn, plain_text

UNSUPPORTED = "(this block type is not shown in the sandbox: {kind})"
_BUTTON_STYLES = ("primary", "danger")


def _identity(user_id: str) -> str:
    return user_id


def text_object(obj: Any, names: Names = _identity) -> str:
    """A Block Kit text object (plain_text or mrkdwn) as HTML."""
    if not isinstance(obj, Mapping):
        return ""
    text = str(obj.get("text", ""))
    if obj.get("type") == "mrkdwn":
        return mrkdwn(text, names)
    return plain_text(text, emoji=obj.get("emoji", True) is not False)


def render_blocks(blocks: Sequence[Any] | None, names: Names = _identity) -> str:
    """The blocks of a message or view, in order."""
    return "".join(render_block(block, names) for block in blocks or () if block)


def render_message(text: str | None, blocks: Sequence[Any] | None, names: Names = _identity) -> str:
    """A message body: its blocks, or the fallback text when it has none (as Slack does)."""
    if blocks:
        return render_blocks(blocks, names)
    return f'<div class="bk-section">{mrkdwn(text or "", names)}</div>'


def render_block(block: Mapping[str, Any], names: Names = _identity) -> str:
    kind = str(block.get("type", ""))
    renderer = _RENDERERS.get(kind)
    if renderer is None:
        return f'<div class="bk-unsupported">{escape(UNSUPPORTED.format(kind=kind))}</div>'
    return renderer(block, names)


def _block_attr(block: Mapping[str, Any]) -> str:
    block_id = block.get("block_id")
    return f' data-block-id="{escape(str(block_id))}"' if block_id else ""


def _section(block: Mapping[str, Any], names: Names) -> str:
    parts = []
    if block.get("text"):
        parts.append(f'<div class="bk-text">{text_object(block["text"], names)}</div>')
    fields = block.get("fields") or []
    if fields:
        cells = "".join(f'<div class="bk-field">{text_object(f, names)}</div>' for f in fields)
        parts.append(f'<div class="bk-fields">{cells}</div>')
    body = "".join(parts)
    accessory = block.get("accessory")
    if isinstance(accessory, Mapping):
        body = (
            f'<div class="bk-section-body">{body}</div>'
            f'<div class="bk-accessory">{_element(accessory, block, names)}</div>'
        )
    return f'<div class="bk-section"{_block_attr(block)}>{body}</div>'


def _header(block: Mapping[str, Any], names: Names) -> str:
    return f'<h3 class="bk-header"{_block_attr(block)}>{text_object(block.get("text"), names)}</h3>'


def _divider(block: Mapping[str, Any], _names: Names) -> str:
    return f'<hr class="bk-divider"{_block_attr(block)}>'


def _context(block: Mapping[str, Any], names: Names) -> str:
    items = []
    for element in block.get("elements") or []:
        if element.get("type") == "image":
            items.append(_image_element(element, "bk-context-image"))
        else:
            items.append(f"<span>{text_object(element, names)}</span>")
    return f'<div class="bk-context"{_block_attr(block)}>{"".join(items)}</div>'


def _actions(block: Mapping[str, Any], names: Names) -> str:
    elements = "".join(_element(e, block, names) for e in block.get("elements") or [])
    return f'<div class="bk-actions"{_block_attr(block)}>{elements}</div>'


def _image(block: Mapping[str, Any], _names: Names) -> str:
    return f'<div class="bk-image"{_block_attr(block)}>{_image_element(block, "")}</div>'


def _input(block: Mapping[str, Any], names: Names) -> str:
    """A modal input: label, then a text field the page submits under block/action ids."""
    element = block.get("element") or {}
    block_id = escape(str(block.get("block_id", "")))
    action_id = escape(str(element.get("action_id", "")))
    attrs = f'class="bk-input" data-block-id="{block_id}" data-action-id="{action_id}"'
    if element.get("max_length"):
        attrs += f' maxlength="{int(element["max_length"])}"'
    if element.get("placeholder"):
        placeholder = escape(str(element["placeholder"].get("text", "")))
        attrs += f' placeholder="{placeholder}"'
    if block.get("optional") is not True:
        attrs += " required"
    field = (
        f'<textarea {attrs} rows="4"></textarea>'
        if element.get("multiline")
        else f'<input type="text" {attrs}>'
    )
    label = text_object(block.get("label"), names)
    if element.get("type") != "plain_text_input":
        unsupported = UNSUPPORTED.format(kind=element.get("type"))
        field = f'<div class="bk-unsupported">{escape(unsupported)}</div>'
    return (
        f'<label class="bk-input-block" data-block-id="{block_id}">'
        f'<span class="bk-label">{label}</span>{field}'
        f'<span class="bk-input-error" data-error-for="{block_id}"></span></label>'
    )


def _element(element: Mapping[str, Any], block: Mapping[str, Any], names: Names) -> str:
    if element.get("type") == "button":
        return button(element, str(block.get("block_id", "")), names)
    if element.get("type") == "image":
        return _image_element(element, "bk-accessory-image")
    kind = escape(str(element.get("type", "")))
    return f'<span class="bk-unsupported">{escape(UNSUPPORTED.format(kind=kind))}</span>'


def button(element: Mapping[str, Any], block_id: str, names: Names = _identity) -> str:
    """A button with its confirm dialog (if any) right after it, inside one wrapper."""
    style = element.get("style")
    classes = "bk-button" + (f" bk-{style}" if style in _BUTTON_STYLES else "")
    attrs = (
        f'type="button" class="{classes}"'
        f' data-action-id="{escape(str(element.get("action_id", "")))}"'
        f' data-value="{escape(str(element.get("value", "")))}"'
        f' data-block-id="{escape(block_id)}"'
    )
    label = text_object(element.get("text"), names)
    if element.get("url"):
        url = str(element["url"])
        if url.lower().startswith(("http://", "https://")):
            attrs += f' data-url="{escape(url)}"'
    confirm = element.get("confirm")
    dialog = confirm_dialog(confirm, style, names) if isinstance(confirm, Mapping) else ""
    return f'<span class="bk-button-wrap"><button {attrs}>{label}</button>{dialog}</span>'


def confirm_dialog(confirm: Mapping[str, Any], style: Any = None, names: Names = _identity) -> str:
    """Slack's confirmation dialog: title, text, a confirm and a deny button."""
    confirm_style = confirm.get("style") or style
    yes_class = "bk-button" + (f" bk-{confirm_style}" if confirm_style in _BUTTON_STYLES else "")
    deny = text_object(confirm.get("deny"), names) or "Cancel"
    return (
        '<dialog class="bk-confirm">'
        f'<h3 class="bk-confirm-title">{text_object(confirm.get("title"), names)}</h3>'
        f'<div class="bk-confirm-text">{text_object(confirm.get("text"), names)}</div>'
        '<div class="bk-confirm-buttons">'
        f'<button type="button" class="bk-button" data-confirm="no">{deny}</button>'
        f'<button type="button" class="{yes_class}" data-confirm="yes">'
        f"{text_object(confirm.get('confirm'), names)}</button>"
        "</div></dialog>"
    )


def render_view(view: Mapping[str, Any], names: Names = _identity) -> str:
    """A modal opened with views.open: title, blocks (inputs included), close and submit."""
    title = text_object(view.get("title"), names)
    close = text_object(view.get("close"), names) or "Cancel"
    submit = view.get("submit")
    submit_button = (
        f'<button type="submit" class="bk-button bk-primary">{text_object(submit, names)}</button>'
        if submit
        else ""
    )
    return (
        f'<form class="bk-modal" data-callback-id="{escape(str(view.get("callback_id", "")))}">'
        f'<h2 class="bk-modal-title">{title}</h2>'
        f'<div class="bk-modal-body">{render_blocks(view.get("blocks"), names)}</div>'
        '<div class="bk-modal-buttons">'
        f'<button type="button" class="bk-button" data-close="1">{close}</button>'
        f"{submit_button}</div></form>"
    )


def _image_element(element: Mapping[str, Any], css: str) -> str:
    # The sandbox works offline: an image is shown by its alt text, never fetched.
    alt = escape(str(element.get("alt_text", "image")))
    return f'<span class="bk-image-alt {css}">[{alt}]</span>'


_RENDERERS: Mapping[str, Callable[[Mapping[str, Any], Names], str]] = {
    "section": _section,
    "header": _header,
    "divider": _divider,
    "context": _context,
    "actions": _actions,
    "image": _image,
    "input": _input,
}
