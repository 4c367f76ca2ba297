"""An open-loop HTTP load generator: requests are *scheduled* at a fixed rate.

wrk is closed-loop (a slow answer delays the next request on that connection, so it hides
queueing: "coordinated omission"), and wrk2 is not packaged by Debian. Here request i is due
at start + i/rate whatever happened before; a pool of threads with keep-alive connections
sends it when due. Latency is measured from the due time (what a client waiting in line
sees) and, separately, from the moment the request was actually written (service time).
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class OpenLoopResult:
    rate: float
    duration_s: float
    scheduled: int
    from_due_s: list[float] = field(default_factory=list)
    service_s: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    late_sends: int = 0  # sent more than 5 ms after their due time (client or server behind)
    elapsed_s: float = 0.0


def open_loop(
    url: str,
    request_for: Callable[[int], tuple[bytes, dict[str, str]]],
    rate: float,
    duration_s: float,
    threads: int = 32,
    timeout_s: float = 10.0,
) -> OpenLoopResult:
    """POST `request_for(i)` (body, headers) to `url` at `rate` per second for `duration_s`."""
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
    total = int(rate * duration_s)
    prepared = [request_for(i) for i in range(total)]  # no JSON encoding on the clock
    rows: list[tuple[float, float, float, int] | None] = [None] * total
    counter = itertools.count()
    lock = threading.Lock()
    start = time.monotonic() + 0.5

    def run() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
        while True:
            with lock:
                i = next(counter)
            if i >= total:
                break
            due = start + i / rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            body, headers = prepared[i]
            sent = time.monotonic()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
                status = -1
            rows[i] = (due, sent, time.monotonic(), status)
        conn.close()

    workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    result = OpenLoopResult(rate=rate, duration_s=duration_s, scheduled=total)
    finished = 0.0
    for row in rows:
        if row is None:
            continue
        due, sent, done, status = row
        finished = max(finished, done)
        if status < 0:
            result.errors += 1
            continue
        result.statuses[status] = result.statuses.get(status, 0) + 1
        result.from_due_s.append(done - due)
        result.service_s.append(done - sent)
        if sent - due > 0.005:
            result.late_sends += 1
    result.elapsed_s = round(finished - start, 3)
    return result
