"""Fitting mrkdwn into Slack's Block Kit limits without breaking its markup.

Text the bot builds is mrkdwn: links and mentions (`<url|label>`, `<@U…>`), entities
(`&amp;`, `&lt;`, `&gt;`) and code spans. Clipping it by characters can cut a link in
half (Slack then shows the raw `<https://…` or refuses the block) or leave a bare `&`.
Here text is clipped on whole tokens, and lists are cut on whole items with
"…and N more".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

ELLIPSIS = "…"

# One mrkdwn token: a link or mention, an entity, or any other single character.
_TOKEN = re.compile(r"<[^<>]*>|&(?:amp|lt|gt);|.", re.DOTALL)
MORE_ITEMS = "…and {n} more"


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _label_of(link: str) -> str | None:
    """The label of a `<url|label>` link (already mrkdwn), or None for a mention."""
    target, bar, label = link[1:-1].partition("|")
    if not bar or target.startswith(("@", "#", "!")):
        return None
    return label


def clip_mrkdwn(text: str, limit: int) -> str:
    """`text` if it fits, else its longest prefix of whole tokens plus "…", at most
    `limit` characters. A link that no longer fits is replaced by its label; an open code
    span is closed so the rest of the message does not turn into code."""
    if len(text) <= limit:
        return text
    kept: list[str] = []
    size = 0
    budget = limit - len(ELLIPSIS) - 1  # room for the ellipsis and a closing backtick
    pending = _tokens(text)
    while pending:
        token = pending.pop(0)
        if size + len(token) > budget:
            label = _label_of(token) if token.startswith("<") else None
            if label is None:
                break
            pending = _tokens(label) + pending  # the label's words still fit, maybe
            continue
        kept.append(token)
        size += len(token)
    clipped = "".join(kept) + ELLIPSIS
    if sum(piece == "`" for piece in kept) % 2:
        clipped += "`"
    return clipped


def fit_items(
    items: Sequence[str],
    budget: int,
    *,
    separator: str = "\n",
    hidden: int = 0,
    more: str = MORE_ITEMS,
) -> str:
    """As many whole `items` as fit in `budget` characters, joined by `separator`, then
    `more` (formatted with n: the items left out plus `hidden` ones never given) when any
    are missing. An item longer than the whole budget is clipped on its tokens."""
    shown: list[str] = []
    used = 0
    for item in items:
        grown = used + (len(separator) if shown else 0) + len(item)
        if grown + _tail(items, len(shown) + 1, hidden, separator, more) > budget:
            break
        shown.append(item)
        used = grown
    if not shown and items:  # not even one whole item: part of it rather than nothing
        room = budget - _tail(items, 1, hidden, separator, more)
        shown.append(clip_mrkdwn(items[0], max(room, 2)))
    missing = len(items) - len(shown) + hidden
    return separator.join([*shown, more.format(n=missing)] if missing else shown)


def _tail(items: Sequence[str], shown: int, hidden: int, separator: str, more: str) -> int:
    """The length of the "…and N more" line when `shown` items are shown."""
    missing = len(items) - shown + hidden
    return len(separator) + len(more.format(n=missing)) if missing else 0
