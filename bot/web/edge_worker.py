"""The gunicorn worker of `approval-bot web`: gthread, with every request read in the event loop.

Gunicorn's gthread worker gives a connection to a thread as soon as it opens (the thread
waits up to 5 s for a first byte) and the thread then reads the request with blocking reads
and no deadline: ten clients trickling headers, or 500 idle connections, held all eight
threads and /healthz timed out. Here the worker's selector loop reads each request into
memory, within limits (head size, MAX_BODY_BYTES, a deadline for the head and one for the
body, a memory budget per process), and a thread gets only a complete request, which
gunicorn's parser then reads from memory: threads wait on the app, never on a client.
Every other part of gthread (accept, keep-alive, SIGTERM drain, SIGHUP) is gunicorn's.

Weighed against: waitress also buffers whole requests, but times out only idle
connections (a byte every minute keeps one open for ever) and has no pre-fork workers,
SIGHUP or graceful drain; gevent would need monkey-patching under psycopg, SQLite and RQ.
This subclass relies on gthread's internals, hence the pinned gunicorn major version.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import resource
import socket
import time
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from selectors import EVENT_READ
from typing import Any

from gunicorn import http, util
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

from bot.web.edge_errors import answer_for, json_error
from bot.web.http_framing import FramingLimits, Refusal, RequestFramer

RECV_BYTES = 65536
# How long a refused or finished connection is drained before it is closed: closing with
# unread bytes would reset it, and the client could lose the answer (RFC 9112 9.6).
LINGER_S = 2.0
FD_HEADROOM = 256
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
HEAD_TIMEOUT = "request head not received within {:g} s"
BODY_TIMEOUT = "request body not received within {:g} s"
BUSY = "server busy: too many request bytes waiting; retry later"


@dataclass(frozen=True)
class EdgeLimits:
    """What one client may hold at the edge (the README's threat model lists them)."""

    max_body_bytes: int = 5 * 1024 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    max_head_bytes: int = 32 * 1024
    max_connections: int = 1000  # per worker process

    @property
    def buffer_budget_bytes(self) -> int:
        """Request bytes one process holds in memory at most, over all its connections."""
        return max(64 * 1024 * 1024, 8 * self.max_body_bytes)


@dataclass
class _Reading:
    framer: RequestFramer
    deadline: float
    timeout: str
    received: int = 0


class EdgeConn(TConn):  # type: ignore[misc]
    """A connection whose graceful close lingers in the event loop, not in a blocking read."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any, linger: Any):
        super().__init__(cfg, sock, client, server)
        self._linger = linger

    def close(self, graceful: bool = False) -> None:
        if graceful:
            self._linger(self)
        else:
            super().close()


class EdgeWorker(ThreadWorker):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits: EdgeLimits = self.app.edge_limits
        self.framing = FramingLimits(self.limits.max_head_bytes, self.limits.max_body_bytes)
        self.reading: dict[TConn, _Reading] = {}
        self.lingering: dict[TConn, float] = {}
        self.timers: list[tuple[float, int, TConn]] = []
        self.buffered = 0
        self.stop_noticed = False
        self._order = itertools.count()

    def init_process(self) -> None:
        self.worker_connections = fd_headroom(self.limits.max_connections, self.log)
        super().init_process()

    # --- gthread's hooks ------------------------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = EdgeConn(self.cfg, sock, client, listener.getsockname(), self._linger)
        self.enqueue_req(conn)

    def enqueue_req(self, conn: TConn) -> None:
        """Every path by which gthread gives a connection to a thread (a new one, a kept-alive
        one that became readable, read-ahead after a request) starts reading here instead."""
        leftover = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        state = _Reading(
            RequestFramer(self.framing),
            time.monotonic() + self.limits.header_timeout_s,
            HEAD_TIMEOUT.format(self.limits.header_timeout_s),
        )
        self.reading[conn] = state
        self._arm(conn, state.deadline)
        conn.sock.setblocking(False)
        self.poller.register(conn.sock, EVENT_READ, partial(self._on_readable, conn))
        if leftover:
            self._take(conn, state, leftover)

    def murder_pending(self) -> None:
        """Called by gthread's loop about once a second, also while it drains on SIGTERM."""
        super().murder_pending()
        if not self.alive and not self.stop_noticed:
            self.stop_noticed = True
            self._hurry_on_stop()
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            deadline, _, conn = heapq.heappop(self.timers)
            state = self.reading.get(conn)
            if state is not None and state.deadline == deadline:
                self._expire(conn, state)
            elif self.lingering.get(conn) == deadline:
                self._end_linger(conn)

    def _keepalive_after(self, conn: TConn, keepalive: bool) -> bool:
        # The unread rest of a body is in memory: drain all of it (gunicorn caps a drain
        # from the socket at 64 KiB and then closes the connection).
        return bool(keepalive and conn.parser.finish_body())

    def handle_error(self, _req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """Gunicorn's own refusals (a malformed request line or header, ...), as JSON."""
        status, message = answer_for(exc)
        if status < 500:
            self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        else:
            self.log.exception("Error handling request")
        with suppress(Exception):
            util.write_nonblock(client, json_error(status, message))

    # --- reading requests in the event loop ------------------------------------------------

    def _on_readable(self, conn: TConn, _sock: socket.socket) -> None:
        state = self.reading.get(conn)
        if state is None:
            return
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._leave_reading(conn)
            self._close(conn)
            return
        self._take(conn, state, data)

    def _take(self, conn: TConn, state: _Reading, data: bytes) -> None:
        framer = state.framer
        in_head = framer.head_end is None
        self.buffered += len(data)
        state.received += len(data)
        refused = framer.feed(data)
        if refused is None and self.buffered > self.limits.buffer_budget_bytes:
            refused = Refusal(503, BUSY)
        if refused is not None:
            self._refuse(conn, refused)
        elif framer.complete:
            self._dispatch(conn)
        elif in_head and framer.in_body:
            state.deadline = time.monotonic() + self.limits.body_timeout_s
            state.timeout = BODY_TIMEOUT.format(self.limits.body_timeout_s)
            self._arm(conn, state.deadline)
            if framer.expects_continue:
                # Gunicorn sends its own 100 later too: more than one 1xx is allowed.
                self._send(conn, CONTINUE)

    def _dispatch(self, conn: TConn) -> None:
        """The request is whole: a thread serves it, its parser reading from memory."""
        state = self._leave_reading(conn)
        request, rest = state.framer.take()
        # One chunk: whatever follows the request (pipelined) stays in the parser's read-ahead,
        # where gthread looks for it once the answer is written, and hands it back here.
        conn.parser = http.get_parser(self.cfg, [request + rest], conn.client)
        conn.initialized = conn.data_ready = True
        super().enqueue_req(conn)

    def _refuse(self, conn: TConn, refusal: Refusal) -> None:
        self._leave_reading(conn)
        client = conn.client[0] if isinstance(conn.client, tuple) else conn.client
        self.log.warning(
            "Refused a request from ip=%s: %s %s", client, refusal.status, refusal.message
        )
        self._send(conn, json_error(refusal.status, refusal.message))
        self.nr_conns -= 1
        conn.close(graceful=True)

    def _expire(self, conn: TConn, state: _Reading) -> None:
        if state.received:
            self._refuse(conn, Refusal(408, state.timeout))
        else:  # it said nothing: nothing to answer
            self._leave_reading(conn)
            self._close(conn)

    def _leave_reading(self, conn: TConn) -> _Reading:
        state = self.reading.pop(conn)
        self.buffered -= len(state.framer.buffer)
        with suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        return state

    def _hurry_on_stop(self) -> None:
        """On SIGTERM, connections that have not started a request get as long as kept-alive
        ones (gthread's linger), and none keeps the drain waiting past half its grace."""
        now = time.monotonic()
        latest = now + self.cfg.graceful_timeout / 2
        for conn, state in self.reading.items():
            cap = now + STOP_KEEPALIVE_LINGER if not state.received else latest
            if state.deadline > cap:
                state.deadline = cap
                self._arm(conn, cap)

    # --- closing ---------------------------------------------------------------------------

    def _linger(self, conn: TConn) -> None:
        """Half-close, then read and drop what the client still sends until it closes (at
        most LINGER_S), in the event loop; the connection counts as open meanwhile."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            util.close(conn.sock)
            return
        self.nr_conns += 1
        conn.sock.setblocking(False)
        deadline = time.monotonic() + LINGER_S
        self.lingering[conn] = deadline
        self._arm(conn, deadline)
        self.poller.register(conn.sock, EVENT_READ, partial(self._on_linger_readable, conn))

    def _on_linger_readable(self, conn: TConn, _sock: socket.socket) -> None:
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._end_linger(conn)

    def _end_linger(self, conn: TConn) -> None:
        self.lingering.pop(conn, None)
        with suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        self._close(conn)

    def _close(self, conn: TConn) -> None:
        util.close(conn.sock)
        self.nr_conns -= 1

    def _arm(self, conn: TConn, deadline: float) -> None:
        heapq.heappush(self.timers, (deadline, next(self._order), conn))

    @staticmethod
    def _send(conn: TConn, data: bytes) -> None:
        """A short answer on a non-blocking socket; what does not fit is dropped (a client
        that does not read what little the edge says has no claim on it)."""
        with suppress(OSError):
            conn.sock.send(data)


def fd_headroom(connections: int, log: Any) -> int:
    """Raise this process's open-file limit so `connections` fit; fewer if it cannot."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + FD_HEADROOM
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < wanted:
        fitting = max(1, soft - FD_HEADROOM)
        log.warning("open-file limit %s: serving at most %s connections", soft, fitting)
        return fitting
    return connections
