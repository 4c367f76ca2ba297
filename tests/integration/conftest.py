"""One running bot per database kind, shared by the tests of a module; fakes reset per test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from bot.simulators.audit import FakeAuditApi
from bot.simulators.gitlab import FakeGitLab
from bot.simulators.slack import FakeSlack
from tests.conftest import drop_pg_database, fresh_pg_database, redis_db_url
from tests.integration.harness import Bot, bot_env, seed_users

REDIS_DBS = {"sqlite": 12, "postgresql": 11}


@contextmanager
def running_bot(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    kind: str,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Bot]:
    """Web + worker processes on a fresh database of `kind`, with fake Slack, GitLab and
    audit API servers; SIGTERM at the end must drain both and exit 0."""
    workdir = tmp_path_factory.mktemp(f"bot-{kind}")
    if kind == "sqlite":
        database_url = f"sqlite:///{workdir}/approvals.db"
    else:
        database_url = fresh_pg_database(request.getfixturevalue("pg_server_url"))
    redis_url = redis_db_url(REDIS_DBS[kind])
    redis.Redis.from_url(redis_url).flushdb()
    slack, gitlab, audit = FakeSlack().start(), FakeGitLab().start(), FakeAuditApi().start()
    seed_users(slack, gitlab)
    env = bot_env(workdir, slack, gitlab, database_url, redis_url)
    env["AUDIT_API_URL"] = audit.url
    env.update(extra_env or {})
    bot = Bot(workdir, env, slack, gitlab, audit=audit)
    try:
        bot.start_all()
        yield bot
        codes = bot.stop_all()  # SIGTERM drains and exits 0, as the contract says
        assert set(codes.values()) <= {0}, codes
    finally:
        bot.stop_all()
        slack.stop()
        gitlab.stop()
        audit.stop()
        if kind == "postgresql":
            drop_pg_database(database_url)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def bot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    with running_bot(request, tmp_path_factory, request.param) as running:
        yield running


@pytest.fixture
def live(bot: Bot) -> Iterator[Bot]:
    """The running bot with fresh fake state; fails if a fake saw an unexpected call."""
    bot.slack.reset()
    bot.gitlab.reset()
    seed_users(bot.slack, bot.gitlab)
    yield bot
    assert not bot.slack.unexpected, bot.slack.unexpected
    assert not bot.gitlab.unexpected, bot.gitlab.unexpected
    for name, process in bot.processes.items():
        assert process.poll() is None, f"{name} died:\n{bot.log(name)[-3000:]}"
