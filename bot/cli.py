"""The `approval-bot` command: web, worker, db, config, ledger, reconcile, policy, sandbox, …"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.cli_help import finish
from bot.cli_support import CliError, ledger_database
from bot.policy import PolicyError, load_policy
from bot.settings import SettingsError, load_settings

if TYPE_CHECKING:
    from bot.runtime import Runtime

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
DESCRIPTION = (
    "Compliance approval bot: GitLab CI manual gates approved from Slack,\n"
    "with a tamper-evident sign-off ledger."
)
SANDBOX_REDIS_HELP = (
    "the Redis the sandbox's bot uses; a URL without a database number gets the sandbox's "
    "own, 15 (default: REDIS_URL when set, else 127.0.0.1:6379 when it answers, else a "
    "private redis-server under var/redis/)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="approval-bot", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)

    web = sub.add_parser("web", help="serve the HTTP app (gunicorn)")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on")
    web.add_argument("--port", type=int, default=8080, help="port to listen on")
    web.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    web.add_argument("--threads", type=int, default=8, help="threads per worker process")

    worker = sub.add_parser("worker", help="run the background worker")
    worker.add_argument("--burst", action="store_true", help="drain the queue and exit")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="create or migrate the database schema (idempotent)")

    config = sub.add_parser("config", help="approver policy")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate the approver policy")
    check.add_argument("--policy", type=Path, help="policy file (default: APPROVAL_POLICY)")

    reconcile = sub.add_parser(
        "reconcile",
        help="open requests for gates waiting without one; list deployments without a sign-off",
    )
    reconcile.add_argument("--since", help="only deployments since DATE (YYYY-MM-DD or ISO 8601)")
    reconcile.add_argument(
        "--environment", default="production", help="the GitLab environment to check"
    )

    policy = sub.add_parser("policy", help="approver policy questions")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    explain = policy_sub.add_parser("explain", help="may USER approve this gate, and why")
    explain.add_argument("--project", required=True, help="GitLab project path")
    explain.add_argument("--job", default="compliance-gate", help="the gate's manual job")
    explain.add_argument("--user", required=True, help="Slack user ID")
    explain.add_argument("--user-email", help="the user's Slack e-mail, if known")
    explain.add_argument("--triggered-by", help="GitLab username who ran the pipeline")
    explain.add_argument("--author", help="GitLab username of the commit author")
    explain.add_argument("--author-email", help="e-mail of the commit author")
    explain.add_argument(
        "--migration-risk", action="store_true", help="the change has migration risk flags"
    )
    explain.add_argument(
        "--failed-jobs", action="store_true", help="an earlier job of the pipeline failed"
    )
    explain.add_argument(
        "--rollback", action="store_true", help="may USER roll the deployment back instead"
    )
    explain.add_argument("--policy", type=Path, help="policy file (default: APPROVAL_POLICY)")

    scan = sub.add_parser(
        "scan-migrations",
        help="flag dangerous statements and financial-table changes in migrations",
    )
    scan.add_argument("paths", nargs="+", help="migration files or directories")
    scan.add_argument(
        "--table",
        action="append",
        dest="tables",
        help="a financial table to watch (repeatable; default: transactions, balances, "
        "commissions, withdrawals, deposits)",
    )

    sandbox = sub.add_parser(
        "sandbox", help="try the bot locally with simulated GitLab and Slack, in a browser page"
    )
    sandbox.add_argument("--host", default="127.0.0.1", help="the page's address")
    sandbox.add_argument("--port", type=int, default=8000, help="the page's port (0: any free)")
    sandbox.add_argument("--redis-url", help=SANDBOX_REDIS_HELP)
    sandbox.add_argument(
        "--workdir",
        type=Path,
        help="keep the database and logs here (default: a temporary directory, removed at the end)",
    )

    _add_ledger(sub)
    return finish(parser)


def _add_ledger(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ledger = sub.add_parser("ledger", help="sign-off ledger")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True)
    verify = ledger_sub.add_parser("verify", help="check the ledger end to end")
    sign_existing = ledger_sub.add_parser(
        "sign-existing",
        help="once, after setting LEDGER_HMAC_KEY: verify the ledger, then append a signed "
        "record vouching for the records written before the key",
    )
    for command in (verify, sign_existing):
        command.add_argument(
            "--checkpoints",
            action="append",
            metavar="FILE|URL",
            help="also check the chain against these checkpoints (LEDGER_CHECKPOINT_PATH, or "
            "an http(s) URL answering checkpoint lines or a JSON array); repeatable",
        )
    export = ledger_sub.add_parser("export", help="write the sign-off evidence")
    export.add_argument(
        "--format", choices=["json", "csv"], required=True, help="a JSON array, or CSV rows"
    )
    export.add_argument("--output", type=Path, help="file to write (default: standard output)")
    export.add_argument("--since", help="records from DATE (YYYY-MM-DD or ISO 8601, UTC)")
    export.add_argument("--until", help="records before DATE (YYYY-MM-DD or ISO 8601, UTC)")
    export.add_argument("--project", help="only this project path (globs allowed)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"approval-bot: {problem}", file=sys.stderr)
        return EXIT_INVALID
    except PolicyError as exc:
        print(f"approval-bot: invalid approver policy:\n{exc}", file=sys.stderr)
        return EXIT_INVALID
    except CliError as exc:
        print(f"approval-bot: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        return EXIT_OK


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "config":
        return config_check(args.policy)
    if args.command == "policy":
        return policy_explain(args)
    if args.command == "sandbox":
        from bot.sandbox.runner import Options, run

        return run(Options(args.host, args.port, args.redis_url, args.workdir))
    if args.command == "scan-migrations":
        from bot.risk import scan_command

        return scan_command(args.paths, sys.stdout, args.tables)
    from bot.logs import configure

    configure()
    if args.command == "db":
        return db_upgrade(_database_settings())
    if args.command == "ledger":
        return ledger_command(args)
    settings = load_settings()
    from bot.runtime import build_runtime

    runtime = build_runtime(settings)
    _refuse_non_utf8(runtime)
    if args.command == "reconcile":
        return reconcile_command(runtime, args.since, args.environment)
    if args.command == "web":
        from bot.web.serve import exec_web

        runtime.db.dispose()
        runtime.redis.close()
        exec_web(settings, args.host, args.port, args.workers, args.threads)  # does not return
    from workers.main import run_worker

    return run_worker(runtime, burst=args.burst)


def reconcile_command(runtime: Runtime, since: str | None, environment: str) -> int:
    """Exit 0 when every deployment since DATE has a sign-off, 1 otherwise."""
    from bot import reconcile
    from workers import jobs
    from workers.context import set_runtime

    since_iso = _parse_since(since)
    set_runtime(runtime)
    for event in reconcile.missing_requests(runtime):
        request_id = jobs.open_request(event)  # asks GitLab for the job again first
        what = f"{event['project_path']} pipeline #{event['pipeline_id']} job {event['job_id']}"
        if request_id is None:
            print(f"opened no request for {what}: GitLab no longer shows it waiting")
        else:
            print(f"opened request {request_id} for {what}")
    checks = reconcile.check_deployments(runtime, since_iso, environment)
    unsigned = [c for c in checks if not c.signed_off]
    for check in checks:
        d = check.deployment
        verdict = (
            f"signed off (ledger record {check.signoff_sequence})"
            if check.signed_off
            else "NO SIGN-OFF"
        )
        print(
            f"{check.project}  deployment {d.id}  {d.created_at or '?'}  "
            f"sha {(d.sha or '?')[:8]}  pipeline #{d.pipeline_id}  {verdict}"
        )
    scope = f" since {since}" if since else ""
    print(f"{len(unsigned)} of {len(checks)} {environment} deployments{scope} have no sign-off")
    return EXIT_FAILED if unsigned else EXIT_OK


def _parse_since(since: str | None) -> str | None:
    if since is None:
        return None
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        raise CliError(f"--since {since!r} is not a date (YYYY-MM-DD or ISO 8601)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def policy_explain(args: argparse.Namespace) -> int:
    import os

    from bot.explain import Question, explain

    path = args.policy or Path(os.environ.get("APPROVAL_POLICY", "config/approvers.yml"))
    question = Question(
        project=args.project,
        job=args.job,
        user=args.user,
        user_email=args.user_email,
        triggered_by=args.triggered_by,
        author=args.author,
        author_email=args.author_email,
        facts={"migration_risk": args.migration_risk, "failed_jobs": args.failed_jobs},
        rollback=args.rollback,
    )
    # The explanation needs no webhook secret: their variables need not be set here.
    return explain(load_policy(path, read_webhook_secrets=False), question, sys.stdout)


def config_check(path: Path | None, out: TextIO = sys.stdout) -> int:
    """Exit 0 when valid; else 2 with one `FILE:LINE: reason` line per problem on stdout."""
    if path is None:
        import os

        path = Path(os.environ.get("APPROVAL_POLICY", "config/approvers.yml"))
    try:
        loaded = load_policy(path)
    except PolicyError as exc:
        for problem in exc.problems:
            print(problem, file=out)
        return EXIT_INVALID
    gates = len(loaded.policy.gates)
    print(f"{path}: valid ({gates} gate(s), policy version {loaded.version[:12]})", file=out)
    return EXIT_OK


def _database_settings() -> str:
    """db and ledger commands need only DATABASE_URL, not the Slack and GitLab secrets."""
    import os

    from bot.settings import DEFAULT_DATABASE_URL

    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def _refuse_non_utf8(runtime: Runtime) -> None:
    """web, worker and reconcile refuse a database that is not UTF8 before they start."""
    from bot.store.db import DatabaseEncodingError

    try:
        runtime.db.check_encoding()
    except DatabaseEncodingError as exc:
        raise CliError(str(exc)) from None


def db_upgrade(url: str) -> int:
    from bot.store.db import Database, DatabaseEncodingError
    from bot.store.migrate import upgrade

    try:
        db = Database(url)
        try:
            upgrade(db)
        finally:
            db.dispose()
    except DatabaseEncodingError as exc:
        raise CliError(str(exc)) from None
    except Exception as exc:  # any driver error: one line, no traceback
        raise CliError(
            f"database upgrade failed: {type(exc).__name__}: {_first_line(exc)}"
        ) from None
    print("database schema is up to date")
    return EXIT_OK


def ledger_command(args: argparse.Namespace) -> int:
    from bot import ledger
    from bot.store.db import DatabaseEncodingError

    db = ledger_database(_database_settings())
    try:
        if args.ledger_command in ("verify", "sign-existing"):
            from bot.ledger_cli import check_command

            return check_command(db, args.ledger_command, args.checkpoints or [])
        with db.sessions() as session:
            write = ledger.export_json if args.format == "json" else ledger.export_csv
            only = ledger.ExportFilter(
                since=_parse_since(args.since), until=_parse_since(args.until), project=args.project
            )
            if args.output is None:
                write(session, sys.stdout, only)
            else:
                with args.output.open("w", encoding="utf-8", newline="") as out:
                    count = write(session, out, only)
                print(f"wrote {count} records to {args.output}", file=sys.stderr)
            return EXIT_OK
    except CliError:
        raise
    except DatabaseEncodingError as exc:
        raise CliError(str(exc)) from None
    except Exception as exc:  # a missing table, an unreachable server: one clear line
        raise CliError(
            f"cannot read the ledger: {type(exc).__name__}: {_first_line(exc)}"
        ) from None
    finally:
        db.dispose()


def _ledger_key() -> str | None:
    """LEDGER_HMAC_KEY (or the file LEDGER_HMAC_KEY_FILE names), for signature checks."""
    import os

    path = os.environ.get("LEDGER_HMAC_KEY_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise CliError(f"cannot read LEDGER_HMAC_KEY_FILE {path}: {exc.strerror}") from None
    return os.environ.get("LEDGER_HMAC_KEY") or None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]
