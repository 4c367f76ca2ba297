"""The ledger benchmark runs (on a few entries, in-process: benchmarks are not timed tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import ledger as bench


def test_the_ledger_bench_verifies_a_small_signed_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = bench.generate_sqlite(tmp_path / "ledger.db", 30)
    for action in bench.ACTIONS:
        bench.child(action, url)
        assert json.loads(capsys.readouterr().out)["count"] == 30, action
