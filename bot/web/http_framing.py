"""Where an HTTP/1.1 request ends, worked out as its bytes arrive (RFC 9112 framing).

The edge reads every request into memory in its event loop before a thread serves it
(bot.web.edge_worker): a slow client then holds a buffer, never a thread. This module
decides when a request is complete, and refuses what is malformed or too large as soon
as that is known (a declared Content-Length over the limit before any body byte is read).
Gunicorn's parser reads the buffered request afterwards and applies all its other checks;
the framing rules here are as strict as its own, so both agree on where a request ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HEAD_END = b"\r\n\r\n"
CRLF = b"\r\n"
# A line feed without its carriage return: gunicorn refuses it (RFC 9112 section 2.2),
# and a head written with bare LFs would never end the way it is scanned here.
_BARE_LF = re.compile(rb"(?<!\r)\n")
MAX_CHUNK_LINE = 4096
# Chunk framing may add this much to the body's size before it counts as abuse.
CHUNK_OVERHEAD_BYTES = 64 * 1024
KNOWN_CODINGS = frozenset({b"chunked", b"identity", b"gzip", b"x-gzip", b"deflate", b"compress"})

HEAD_TOO_LARGE = "request head larger than {} bytes"
BARE_LF = "request head lines must end with CRLF"
BOTH_LENGTHS = "a request may not have both Content-Length and Transfer-Encoding"
BAD_LENGTH = "Content-Length must be one decimal number"
BODY_TOO_LARGE = "body larger than {} bytes"
UNKNOWN_CODING = "Transfer-Encoding other than chunked is not supported"
NOT_CHUNKED_LAST = "Transfer-Encoding must end with chunked"
CHUNKED_HTTP10 = "Transfer-Encoding is not allowed in HTTP/1.0"
BAD_CHUNK = "malformed chunked body"


@dataclass(frozen=True)
class Refusal:
    """The request is refused with this status before it reaches the app."""

    status: int
    message: str


@dataclass(frozen=True)
class FramingLimits:
    max_head_bytes: int
    max_body_bytes: int


@dataclass
class _Chunks:
    """Progress through a chunked body: `left` bytes of chunk data still to come (None:
    a chunk-size line is next), then the trailer section."""

    position: int
    left: int | None = None
    trailers: bool = False
    decoded: int = 0


@dataclass
class RequestFramer:
    """One request's bytes, fed as they arrive; `end` is set once the request is whole."""

    limits: FramingLimits
    buffer: bytearray = field(default_factory=bytearray)
    head_end: int | None = None
    end: int | None = None
    expects_continue: bool = False
    _scanned: int = 0
    _chunks: _Chunks | None = None

    @property
    def complete(self) -> bool:
        return self.end is not None and len(self.buffer) >= self.end

    @property
    def in_body(self) -> bool:
        return self.head_end is not None and not self.complete

    def feed(self, data: bytes) -> Refusal | None:
        """Take more bytes; a Refusal when the request cannot be accepted."""
        self.buffer += data
        if self.head_end is None:
            refused = self._scan_head()
            if refused or self.head_end is None:
                return refused
        if self._chunks is not None and self.end is None:
            return self._scan_chunked_body(self._chunks)
        return None

    def take(self) -> tuple[bytes, bytes]:
        """The complete request, and the bytes after it (the next request's start)."""
        assert self.end is not None
        return bytes(self.buffer[: self.end]), bytes(self.buffer[self.end :])

    # --- the head ------------------------------------------------------------------------

    def _scan_head(self) -> Refusal | None:
        start = max(0, self._scanned - len(HEAD_END) + 1)
        found = self.buffer.find(HEAD_END, start)
        head_size = len(self.buffer) if found < 0 else found + len(HEAD_END)
        if head_size > self.limits.max_head_bytes:
            return Refusal(431, HEAD_TOO_LARGE.format(self.limits.max_head_bytes))
        if _BARE_LF.search(self.buffer, max(0, self._scanned - 1), head_size):
            return Refusal(400, BARE_LF)
        self._scanned = len(self.buffer)
        if found < 0:
            return None
        self.head_end = head_size
        return self._framing(bytes(self.buffer[:found]))

    def _framing(self, head: bytes) -> Refusal | None:
        """Content-Length / Transfer-Encoding, as RFC 9112 section 6 says to read them."""
        lines = head.split(CRLF)
        if lines[0] == b"":  # one empty line may come before the request line
            lines = lines[1:]
        http10 = lines[0].endswith(b" HTTP/1.0") if lines else False
        lengths: list[bytes] = []
        codings: list[bytes] = []
        expect = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.lower(), value.strip(b" \t")
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                codings += [c.strip(b" \t").lower() for c in value.split(b",")]
            elif name == b"expect":
                expect = value.lower() == b"100-continue"
        if lengths and codings:
            return Refusal(400, BOTH_LENGTHS)
        if codings:
            return self._chunked(codings, http10, expect)
        return self._sized(lengths, http10, expect)

    def _chunked(self, codings: list[bytes], http10: bool, expect: bool) -> Refusal | None:
        if any(coding not in KNOWN_CODINGS for coding in codings):
            return Refusal(501, UNKNOWN_CODING)
        if codings[-1] != b"chunked" or codings.count(b"chunked") > 1:
            return Refusal(400, NOT_CHUNKED_LAST)
        if len(codings) > 1:
            return Refusal(501, UNKNOWN_CODING)
        if http10:
            return Refusal(400, CHUNKED_HTTP10)
        assert self.head_end is not None
        self._chunks = _Chunks(position=self.head_end)
        self.expects_continue = expect
        return None

    def _sized(self, lengths: list[bytes], http10: bool, expect: bool) -> Refusal | None:
        if len(lengths) > 1 or (lengths and not lengths[0].isdigit()):
            return Refusal(400, BAD_LENGTH)
        size = int(lengths[0]) if lengths else 0
        if size > self.limits.max_body_bytes:
            return Refusal(413, BODY_TOO_LARGE.format(self.limits.max_body_bytes))
        assert self.head_end is not None
        self.end = self.head_end + size
        self.expects_continue = expect and not http10 and size > 0
        return None

    # --- the body ------------------------------------------------------------------------

    def _scan_chunked_body(self, chunks: _Chunks) -> Refusal | None:
        refused = self._scan_chunks(chunks)
        if refused is None and self.end is None and self._raw_body_too_large():
            return Refusal(413, BODY_TOO_LARGE.format(self.limits.max_body_bytes))
        return refused

    def _raw_body_too_large(self) -> bool:
        assert self.head_end is not None
        raw = len(self.buffer) - self.head_end
        return raw > 2 * self.limits.max_body_bytes + CHUNK_OVERHEAD_BYTES

    def _scan_chunks(self, chunks: _Chunks) -> Refusal | None:
        buffer = self.buffer
        while True:
            if chunks.left is not None:  # chunk data, then its CRLF
                stop = chunks.position + chunks.left
                if len(buffer) < stop + len(CRLF):
                    return None
                if buffer[stop : stop + len(CRLF)] != CRLF:
                    return Refusal(400, BAD_CHUNK)
                chunks.position, chunks.left = stop + len(CRLF), None
                continue
            eol = buffer.find(CRLF, chunks.position)
            if eol < 0:
                waiting = len(buffer) - chunks.position
                return Refusal(400, BAD_CHUNK) if waiting > MAX_CHUNK_LINE else None
            line = bytes(buffer[chunks.position : eol])
            chunks.position = eol + len(CRLF)
            if chunks.trailers:
                if not line:  # the empty line that ends the trailer section
                    self.end = chunks.position
                    return None
                continue
            size = chunk_size(line)
            if size is None:
                return Refusal(400, BAD_CHUNK)
            if size == 0:
                chunks.trailers = True
                continue
            chunks.decoded += size
            if chunks.decoded > self.limits.max_body_bytes:
                return Refusal(413, BODY_TOO_LARGE.format(self.limits.max_body_bytes))
            chunks.left = size


def chunk_size(line: bytes) -> int | None:
    """The size on a chunk-size line (hex digits, then optional extensions), or None."""
    digits, semicolon, _ = line.partition(b";")
    if semicolon:
        digits = digits.rstrip(b" \t")  # BWS is allowed before a chunk extension only
    if not digits or len(digits) > 16 or digits.strip(b"0123456789abcdefABCDEF"):
        return None
    return int(digits, 16)
