"""A fake external audit API (`POST /deployments`, `/rollbacks`, `/checkpoints`), idempotent
on Idempotency-Key. `GET /checkpoints` answers the checkpoints it accepted, as a JSON array
(what `approval-bot ledger verify --checkpoints URL` reads)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from bot.simulators.server import FakeServer, FaultBook, FaultRule, json_response


@dataclass
class AuditPost:
    path: str
    key: str | None
    body: Any
    status: int


POST_PATHS = ("/deployments", "/rollbacks", "/checkpoints")


class FakeAuditApi(FakeServer):
    """Stores each deployment once per Idempotency-Key; a repeat answers 409 (duplicate)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._faults = FaultBook()
        self.posts: list[AuditPost] = []
        self.accepted: dict[str, Any] = {}
        self.unexpected: list[str] = []

    def fail_next(self, status: int = 503, *, times: int = 1, delay: float | None = None) -> None:
        """The next `times` posts answer `status` (or, with `delay`, answer only after it)."""
        self._faults.add(
            FaultRule(matches=lambda _key: True, times=times, status=status, delay=delay)
        )

    def handle(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/checkpoints":
            return json_response(self.checkpoints(), 200)
        if request.method != "POST" or request.path not in POST_PATHS:
            self.unexpected.append(f"{request.method} {request.path}")
            return json_response({"error": "not found"}, 404)
        key = request.headers.get("Idempotency-Key")
        body = json.loads(request.get_data() or b"null")
        fault = self._faults.take(None)
        if fault is not None and fault.delay:
            self.sleep(fault.delay)
        status = fault.status if fault is not None and fault.status else 201
        with self._lock:
            if status == 201 and key in self.accepted:
                status = 409
            if status == 201 and key is not None:
                self.accepted[key] = body
            self.posts.append(AuditPost(request.path, key, body, status))
        return json_response({"status": status}, status)

    def checkpoints(self) -> list[Any]:
        """The checkpoints accepted, in the order they arrived."""
        with self._lock:
            return [p.body for p in self.posts if p.path == "/checkpoints" and p.status == 201]
