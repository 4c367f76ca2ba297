"""Each request's id (logged on every line, returned, passed to its jobs) and its latency."""

from __future__ import annotations

import re
import time
import uuid
from typing import Protocol

from flask import Flask, Response, g, request

from bot.logs import bind_request_id, clear_request_id
from bot.web.metrics import REQUEST_SECONDS

HEADER = "X-Request-Id"
GITLAB_EVENT_UUID = "X-Gitlab-Event-UUID"
# An id from outside is logged and echoed: only a short, plain token is taken as it is.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}$")


class _Headers(Protocol):
    def get(self, key: str) -> str | None: ...


def request_id_from(headers: _Headers) -> str:
    """The caller's X-Request-Id, else GitLab's event UUID, else a new id."""
    for name in (HEADER, GITLAB_EVENT_UUID):
        value = (headers.get(name) or "").strip()
        if _SAFE_ID.match(value):
            return value
    return uuid.uuid4().hex


def install(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        g.request_id = request_id_from(request.headers)
        bind_request_id(g.request_id)

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers[HEADER] = request_id
        started = g.get("started")
        if started is not None:
            endpoint = request.url_rule.rule if request.url_rule is not None else "other"
            REQUEST_SECONDS.labels(endpoint=endpoint).observe(time.perf_counter() - started)
        return response

    @app.teardown_request
    def _forget(_exc: BaseException | None) -> None:
        clear_request_id()
