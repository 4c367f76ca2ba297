"""`make sandbox REDIS_URL=…` beside a real bot on the same Redis: the sandbox takes its own
database (15), so its counters stay out of the real bot's /metrics, and it refuses a
database holding someone else's data (issue #17, item 2). Also: /metrics says its charset
once (item 5)."""

from __future__ import annotations

import pytest

from tests.integration.namespaces import on_a_fresh_machine

pytestmark = pytest.mark.integration


def test_the_sandbox_keeps_to_its_own_database_beside_a_real_bot() -> None:
    seen = on_a_fresh_machine("sandbox-shared")

    assert seen["refused_status"] == 2
    refused = seen["refused"].strip().splitlines()
    assert len(refused) == 1, seen["refused"]
    assert "Redis database 14 at 127.0.0.1:6379 holds data that is not the sandbox's" in refused[0]

    assert "(Redis 127.0.0.1:6379/15)" in seen["stderr"]
    assert seen["webhook_status"] == 202
    assert seen["played"] is True
    assert seen["signoff_names_both"] is True
    assert seen["sandbox_db_plays"] == {'["played"]': "1"}
    assert seen["real_bot_plays"] == []  # nothing of the sandbox's in the real /metrics

    content_type = seen["metrics_content_type"]
    assert content_type.startswith("text/plain; version=")
    assert content_type.count("charset=") == 1, content_type
    assert seen["make_status"] == -2  # make re-raises the Ctrl-C; the sandbox exited 0
    assert "Traceback" not in seen["stderr"]
