"""Run tests/integration/fresh_machine.py scenarios in new Linux namespaces (see there)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)
UNSHARE = ["unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork"]
SCENARIO_TIMEOUT_S = 150
NO_NAMESPACES = (
    "needs Linux namespaces (`unshare --user --net --mount --pid`, util-linux) to stand in "
    "for a machine where nothing listens on 127.0.0.1:6379"
)


def namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


def on_a_fresh_machine(scenario: str) -> dict[str, Any]:
    """What the scenario saw, as one JSON object; fails with its output if it failed."""
    if not namespaces_work():
        if os.environ.get("CI") == "true":
            pytest.fail(NO_NAMESPACES)
        pytest.skip(NO_NAMESPACES)
    (ROOT / "var").mkdir(exist_ok=True)  # the scenario mounts a tmpfs over it
    done = subprocess.run(
        [
            *UNSHARE,
            "--mount-proc",
            sys.executable,
            "-m",
            "tests.integration.fresh_machine",
            scenario,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SCENARIO_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"{scenario} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen
