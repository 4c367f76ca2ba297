"""What every blueprint shares: the runtime, the queue, body limits and readiness."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from redis.exceptions import RedisError
from rq import Queue
from werkzeug.exceptions import RequestEntityTooLarge

from bot.runtime import Runtime

READINESS_CACHE_S = 1.0
EDGE_KEY = "approval_bot"
METRICS_KEY = "approval_bot_metrics"


@dataclass
class Readiness:
    """Redis and database liveness, cached briefly so the hot path does not ping each time."""

    runtime: Runtime
    checked_at: float = 0.0
    state: dict[str, bool] = field(default_factory=dict)

    def check(self, fresh: bool = False) -> dict[str, bool]:
        if fresh or time.monotonic() - self.checked_at > READINESS_CACHE_S:
            self.state = {"redis": self._redis_ok(), "database": self.runtime.db.ping()}
            self.checked_at = time.monotonic()
        return self.state

    def ready(self) -> bool:
        return all(self.check().values())

    def _redis_ok(self) -> bool:
        try:
            return bool(self.runtime.redis.ping())
        except (RedisError, OSError):
            return False


@dataclass
class Edge:
    runtime: Runtime
    queue: Queue
    readiness: Readiness


def edge() -> Edge:
    value = current_app.extensions[EDGE_KEY]
    assert isinstance(value, Edge)
    return value


def install(app: Flask, runtime: Runtime, queue: Queue) -> None:
    app.extensions[EDGE_KEY] = Edge(runtime, queue, Readiness(runtime))


def error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


def answer(code: int, /, **body: Any) -> tuple[Response, int]:
    return jsonify(body), code


class BodyTooLarge(Exception):
    pass


def read_body(limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes whether or not Content-Length is sent."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge
    data = bytearray()
    try:
        # Read to the end: a chunked body's size is only known once it has all arrived.
        while len(data) <= limit:
            chunk = request.stream.read(65536)
            if not chunk:
                break
            data += chunk
    except RequestEntityTooLarge:
        raise BodyTooLarge from None
    if len(data) > limit:
        raise BodyTooLarge
    return bytes(data)


def parse_json(text: bytes | str) -> Any:
    """json.loads, with every way a hostile body can fail it as a ValueError (a 400):
    bad syntax, bad UTF-8, and nesting deep enough to exhaust the recursion limit."""
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValueError("not valid JSON") from None
