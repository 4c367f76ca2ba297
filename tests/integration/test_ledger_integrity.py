"""Issue #13, item 3: someone with write access to the database rewrites, truncates or moves
the ledger; `approval-bot ledger verify` (with LEDGER_HMAC_KEY, and with `--checkpoints`)
must say so, naming the first bad record.

The ledger is written by the store as the bot writes it (with the signing key); the attacks
are plain SQL through the test's own connection, as an attacker with the database password
would run them. Checkpoint lines are written in the documented format (one JSON object per
line, signed with HMAC-SHA256 over `checkpoint:{sequence}:{hash}:{recorded_at}`), so an
auditor's own tooling can produce and check them too.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot import ledger, ledger_verify
from bot.simulators.slack_workspace import dm_channel_for
from bot.store import requests as store
from bot.store.db import Database
from tests.integration.conftest import running_bot
from tests.integration.harness import Bot, executable, request_id_of, wait_until
from tests.integration.wallet import approve_all, deployed_event, thread_replies, wallet_pipeline
from tests.unit.test_store import request_fields

pytestmark = pytest.mark.integration

KEY = "ledger-signing-key-for-tests-0123456789"
FORGED_APPROVERS = [
    {
        "slack_user_id": "U0RM00001",
        "name": "Rita",
        "role": "release-manager",
        "approved_at": "2026-01-01T00:00:00.000000Z",
    }
]


NO_FILE = "/nonexistent/ledger-checkpoints.jsonl"


def cli(
    db: Database, *args: str, key: str | None = KEY, checkpoint_path: str = NO_FILE
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["DATABASE_URL"] = db.url
    env["LEDGER_CHECKPOINT_PATH"] = checkpoint_path
    if key:
        env["LEDGER_HMAC_KEY"] = key
    return subprocess.run(
        [executable(), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def verify(db: Database, *args: str, key: str | None = KEY) -> tuple[int, str]:
    result = cli(db, "ledger", "verify", *args, key=key)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout.strip()


@pytest.fixture
def signing_key() -> Iterator[str]:
    """The bot's writers sign with the key (as `web` and `worker` do when it is set)."""
    ledger.set_signing_key(KEY)
    try:
        yield KEY
    finally:
        ledger.set_signing_key(None)


def write_records(db: Database, count: int) -> None:
    """`count` ledger records, written as the bot writes them (a rejection each)."""
    for _ in range(count):
        request, _ = store.create(db, request_fields(job_id=next_job_id()))
        store.reject(db, request.id, "U0CO00001", "not reviewed", "v1")


_job_ids = iter(range(10_000, 1_000_000))


def next_job_id() -> int:
    return next(_job_ids)


# --- what an attacker with the database password does -------------------------------------


def drop_triggers(db: Database) -> None:
    on = " ON ledger_entries" if db.engine.dialect.name == "postgresql" else ""
    with db.transaction() as session:
        for name in ("update", "delete"):
            session.execute(text(f"DROP TRIGGER ledger_entries_no_{name}{on}"))


def recreate_triggers(db: Database) -> None:
    with db.transaction() as session:
        for name in ("update", "delete"):
            if db.engine.dialect.name == "postgresql":
                sql = (
                    f"CREATE TRIGGER ledger_entries_no_{name} BEFORE {name.upper()} ON "
                    "ledger_entries FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()"
                )
            else:
                sql = (
                    f"CREATE TRIGGER ledger_entries_no_{name} BEFORE {name.upper()} ON "
                    "ledger_entries BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END"
                )
            session.execute(text(sql))


def sql(db: Database, statement: str, **params: Any) -> list[Any]:
    with db.transaction() as session:
        result = session.execute(text(statement), params)
        return [dict(row) for row in result.mappings()] if result.returns_rows else []


def rewrite_chain(db: Database, sequence: int) -> None:
    """Change the approvers in one record's body, recompute every hash from there, set every
    signature to NULL and move the head to the new last hash, all behind the triggers' back."""
    drop_triggers(db)
    prev = ledger.GENESIS_HASH
    for row in sql(db, "SELECT sequence, body FROM ledger_entries ORDER BY sequence"):
        record = json.loads(row["body"])
        if row["sequence"] == sequence:
            record["approvers"] = FORGED_APPROVERS
        body = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()
        sql(
            db,
            "UPDATE ledger_entries SET body = :body, prev_hash = :prev, hash = :hash,"
            " signature = NULL WHERE sequence = :sequence",
            body=body,
            prev=prev,
            hash=digest,
            sequence=row["sequence"],
        )
        prev = digest
    sql(db, "UPDATE ledger_head SET hash = :hash", hash=prev)
    recreate_triggers(db)


def head_row(db: Database) -> dict[str, Any]:
    return dict(sql(db, "SELECT * FROM ledger_head")[0])


def restore_head(db: Database, saved: dict[str, Any]) -> None:
    columns = [name for name in saved if name != "id"]
    sets = ", ".join(f"{name} = :{name}" for name in columns)
    sql(db, f"UPDATE ledger_head SET {sets}", **{name: saved[name] for name in columns})


def truncate(db: Database, after: int, head: dict[str, Any]) -> None:
    """Delete the records after `after` and put back the head row saved at that point."""
    drop_triggers(db)
    sql(db, "DELETE FROM ledger_entries WHERE sequence > :after", after=after)
    recreate_triggers(db)
    restore_head(db, head)


def hash_at(db: Database, sequence: int) -> str:
    return str(
        sql(db, "SELECT hash FROM ledger_entries WHERE sequence = :s", s=sequence)[0]["hash"]
    )


def checkpoint_line(sequence: int, digest: str, key: str | None = KEY) -> str:
    recorded_at = "2026-12-01T10:00:00.000000Z"
    signature = (
        hmac.new(
            key.encode(), f"checkpoint:{sequence}:{digest}:{recorded_at}".encode(), hashlib.sha256
        ).hexdigest()
        if key
        else None
    )
    line = {"sequence": sequence, "hash": digest, "recorded_at": recorded_at}
    return json.dumps({**line, "signature": signature}) + "\n"


# --- the tests -----------------------------------------------------------------------------


def chain_alone_holds(db: Database) -> bool:
    """What verify said before the fix: the hash chain, without the key or checkpoints."""
    with db.sessions() as session:
        return ledger_verify.verify(session).ok


def test_an_intact_signed_chain_passes_with_its_checkpoints(
    db: Database, signing_key: str, tmp_path: Path
) -> None:
    write_records(db, 5)
    checkpoints = tmp_path / "checkpoints.jsonl"
    checkpoints.write_text(checkpoint_line(3, hash_at(db, 3)) + checkpoint_line(5, hash_at(db, 5)))
    code, out = verify(db, "--checkpoints", str(checkpoints))
    assert (code, out) == (0, "ledger intact: 5 records verified (2 checkpoints matched)")


def test_a_rewritten_chain_with_signatures_removed_fails_at_the_first_record(
    db: Database, signing_key: str
) -> None:
    write_records(db, 4)
    rewrite_chain(db, sequence=2)
    assert chain_alone_holds(db)  # the hash chain alone is consistent again
    assert verify(db) == (1, "record 1: missing signature")


def test_a_truncated_tail_with_the_head_moved_back_fails_against_a_checkpoint(
    db: Database, signing_key: str, tmp_path: Path
) -> None:
    write_records(db, 3)
    head_at_3 = head_row(db)  # e.g. from a backup, signature and all
    write_records(db, 2)
    checkpoints = tmp_path / "checkpoints.jsonl"
    checkpoints.write_text(checkpoint_line(5, hash_at(db, 5)))
    truncate(db, after=3, head=head_at_3)
    with db.sessions() as session:  # without an anchor outside the database, nothing tells
        assert ledger_verify.verify(session, KEY).ok
    code, out = verify(db, "--checkpoints", str(checkpoints))
    assert code == 1
    assert out.startswith("record 4: missing"), out
    assert "checkpoint 5" in out


def test_a_chain_that_differs_from_a_checkpoint_fails_at_that_record(
    db: Database, tmp_path: Path
) -> None:
    write_records(db, 4)  # no key: checkpoints still anchor the hashes
    checkpoints = tmp_path / "checkpoints.jsonl"
    checkpoints.write_text(checkpoint_line(3, hash_at(db, 3), key=None))
    rewrite_chain(db, sequence=2)
    assert chain_alone_holds(db)
    code, out = verify(db, "--checkpoints", str(checkpoints), key=None)
    assert code == 1
    assert out.startswith("record 3: hash differs from checkpoint 3"), out


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_checkpoint_whose_signature_does_not_verify_is_reported(
    db: Database, signing_key: str, tmp_path: Path
) -> None:
    write_records(db, 3)
    checkpoints = tmp_path / "checkpoints.jsonl"
    checkpoints.write_text(
        checkpoint_line(2, hash_at(db, 2)) + checkpoint_line(3, hash_at(db, 3), key="other-key")
    )
    code, out = verify(db, "--checkpoints", str(checkpoints))
    assert code == 1
    assert out.startswith("checkpoint 3: signature does not verify"), out


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_unreadable_checkpoints_are_one_line_and_exit_2(db: Database, tmp_path: Path) -> None:
    garbled = tmp_path / "checkpoints.jsonl"
    garbled.write_text(checkpoint_line(1, "a" * 64) + "not json\n")
    for source, words in [
        (str(garbled), "line 2: not JSON"),
        (str(tmp_path / "missing.jsonl"), "No such file"),
        ("http://127.0.0.1:9/checkpoints", "cannot fetch"),
    ]:
        result = cli(db, "ledger", "verify", "--checkpoints", source)
        assert result.returncode == 2, result.stdout
        assert words in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_rewritten_head_fails_naming_the_record(db: Database, signing_key: str) -> None:
    write_records(db, 4)
    saved = head_row(db)
    sql(db, "UPDATE ledger_head SET sequence = 2, hash = :hash", hash=hash_at(db, 2))
    code, out = verify(db)
    assert code == 1
    assert out.startswith("record 3:"), out
    assert "head" in out
    saved["signature"] = None  # the right record and hash, but not signed with the key
    restore_head(db, saved)
    assert verify(db) == (1, "record 4: chain head not signed")


def test_records_from_before_the_key_need_an_explicit_sign_existing(db: Database) -> None:
    write_records(db, 3)  # written before LEDGER_HMAC_KEY was set
    assert verify(db) == (1, "record 1: missing signature")
    enrolled = cli(db, "ledger", "sign-existing")
    assert enrolled.returncode == 0, enrolled.stderr
    assert "3 records written before the key" in enrolled.stdout
    assert verify(db) == (0, "ledger intact: 4 records verified")
    again = cli(db, "ledger", "sign-existing")
    assert (again.returncode, again.stdout.strip()) == (
        0,
        "nothing to sign: every record and the chain head are signed",
    )
    # What the enrolment vouches for cannot be rewritten afterwards.
    rewrite_chain(db, sequence=2)
    assert verify(db) == (1, "record 1: missing signature")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sign_existing_does_not_vouch_for_a_chain_rewritten_after_the_key(
    db: Database, signing_key: str, tmp_path: Path
) -> None:
    write_records(db, 4)
    checkpoints = tmp_path / "ledger-checkpoints.jsonl"  # what the bot anchored
    checkpoints.write_text(checkpoint_line(4, hash_at(db, 4)))
    rewrite_chain(db, sequence=2)  # every signature removed; the head keeps a stale one
    refused = cli(db, "ledger", "sign-existing")
    assert refused.returncode == 1
    assert refused.stdout.startswith("record 4: chain head signature does not match")
    head = head_row(db)
    head["signature"] = None
    restore_head(db, head)  # the attacker removes that too: the checkpoints still disagree
    refused = cli(db, "ledger", "sign-existing", checkpoint_path=str(checkpoints))
    assert refused.returncode == 1
    assert refused.stdout.startswith("record 4: hash differs from checkpoint 4")
    assert "nothing was signed" in refused.stdout
    assert verify(db) == (1, "record 1: missing signature")


# --- the running bot: anchors outside the database, refuses a forged head ------------------

AUDIT_CHANNEL = "C0AUDIT01"
ADMIN_DM = dm_channel_for("U0ADMIN01")


@pytest.fixture
def anchored(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bot]:
    """`web` + `worker` on PostgreSQL (as in production; the CLI tests above cover both
    databases) with the key, an audit channel, the audit API and a checkpoint file,
    checkpointing as soon as the chain moves (the default waits up to 5 minutes)."""
    path = tmp_path_factory.mktemp("anchors") / "ledger-checkpoints.jsonl"
    env = {
        "LEDGER_HMAC_KEY": KEY,
        "LEDGER_AUDIT_CHANNEL": AUDIT_CHANNEL,
        "LEDGER_PUBLISH_INTERVAL_SECONDS": "1",
        "LEDGER_CHECKPOINT_INTERVAL_SECONDS": "1",
        "LEDGER_CHECKPOINT_PATH": str(path),
    }
    with running_bot(request, tmp_path_factory, "postgresql", env) as bot:
        yield bot
        assert bot.audit is not None
        assert not bot.slack.unexpected + bot.gitlab.unexpected + bot.audit.unexpected


def open_a_request(bot: Bot, job_id: int) -> str:
    """A gated pipeline: its approval request is posted (nothing is recorded yet)."""
    event = bot.pipeline(pipeline_id=job_id, gate_job_id=job_id)
    posts = [c.params for c in bot.slack.calls_to("chat.postMessage")]
    before = [p for p in posts if p["channel"] == "C0DEPLOYS" and "thread_ts" not in p]
    assert bot.webhook(event, key=f"delivery-{job_id}").status_code == 202
    return request_id_of(bot.posted_request("C0DEPLOYS", count=len(before) + 1))


def reject_a_request(bot: Bot, job_id: int) -> str:
    """A gated pipeline, rejected by the compliance officer: one ledger record."""
    request_id = open_a_request(bot, job_id)
    opened = len(bot.slack.calls_to("views.open"))
    assert bot.click("U0CO00001", "reject", request_id).status_code == 200
    bot.slack.wait_for("views.open", count=opened + 1)  # the form the bot opened
    assert bot.submit_reason("U0CO00001", request_id, "not reviewed").status_code == 200
    return request_id


def checkpoint_at(path: Path, sequence: int) -> dict[str, Any] | None:
    if not path.exists():
        return None
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return next((line for line in lines if line["sequence"] == sequence), None)


def admin_messages(bot: Bot, needle: str) -> list[str]:
    """Direct messages to the admin that mention `needle`."""
    calls = bot.slack.calls_to("chat.postMessage")
    texts = [str(c.params.get("text")) for c in calls if c.params["channel"] == ADMIN_DM]
    return [t for t in texts if needle in t]


def test_the_worker_anchors_the_chain_and_refuses_to_sign_on_a_forged_head(
    anchored: Bot,
) -> None:
    bot = anchored
    db = Database(bot.env["DATABASE_URL"])
    path = Path(bot.env["LEDGER_CHECKPOINT_PATH"])
    audit = bot.audit
    assert audit is not None
    try:
        reject_a_request(bot, 70_001)
        wait_until(lambda: head_row(db)["sequence"] == 1, 15, "record 1")
        head_at_1 = head_row(db)
        reject_a_request(bot, 70_002)
        # (a) the append-only file, (b) the audit API, (c) the Slack audit channel.
        line = wait_until(lambda: checkpoint_at(path, 2), 15, "checkpoint 2 in the file")
        assert line["hash"] == hash_at(db, 2)
        assert line["signature"]
        posts = wait_until(
            lambda: [p for p in audit.posts if p.path == "/checkpoints" and p.body == line],
            15,
            "checkpoint 2 at the audit API",
        )
        assert posts[0].key
        wait_until(
            lambda: [
                c
                for c in bot.slack.calls_to("chat.postMessage")
                if c.params.get("channel") == AUDIT_CHANNEL and line["hash"] in str(c.params)
            ],
            15,
            "checkpoint 2 in the audit channel",
        )
        url = f"{audit.url}/checkpoints"
        for source in (str(path), url):
            assert bot.run("ledger", "verify", "--checkpoints", source).returncode == 0

        # Delete the tail and put back the head as it was at record 1.
        truncate(db, after=1, head=head_at_1)
        for source in (str(path), url):
            result = bot.run("ledger", "verify", "--checkpoints", source, check=False)
            assert result.returncode == 1
            assert result.stdout.startswith("record 2: missing"), result.stdout
        wait_until(lambda: admin_messages(bot, "checkpoint 2"), 15, "the admins told")

        # Rewrite the chain without the key and move the head: the bot must not sign on it,
        # nor play a gate whose sign-off it could not record.
        rewrite_chain(db, sequence=1)
        approved = open_a_request(bot, 70_003)
        reject_a_request(bot, 70_004)
        for approver in ("U0RM00001", "U0CO00001"):
            assert bot.click(approver, "approve", approved).status_code == 200
        # (Not just "chain head": the truncation's alert says "the chain head is at record 1".)
        forged_head = "The ledger's chain head"
        wait_until(lambda: admin_messages(bot, forged_head), 15, "the admins told")
        for refusal in ("refusing to append", "refusing to play"):
            wait_until(lambda: refusal in bot.log("worker"), 15, refusal)  # noqa: B023
        assert len(admin_messages(bot, forged_head)) == 1
        assert bot.gitlab.calls_to("POST", r"/jobs/70003/play") == []
        assert sql(db, "SELECT sequence FROM ledger_entries") == [{"sequence": 1}]
        verdict = bot.run("ledger", "verify", check=False)
        assert (verdict.returncode, verdict.stdout.strip()) == (1, "record 1: missing signature")
    finally:
        db.dispose()


def test_a_deleted_middle_record_fails_naming_the_gap(db: Database, signing_key: str) -> None:
    write_records(db, 5)
    drop_triggers(db)
    sql(db, "DELETE FROM ledger_entries WHERE sequence = 3")
    recreate_triggers(db)
    code, out = verify(db)
    assert code == 1
    assert out.startswith("record 3") or out.startswith("record 4"), out


def test_a_reordered_chain_fails(db: Database, signing_key: str) -> None:
    write_records(db, 4)
    drop_triggers(db)
    sql(db, "UPDATE ledger_entries SET sequence = 100 WHERE sequence = 2")
    sql(db, "UPDATE ledger_entries SET sequence = 2 WHERE sequence = 3")
    sql(db, "UPDATE ledger_entries SET sequence = 3 WHERE sequence = 100")
    recreate_triggers(db)
    code, out = verify(db)
    assert code == 1
    assert out.startswith("record 2"), out


FORMULAS = ['=HYPERLINK("https://evil.example","ok")', "+1+1", "-2+3", "@SUM(A1)", "\t=1"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_csv_export_cells_cannot_run_as_spreadsheet_formulas(db: Database) -> None:
    """A reject reason (typed by anyone who may reject) or a branch name (any pusher) that
    starts with =, +, -, @ or a tab opens as a formula in Excel or Sheets: each is quoted."""
    for value in FORMULAS:
        request, _ = store.create(db, request_fields(job_id=next_job_id(), ref=value))
        store.reject(db, request.id, "U0CO00001", value, "v1")
    result = cli(db, "ledger", "export", "--format", "csv", key=None)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["reason"] for row in rows] == [f"'{value}" for value in FORMULAS]
    assert [row["ref"] for row in rows] == [f"'{value}" for value in FORMULAS]
    assert all(row["sequence"].isdigit() for row in rows)


NON_ASCII_SIGNATURE = "é" * 64


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_checkpoint_signature_that_is_not_hex_is_reported_not_a_traceback(
    db: Database, signing_key: str, tmp_path: Path
) -> None:
    write_records(db, 2)
    checkpoints = tmp_path / "checkpoints.jsonl"
    line = json.loads(checkpoint_line(2, hash_at(db, 2)))
    checkpoints.write_text(json.dumps({**line, "signature": NON_ASCII_SIGNATURE}) + "\n")
    result = cli(db, "ledger", "verify", "--checkpoints", str(checkpoints))
    assert (result.returncode, result.stderr) == (1, ""), result.stderr
    assert result.stdout.startswith("checkpoint 2: signature does not verify"), result.stdout


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_record_signature_that_is_not_hex_is_reported_not_a_traceback(
    db: Database, signing_key: str
) -> None:
    write_records(db, 3)
    drop_triggers(db)
    sql(db, "UPDATE ledger_entries SET signature = :s WHERE sequence = 2", s=NON_ASCII_SIGNATURE)
    recreate_triggers(db)
    result = cli(db, "ledger", "verify")
    assert (result.returncode, result.stderr) == (1, ""), result.stderr
    assert result.stdout.startswith("record 2: "), result.stdout


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_head_signature_that_is_not_hex_is_reported_not_a_traceback(
    db: Database, signing_key: str
) -> None:
    write_records(db, 3)
    sql(db, "UPDATE ledger_head SET signature = :s", s=NON_ASCII_SIGNATURE)
    result = cli(db, "ledger", "verify")
    assert (result.returncode, result.stderr) == (1, ""), result.stderr
    assert "head" in result.stdout, result.stdout


def test_no_rollback_is_played_on_a_forged_head(anchored: Bot) -> None:
    """Regression: the gate refused to play on a forged head, the rollback did not: it played
    the rollback job, then could not write its ledger record (a production change with no
    evidence, retried forever)."""
    bot = anchored
    db = Database(bot.env["DATABASE_URL"])
    try:
        event, message, rollback_job = wallet_pipeline(bot, 901, None)
        request_id = request_id_of(message)
        approve_all(bot, request_id, "U0RM00001")
        gate = next(b["id"] for b in event["builds"] if b["name"] == "compliance-gate")
        bot.gitlab.wait_for("POST", rf"/jobs/{gate}/play", timeout=15)
        assert bot.webhook(deployed_event(bot, event, "failed")).status_code == 202
        wait_until(lambda: thread_replies(bot, "Smoke test"), 15, "the smoke-test alert")
        wait_until(lambda: head_row(db)["sequence"] >= 1, 15, "the sign-off")

        rewrite_chain(db, sequence=1)  # the head no longer verifies with the key
        assert bot.click("U0RM00001", "rollback", request_id).status_code == 200
        wait_until(lambda: f"refusing to roll back {request_id}" in bot.log("worker"), 15, "it")
        assert bot.gitlab.calls_to("POST", rf"/jobs/{rollback_job}/play") == []
    finally:
        db.dispose()
