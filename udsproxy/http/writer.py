"""Responses to the client, serialized by us: h11's framing rules without its state machine.

h11 parses what clients send (``frontend.ClientConnection``), but sending a response through
h11 re-validates and rebuilds its head and runs the state machine for every event: about a
tenth of the CPU of a proxied request. A :class:`ResponseWriter` writes the same bytes h11
would (``tests/unit/test_http_writer.py`` compares them), with h11's rules
(``Connection._clean_up_response_headers_for_sending`` and its body writers):

- a response to HEAD, a 204 or a 304 has no body; its head is the one a GET would get;
- a response with Content-Length keeps it and must carry exactly that many bytes;
- one without (the server's was chunked or close-delimited) is sent chunked to an HTTP/1.1
  client and close-delimited to an HTTP/1.0 one (then the connection closes);
- when the connection will not be kept (the request said ``close`` or was HTTP/1.0, or the
  response carries ``Connection: close``) the head says ``Connection: close``.

The client connection makes a fresh h11 connection for the next request (a keep-alive
connection between messages has no other state), fed with whatever followed this request.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

from .headers import Item, tokens


class WriterError(Exception):
    """A response the framing does not allow (more or fewer bytes than announced)."""


CHUNKED: Item = (b"Transfer-Encoding", b"transfer-encoding", b"chunked")
CLOSE: Item = (b"Connection", b"connection", b"close")
NO_BODY_STATUS = (204, 304)


def request_keeps_alive(http_version: bytes, items: Sequence[Item]) -> bool:
    """h11's ``_keep_alive`` for a request: HTTP/1.1 without a ``close`` token."""
    if http_version < b"1.1":
        return False
    for _, name, value in items:
        if name == b"connection" and b"close" in tokens(value):
            return False
    return True


def serialize_head(status: int, reason: bytes, fields: Sequence[Item]) -> bytes:
    """A status line and fields as h11 writes them (``Host`` first, if any)."""
    out = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    for raw, name, value in fields:
        if name == b"host":
            out.append(b"%s: %s\r\n" % (raw, value))
    for raw, name, value in fields:
        if name != b"host":
            out.append(b"%s: %s\r\n" % (raw, value))
    out.append(b"\r\n")
    return b"".join(out)


class ResponseWriter:
    """The bytes of one response to one request; ``done`` once its end is written."""

    __slots__ = (
        "method",
        "http11",
        "keep_alive",
        "started",
        "done",
        "remaining",
        "chunked",
        "no_body",
    )

    def __init__(self, method: bytes, http_version: bytes, keep_alive: bool) -> None:
        self.method = method
        self.http11 = http_version >= b"1.1"
        self.keep_alive = keep_alive  # may the connection carry a next request afterwards
        self.started = False  # a final response head was written
        self.done = False
        self.remaining: Optional[int] = None  # Content-Length framing: bytes still due
        self.chunked = False
        self.no_body = False  # HEAD, 204, 304: body bytes are dropped (our own pages' too)

    @property
    def close_delimited(self) -> bool:
        """The body ends with the connection (an HTTP/1.0 client, unknown length)."""
        return self.started and not self.done and self.remaining is None and not self.chunked

    def informational(self, status: int, reason: bytes, fields: Sequence[Item]) -> bytes:
        """A 1xx head (100, 103, 101): written as it is; none to an HTTP/1.0 client, which
        would take it for the final response (RFC 9110 section 15.2)."""
        if self.started:
            raise WriterError("an informational response after the final one")
        if not self.http11:
            return b""
        return serialize_head(status, reason, fields)

    def head(self, status: int, reason: bytes, fields: List[Item]) -> bytes:
        """The final response head; ``fields`` are end-to-end (no framing but Content-Length)."""
        if self.started:
            raise WriterError("a second response head")
        self.started = True
        length: Optional[int] = None
        listed: List[bytes] = []  # the tokens of the Connection fields
        for _, name, value in fields:
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                listed.extend(tokens(value))
        no_body = self.method == b"HEAD" or status in NO_BODY_STATUS
        need_close = False
        if length is None and status not in NO_BODY_STATUS:
            # Unknown length (h11 frames HEAD as GET here): chunked, or close-delimited.
            if self.http11:
                fields = [f for f in fields if f[1] != b"transfer-encoding"] + [CHUNKED]
                self.chunked = not no_body
            elif not no_body:
                need_close = True
        if no_body:
            self.no_body = True
            self.remaining = 0
        elif not self.chunked:
            self.remaining = length  # None: close-delimited
        if not self.keep_alive or need_close:
            # As h11: one Connection field per token, close among them, keep-alive not.
            names = sorted({t for t in listed if t != b"keep-alive"} | {b"close"})
            fields = [f for f in fields if f[1] != b"connection"]
            fields += [(b"Connection", b"connection", t) for t in names]
            self.keep_alive = False
        elif b"close" in listed:
            self.keep_alive = False  # the response itself says so
        return serialize_head(status, reason, fields)

    def data(self, data: bytes) -> bytes:
        """Body bytes, framed."""
        if not self.started or self.done:
            raise WriterError("body bytes outside a response")
        if self.no_body:
            return b""
        if self.chunked:
            if not data:
                return b""
            return b"%x\r\n%s\r\n" % (len(data), data)
        remaining = self.remaining
        if remaining is not None:
            if len(data) > remaining:
                raise WriterError("more body than the Content-Length announced")
            self.remaining = remaining - len(data)
        # h11's readers hand out bytearray slices (transports take bytes); a body read
        # around h11 is a view of the read buffer, which our transports take as it is.
        return bytes(data) if type(data) is bytearray else data

    def end(self, trailers: Sequence[Item] = ()) -> bytes:
        """The end of the response (trailers only when chunked)."""
        if not self.started or self.done:
            raise WriterError("the end of no response")
        self.done = True
        if self.chunked:
            fields = b"".join(b"%s: %s\r\n" % (raw, value) for raw, _, value in trailers)
            return b"0\r\n" + fields + b"\r\n"
        if self.remaining:
            raise WriterError("less body than the Content-Length announced")
        # Trailers without chunked framing have nowhere to go: dropped (as HAProxy does for
        # an HTTP/1.0 client; h11 would refuse the whole response).
        if self.remaining is None:
            self.keep_alive = False  # close-delimited: the close ends the body
        return b""
