"""The `approval-bot` command as an operator uses it."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import requests

from tests.integration.harness import FIXTURES, executable, free_port, wait_until

pytestmark = pytest.mark.integration

REQUIRED = {
    "GITLAB_URL": "http://127.0.0.1:9",
    "GITLAB_TOKEN": "glpat-x",
    "GITLAB_WEBHOOK_SECRET": "hook-secret",
    "SLACK_BOT_TOKEN": "xoxb-x",
    "SLACK_SIGNING_SECRET": "signing-secret",
}


def run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60):
    base = {k: v for k, v in os.environ.items() if k not in REQUIRED}
    return subprocess.run(
        [executable(), *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_config_check_valid(tmp_path: Path) -> None:
    result = run("config", "check", "--policy", str(FIXTURES / "approvers.yml"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_config_check_default_path_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "approvers.yml").write_bytes((FIXTURES / "approvers.yml").read_bytes())
    assert run("config", "check", cwd=tmp_path).returncode == 0


def test_config_check_invalid_prints_file_line_reason(tmp_path: Path) -> None:
    policy = tmp_path / "bad.yml"
    policy.write_text(
        "version: 1\n"
        "roles:\n"
        "  release-manager:\n"
        "    members: [U0RM00001]\n"
        "gates:\n"
        "  - project: fintech/payments-api\n"
        "    require:\n"
        "      - role: release-managr\n"
        "        count: 1\n"
    )
    result = run("config", "check", "--policy", str(policy), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stdout.strip().splitlines()
    assert any(line.startswith(f"{policy}:8:") and "release-managr" in line for line in lines)
    assert any("channel" in line for line in lines)
    assert "Traceback" not in result.stdout + result.stderr


def test_config_check_missing_file(tmp_path: Path) -> None:
    result = run("config", "check", "--policy", str(tmp_path / "nope.yml"), cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.yml" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("command", [["web"], ["worker", "--burst"]])
def test_missing_settings_exit_2_with_one_line_each(tmp_path: Path, command: list[str]) -> None:
    result = run(*command, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert sorted(lines) == sorted(f"approval-bot: missing required setting {n}" for n in REQUIRED)


@pytest.mark.parametrize("command", [["web"], ["worker", "--burst"]])
def test_invalid_policy_refuses_to_start(tmp_path: Path, command: list[str]) -> None:
    policy = tmp_path / "p.yml"
    policy.write_text("version: 2\n")
    result = run(*command, cwd=tmp_path, env={**REQUIRED, "APPROVAL_POLICY": str(policy)})
    assert result.returncode == 2
    assert "invalid approver policy" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_setting_is_named(tmp_path: Path) -> None:
    env = {**REQUIRED, "GITLAB_URL": "gitlab.example.com", "MAX_BODY_BYTES": "lots"}
    result = run("web", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "invalid setting GITLAB_URL" in result.stderr
    assert "invalid setting MAX_BODY_BYTES" in result.stderr


def test_secrets_never_appear_in_errors(tmp_path: Path) -> None:
    env = {**REQUIRED, "GITLAB_URL": "nope", "SLACK_SIGNING_SECRET": "s3cr3t-value-xyz"}
    result = run("web", cwd=tmp_path, env=env)
    assert "s3cr3t-value-xyz" not in result.stdout + result.stderr


def test_db_upgrade_is_idempotent_and_ledger_commands_work_on_an_empty_db(tmp_path: Path) -> None:
    for _ in range(2):
        result = run("db", "upgrade", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "var").is_dir()
    verify = run("ledger", "verify", cwd=tmp_path)
    assert verify.returncode == 0
    assert "intact" in verify.stdout
    assert run("ledger", "export", "--format", "json", cwd=tmp_path).stdout.strip() == "[]"
    out = tmp_path / "evidence.csv"
    assert (
        run("ledger", "export", "--format", "csv", "--output", str(out), cwd=tmp_path).returncode
        == 0
    )
    assert out.read_text().startswith("sequence,kind,recorded_at")


def test_ledger_verify_on_a_missing_database_is_one_line(tmp_path: Path) -> None:
    result = run(
        "ledger", "verify", cwd=tmp_path, env={"DATABASE_URL": "postgresql://x@127.0.0.1:1/x"}
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_web_starts_without_redis_and_reports_not_ready(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        **REQUIRED,
        "APPROVAL_POLICY": str(FIXTURES / "approvers.yml"),
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
    }
    process = subprocess.Popen(
        [executable(), "web", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return requests.get(f"{url}/healthz", timeout=1).status_code == 200
            except (requests.ConnectionError, requests.Timeout):  # the worker may still be booting
                return False

        wait_until(up, 60, "the web process")
        assert requests.get(f"{url}/readyz", timeout=5).status_code == 503
        hook = requests.post(
            f"{url}/webhooks/gitlab",
            data=(FIXTURES / "pipeline_hook.json").read_bytes(),
            headers={"X-Gitlab-Token": "hook-secret"},
            timeout=5,
        )
        assert hook.status_code == 503, hook.text  # CONTRACT: 503 until both answer
        assert hook.json()["kept"] is True  # and kept: GitLab will not retry a 5xx
        assert len(list((tmp_path / "var" / "spool").glob("*.json"))) == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_worker_waits_for_redis_and_sigterm_exits_0(tmp_path: Path) -> None:
    env = {
        **os.environ,
        **REQUIRED,
        "APPROVAL_POLICY": str(FIXTURES / "approvers.yml"),
        "REDIS_URL": "redis://:hunter2@127.0.0.1:1/0",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [executable(), "worker"], cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        # SIGTERM only once it is waiting (a loaded machine may take seconds to start it).
        wait_until(lambda: "Redis is not reachable" in log.read_text(), 60, "the waiting line")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    assert "Redis is not reachable" in output
    assert "hunter2" not in output
