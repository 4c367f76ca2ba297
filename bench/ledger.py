"""`ledger verify` and `ledger export` on 100k and 1M generated entries: rate and peak memory.

The entries are generated with the ledger's own hashing and bulk-inserted into a fresh
SQLite database (the default store). The baseline, in the same run, is the bare read the
verifier cannot avoid: every row's body fetched in sequence order and parsed as JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.stats import write
from bot import ledger
from bot.store.db import Database
from bot.store.migrate import upgrade


def generate(path: Path, count: int) -> None:
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    connection = sqlite3.connect(path)
    connection.execute("DROP TRIGGER ledger_entries_no_update")  # bulk load only
    prev = ledger.GENESIS_HASH
    rows = []
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
        rows.append(
            (
                sequence,
                "signoff",
                record["recorded_at"],
                None,
                ledger.canonical(record),
                prev,
                digest,
            )
        )
        prev = digest
        if len(rows) == 50_000:
            connection.executemany("INSERT INTO ledger_entries VALUES (?,?,?,?,?,?,?,NULL)", rows)
            rows.clear()
    if rows:
        connection.executemany("INSERT INTO ledger_entries VALUES (?,?,?,?,?,?,?,NULL)", rows)
    connection.execute("UPDATE ledger_head SET sequence = ?, hash = ?", (count, prev))
    connection.commit()
    connection.close()


def measure(action: str, path: Path) -> dict[str, float]:
    """Run one action in a fresh Python process: its time, and its peak RSS (flat memory
    means the same peak for 100k and 1M entries)."""
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-m", "bench.ledger", "--child", action, str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    child = json.loads(output)
    child["wall_s"] = round(time.perf_counter() - started, 3)
    return child


def child(action: str, path: Path) -> None:
    started = time.perf_counter()
    if action == "baseline":
        count = baseline_read(path)
    else:
        db = Database(f"sqlite:///{path}")
        with db.sessions() as session:
            if action == "verify":
                outcome = ledger.verify(session)
                assert outcome.ok, outcome
                count = outcome.checked
            else:
                count = ledger.export_json(session, _NullWriter())  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"count": count, "seconds": round(seconds, 3), "peak_rss_mb": round(rss, 1)}))


def baseline_read(path: Path) -> int:
    connection = sqlite3.connect(path)
    count = 0
    for (body,) in connection.execute("SELECT body FROM ledger_entries ORDER BY sequence"):
        json.loads(body)
        count += 1
    connection.close()
    return count


def run(sizes: list[int]) -> dict[str, object]:
    results: dict[str, object] = {}
    for count in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "ledger.db"
            generated = time.perf_counter()
            generate(path, count)
            gen_s = time.perf_counter() - generated
            base = measure("baseline", path)
            ver = measure("verify", path)
            exp = measure("export", path)
        row = {
            "generate_s": round(gen_s, 1),
            "baseline_read": base,
            "verify": ver,
            "export_json": exp,
            "verify_rate_per_s": round(count / ver["seconds"]),
            "export_rate_per_s": round(count / exp["seconds"]),
            "verify_vs_baseline": round(ver["seconds"] / base["seconds"], 2),
        }
        results[str(count)] = row
        print(
            f"{count:>9,} entries: verify {row['verify_rate_per_s']:>9,}/s "
            f"(peak RSS {ver['peak_rss_mb']} MB, {row['verify_vs_baseline']}x the bare read) | "
            f"export {row['export_rate_per_s']:>9,}/s (peak RSS {exp['peak_rss_mb']} MB) | "
            f"bare read {count / base['seconds']:,.0f}/s"
        )
    return results


class _NullWriter:
    def write(self, text: str) -> int:
        return len(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--child", nargs=2, metavar=("ACTION", "PATH"), help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args(argv)  # `python -m bench` passes every suite's options
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    results = run([int(size) for size in args.sizes.split(",")])
    print(f"written to {write('ledger', results)}")


if __name__ == "__main__":
    main()
