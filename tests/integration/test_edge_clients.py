"""Slow and hostile clients against a real `approval-bot web` on 127.0.0.1.

Slow clients (headers or a body trickled a byte at a time, connections that say nothing,
clients that never close) must not stop the edge: /healthz answers within 1 s throughout.
Whatever a client sends, the answer is JSON, including the server's own 4xx/5xx. Types
at the boundary are strict: `true` or `"101"` is not a GitLab id.

Only `web` runs here (no worker): nothing below needs one. Deadlines are shortened
through the environment so that the cut-offs can be seen within the test's few seconds.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests

from bot.simulators.gitlab import FakeGitLab
from bot.simulators.slack import FakeSlack
from bot.simulators.slack_signing import signed_headers
from tests.conftest import redis_db_url
from tests.integration.harness import (
    FIXTURES,
    SIGNING_SECRET,
    Bot,
    bot_env,
    wait_until,
)

pytestmark = pytest.mark.integration

REDIS_URL = redis_db_url(10)
HEADER_TIMEOUT_S = 3
BODY_TIMEOUT_S = 3
MAX_BODY = 64 * 1024  # harness.bot_env's MAX_BODY_BYTES
PROBE_LIMIT_S = 1.0
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    workdir = tmp_path_factory.mktemp("bot-edge-clients")
    redis.Redis.from_url(REDIS_URL).flushdb()
    slack, gitlab = FakeSlack().start(), FakeGitLab().start()
    env = bot_env(workdir, slack, gitlab, f"sqlite:///{workdir}/approvals.db", REDIS_URL)
    env["HTTP_HEADER_TIMEOUT_SECONDS"] = str(HEADER_TIMEOUT_S)
    env["HTTP_BODY_TIMEOUT_SECONDS"] = str(BODY_TIMEOUT_S)
    bot = Bot(workdir, env, slack, gitlab)
    try:
        bot.run("db", "upgrade")
        bot.start("web", "web", "--port", str(bot.port))
        wait_until(lambda: probe(bot) < PROBE_LIMIT_S, 30, "the web process to answer")
        yield bot
        assert bot.stop("web") == 0  # SIGTERM drains and exits 0, slow clients or not
    finally:
        bot.stop_all()
        slack.stop()
        gitlab.stop()
        redis.Redis.from_url(REDIS_URL).flushdb()


# ------------------------------------------------------------------------ slow clients


def probe(bot: Bot) -> float:
    """Seconds /healthz took on a new connection (inf when it did not answer in time)."""
    started = time.monotonic()
    try:
        answer = requests.get(f"{bot.url}/healthz", timeout=PROBE_LIMIT_S * 2)
    except requests.RequestException:
        return math.inf
    return time.monotonic() - started if answer.status_code == 200 else math.inf


def probes(bot: Bot, count: int) -> list[float]:
    """`count` probes, a tenth of a second apart (the load stays on meanwhile)."""
    taken = []
    for _ in range(count):
        taken.append(probe(bot))
        time.sleep(0.1)
    return taken


def summary(latencies: list[float]) -> str:
    return f"p50={statistics.median(latencies):.3f}s max={max(latencies):.3f}s"


def connect(bot: Bot) -> socket.socket:
    return socket.create_connection(("127.0.0.1", bot.port), timeout=5)


class Trickle:
    """Sends one byte per socket every `every` seconds, on a thread, until stopped."""

    def __init__(self, streams: list[tuple[socket.socket, bytes]], every: float = 0.1) -> None:
        self.streams = [(sock, memoryview(data)) for sock, data in streams]
        self.every = every
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        position = 0
        while not self.stop.wait(self.every):
            for sock, data in self.streams:
                if position < len(data):
                    with contextlib.suppress(OSError):
                        sock.send(data[position : position + 1])
            position += 1
            self.sent = position

    def __enter__(self) -> Trickle:
        self.thread.start()
        wait_until(lambda: self.sent >= 2, 5, "the slow clients to start sending")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def slow_header(bot: Bot) -> tuple[socket.socket, bytes]:
    head = b"POST /webhooks/gitlab HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 1000
    return connect(bot), head


def slow_body(bot: Bot) -> tuple[socket.socket, bytes]:
    sock = connect(bot)
    sock.sendall(
        b"POST /webhooks/gitlab HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    return sock, b"{" + b" " * 998 + b"}"


@contextlib.contextmanager
def sockets(opened: list[socket.socket]) -> Iterator[list[socket.socket]]:
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


def test_healthz_answers_within_a_second_while_50_slow_clients_hold_connections(
    web: Bot,
) -> None:
    headers = [slow_header(web) for _ in range(20)]
    bodies = [slow_body(web) for _ in range(15)]
    idle = [connect(web) for _ in range(15)]
    with sockets([s for s, _ in headers + bodies] + idle), Trickle(headers + bodies):
        latencies = probes(web, 15)
    print(f"/healthz under 50 slow clients: {summary(latencies)}")
    assert max(latencies) < PROBE_LIMIT_S, summary(latencies)


def test_healthz_answers_within_a_second_with_500_idle_connections(web: Bot) -> None:
    with sockets([connect(web) for _ in range(500)]):
        latencies = probes(web, 10)
    print(f"/healthz with 500 idle connections: {summary(latencies)}")
    assert max(latencies) < PROBE_LIMIT_S, summary(latencies)


def test_clients_that_never_close_do_not_stall_the_server(web: Bot) -> None:
    """A client that asked for `Connection: close`, got its answer and keeps the socket
    open (without reading or closing) must not hold the server up."""
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    held = [connect(web) for _ in range(20)]
    with sockets(held):
        for sock in held:
            sock.sendall(request)
        latencies = probes(web, 10)
    print(f"/healthz with 20 clients that never close: {summary(latencies)}")
    assert max(latencies) < PROBE_LIMIT_S, summary(latencies)


def answers_on(sock: socket.socket, count: int, timeout: float) -> list[tuple[int, str, bytes]]:
    """The next `count` final HTTP answers on `sock` (status, content type, body), read
    through one buffer: pipelined answers may arrive together."""
    sock.settimeout(timeout)
    found = []
    with sock.makefile("rb") as stream:
        while len(found) < count:
            status = int(stream.readline().split()[1])
            headers = {}
            while (line := stream.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = stream.read(int(headers.get("content-length", "0")))
            if status >= 200:  # an interim 100 Continue is not the answer
                found.append((status, headers.get("content-type", ""), body))
    return found


def answer_on(sock: socket.socket, timeout: float) -> tuple[int, str, bytes]:
    return answers_on(sock, 1, timeout)[0]


def test_slow_requests_are_cut_off_with_a_json_408_and_silent_ones_closed(web: Bot) -> None:
    header_sock, header_data = slow_header(web)
    body_sock, body_data = slow_body(web)
    silent = connect(web)
    started = time.monotonic()
    with (
        sockets([header_sock, body_sock, silent]),
        Trickle([(header_sock, header_data), (body_sock, body_data)], every=0.2),
    ):
        for sock in (header_sock, body_sock):
            status, kind, body = answer_on(sock, HEADER_TIMEOUT_S + BODY_TIMEOUT_S + 3)
            assert (status, kind) == (408, "application/json")
            assert "error" in json.loads(body)
        silent.settimeout(HEADER_TIMEOUT_S + 3)
        assert silent.recv(100) == b""  # closed without a word: it said nothing either
    assert time.monotonic() - started < HEADER_TIMEOUT_S + BODY_TIMEOUT_S + 3


# -------------------------------------------------------------- the server's own errors


def exchange(bot: Bot, data: bytes, timeout: float = 5) -> tuple[int, str, bytes]:
    with connect(bot) as sock:
        sock.sendall(data)
        return answer_on(sock, timeout)


HEAD = b"Host: 127.0.0.1\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"
WEBHOOK = b"POST /webhooks/gitlab HTTP/1.1\r\n" + HEAD


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        pytest.param(
            WEBHOOK + b"Content-Length: 5\r\n" + CHUNKED + b"\r\n0\r\n\r\n", 400, id="cl-and-te"
        ),
        pytest.param(b"GARBAGE\r\n\r\n", 400, id="request-line"),
        pytest.param(b"G@T / HTTP/1.1\r\n" + HEAD + b"\r\n", 400, id="method"),
        pytest.param(b"GET / HTTP/9.9\r\n" + HEAD + b"\r\n", 400, id="http-version"),
        pytest.param(b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n" + HEAD + b"\r\n", 414, id="uri"),
        pytest.param(
            b"GET / HTTP/1.1\r\n" + HEAD + b"X: " + b"a" * 9000 + b"\r\n\r\n", 431, id="field-size"
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\n"
            + HEAD
            + b"".join(b"X%d: %s\r\n" % (i, b"a" * 4000) for i in range(20))
            + b"\r\n",
            431,
            id="head-size",
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\n" + HEAD + b"No colon here\r\n\r\n", 400, id="header-line"
        ),
        pytest.param(b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400, id="bare-lf"),
        pytest.param(b"GET / HTTP/1.1\r\n" + HEAD + b"X: a\r\n b\r\n\r\n", 400, id="folding"),
        pytest.param(WEBHOOK + CHUNKED + b"\r\nzz\r\nhello\r\n0\r\n\r\n", 400, id="chunk-size"),
        pytest.param(WEBHOOK + CHUNKED + b"\r\n5\r\nhelloXX0\r\n\r\n", 400, id="chunk-end"),
        pytest.param(WEBHOOK + b"Transfer-Encoding: gzip2\r\n\r\n", 501, id="te-unknown"),
        pytest.param(WEBHOOK + b"Transfer-Encoding: identity\r\n\r\n", 400, id="te-identity"),
        pytest.param(
            WEBHOOK + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, id="two-cl"
        ),
        pytest.param(WEBHOOK + b"Content-Length: -1\r\n\r\n", 400, id="cl-negative"),
        pytest.param(
            b"POST / HTTP/1.0\r\n" + HEAD + CHUNKED + b"\r\n0\r\n\r\n", 400, id="chunked-http10"
        ),
        pytest.param(b"GET / HTTP/1.1\r\n" + HEAD + b"Expect: teapot\r\n\r\n", 417, id="expect"),
        pytest.param(b"GET /nope HTTP/1.1\r\n" + HEAD + b"\r\n", 404, id="not-found"),
        pytest.param(
            b"GET /webhooks/gitlab HTTP/1.1\r\n" + HEAD + b"\r\n", 405, id="method-not-allowed"
        ),
    ],
)
def test_every_error_the_server_answers_is_json(web: Bot, raw: bytes, status: int) -> None:
    got, kind, body = exchange(web, raw)
    assert (got, kind) == (status, "application/json"), body[:300]
    assert json.loads(body)["error"]


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(web: Bot) -> None:
    head = WEBHOOK + b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (MAX_BODY + 1)
    started = time.monotonic()
    status, kind, body = exchange(web, head)  # no body follows: the answer must not wait
    assert (status, kind) == (413, "application/json")
    assert str(MAX_BODY) in json.loads(body)["error"]
    assert time.monotonic() - started < 1.0


def test_a_chunked_body_over_the_limit_is_refused_as_json(web: Bot) -> None:
    chunk = b"%x\r\n%s\r\n" % (MAX_BODY // 2 + 1, b"a" * (MAX_BODY // 2 + 1))
    status, kind, body = exchange(web, WEBHOOK + CHUNKED + b"\r\n" + chunk * 2 + b"0\r\n\r\n")
    assert (status, kind) == (413, "application/json")
    assert json.loads(body)["error"]


def test_pipelined_and_chunked_requests_are_all_answered(web: Bot) -> None:
    """Keep-alive, pipelining and a chunked body of exactly the limit still work."""
    chunked = b"POST /nope HTTP/1.1\r\n" + HEAD + CHUNKED + b"\r\n"
    chunked += b"%x\r\n%s\r\n0\r\n\r\n" % (MAX_BODY, b"a" * MAX_BODY)
    get = b"GET /healthz HTTP/1.1\r\n" + HEAD + b"\r\n"
    with connect(web) as sock:
        sock.sendall(get + chunked + get)
        answers = [status for status, _, _ in answers_on(sock, 3, 5)]
    assert answers == [200, 404, 200]


# ------------------------------------------------------------------------ strict types


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("project", "id"), True),
        (("project", "id"), "101"),
        (("object_attributes", "id"), 70_999.0),
        (("builds", 1, "id"), "300010"),
        (("project", "path_with_namespace"), ["fintech", "payments-api"]),
    ],
)
def test_loosely_typed_webhook_fields_are_400(web: Bot, path: tuple[Any, ...], value: Any) -> None:
    n = next(_ids)
    event = web.pipeline(pipeline_id=70_000 + n, gate_job_id=300_000 + n * 10)
    target: Any = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    answer = web.webhook(event)
    assert answer.status_code == 400, answer.text
    where = ".".join(str(part) for part in path)
    assert where in answer.json()["error"]


def test_a_documented_gitlab_pipeline_event_is_still_accepted(web: Bot) -> None:
    """GitLab's own example shape (floats in durations, nulls, ids as integers) passes."""
    payload = json.loads((FIXTURES / "pipeline_hook.json").read_text())
    answer = web.webhook(payload, key="documented-shape")
    assert answer.status_code in (200, 202), answer.text


def test_loosely_typed_slack_fields_are_400(web: Bot) -> None:
    payload = {
        "type": "block_actions",
        "user": {"id": 12345},
        "actions": [{"action_id": "approve", "value": "0" * 32}],
    }
    body = ("payload=" + json.dumps(payload)).encode()
    answer = requests.post(
        f"{web.url}/slack/interactions",
        data=body,
        headers=signed_headers(SIGNING_SECRET, body),
        timeout=5,
    )
    assert answer.status_code == 400
    assert "user.id" in answer.json()["error"]
