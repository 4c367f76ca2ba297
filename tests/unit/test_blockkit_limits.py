"""Every message the bot sends keeps within Slack's documented Block Kit limits (issue #14
item 4), checked by the product's own validator (bot.blockkit_limits) over the message
catalog, for ordinary, huge and hostile inputs."""

from __future__ import annotations

from dataclasses import fields

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.blockkit_limits import message_problems, mrkdwn_texts, view_problems
from tests.fixtures.messages import (
    ORDINARY,
    Outside,
    Rendered,
    Scale,
    SlackMessage,
    SlackView,
    every_message,
)

HUGE = Scale(
    commits=300,
    commits_total=1200,
    jobs=400,
    flags=40,
    approvers=60,
    revoked=30,
    reasons=20,
    missing=40,
)
LINKY = "<https://evil.example/" + "a" * 80 + "|click> & <!channel> "


def problems_of(item: Rendered) -> list[str]:
    if isinstance(item, SlackMessage):
        return message_problems(item.text, item.blocks or None)
    if isinstance(item, SlackView):
        return view_problems(item.view)
    return []


def all_problems(outside: Outside, scale: Scale = ORDINARY) -> list[str]:
    return [
        f"{kind}: {problem}"
        for kind, item in every_message(outside, scale)
        for problem in problems_of(item)
    ]


def everywhere(text: str) -> Outside:
    return Outside(**{f.name: text for f in fields(Outside)})


def request_blocks(outside: Outside, scale: Scale) -> list[dict[str, object]]:
    item = next(item for kind, item in every_message(outside, scale) if kind == "request message")
    assert isinstance(item, SlackMessage)
    return item.blocks


def test_every_message_kind_is_within_the_limits() -> None:
    assert all_problems(Outside()) == []


def test_huge_lists_long_unicode_and_links_everywhere_stay_within_the_limits() -> None:
    assert all_problems(everywhere("Zahlungsüberweisung 🚀 " * 200), HUGE) == []
    assert all_problems(everywhere(LINKY * 50), HUGE) == []
    assert all_problems(everywhere("&" * 5000), HUGE) == []


def test_a_commit_without_title_and_a_7000_character_message_fits_its_field() -> None:
    scale = Scale(commit_message="Refactor the ledger " * 350)
    assert all_problems(Outside(), scale) == []
    evidence = request_blocks(Outside(), scale)[1]
    commit = next(f["text"] for f in evidence["fields"] if f["text"].startswith("*Commit*"))
    assert len(commit) <= 2000
    assert commit.endswith("…")


def test_long_lists_are_cut_on_whole_links_and_say_how_many_more() -> None:
    blocks = request_blocks(Outside(), HUGE)
    changes = next(b["text"]["text"] for b in blocks if b.get("block_id") == "changes")
    jobs = next(b["text"]["text"] for b in blocks if b.get("block_id") == "jobs")
    shown_commits = changes.count("• ")
    assert 0 < shown_commits < 300
    assert f"…and {1200 - shown_commits} more" in changes
    shown_jobs = jobs.count(":x:")
    assert 0 < shown_jobs < 400
    assert jobs.endswith(f"…and {400 - shown_jobs} more jobs")
    for text in mrkdwn_texts(blocks):
        assert text.count("<") == text.count(">")


def test_the_validator_finds_what_slack_refuses() -> None:
    cut_link = {"type": "section", "text": {"type": "mrkdwn", "text": "a <https://x|lab"}}
    long_field = {"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]}
    button = {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": "a" * 256,
                "text": {"type": "plain_text", "text": "b" * 76},
            }
        ],
    }
    assert message_problems("fine", []) == [
        "blocks: empty list (omit `blocks` for a text-only message)"
    ]
    assert len(message_problems("fine", [cut_link])) == 1
    assert len(message_problems("fine", [long_field])) == 1
    assert len(message_problems("fine", [button])) == 2
    assert len(message_problems("fine", [{"type": "divider"}] * 51)) == 1
    assert message_problems("a & b", None) == ["text: broken markup at 2: '& b'"]


# Text as it reaches the bot: decoded from UTF-8 JSON, so never a lone surrogate.
_unicode = st.characters(blacklist_categories=("Cs",))
outside_text = st.text(
    alphabet=st.one_of(_unicode, st.sampled_from(["<", ">", "&", "`", "|", "*"])),
    max_size=400,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries({f.name: outside_text for f in fields(Outside)}),
    st.builds(
        Scale,
        commits=st.integers(0, 300),
        jobs=st.integers(0, 400),
        flags=st.integers(0, 30),
        approvers=st.integers(0, 80),
        revoked=st.integers(0, 30),
        reasons=st.integers(0, 20),
        missing=st.integers(0, 30),
        commit_message=st.one_of(st.just(""), st.text(_unicode, min_size=1, max_size=7000)),
    ),
)
def test_any_input_stays_within_the_limits(values: dict[str, str], scale: Scale) -> None:
    assert all_problems(Outside(**values), scale) == []
