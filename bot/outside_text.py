"""Text from outside the bot (GitLab: project paths, refs, commit titles, author names, job
names, environments, error texts; people: Slack names, reject reasons), made safe for where
it lands. One function per destination; every message the bot sends builds its outside
parts here, so none of them can mention, link or reformat on its own.

- Slack mrkdwn (Block Kit text objects, and the `text` of messages, which Slack parses the
  same way): `&`, `<` and `>` are the only control characters and are escaped as Slack asks
  (https://api.slack.com/reference/surfaces/formatting#escaping), so `<!channel>`,
  `<@U…>`, `<#C…>`, `<!subteam^S…>` and `<http://x|y>` stay text. Mentions and links the
  bot means are built here too, from IDs and URLs it checked. Bare URLs, `@here` and
  `#channel` are not turned into links or mentions because every mrkdwn object the bot
  builds is `verbatim` and every message is posted with `parse: none` (no `link_names`).
- Slack plain_text (modal titles, buttons): nothing is parsed there; only its lengths are
  limited (titles and modal buttons 24 characters, buttons 75).
- GitLab Markdown (notes, commit comments): outside text goes in a code span whose backtick
  fence is longer than any run of backticks in it, on one line, so no mention (`@all`,
  `@group`), reference (`#1`, `!1`, `~x`, `%x`, `$1`, `&1`), link, image, autolink, HTML
  tag, emphasis, heading or quote can form: GitLab ignores references inside `code`.
- GitLab commit status descriptions (plain text, at most 255 characters).

Everywhere: invisible characters that can disguise text (zero-width characters, bidi
overrides and isolates, soft hyphens) and control characters are removed.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit

from bot.blockkit_fit import clip_mrkdwn

# Zero-width characters, bidi marks/embeddings/overrides/isolates, word joiner and
# invisible operators, BOM, soft hyphen, Mongolian vowel separator.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAK = re.compile("\r\n|[\r\n\t\u2028\u2029\x85]")
_BACKTICKS = re.compile("`+")
_SLACK_ID = re.compile(r"[A-Z][A-Z0-9]{2,31}")
# What may stay unescaped in a link target: RFC 3986 reserved and unreserved characters,
# less `|` (Slack's label separator) and the three Slack control characters.
_URL_SAFE = ":/?#[]@!$&'()*+,;=-._~%"
ELLIPSIS = "…"

# Slack's limits (Block Kit reference): text objects of sections and contexts 3000
# characters, section fields 2000, button text 75, modal title/submit/close 24.
SLACK_TEXT_LIMIT = 3000
SLACK_FIELD_LIMIT = 2000
SLACK_BUTTON_LIMIT = 75
SLACK_MODAL_TITLE_LIMIT = 24
# A value inside a longer text (a name, a title) is clipped well below the block limits.
VALUE_LIMIT = 300
GITLAB_STATUS_LIMIT = 255
# Look-alikes that keep a plain-text status readable without forming a mention, link or tag
# anywhere it might be rendered as Markdown.
_STATUS_LOOKALIKES = str.maketrans(
    {"@": "\uff20", "[": "\uff3b", "]": "\uff3d", "<": "\u2039", ">": "\u203a"}
)


def clean(text: str | None, *, multiline: bool = False, limit: int | None = VALUE_LIMIT) -> str:
    """Outside text without invisible or control characters; on one line unless
    `multiline`; at most `limit` characters (clipped with an ellipsis)."""
    if not text:
        return ""
    text = _INVISIBLE.sub("", text)
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    else:
        text = _LINE_BREAK.sub(" ", text)
    text = _CONTROL.sub("", text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + ELLIPSIS
    return text


# --- Slack mrkdwn ----------------------------------------------------------------------------


def slack_mrkdwn(
    text: str | None, *, multiline: bool = False, limit: int | None = VALUE_LIMIT
) -> str:
    """Outside text inside Slack mrkdwn: `&`, `<` and `>` escaped."""
    cleaned = clean(text, multiline=multiline, limit=limit)
    return cleaned.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_format(template: str, **outside: object) -> str:
    """A bot template (mrkdwn, trusted) filled with outside values, each escaped."""
    return template.format(**{name: slack_mrkdwn(str(value)) for name, value in outside.items()})


def slack_fallback(text: str | None, *, limit: int | None = VALUE_LIMIT) -> str:
    """Outside text inside a message's `text` (notifications, and the fallback of clients
    without blocks): Slack parses it as mrkdwn, so it is escaped the same way."""
    return slack_mrkdwn(text, limit=limit)


def slack_code(text: str | None, *, empty: str = "?", limit: int | None = VALUE_LIMIT) -> str:
    """Outside text as inline code (`text`). Slack has no escape for a backtick, so one in
    the text becomes a look-alike (U+02CB) instead of ending the code early."""
    inner = slack_mrkdwn(text, limit=limit).replace("`", "\u02cb")
    return f"`{inner or empty}`"


def slack_preformatted(text: str | None, *, limit: int | None = SLACK_TEXT_LIMIT - 100) -> str:
    """Outside text as a code block (```…```), kept on its lines."""
    inner = slack_mrkdwn(text, multiline=True, limit=limit).replace("`", "\u02cb")
    if limit is not None:  # escaping can make it longer: clipped again, on whole entities
        inner = clip_mrkdwn(inner, limit)
    return f"```\n{inner}\n```"


def slack_url(url: str | None) -> str | None:
    """A link target Slack reads as one URL (http or https only), or None."""
    if not url:
        return None
    url = clean(url, limit=2000)
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    if scheme not in ("http", "https"):
        return None
    return quote(url, safe=_URL_SAFE).replace("&", "&amp;")


def slack_link(url: str | None, label: str | None, *, label_is_mrkdwn: bool = False) -> str:
    """`<url|label>`; just the label when the URL is unusable. The label is outside text
    unless `label_is_mrkdwn` (already built from escaped parts)."""
    shown = (label or "") if label_is_mrkdwn else slack_mrkdwn(label)
    target = slack_url(url)
    return f"<{target}|{shown}>" if target and shown else shown


def slack_user(user_id: str | None) -> str:
    """A mention of a Slack user the bot identified (an ID, never a name)."""
    return _slack_ref("@", user_id)


def slack_channel(channel_id: str | None) -> str:
    return _slack_ref("#", channel_id)


def slack_usergroup(group_id: str | None) -> str:
    return _slack_ref("!subteam^", group_id)


def _slack_ref(kind: str, value: str | None) -> str:
    if value and _SLACK_ID.fullmatch(value):
        return f"<{kind}{value}>"
    return slack_mrkdwn(value) or "?"


def mrkdwn_object(text: str) -> dict[str, Any]:
    """A mrkdwn text object that Slack does not pre-process (no auto-linked URLs, channel
    names or mentions): only the markup the bot wrote is live."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


# --- Slack plain_text -------------------------------------------------------------------------


def slack_plain(text: str | None, *, limit: int = SLACK_BUTTON_LIMIT) -> str:
    """Outside (or fixed) text in a plain_text object: not parsed by Slack, so only
    cleaned and clipped to the object's limit."""
    return clean(text, limit=limit)


def plain_object(text: str, *, limit: int = SLACK_BUTTON_LIMIT) -> dict[str, Any]:
    return {"type": "plain_text", "text": slack_plain(text, limit=limit)}


# --- GitLab ----------------------------------------------------------------------------------


def gitlab_markdown(text: str | None, *, empty: str = "?", limit: int | None = VALUE_LIMIT) -> str:
    """Outside text inside a GitLab note or commit comment: a code span on one line, its
    fence longer than any backtick run in the text, padded so a backtick at either end
    cannot join the fence (CommonMark strips one space from each side)."""
    inner = clean(text, limit=limit) or empty
    longest = max((len(run) for run in _BACKTICKS.findall(inner)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {inner} {fence}"


def gitlab_status(text: str | None, *, limit: int = GITLAB_STATUS_LIMIT) -> str:
    """A commit status description: one line of plain text, at most 255 characters, with
    look-alikes for the characters that would form a mention, link or tag if rendered."""
    return clean(text, limit=None).translate(_STATUS_LOOKALIKES)[:limit]
