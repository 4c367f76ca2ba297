"""Tying the people behind a change to Slack users through GitLab's users API and Slack's
users.lookupByEmail, with the real clients against the fake GitLab and Slack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.gitlab import GitLabClient
from bot.identity import ChangePerson, identify
from bot.identity_lookup import IdentityLookups
from bot.simulators.gitlab import FakeGitLab
from bot.simulators.slack import FakeSlack
from bot.slack import SlackClient

DUTIES = ("triggerer", "commit_author", "merge_request_author", "merged_by")


@pytest.fixture
def fakes() -> Iterator[tuple[FakeGitLab, FakeSlack]]:
    with FakeGitLab() as gitlab, FakeSlack() as slack:
        gitlab.users.add(7, "bob", "Bob", public_email="bob@example.com")
        gitlab.users.add(9, "rita", "Rita", public_email="", email="rita@example.com")
        gitlab.users.add(11, "nina", "Nina", public_email="nina@example.com")
        gitlab.users.add(13, "gil", "Gil", public_email="gil+gitlab@example.com")
        slack.add_user("U0BOB", "bob", "bob@example.com")
        slack.add_user("U0RITA", "rita", "rita@example.com")
        slack.add_user("U0NINA", "nina", "nina@example.com")
        slack.add_user("U0GIL", "gil", "gil@example.com")
        slack.add_user("U0BOT", "deploybot", "deploy@example.com", is_bot=True)
        yield gitlab, slack
        assert gitlab.unexpected == []
        assert slack.unexpected == []


def lookups(fakes: tuple[FakeGitLab, FakeSlack]) -> IdentityLookups:
    gitlab, slack = fakes
    return IdentityLookups(
        GitLabClient(gitlab.url, gitlab.token, timeout=5),
        SlackClient(slack.token, slack.api_url, timeout=5, rate_limit_retries=0),
    )


def resolve(found: IdentityLookups, person: ChangePerson, identities=None) -> ChangePerson:
    return found.resolve([person], DUTIES, identities or {})[0]


def test_a_triggerer_is_tied_through_the_public_email_gitlab_verified(fakes) -> None:
    bob = resolve(lookups(fakes), ChangePerson("triggerer", username="BOB"))
    assert bob.username == "BOB"
    assert bob.verified_emails == {"bob@example.com"}
    assert bob.slack_ids == {"U0BOB"}
    assert identify("U0RITA", "rita@example.com", bob, {}) == "different"


def test_a_hidden_email_ties_nobody_for_a_regular_token_but_does_for_an_admins(fakes) -> None:
    rita = ChangePerson("triggerer", username="rita")
    assert resolve(lookups(fakes), rita).slack_ids == frozenset()
    fakes[0].admin = True
    assert resolve(lookups(fakes), rita).slack_ids == {"U0RITA"}


def test_a_commit_email_is_tied_through_the_gitlab_user_who_verified_it(fakes) -> None:
    found = lookups(fakes)
    author = resolve(found, ChangePerson("commit_author", email="Bob@Example.com"))
    assert author.username == "bob"
    assert author.slack_ids == {"U0BOB"}
    # A +tag in the commit: GitLab is asked for the address without it too.
    nina = resolve(found, ChangePerson("commit_author", email="nina+laptop@example.com"))
    assert nina.username == "nina"
    assert nina.slack_ids == {"U0NINA"}


def test_a_plus_tag_on_the_gitlab_side_still_finds_the_slack_user(fakes) -> None:
    gil = resolve(lookups(fakes), ChangePerson("triggerer", username="gil"))
    assert gil.slack_ids == {"U0GIL"}


@pytest.mark.parametrize("email", ["", "[REDACTED]", "rita@laptop", "nobody@example.com"])
def test_a_commit_email_no_gitlab_user_verified_ties_nobody(fakes, email: str) -> None:
    author = resolve(lookups(fakes), ChangePerson("commit_author", email=email))
    assert author.username is None
    assert author.slack_ids == frozenset()
    assert author.unresolved is None


def test_an_identities_entry_needs_no_lookup(fakes) -> None:
    gitlab, slack = fakes
    bob = resolve(lookups(fakes), ChangePerson("triggerer", username="bob"), {"Bob": "U0BOB"})
    assert bob == ChangePerson("triggerer", username="bob")
    assert gitlab.calls == []
    assert slack.calls == []


def test_gitlab_or_slack_errors_leave_the_person_unknown(fakes) -> None:
    gitlab, slack = fakes
    gitlab.fail_next("GET", r"/users", 500)
    bob = resolve(lookups(fakes), ChangePerson("triggerer", username="bob"))
    assert bob.unresolved is not None
    assert "500" in bob.unresolved
    assert identify("U0RITA", "rita@example.com", bob, {}) == "unknown"
    slack.fail_next("users.lookupByEmail", error="ratelimited")
    bob = resolve(lookups(fakes), ChangePerson("triggerer", username="bob"))
    assert bob.unresolved is not None
    assert "ratelimited" in bob.unresolved
    assert identify("U0RITA", "rita@example.com", bob, {}) == "unknown"


def test_a_bot_account_is_no_tie(fakes) -> None:
    fakes[0].users.add(12, "deployer", "Deployer", public_email="deploy@example.com")
    deployer = resolve(lookups(fakes), ChangePerson("triggerer", username="deployer"))
    assert deployer.slack_ids == frozenset()


def test_answers_are_cached_and_errors_are_not(fakes) -> None:
    gitlab, slack = fakes
    found = lookups(fakes)
    gitlab.fail_next("GET", r"/users", 502)
    assert resolve(found, ChangePerson("triggerer", username="bob")).unresolved
    first = resolve(found, ChangePerson("triggerer", username="bob"))
    calls = (len(gitlab.calls), len(slack.calls))
    assert resolve(found, ChangePerson("triggerer", username="bob")) == first
    assert (len(gitlab.calls), len(slack.calls)) == calls
