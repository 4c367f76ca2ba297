"""Where a request ends (bot.web.http_framing), checked against gunicorn's own parser.

The edge buffers a request until the framer calls it complete, then gunicorn's parser reads
it from memory. If the two disagreed on where a request ends, a thread would wait for bytes
that never come (or read the next request as a body). So: for any request, split anyhow,
the framer's verdict does not depend on the split, and when it calls a request complete,
gunicorn either refuses it or reads exactly that request (its body included) and no more.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from gunicorn.config import Config
from gunicorn.http.errors import NoMoreData, ParseException
from gunicorn.http.parser import RequestParser
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.web.http_framing import FramingLimits, Refusal, RequestFramer

LIMITS = FramingLimits(max_head_bytes=2048, max_body_bytes=256)
CONFIG = Config()

header_names = st.sampled_from(
    [
        b"Host",
        b"Content-Length",
        b"content-length",
        b"Transfer-Encoding",
        b"Expect",
        b"X-A",
        b"Content-Length ",
        b"Transfer-Encoding\t",
    ]
)
header_values = st.one_of(
    st.sampled_from(
        [
            b"0",
            b"5",
            b"05",
            b"300",
            b"-1",
            b"5, 5",
            b"chunked",
            b"CHUNKED",
            b"gzip, chunked",
            b"chunked, chunked",
            b"identity",
            b"100-continue",
            b" 5 ",
            b"",
        ]
    ),
    st.binary(max_size=8).filter(lambda v: b"\r" not in v and b"\n" not in v),
)
chunk = st.builds(
    lambda size, ext, data: b"%x%s\r\n%s\r\n" % (size, ext, data[:size].ljust(size, b"a")),
    st.integers(1, 80),
    st.sampled_from([b"", b";a=b", b" ;x", b";"]),
    st.binary(max_size=80),
)
chunked_body = st.builds(
    lambda chunks, end: b"".join(chunks) + end,
    st.lists(chunk, max_size=4),
    st.sampled_from([b"0\r\n\r\n", b"0\r\nX: y\r\n\r\n", b"0;e\r\n\r\n", b"0\r\n", b"zz\r\n"]),
)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    line = draw(st.sampled_from([b"POST / HTTP/1.1", b"GET /x HTTP/1.0", b"PUT /y HTTP/1.1"]))
    headers = draw(st.lists(st.tuples(header_names, header_values), max_size=3))
    framing = draw(st.sampled_from(["length", "chunked", "headers only"]))
    if framing == "chunked":
        payload = draw(chunked_body)
        headers.append((b"Transfer-Encoding", b"chunked"))
    else:
        payload = draw(st.binary(max_size=300))
        if framing == "length":
            headers.append((b"Content-Length", b"%d" % len(payload)))
    headers = draw(st.permutations(headers))
    head = line + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in headers) + b"\r\n"
    raw = head + payload + draw(st.sampled_from([b"", b"GET / HTTP/1.1\r\n\r\n", b"GE"]))
    if draw(st.booleans()):  # a few random bytes changed
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(raw) - 1))
            raw = raw[:at] + draw(st.binary(min_size=1, max_size=1)) + raw[at + 1 :]
    return raw


def frame(pieces: list[bytes]) -> Any:
    framer = RequestFramer(LIMITS)
    for piece in pieces:
        refused = framer.feed(piece)
        if refused is not None:
            return refused
        if framer.complete:
            break
    return framer.take() if framer.complete else ("incomplete", framer.in_body)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in pairwise(points)]


@settings(max_examples=400, deadline=None)
@given(raw=requests(), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_the_verdict_does_not_depend_on_how_the_bytes_arrive(raw: bytes, cuts: list[int]) -> None:
    whole = verdict(frame([raw]))
    assert verdict(frame(split(raw, cuts))) == whole
    assert verdict(frame([raw[i : i + 1] for i in range(len(raw))])) == whole


def verdict(framed: Any) -> Any:
    """The refusal, or the request (what follows it depends on when feeding stopped)."""
    return framed[0] if isinstance(framed, tuple) and isinstance(framed[0], bytes) else framed


@settings(max_examples=400, deadline=None)
@given(raw=requests())
def test_a_complete_request_is_exactly_what_gunicorn_reads(raw: bytes) -> None:
    verdict = frame([raw])
    if isinstance(verdict, Refusal) or not isinstance(verdict[0], bytes):
        return
    request, rest = verdict
    parser = RequestParser(CONFIG, [request + rest], ("127.0.0.1", 1))
    try:
        message = next(parser)
        body = message.body.read()
    except ParseException:
        return  # gunicorn refuses it: a JSON 4xx, and the connection closes
    except NoMoreData:
        raise AssertionError(f"gunicorn wanted more than the framer buffered: {raw!r}") from None
    assert len(body) <= LIMITS.max_body_bytes
    assert parser.unreader.take_buffered() == rest, raw


def test_refusals_come_before_the_body() -> None:
    head = b"POST / HTTP/1.1\r\nContent-Length: 257\r\n\r\n"
    assert frame([head]) == Refusal(413, "body larger than 256 bytes")
    both = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert frame([both]).status == 400
    assert frame([b"GET / HTTP/1.1\r\nX: " + b"a" * 3000]).status == 431
