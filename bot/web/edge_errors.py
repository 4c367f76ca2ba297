"""The server's own error answers, as JSON like every other answer of the edge.

Gunicorn writes an HTML page when it refuses a request itself (a malformed request line,
a header too large, ...); the edge answers `{"error": "..."}` with the same status.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from gunicorn.http import errors

MAX_ECHOED_CHARS = 200
INTERNAL_ERROR = "internal error"
INVALID_REQUEST = "invalid request: {}"

# Gunicorn's refusals and their statuses (as gunicorn's own Worker.handle_error has them);
# the first matching class wins, so subclasses come before their bases.
_CLIENT_ERRORS: tuple[tuple[type[BaseException], int], ...] = (
    (errors.InvalidResponseHeader, 500),  # the app's fault, not the client's
    (errors.InvalidResponseHeaderName, 500),
    (errors.ConfigurationProblem, 500),
    (errors.LimitRequestLine, 414),
    (errors.LimitRequestHeaders, 431),
    (errors.UnsupportedTransferCoding, 501),
    (errors.ExpectationFailed, 417),
    (errors.ForbiddenProxyRequest, 403),
    (errors.ParseException, 400),
)


def json_error(status: int, message: str, extra_headers: str = "") -> bytes:
    """A complete HTTP/1.1 answer with a JSON error body, closing the connection."""
    body = json.dumps({"error": message}).encode()
    reason = HTTPStatus(status).phrase
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"{extra_headers}\r\n"
    )
    return head.encode("latin-1") + body


def answer_for(exc: BaseException) -> tuple[int, str]:
    """The status and message for an exception raised while gunicorn read a request."""
    for kind, status in _CLIENT_ERRORS:
        if isinstance(exc, kind):
            if status >= 500:
                return status, INTERNAL_ERROR
            return status, INVALID_REQUEST.format(str(exc)[:MAX_ECHOED_CHARS])
    return 500, INTERNAL_ERROR
