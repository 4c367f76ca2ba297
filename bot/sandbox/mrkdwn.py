"""Slack mrkdwn text -> safe HTML, as the Slack client shows it.

Everything that reaches the output is escaped first; only the markup this module
writes itself is HTML. Links keep only http(s) and mailto targets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from html import escape

# Slack's own entities in message text (apps must write &, <, > this way).
_SLACK_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))
# Code first (nothing inside code is formatted), then <...> tokens Slack resolves.
_TOKENS = re.compile(r"```(?P<pre>.+?)```|`(?P<code>[^`\n]+)`|<(?P<angle>[^<>\n]+)>", re.S)
_LABEL_TOKENS = re.compile(r"`(?P<code>[^`\n]+)`")  # a link's label: formatting, no links
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")
# *bold*, _italic_, ~strike~: the marker hugs non-space text and is not inside a word.
_STYLES = (
    ("*", "b"),
    ("_", "i"),
    ("~", "s"),
)
_SAFE_SCHEMES = ("http://", "https://", "mailto:")

EMOJI: Mapping[str, str] = {
    "white_check_mark": "\u2705",
    "heavy_check_mark": "\u2714\ufe0f",
    "x": "\u274c",
    "grey_question": "\u2754",
    "grey_exclamation": "\u2755",
    "no_entry": "\u26d4",
    "no_entry_sign": "\U0001f6ab",
    "hourglass": "\u231b",
    "hourglass_flowing_sand": "\u23f3",
    "fast_forward": "\u23e9",
    "heavy_minus_sign": "\u2796",
    "gear": "\u2699\ufe0f",
    "lock": "\U0001f512",
    "unlock": "\U0001f513",
    "warning": "\u26a0\ufe0f",
    "rotating_light": "\U0001f6a8",
    "bell": "\U0001f514",
    "link": "\U0001f517",
    "rewind": "\u23ea",
    "memo": "\U0001f4dd",
    "mag": "\U0001f50d",
    "eyes": "\U0001f440",
    "red_circle": "\U0001f534",
    "large_green_circle": "\U0001f7e2",
    "large_yellow_circle": "\U0001f7e1",
    "information_source": "\u2139\ufe0f",
    "rocket": "\U0001f680",
    "leftwards_arrow_with_hook": "\u21a9\ufe0f",
}
_EMOJI_CODE = re.compile(r":([a-z0-9_+-]+):")

Names = Callable[[str], str]


def _style_pattern(marker: str) -> re.Pattern[str]:
    m = re.escape(marker)
    return re.compile(rf"(?<![\w{m}]){m}(?=\S)([^\n{m}]*?\S){m}(?![\w{m}])")


_STYLE_PATTERNS = [(_style_pattern(marker), tag) for marker, tag in _STYLES]


def unslack(text: str) -> str:
    """Undo Slack's &lt; &gt; &amp; so the text is escaped exactly once for HTML."""
    for entity, char in _SLACK_ENTITIES:
        text = text.replace(entity, char)
    return text


def emojify(escaped: str) -> str:
    """Known :shortcodes: -> emoji; unknown ones stay as typed."""
    return _EMOJI_CODE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), escaped)


def plain_text(text: str, *, emoji: bool = True) -> str:
    """A plain_text object's text: escaped, newlines kept, no formatting."""
    html = escape(text).replace("\n", "<br>")
    return emojify(html) if emoji else html


def mrkdwn(text: str, names: Names, *, links: bool = True) -> str:
    """Render Slack mrkdwn; `names(user_id)` gives the display name for <@U…> mentions."""
    tokens: list[str] = []

    def stash(match: re.Match[str]) -> str:
        tokens.append(_token(match, names))
        return f"\x00{len(tokens) - 1}\x00"

    # NULs cannot come from Slack text; dropping them keeps placeholders unambiguous.
    body = (_TOKENS if links else _LABEL_TOKENS).sub(stash, text.replace("\x00", ""))
    html = emojify(escape(unslack(body), quote=False))
    for pattern, tag in _STYLE_PATTERNS:
        html = pattern.sub(rf"<{tag}>\1</{tag}>", html)
    html = _quotes(html).replace("\n", "<br>")
    return _PLACEHOLDER.sub(lambda m: tokens[int(m.group(1))], html)


def _quotes(html: str) -> str:
    """Lines starting with "> " (escaped as &gt;) become block quotes."""
    lines = html.split("\n")
    out = [
        f'<span class="bk-quote">{line[5:].lstrip()}</span>' if line.startswith("&gt; ") else line
        for line in lines
    ]
    return "\n".join(out)


def _token(match: re.Match[str], names: Names) -> str:
    found = match.groupdict()
    if found.get("pre") is not None:
        return f"<pre>{escape(unslack(found['pre']).strip(chr(10)))}</pre>"
    if found.get("code") is not None:
        return f"<code>{escape(unslack(found['code']))}</code>"
    return _angle(found["angle"], names)


def _angle(inner: str, names: Names) -> str:
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return f'<span class="bk-mention">@{escape(names(target[1:]))}</span>'
    if target.startswith("#"):
        channel = label or target[1:]
        return f'<span class="bk-mention">#{escape(unslack(channel))}</span>'
    if target.startswith("!"):
        special = target[1:].split("^", 1)[0]
        if special.startswith("subteam"):
            return f'<span class="bk-mention">@{escape(unslack(label or "group"))}</span>'
        return f'<span class="bk-mention">@{escape(label or special)}</span>'
    url = unslack(target)
    shown = mrkdwn(label, names, links=False) if label else escape(url)
    if not url.lower().startswith(_SAFE_SCHEMES):
        return shown  # javascript: and other schemes are shown, never linked
    return f'<a href="{escape(url)}" target="_blank" rel="noopener noreferrer">{shown}</a>'
