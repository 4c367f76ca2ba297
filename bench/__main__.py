"""`python -m bench [SUITE ...] [options]`: run the benchmarks and print their tables.

Suites: e2e, rollback, intake, burst, footprint, ledger. Without a suite name: e2e, rollback,
intake and burst (burst
also writes the footprint results, so footprint is not run twice); about 7 minutes on a
2-core machine. Options are passed to every suite, each taking the ones it knows, e.g.
`python -m bench burst --workers 1 --limits none`. Results: bench/results/<suite>.json.
All suites use Redis DB 9 only and must not run at the same time as each other. `ledger`
(verify with the signing key and export on 100k and 1M generated, signed entries, on SQLite
and PostgreSQL; about 5 minutes; `--databases sqlite` for SQLite only) is run by name,
as is `slack_ack` (Reject clicks answered while Slack is slow or rate-limiting, issue #14
item 6; about 2 minutes).
"""

from __future__ import annotations

import sys
import time

from bench import burst, e2e, footprint, intake, ledger, rollback, slack_ack

SUITES = {
    "e2e": e2e.main,
    "intake": intake.main,
    "burst": burst.main,
    "footprint": footprint.main,
    "ledger": ledger.main,
    "rollback": rollback.main,
    "slack_ack": slack_ack.main,
}
DEFAULT = ["e2e", "rollback", "intake", "burst"]


def main() -> None:
    args = sys.argv[1:]
    if {"-h", "--help"} & set(args) and not [a for a in args if a in SUITES]:
        print(__doc__)
        return
    names = [a for a in args if a in SUITES] or DEFAULT
    rest = [a for a in args if a not in SUITES]
    started = time.monotonic()
    for name in names:
        print(f"== {name}", flush=True)
        began = time.monotonic()
        SUITES[name](rest)
        print(f"== {name} took {time.monotonic() - began:.0f} s", flush=True)
    print(f"== all done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
