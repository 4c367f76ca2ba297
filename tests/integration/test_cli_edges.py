"""Small edges of the command line a new user meets first (issue #17, item 5)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.harness import executable

pytestmark = pytest.mark.integration

RUN_UPGRADE_FIRST = "run `approval-bot db upgrade` first"
NEEDS_SCHEME = (
    "must start with redis://, rediss:// or unix:// (for example redis://localhost:6391/0)"
)
SETTINGS = {
    "GITLAB_URL": "http://127.0.0.1:9",
    "GITLAB_TOKEN": "glpat-x",
    "GITLAB_WEBHOOK_SECRET": "hook-secret",
    "SLACK_BOT_TOKEN": "xoxb-x",
    "SLACK_SIGNING_SECRET": "signing-secret",
}


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.run(
        [executable(), *args],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "args", [("ledger", "export", "--format", "json"), ("ledger", "verify")], ids=" ".join
)
def test_the_ledger_before_db_upgrade_says_so_and_creates_nothing(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""  # no stray "[" of a JSON array
    assert done.stderr == (
        f"approval-bot: no ledger in var/approval-bot.db yet: {RUN_UPGRADE_FIRST}\n"
    )
    assert list(tmp_path.iterdir()) == []  # no var/, no empty database file


def test_an_empty_database_file_is_not_a_ledger_either(tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()
    done = run(
        "ledger", "export", "--format", "csv", cwd=tmp_path, DATABASE_URL="sqlite:///empty.db"
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"approval-bot: no ledger in empty.db yet: {RUN_UPGRADE_FIRST}\n"


def test_after_db_upgrade_the_empty_ledger_exports(tmp_path: Path) -> None:
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    done = run("ledger", "export", "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_sandbox_redis_url_without_scheme_says_it_needs_one(tmp_path: Path) -> None:
    done = run("sandbox", "--port", "0", "--redis-url", "localhost:6391", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == f"approval-bot sandbox: --redis-url localhost:6391 {NEEDS_SCHEME}\n"


def test_worker_with_a_redis_url_without_scheme_refuses_to_start(tmp_path: Path) -> None:
    done = run("worker", "--burst", cwd=tmp_path, REDIS_URL="localhost:6391", **SETTINGS)
    assert done.returncode == 2
    assert done.stderr == f"approval-bot: invalid setting REDIS_URL: {NEEDS_SCHEME}\n"
