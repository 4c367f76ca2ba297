"""`ledger verify` (with LEDGER_HMAC_KEY) and `ledger export` on generated, signed chains.

The entries are generated with the ledger's own hashing and signing (every record and the
head signed, as the bot writes them with a key) and bulk-loaded into a fresh SQLite file and,
unless `--databases sqlite`, a fresh PostgreSQL database. Each action runs in a fresh Python
process (its time and peak RSS). Baselines, in the same run, on the same rows:
- `read`: the rows verify reads (the same 7 columns, in sequence order) fetched with the
  bare driver (sqlite3, or a psycopg server-side cursor), nothing else;
- `read+crypto`: that read plus, per row, the SHA-256 of the body and the HMAC-SHA256 of the
  hash: the work no verifier can skip. verify / read+crypto is the verifier's own overhead.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import resource
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from bench.stats import write
from bot import ledger, ledger_verify
from bot.store.db import Database
from bot.store.migrate import upgrade

KEY = "bench-ledger-signing-key"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
BATCH = 50_000
COLUMNS = "sequence, kind, recorded_at, body, prev_hash, hash, signature"


def rows(count: int) -> Iterator[tuple[Any, ...]]:
    """(sequence, kind, recorded_at, request_id, body, prev_hash, hash), chained."""
    prev = ledger.GENESIS_HASH
    for sequence in range(1, count + 1):
        record = {name: None for name in ledger.EXPORT_FIELDS if name not in ("prev_hash", "hash")}
        record.update(
            sequence=sequence,
            kind="signoff",
            recorded_at=f"2026-11-25T10:{sequence // 60 % 60:02d}:{sequence % 60:02d}.000000Z",
            project=f"fintech/svc-{sequence % 50}",
            pipeline_id=100_000 + sequence,
            job_id=200_000 + sequence,
            sha=f"{sequence:040x}",
            approvers=[
                {
                    "slack_user_id": "U0RM00001",
                    "name": "Rita",
                    "role": "release-manager",
                    "approved_at": "2026-11-25T10:00:00.000000Z",
                },
            ],
            policy_version="a" * 64,
        )
        digest = ledger.chain_hash(prev, record)
        body = ledger.canonical(record)
        yield (sequence, "signoff", record["recorded_at"], None, body, prev, digest)
        prev = digest


def signed(count: int) -> Iterator[tuple[Any, ...]]:
    key = KEY.encode()
    for row in rows(count):
        yield (*row, ledger.sign(row[6], key))


def head_of(count: int, last_hash: str) -> tuple[int, str, str]:
    return count, last_hash, ledger.sign_head(count, last_hash, KEY.encode())


def migrated(url: str) -> None:
    db = Database(url)
    upgrade(db)
    db.dispose()


def generate_sqlite(path: Path, count: int) -> str:
    url = f"sqlite:///{path}"
    migrated(url)
    connection = sqlite3.connect(path)
    connection.execute("DROP TRIGGER ledger_entries_no_update")  # bulk load only
    last = ledger.GENESIS_HASH
    batch: list[tuple[Any, ...]] = []
    for row in signed(count):
        batch.append(row)
        if len(batch) == BATCH:
            connection.executemany("INSERT INTO ledger_entries VALUES (?,?,?,?,?,?,?,?)", batch)
            last = batch[-1][6]
            batch.clear()
    if batch:
        connection.executemany("INSERT INTO ledger_entries VALUES (?,?,?,?,?,?,?,?)", batch)
        last = batch[-1][6]
    connection.execute(
        "UPDATE ledger_head SET sequence = ?, hash = ?, signature = ?", head_of(count, last)
    )
    connection.commit()
    connection.close()
    return url


def generate_postgresql(count: int) -> str:
    name = f"approval_bot_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    migrated(url)
    last = ledger.GENESIS_HASH
    with psycopg.connect(url) as connection:
        copy_sql = f"COPY ledger_entries (request_id, {COLUMNS}) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for sequence, kind, at, request_id, body, prev, digest, signature in signed(count):
                copy.write_row((request_id, sequence, kind, at, body, prev, digest, signature))
                last = digest
        connection.execute(
            "UPDATE ledger_head SET sequence = %s, hash = %s, signature = %s",
            head_of(count, last),
        )
    return url


def drop_postgresql(url: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def measure(action: str, url: str) -> dict[str, float]:
    """Run one action in a fresh Python process: its time, and its peak RSS (flat memory
    means the same peak for 100k and 1M entries)."""
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-m", "bench.ledger", "--child", action, url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    child = json.loads(output)
    child["wall_s"] = round(time.perf_counter() - started, 3)
    return child  # type: ignore[no-any-return]


def child(action: str, url: str) -> None:
    started, cpu_started = time.perf_counter(), time.process_time()
    if action in ("read", "read+crypto"):
        count = bare_read(url, crypto=action == "read+crypto")
    else:
        db = Database(url)
        with db.sessions() as session:
            if action == "verify":
                outcome = ledger_verify.verify(session, KEY)
                assert outcome.ok, outcome
                count = outcome.checked
            else:
                count = ledger.export_json(session, _NullWriter())  # type: ignore[arg-type]
        db.dispose()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "count": count,
                "seconds": round(seconds, 3),
                "cpu_s": round(cpu, 3),
                "peak_rss_mb": round(rss, 1),
            }
        )
    )


def bare_read(url: str, crypto: bool) -> int:
    """The same rows with the bare driver; with `crypto`, the hash and HMAC of each too."""
    mac = hmac.new(KEY.encode(), digestmod=hashlib.sha256)
    count = 0
    for row in _driver_rows(url):
        if crypto:
            hashlib.sha256(f"{row[4]}\n{row[3]}".encode()).hexdigest()
            signature = mac.copy()
            signature.update(row[5].encode())
            signature.hexdigest()
        count += 1
    return count


def _driver_rows(url: str) -> Iterator[tuple[Any, ...]]:
    query = f"SELECT {COLUMNS} FROM ledger_entries ORDER BY sequence"
    if url.startswith("sqlite:///"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        yield from connection.execute(query)
        connection.close()
        return
    with psycopg.connect(url) as pg, pg.cursor(name="bench") as cursor:
        cursor.itersize = ledger.VERIFY_BATCH
        cursor.execute(query)
        yield from cursor


ACTIONS = ("read", "read+crypto", "verify", "export")


def run(sizes: list[int], databases: list[str]) -> dict[str, object]:
    results: dict[str, object] = {}
    for database in databases:
        for count in sizes:
            results[f"{database}-{count}"] = _run_one(database, count)
    return results


def _run_one(database: str, count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        generated = time.perf_counter()
        if database == "sqlite":
            url = generate_sqlite(Path(tmp) / "ledger.db", count)
        else:
            url = generate_postgresql(count)
        gen_s = time.perf_counter() - generated
        try:
            timed = {action: measure(action, url) for action in ACTIONS}
        finally:
            if database != "sqlite":
                drop_postgresql(url)
    rate = {action: round(count / timed[action]["seconds"]) for action in ACTIONS}
    row = {
        "generate_s": round(gen_s, 1),
        **timed,
        "rate_per_s": rate,
        "verify_vs_read": round(timed["verify"]["seconds"] / timed["read"]["seconds"], 2),
        "verify_vs_read_crypto": round(
            timed["verify"]["seconds"] / timed["read+crypto"]["seconds"], 2
        ),
    }
    print(
        f"{database:>10} {count:>9,} signed entries: verify {rate['verify']:>9,}/s "
        f"(peak RSS {timed['verify']['peak_rss_mb']} MB) | read {rate['read']:>9,}/s | "
        f"read+crypto {rate['read+crypto']:>9,}/s | verify = {row['verify_vs_read']}x read, "
        f"{row['verify_vs_read_crypto']}x read+crypto | export {rate['export']:>8,}/s",
        flush=True,
    )
    return row


class _NullWriter:
    def write(self, text: str) -> int:
        return len(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--child", nargs=2, metavar=("ACTION", "URL"), help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args(argv)  # `python -m bench` passes every suite's options
    if args.child:
        child(args.child[0], args.child[1])
        return
    sizes = [int(size) for size in args.sizes.split(",")]
    results = run(sizes, args.databases.split(","))
    print(f"written to {write('ledger', results)}")


if __name__ == "__main__":
    main()
