"""Common message heads parsed in one pass, with h11's verdicts; h11 parses everything else.

h11 stays the parser of record: for a request head it parses, :func:`parse_request` either
returns the request h11 would return (same method, target, version and header triples) or
None, and then h11 parses the bytes as before. It takes only what is common and plainly
well formed, so that declining costs little and accepting never differs from h11
(``tests/unit/test_http_heads.py`` compares both over generated and hostile heads):

- a complete head at the start of the buffer, every line ending in CRLF, no NUL, VT or FF;
- a request line ``token SP target SP HTTP/1.1`` (or ``HTTP/1.0``), the target visible ASCII;
- fields ``token ":" value``, the value's surrounding spaces and tabs removed (h11's OWS);
- within :class:`~udsproxy.http.headers.RawHead`'s limits (size and field count);
- no body and nothing that changes h11's state beyond "a request came": no
  ``Content-Length``, ``Transfer-Encoding``, ``Upgrade`` or ``Expect`` field, not CONNECT;
  exactly one ``Host`` for HTTP/1.1, at most one for HTTP/1.0.

What the parser leaves after the head (pipelined requests) is the next head's start, as
h11's ``trailing_data`` would be.

:func:`parse_response` does the same for a server's response head to a bodyless request
sent without h11 (``upstream``): a final response whose body a Content-Length frames (or
that has none); anything else goes to an h11 client told of the request then.
"""

from __future__ import annotations

from typing import List, Optional, Tuple, Union

from .h11lib import Headers
from .headers import HOP_BY_HOP, Item, tokens
from .writer import NO_BODY_STATUS

# Short strings (names, methods, numbers) are checked against a character class with
# ``data.lstrip(CHARS)``, empty exactly when every byte of ``data`` is one of CHARS:
# ``data.translate(None, CHARS)`` says the same but builds a 256-entry table per call,
# ~3x the cost on a field name; it stays for targets, whose length makes it the cheaper.
TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
VISIBLE = bytes(range(0x21, 0x7F))  # a request target's characters (h11: vchar)
DIGITS = b"0123456789"
# Bytes a line may hold: h11's field values exclude NUL and whitespace but SP and HT.
NOT_IN_A_LINE = b"\x00\n\x0b\x0c\r"
IN_A_LINE = bytes(b for b in range(256) if b not in NOT_IN_A_LINE)
VERSIONS = {b"HTTP/1.1": b"1.1", b"HTTP/1.0": b"1.0"}
# Fields after which h11 is in another state than "a bodyless request came" (a body, a
# protocol switch, 100-continue): h11 parses those requests.
H11_ONLY = frozenset({b"content-length", b"transfer-encoding", b"upgrade", b"expect"})
# The fields that decide a message's framing, its hop-by-hop fields and its Host: the
# parsers pick them out as they go (``noted``), so that the checks after look at those only.
NOTED = H11_ONLY | HOP_BY_HOP | {b"host"}


class ParsedRequest:
    """A request head as ``h11.Request`` has it: the same four attributes, the headers an
    h11 ``Headers`` of ``(raw name, lower-case name, value)`` triples; and ``noted``, those
    of its fields whose names are in NOTED, in order (a function of the header rules that
    only reads such fields gives the same answer on them as on all the fields)."""

    __slots__ = ("method", "target", "headers", "http_version", "noted")

    def __init__(
        self,
        method: bytes,
        target: bytes,
        items: List[Item],
        http_version: bytes,
        noted: List[Item],
    ):
        self.method = method
        self.target = target
        self.headers = Headers(items)
        self.http_version = http_version
        self.noted = noted

    def __repr__(self) -> str:
        return f"<ParsedRequest {self.method!r} {self.target!r} HTTP/{self.http_version!r}>"


class ParsedResponse:
    """A response head as ``h11.Response`` has it (status_code, reason, headers, version),
    and its ``noted`` fields as ParsedRequest has them."""

    __slots__ = ("status_code", "reason", "headers", "http_version", "noted")

    def __init__(
        self,
        status: int,
        reason: bytes,
        items: List[Item],
        http_version: bytes,
        noted: List[Item],
    ):
        self.status_code = status
        self.reason = reason
        self.headers = Headers(items)
        self.http_version = http_version
        self.noted = noted

    def __repr__(self) -> str:
        return f"<ParsedResponse {self.status_code} HTTP/{self.http_version!r}>"


def head_lines(buf: Union[bytes, bytearray], end: int, maxhdr: int) -> Optional[List[bytes]]:
    """The lines of the head ``buf[:end]`` (``end`` just after its first CRLFCRLF) when every
    CR and LF in it ends a line and it has no NUL, VT or FF and at most ``maxhdr`` fields."""
    head = bytes(buf[: end - 4])
    lines = head.split(b"\r\n")
    fields = len(lines) - 1
    if fields > maxhdr or len(head.translate(None, IN_A_LINE)) != 2 * fields:
        return None
    return lines


def field_items(lines: List[bytes]) -> Optional[Tuple[List[Item], List[Item]]]:
    """Each line ``token ":" value`` as h11's triple (the value without its surrounding
    spaces and tabs), and those of the fields in NOTED; None if a line is not one."""
    items: List[Item] = []
    noted: List[Item] = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name.lstrip(TOKEN_CHARS):
            return None
        lower = name.lower()
        item = (name, lower, value.strip(b" \t"))
        items.append(item)
        if lower in NOTED:
            noted.append(item)
    return items, noted


def parse_request(buf: Union[bytes, bytearray], end: int, maxhdr: int) -> Optional[ParsedRequest]:
    """The request whose head is ``buf[:end]`` (``end`` just after its first CRLFCRLF), or
    None when h11 should parse it. ``maxhdr``: the most fields a head may have (more is
    RawHead's 400, which the caller gets by declining here)."""
    lines = head_lines(buf, end, maxhdr)
    if lines is None:
        return None
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        return None
    method, target, version = parts
    http_version = VERSIONS.get(version)
    if (
        http_version is None
        or not method
        or method.lstrip(TOKEN_CHARS)
        or method == b"CONNECT"
        or not target
        or target.translate(None, VISIBLE)
    ):
        return None
    fields = field_items(lines[1:])
    if fields is None:
        return None
    items, noted = fields
    hosts = 0
    for _, name, _ in noted:
        if name in H11_ONLY:
            return None
        if name == b"host":
            hosts += 1
    if hosts > 1 or (hosts == 0 and http_version == b"1.1"):
        return None  # h11 refuses it (400)
    return ParsedRequest(method, target, items, http_version, noted)


def parse_response(
    buf: Union[bytes, bytearray], end: int, method: bytes, maxhdr: int
) -> Optional[Tuple[ParsedResponse, int, bool]]:
    """The final response whose head is ``buf[:end]`` to a ``method`` request, the length
    of its body and whether the server keeps the connection; None when h11 should parse it.

    Taken: a 200-999 status, and a body framed by one plain Content-Length (or none: HEAD,
    204, 304). Left to h11: 1xx, chunked or close-delimited bodies, anything unusual.
    The connection is kept as h11 keeps it: HTTP/1.1 without ``Connection: close``.
    """
    lines = head_lines(buf, end, maxhdr)
    if lines is None:
        return None
    line = lines[0]
    http_version = VERSIONS.get(line[:8])
    code = line[9:12]
    if (
        http_version is None
        or line[8:9] != b" "
        or len(code) != 3
        or code.lstrip(DIGITS)
        or code < b"200"
        or (len(line) > 12 and line[12:13] != b" ")
    ):
        return None
    status = int(code)
    fields = field_items(lines[1:])
    if fields is None:
        return None
    items, noted = fields
    length = -1
    keep = http_version == b"1.1"
    for _, name, value in noted:
        if name == b"content-length":
            if length >= 0 or not value or len(value) > 20 or value.lstrip(DIGITS):
                return None  # h11's rules for anything else (lists, signs, repeats)
            length = int(value)
        elif name == b"transfer-encoding":
            return None
        elif name == b"connection" and b"close" in tokens(value):
            keep = False
    if method == b"HEAD" or status in NO_BODY_STATUS:
        length = 0
    elif length < 0:
        return None  # read until the close: h11's
    return ParsedResponse(status, line[13:], items, http_version, noted), length, keep
