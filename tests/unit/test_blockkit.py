"""The sandbox's Block Kit renderer on the bot's real messages (bot/blocks.py), and escaping."""

from __future__ import annotations

from datetime import datetime, timedelta
from html.parser import HTMLParser

import pytest

from bot import blocks
from bot.rollback_blocks import rollback_message
from bot.sandbox.blockkit import render_block, render_blocks, render_message, render_view
from bot.sandbox.mrkdwn import mrkdwn
from bot.store.models import ApprovalRequest, RequestState
from tests.fixtures.messages import Outside, request_of

NOW = datetime(2026, 11, 25, 10, 0)
NAMES = {"U0RM00001": "Rita Release", "U0CO00001": "Colette Compliance"}


def names(user_id: str) -> str:
    return NAMES.get(user_id, user_id)


def approval_request(**overrides: object) -> ApprovalRequest:
    fields: dict[str, object] = {
        "id": "req0123456789abcdef",
        "project_id": 101,
        "project_path": "fintech/payments-api",
        "project_url": "https://gitlab.example.com/fintech/payments-api",
        "pipeline_id": 5001,
        "pipeline_url": "https://gitlab.example.com/fintech/payments-api/-/pipelines/5001",
        "job_id": 9001,
        "job_name": "compliance-gate",
        "ref": "main",
        "sha": "3f5c0a9d2b7e4c1f8a6d9e0b1c2d3e4f5a6b7c8d",
        "commit_title": "Add payment retries",
        "commit_url": "https://gitlab.example.com/fintech/payments-api/-/commit/3f5c0a9d",
        "commit_author_name": "Alice Author",
        "commit_author_email": "alice@example.com",
        "triggered_by_username": "bob",
        "triggered_by_name": "Bob Builder",
        "environment": "production",
        "channel": "C0DEPLOYS",
        "policy_version": "0" * 64,
        "state": RequestState.PENDING,
        "created_at": NOW,
        "expires_at": NOW + timedelta(hours=24),
    }
    fields.update(overrides)
    return ApprovalRequest(**fields)


class Tags(HTMLParser):
    """Every start tag with its attributes, to assert on structure rather than on text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def named(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def pending_html(**overrides: object) -> str:
    approvals = [blocks.ApprovalLine("U0RM00001", "release-manager", NOW)]
    _, message = blocks.request_message(
        approval_request(**overrides), approvals, {"compliance-officer": 1}
    )
    return render_blocks(message, names)


def test_pending_request_shows_headline_fields_links_and_approvals() -> None:
    html = pending_html()
    assert "<b>Deployment approval needed</b> for <b>fintech/payments-api</b>" in html
    assert "<code>main</code>" in html
    assert '<div class="bk-fields">' in html
    assert html.count('<div class="bk-field">') >= 8
    links = {a["href"]: a for a in Tags(html).named("a")}
    pipeline = "https://gitlab.example.com/fintech/payments-api/-/pipelines/5001"
    assert pipeline in links
    assert links[pipeline]["rel"] == "noopener noreferrer"
    assert ">#5001</a>" in html
    # The commit link's label is code-formatted, as Slack shows `sha` inside a link.
    assert "<code>3f5c0a9d</code></a> Add payment retries" in html
    # Mentions are shown by name, and the emoji shortcodes as emoji.
    assert '<span class="bk-mention">@Rita Release</span> as release-manager' in html
    assert "\U0001f512" in html
    assert ":lock:" not in html
    assert "Still needed: 1 compliance-officer" in html


def test_buttons_carry_action_value_and_style() -> None:
    html = pending_html()
    buttons = {
        b["data-action-id"]: b for b in Tags(html).named("button") if b.get("data-action-id")
    }
    assert set(buttons) == {"approve", "reject"}
    assert buttons["approve"]["data-value"] == "req0123456789abcdef"
    assert buttons["reject"]["data-value"] == "req0123456789abcdef"
    assert buttons["approve"]["class"] == "bk-button bk-primary"
    assert buttons["reject"]["class"] == "bk-button bk-danger"
    assert buttons["approve"]["data-block-id"] == "decision"


def test_approve_has_the_confirm_dialog_and_reject_has_none() -> None:
    html = pending_html()
    assert html.count('<dialog class="bk-confirm">') == 1
    approve = html[html.index('data-action-id="approve"') : html.index('data-action-id="reject"')]
    assert '<h3 class="bk-confirm-title">Approve this deployment?</h3>' in approve
    assert "recorded in the sign-off ledger with your name" in approve
    answers = {b["data-confirm"]: b for b in Tags(approve).named("button") if "data-confirm" in b}
    assert set(answers) == {"yes", "no"}
    assert answers["yes"]["class"] == "bk-button bk-primary"  # the button's style carries over
    assert '">Cancel</button>' in approve
    reject = html[html.index('data-action-id="reject"') :]
    assert "bk-confirm" not in reject


@pytest.mark.parametrize(
    "state", [RequestState.PLAYED, RequestState.REJECTED, RequestState.EXPIRED]
)
def test_final_messages_have_no_buttons(state: str) -> None:
    html = pending_html(
        state=state, played_at=NOW, rejected_by="U0CO00001", reject_reason="Not on a Friday"
    )
    assert not Tags(html).named("button")
    assert "bk-actions" not in html
    if state == RequestState.REJECTED:
        assert 'Rejected by <span class="bk-mention">@Colette Compliance</span>' in html
        assert "Not on a Friday" in html


def test_text_from_gitlab_and_slack_cannot_inject_markup() -> None:
    hostile = '"><img src=x onerror=alert(1)> & <script>alert(2)</script>'
    html = pending_html(
        commit_title=hostile,
        commit_author_name='<b onclick="x()">Mallory</b>',
        ref="<svg/onload=alert(3)>",
        project_url="javascript:alert(4)",
    )
    parsed = Tags(html)
    assert not parsed.named("img")
    assert not parsed.named("script")
    assert not parsed.named("svg")
    assert all("onclick" not in attrs and "onerror" not in attrs for _, attrs in parsed.tags)
    assert all(not (a.get("href") or "").startswith("javascript") for a in parsed.named("a"))
    # The bot escapes text from GitLab for Slack (&lt; &gt; &amp;): shown literally, as in
    # Slack, never as markup (regression: it used to reach Slack unescaped, as link tokens).
    assert '</a> "&gt;&lt;img src=x onerror=alert(1)&gt; &amp; &lt;script&gt;alert(2)' in html
    assert '&lt;b onclick="x()"&gt;Mallory&lt;/b&gt;' in html
    assert "<code>&lt;svg/onload=alert(3)&gt;</code>" in html
    assert "<br>fintech/payments-api</div>" in html  # the javascript: link is not a link


def test_reject_modal_renders_title_reason_input_and_buttons() -> None:
    view = blocks.reject_modal("req0123456789abcdef", "fintech/<payments>", 5001)
    html = render_view(view, names)
    parsed = Tags(html)
    assert parsed.named("form")[0]["data-callback-id"] == "reject_reason"
    assert '<h2 class="bk-modal-title">Reject deployment</h2>' in html
    # The project path is outside text: escaped, shown literally (no Slack token).
    assert "Reject <b>fintech/&lt;payments&gt;</b> pipeline #5001?" in html
    area = parsed.named("textarea")[0]
    assert area["data-block-id"] == "reason"
    assert area["data-action-id"] == "reason"
    assert area["maxlength"] == "2000"
    assert "required" in area
    assert "Reason (recorded in the ledger)" in html
    kinds = [b.get("type") for b in parsed.named("button")]
    assert kinds == ["button", "submit"]
    assert '">Cancel</button>' in html
    assert 'class="bk-button bk-primary">Reject</button>' in html


def test_mrkdwn_formats_like_slack() -> None:
    text = (
        "*bold* _italic_ ~gone~ `a*b*c` <https://x.example/?a=1&amp;b=2|the *link*> "
        "<@U0RM00001> <#C0DEPLOYS|deploys> <!here> 5 * 3 * 2 snake_case_name &lt;tag&gt;\n"
        "> quoted :white_check_mark: :not_an_emoji:"
    )
    html = mrkdwn(text, names)
    assert html.startswith("<b>bold</b> <i>italic</i> <s>gone</s> <code>a*b*c</code> ")
    assert '<a href="https://x.example/?a=1&amp;b=2"' in html
    assert ">the <b>link</b></a>" in html
    assert '<span class="bk-mention">@Rita Release</span>' in html
    assert '<span class="bk-mention">#deploys</span>' in html
    assert '<span class="bk-mention">@here</span>' in html
    assert "5 * 3 * 2 snake_case_name &lt;tag&gt;<br>" in html
    assert '<span class="bk-quote">quoted \u2705 :not_an_emoji:</span>' in html


def test_mrkdwn_code_blocks_and_unsafe_links() -> None:
    html = mrkdwn("```\nSELECT * FROM t;\n<b>\n``` <javascript:alert(1)|click>", names)
    assert html.startswith("<pre>SELECT * FROM t;\n&lt;b&gt;</pre>")
    assert html.endswith(" click")
    assert "<a " not in html


def test_other_block_types_and_fallback_text() -> None:
    html = render_blocks(
        [
            {"type": "header", "text": {"type": "plain_text", "text": "Deploy <now>"}},
            {"type": "divider"},
            {
                "type": "context",
                "elements": [
                    {"type": "image", "image_url": "https://x.example/a.png", "alt_text": "logo"},
                    {"type": "plain_text", "text": "*not bold*"},
                ],
            },
            {"type": "rich_text", "elements": []},
        ],
        names,
    )
    assert '<h3 class="bk-header">Deploy &lt;now&gt;</h3>' in html
    assert '<hr class="bk-divider">' in html
    assert "[logo]" in html
    assert "<img" not in html  # the sandbox works offline: images are never fetched
    assert "*not bold*" in html
    assert "not shown in the sandbox: rich_text" in html
    fallback = render_message("plain *fallback*", None, names)
    assert fallback == '<div class="bk-section">plain <b>fallback</b></div>'


def test_section_accessory_button_keeps_its_block_id() -> None:
    block = {
        "type": "section",
        "block_id": "rollback",
        "text": {"type": "mrkdwn", "text": "Roll back?"},
        "accessory": {
            "type": "button",
            "action_id": "rollback",
            "value": "r1",
            "text": {"type": "plain_text", "text": "Roll back"},
            "style": "danger",
            "confirm": {
                "title": {"type": "plain_text", "text": "Sure?"},
                "text": {"type": "plain_text", "text": "This <deploys>."},
                "confirm": {"type": "plain_text", "text": "Yes"},
                "deny": {"type": "plain_text", "text": "No"},
            },
        },
    }
    html = render_block(block, names)
    button = next(b for b in Tags(html).named("button") if b.get("data-action-id"))
    assert button["data-block-id"] == "rollback"
    assert button["class"] == "bk-button bk-danger"
    assert "This &lt;deploys&gt;." in html
    assert 'class="bk-button bk-danger" data-confirm="yes">Yes</button>' in html


def _rollback_reply(state: str, facts: dict[str, str]) -> str:
    request = request_of(Outside(), state=RequestState.PLAYED, rollback_state=state)
    _, built = rollback_message(request, "offer", facts, [], {})
    return str(built)


def test_a_rollback_nobody_may_press_says_so_and_a_withdrawn_one_has_no_button() -> None:
    nobody = _rollback_reply("offered", {"job": "rollback:production", "who": ""})
    assert "nobody in the rollback roles can press it" in nobody
    assert "policy explain --rollback" in nobody
    withdrawn = _rollback_reply("superseded", {"job": "rollback:production", "newer": "5002"})
    assert "Roll back withdrawn" in withdrawn
    assert "pipeline #5002" in withdrawn
    assert "'action_id': 'rollback'" not in withdrawn
