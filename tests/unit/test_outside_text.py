"""No outside string (GitLab facts, Slack names, reject reasons) can produce a Slack mention
or link, or a GitLab mention or link, in any message the bot sends (tests/fixtures/messages
builds each kind with the bot's own code)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.outside_text import (
    gitlab_markdown,
    gitlab_status,
    slack_code,
    slack_link,
    slack_mrkdwn,
    slack_plain,
    slack_user,
)
from tests.fixtures.live_markup import (
    block_problems,
    code_spans,
    gitlab_problems,
    slack_problems,
    slack_texts,
    status_problems,
)
from tests.fixtures.messages import (
    CHANNEL,
    GITLAB,
    POLICY,
    USERS,
    GitLabNote,
    GitLabStatus,
    Outside,
    SlackMessage,
    SlackView,
    every_message,
)

HOSTILE = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!here|here>",
    "<@U0RM00001>",
    "<@W0ABCDEF|boss>",
    "<#C0DEPLOYS>",
    "<!subteam^S0RELEASE>",
    "<http://evil.example|Approve here>",
    "<https://evil.example>",
    f"<{GITLAB}/-/jobs/1|looks trusted>",
    "&lt;!channel&gt;",
    "&amp;lt;!here&amp;gt;",
    "&",
    "<",
    ">",
    "|",
    "@all",
    "@here",
    "@channel",
    "@fintech/release-managers",
    "@all see [SSO login](https://evil.example)",
    "[SSO login](https://evil.example)",
    "![x](https://evil.example/p.png)",
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "<https://evil.example/autolink>",
    "https://evil.example/login",
    "www.evil.example",
    "`",
    "``",
    "```",
    "` @all `",
    "`` @all ``",
    "#123",
    "!45",
    "~release",
    '%"Q1"',
    "$12",
    "&3",
    "*bold* _it_ ~strike~",
    "> quote",
    "# heading",
    "\n\n@all",
    "\r\n# x",
    "\\`",
    "\u202eevil\u202c",
    "\u2066rtl\u2069",
    "a\u200db\u200bc\ufeff",
    "\u05e2\u05e8\u05d1",  # right-to-left text
    "😀" * 400,
    "x" * 4000,
    ":rotating_light:",
    "{+ added +}",
    "[[_TOC_]]",
    "$`a^2`$",
]
KNOWN: dict[str, Any] = {
    "users": {*USERS, *POLICY.admins, *(m for r in POLICY.roles.values() for m in r.members)},
    "channels": {CHANNEL},
    "groups": {g for r in POLICY.roles.values() for g in r.usergroups},
    "url_prefixes": (GITLAB,),
}
hostile = st.lists(
    st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12)), min_size=1, max_size=5
).map("".join)


def problems_in(outside: Outside) -> list[str]:
    found = []
    for kind, item in every_message(outside):
        if isinstance(item, SlackMessage):
            found += [f"{kind}: {p}" for p in slack_problems(item.text, **KNOWN)]
            found += [f"{kind}: {p}" for p in block_problems(item.blocks, **KNOWN)]
        elif isinstance(item, SlackView):
            found += [f"{kind}: {p}" for p in block_problems(item.view, **KNOWN)]
            if len(item.view["title"]["text"]) > 24:
                found.append(f"{kind}: modal title over 24 characters")
        elif isinstance(item, GitLabNote):
            found += [f"{kind}: {p}" for p in gitlab_problems(item.text)]
        elif isinstance(item, GitLabStatus):
            found += [f"{kind}: {p}" for p in status_problems(item.description)]
    return found


def everywhere(text: str) -> Outside:
    return Outside(**{f.name: text for f in fields(Outside)})


def test_the_catalog_is_clean_for_ordinary_input() -> None:
    assert problems_in(Outside()) == []
    assert len(every_message(Outside())) >= 35


@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_string_everywhere_makes_nothing_live(text: str) -> None:
    assert problems_in(everywhere(text)) == []


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({f.name: hostile for f in fields(Outside)}))
def test_hostile_strings_in_every_field_make_nothing_live(values: dict[str, str]) -> None:
    assert problems_in(Outside(**values)) == []


@given(hostile, hostile)
def test_a_link_keeps_its_target_and_its_label_inert(url: str, label: str) -> None:
    for target in (url, f"{GITLAB}/{url}"):
        link = slack_link(target, label)
        assert slack_problems(link, **KNOWN) == [] or not link.startswith(f"<{GITLAB}")
        if link.startswith("<"):
            inner = link[1:-1]
            assert "<" not in inner
            assert ">" not in inner
            assert not any(c.isspace() for c in inner.split("|", 1)[0])


@given(hostile)
def test_gitlab_code_span_holds_the_whole_text(text: str) -> None:
    outside, spans = code_spans(f"by {gitlab_markdown(text)} end")
    assert outside == ["by ", " end"]
    assert len(spans) == 1


def test_each_destination_by_example() -> None:
    assert slack_mrkdwn("<!channel> & co") == "&lt;!channel&gt; &amp; co"
    assert slack_mrkdwn("a\nb\u202e") == "a b"
    assert slack_code("a`b") == "`a\u02cbb`"
    assert slack_code(None) == "`?`"
    assert slack_link("javascript:alert(1)", "x") == "x"
    assert slack_link("https://g.example/a b|c>", "<d>") == (
        "<https://g.example/a%20b%7Cc%3E|&lt;d&gt;>"
    )
    assert slack_user("U0RM00001") == "<@U0RM00001>"
    assert slack_user("U1> <!channel") == "U1&gt; &lt;!channel"
    assert slack_plain("Reject deployment of a long name", limit=24) == "Reject deployment of a …"
    assert gitlab_markdown("@all") == "` @all `"
    assert gitlab_markdown("a``b") == "``` a``b ```"
    assert gitlab_markdown("x\n\n@all") == "` x  @all `"
    assert gitlab_status("Rejected: @all [x](y) <b>") == "Rejected: ＠all ［x］(y) ‹b›"  # noqa: RUF001


def test_every_mrkdwn_object_in_the_catalog_is_verbatim() -> None:
    for _, item in every_message(Outside()):
        blocks = item.blocks if isinstance(item, SlackMessage) else getattr(item, "view", None)
        for kind, obj in slack_texts(blocks):
            assert kind == "plain_text" or obj.get("verbatim") is True
