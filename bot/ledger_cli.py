"""`approval-bot ledger verify` and `ledger sign-existing` (`bot.cli.ledger_command` opens the
database and turns errors into one line): the chain, its signatures and checkpoints."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bot import checkpoints, ledger_verify
from bot.checkpoints import Checkpoint
from bot.cli import EXIT_FAILED, EXIT_OK, _ledger_key
from bot.cli_support import CliError
from bot.settings import DEFAULT_CHECKPOINT_PATH
from bot.store.db import Database

NOTHING_SIGNED = "nothing was signed: restore the ledger, then run this again"
CHECKING_OWN = "checking the ledger against the checkpoints in {path} first"


def check_command(db: Database, command: str, sources: list[str]) -> int:
    """`ledger verify` or `ledger sign-existing`, on an open database."""
    if command == "sign-existing":
        return sign_existing_command(db, sources)
    return verify_command(db, sources)


def verify_command(db: Database, sources: list[str]) -> int:
    """0 intact; 1 with `record N: reason` (or `checkpoint N: reason`) for the first bad one."""
    key = _ledger_key()
    anchors = _read_checkpoints(sources)
    forged = _checkpoint_not_signed(anchors, key)
    if forged is not None:
        print(forged)
        return EXIT_FAILED
    with db.sessions() as session:
        result = ledger_verify.verify(session, key, anchors)
    print(result)
    return EXIT_OK if result.ok else EXIT_FAILED


def sign_existing_command(db: Database, sources: list[str]) -> int:
    """0 when every record is now vouched for by a signature; 1 when the ledger does not
    verify (nothing signed); 2 without a key."""
    key = _ledger_key()
    if key is None:
        raise CliError("ledger sign-existing needs LEDGER_HMAC_KEY (or LEDGER_HMAC_KEY_FILE)")
    if not sources and _own_checkpoints().exists():
        # What the bot anchored itself must agree before anyone vouches for the ledger.
        sources = [str(_own_checkpoints())]
        print(CHECKING_OWN.format(path=sources[0]), file=sys.stderr)
    anchors = _read_checkpoints(sources)
    try:
        forged = _checkpoint_not_signed(anchors, key)
        if forged is not None:
            raise ledger_verify.EnrolmentRefused(forged)
        print(ledger_verify.sign_existing(db, key, anchors))
    except ledger_verify.EnrolmentRefused as exc:
        print(f"{exc}\n{NOTHING_SIGNED}")
        return EXIT_FAILED
    return EXIT_OK


def _own_checkpoints() -> Path:
    """LEDGER_CHECKPOINT_PATH, or its default (relative to the working directory)."""
    return Path(os.environ.get("LEDGER_CHECKPOINT_PATH") or DEFAULT_CHECKPOINT_PATH)


def _read_checkpoints(sources: list[str]) -> list[Checkpoint]:
    try:
        return [anchor for source in sources for anchor in checkpoints.read(source)]
    except checkpoints.CheckpointError as exc:
        raise CliError(f"cannot use the checkpoints: {exc}") from None


def _checkpoint_not_signed(anchors: list[Checkpoint], key: str | None) -> str | None:
    """`checkpoint N: reason` for the first (lowest) checkpoint not signed with the key."""
    if key is None:
        return None  # unsigned checkpoints still anchor the hashes
    for anchor in sorted(anchors, key=lambda a: a.sequence):
        problem = checkpoints.signature_problem(anchor, key.encode())
        if problem is not None:
            return f"checkpoint {anchor.sequence}: {problem}"
    return None
