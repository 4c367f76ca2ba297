"""Shared plumbing for the local fake HTTP services (Slack, GitLab).

Each fake is a werkzeug WSGI app served on 127.0.0.1 with an OS-assigned port
in a daemon thread, so the real client libraries talk real HTTP to it.
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response the way both services send it."""
    return Response(
        json.dumps(body),
        status=status,
        headers=headers,
        content_type="application/json; charset=utf-8",
    )


@dataclass
class FaultRule:
    """One queued fault; `times` counts down and the rule is dropped at zero.

    `times=None` means "until reset". The meaning of the remaining fields is
    up to the fake that queued it (status, error body, delay, ...).
    """

    matches: Callable[[Any], bool]
    times: int | None = 1
    status: int | None = None
    error: str | None = None
    body: Any = None
    retry_after: int | None = None
    delay: float | None = None
    side_effect: bool = False


class FaultBook:
    """Thread-safe FIFO of fault rules; the first matching rule wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> None:
        if rule.times is not None and rule.times < 1:
            raise ValueError("times must be >= 1 (or None for 'always')")
        with self._lock:
            self._rules.append(rule)

    def take(self, key: Any) -> FaultRule | None:
        """Consume one use of the first rule matching `key`, if any."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(key):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times == 0:
                            self._rules.remove(rule)
                    return rule
        return None

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()


class _QuietHandler(WSGIRequestHandler):
    """No per-request access log lines; errors are still logged."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class FakeServer:
    """Base class: subclasses implement `handle(request) -> Response`.

    Usable as a context manager (`with FakeSlack() as slack: ...`) or via
    explicit `start()` / `stop()` (e.g. from a pytest fixture).
    """

    host = "127.0.0.1"

    def __init__(self) -> None:
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        # Set on stop() so handlers sleeping for an injected delay wake up
        # instead of keeping a thread busy after the test is over.
        self._stopping = threading.Event()
        # Exceptions raised inside handle(): a bug in the fake itself. Tests
        # can assert this stays empty; the client sees HTTP 599.
        self.server_errors: list[BaseException] = []

    # -- to override -------------------------------------------------------
    def handle(self, request: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        # Port 0: let the OS choose, so parallel test runs never collide.
        self._server = make_server(
            self.host, 0, self._wsgi, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # Short poll so stop() (which waits for the loop) is quick.
            kwargs={"poll_interval": 0.02},
            name=f"{type(self).__name__}-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. http://127.0.0.1:54321."""
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers for subclasses -------------------------------------------
    def sleep(self, seconds: float) -> None:
        """Sleep in a handler thread, cut short when the server stops."""
        self._stopping.wait(seconds)

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.handle(request)
        except Exception as exc:  # a bug in a fake must not hang the client
            self.server_errors.append(exc)
            traceback.print_exc()
            response = json_response(
                {"fake_server_error": f"{type(exc).__name__}: {exc}"}, status=599
            )
        return response(environ, start_response)
