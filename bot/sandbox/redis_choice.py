"""Which Redis the sandbox's bot uses, and keeping it apart from a real bot's.

`--redis-url`, else REDIS_URL, else 127.0.0.1:6379 when it answers, else a private
redis-server (bot.private_redis) for this run. On a shared server the sandbox uses a
database of its own: 15 unless the URL names one. It marks the database it uses, and
refuses one that holds other data (a real bot's queue and counters, most likely): its
worker would take the real bot's jobs and its counters would show in the real /metrics.
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from bot.private_redis import DIRECTORY, LOCAL_REDIS_URL, PrivateRedis, PrivateRedisError, answers
from bot.sandbox.processes import SandboxError, check_redis, redis_location
from bot.settings import redis_url_problem

SANDBOX_DB = 15
DEFAULT_PORT = 6379
MARKER_KEY = "approval-bot:sandbox"
PRIVATE_NAME = "sandbox"  # var/redis/sandbox.log while it runs
PREFIX = "approval-bot sandbox: "

NOT_OURS = (
    "Redis database {db} at {where} holds data that is not the sandbox's (a real bot's?): "
    "the sandbox needs a database of its own: pass --redis-url redis://HOST:PORT/N with "
    "an empty database N"
)


def choose(given: str | None, stack: ExitStack) -> tuple[str, PrivateRedis | None]:
    """The URL the bot will use (checked, claimed), and the private server if one started.

    A private server is stopped when `stack` closes.
    """
    source, wanted = ("--redis-url", given) if given else ("REDIS_URL", os.environ.get("REDIS_URL"))
    if wanted:
        problem = redis_url_problem(wanted)
        if problem:
            raise SandboxError(f"{source} {redis_location(wanted)} {problem}")
    else:
        local = LOCAL_REDIS_URL.format(db=SANDBOX_DB)
        if not answers(local):
            return _private(stack)
        wanted = local
    url = with_sandbox_db(wanted)
    check_redis(url)
    claim(url)
    return url, None


def _private(stack: ExitStack) -> tuple[str, PrivateRedis]:
    server = PrivateRedis(DIRECTORY, PRIVATE_NAME, persist=False)
    try:
        stack.enter_context(server)
    except PrivateRedisError as exc:
        raise SandboxError(str(exc)) from None
    print(PREFIX + server.announcement(), file=sys.stderr, flush=True)
    claim(server.url)
    return server.url, server


def with_sandbox_db(url: str) -> str:
    """`url` with the sandbox's database number when it names none."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = dict(parse_qsl(parts.query))
        query.setdefault("db", str(SANDBOX_DB))
        return urlunsplit(parts._replace(query=urlencode(query)))
    if parts.path.strip("/"):
        return url
    return urlunsplit(parts._replace(path=f"/{SANDBOX_DB}"))


def claim(url: str) -> None:
    """Mark the database as the sandbox's; refuse one that holds anything else."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        if client.dbsize() and not client.exists(MARKER_KEY):
            db = client.connection_pool.connection_kwargs.get("db", 0)
            raise SandboxError(NOT_OURS.format(db=db, where=_server(url)))
        client.set(MARKER_KEY, "1")
    except redis.RedisError as exc:
        raise SandboxError(f"Redis at {redis_location(url)}: {exc}") from None
    finally:
        client.close()


def _server(url: str) -> str:
    """host:port (or the socket path) without credentials or database."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname}:{parts.port or DEFAULT_PORT}"
