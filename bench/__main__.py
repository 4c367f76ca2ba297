"""`python -m bench [e2e] [--pipelines N]`: run the benchmarks and print their tables."""

from __future__ import annotations

import sys

from bench import e2e

SUITES = {"e2e": e2e.main}


def main() -> None:
    args = sys.argv[1:]
    names = [a for a in args if a in SUITES] or list(SUITES)
    rest = [a for a in args if a not in SUITES]
    for name in names:
        print(f"== {name}")
        SUITES[name](rest)


if __name__ == "__main__":
    main()
