"""Header rules: what crosses the proxy, what is added, and the checks h11 does not make.

h11 stays the parser of record, but its verdicts are not HAProxy's (REFERENCE §4.2): it
unfolds obs-fold silently, accepts Content-Length together with Transfer-Encoding, applies
its size limit only while a head is incomplete and has no limit on the number of fields.
:func:`check_raw_head` (:class:`RawHead` as the bytes arrive) looks at the raw bytes of a
head before h11 parses it, and :func:`check_request` at the parsed request, so that every
such request is refused with 400 before anything reaches a server (no request smuggling).

Forwarding keeps names (casing included), order and values as received, minus the
hop-by-hop fields of RFC 9110 §7.6.1: ``Connection`` and every field it names,
``Proxy-Connection``, ``Keep-Alive``, ``TE``, ``Transfer-Encoding`` (each hop is framed
anew) and ``Upgrade``. ``Trailer`` is end-to-end.
"""

from __future__ import annotations

import ipaddress
import re
from typing import AbstractSet, Any, List, Optional, Sequence, Tuple, Union

from ..config.model import ForwardFor
from ..rules.context import Slots

Item = Tuple[bytes, bytes, bytes]  # raw name, lower-case name, value
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

HOP_BY_HOP = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"te", b"transfer-encoding", b"upgrade"}
)
_CONNECTION_FIELDS = (b"connection", b"proxy-connection")

_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
_HAS_VERSION = re.compile(rb" HTTP/[0-9]\.[0-9]\r?\n")  # at the end of the request line
_OBS_FOLD = re.compile(rb"\n[ \t]")


class HeadError(Exception):
    """A request the proxy refuses: the status to answer, a reason for the log, and the
    termination flags HAProxy 2.6 logs for it (``PR`` refused by the proxy, ``CR`` a
    request the client got wrong at the protocol level)."""

    def __init__(
        self, reason: str, status: int = 400, position: int = -1, flags: str = "PR"
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.position = position
        self.flags = flags


def check_raw_head(buf: bytes, limit: int, maxhdr: int) -> bool:
    """True when ``buf`` holds a complete head that passes; False when more bytes are needed.

    Raises :class:`HeadError` for a head larger than ``limit`` bytes (HAProxy:
    ``tune.bufsize - tune.maxrewrite``), with more than ``maxhdr`` fields
    (``tune.http.maxhdr``) or with an obs-fold continuation line.
    """
    head = RawHead(limit, maxhdr)
    head.feed(buf)
    return head.check()


class RawHead:
    """The bytes of one request head as they arrive, checked by :func:`check_raw_head`'s
    rules at a cost linear in their size.

    A client may send its head a byte per read: searching the whole buffer again on each
    read would cost O(n^2) up to the size limit. The search for the head's end resumes
    where the last one stopped (a match spans at most 4 bytes, so 3 are looked at again),
    and the empty lines before a request are skipped once. The verdicts, reasons and error
    positions are those of a check of the whole buffer at once. One per client
    connection, :meth:`reset` for each request cycle with the bytes already received.
    """

    def __init__(self, limit: int, maxhdr: int) -> None:
        self.limit = limit
        self.maxhdr = maxhdr
        self.reset()

    def reset(self, data: bytes = b"") -> None:
        self.buf = bytearray(data)
        self.restart()

    def take(self, end: int) -> None:
        """The head ends at ``end`` and was parsed: what follows starts the next head."""
        del self.buf[:end]  # CPython drops a bytearray's head without moving the rest
        self.restart()
        self.size = end  # the parsed head's bytes (the log's %U; never a null session)

    def restart(self) -> None:
        self.looked = False  # the first look at this head's bytes was taken (frontend)
        self.start = 0  # after the empty lines skipped so far
        self.resume = 0  # the search for the end of the head goes on from here
        self.complete = False
        self.size = 0  # once complete: the head's bytes, blank line included
        self.line_checked = False  # the request line was seen whole and has a version
        self.line_from = 0  # the search for the request line's end goes on from here
        self.scanned = 0  # bytes searched, all checks together (work, for the tests)

    def feed(self, data: bytes) -> None:
        self.buf += data

    def check(self) -> bool:
        """True when the head is complete and passes; False when more bytes are needed."""
        if self.complete:
            return True
        buf = self.buf
        start = self.start
        # Empty lines before a request are ignored; a lone "\r" at the end may still be one.
        while buf.startswith(b"\r\n", start) or buf.startswith(b"\n", start):
            start += 2 if buf[start] == 13 else 1
        self.start = start
        if start > self.limit:
            # HAProxy consumes them as they come; ours sit in the parser's buffer until the
            # head is complete, so they count against the same bound as the head.
            raise HeadError(
                f"more than {self.limit} bytes of empty lines before a request", position=start
            )
        if not self.line_checked:
            # An HTTP/0.9 request line (no version) is a 400 as soon as its line ends
            # (HAProxy), not a wait for a blank line that will never come.
            nl = buf.find(b"\n", max(self.line_from, start))
            if nl < 0:
                self.line_from = len(buf)
            else:
                self.line_checked = True
                if not _HAS_VERSION.search(buf, start, nl + 1):
                    raise HeadError(
                        "request line without an HTTP version (HTTP/0.9)", position=start
                    )
        pos = max(self.resume, start)
        end = _END_OF_HEAD.search(buf, pos)
        self.scanned += len(buf) - pos
        limit = self.limit
        if end is None:
            self.resume = max(start, len(buf) - 3)
            if len(buf) - start > limit:
                raise HeadError(f"request head larger than {limit} bytes", position=limit)
            return False
        head = buf[start : end.start()]
        self.scanned += 2 * len(head)  # the fold search and the field count, once
        if len(head) > limit:
            raise HeadError(f"request head larger than {limit} bytes", position=start + limit)
        fold = _OBS_FOLD.search(head)
        if fold is not None:
            raise HeadError("obs-fold (a header continued on the next line)", position=fold.start())
        fields = head.count(b"\n")
        if fields > self.maxhdr:
            raise HeadError(f"more than {self.maxhdr} header fields ({fields})")
        self.complete = True
        self.size = end.end()
        return True


def capture_headers(
    items: Sequence[Item], wanted: Sequence[Tuple[bytes, int]], found: Slots
) -> Slots:
    """``found``, a stream's capture slots ``wanted`` (lower-case name, length), with its
    header slots given their header's value cut to the slot's length (``capture
    request|response header``); an absent header leaves its slot as it was (None), and the
    slots rules fill (name b"") are not touched. As HAProxy, the last occurrence wins."""
    for _, name, value in items:
        for i, (want, length) in enumerate(wanted):
            if name == want:
                found[i] = value[:length].decode("latin-1")
    return found


def tokens(value: bytes) -> List[bytes]:
    """The lower-case tokens of a comma-separated field value (``Connection``, ...)."""
    if b"," not in value:  # the usual case: one token (keep-alive, close, upgrade)
        token = value.strip().lower()
        return [token] if token else []
    return [t.strip().lower() for t in value.split(b",") if t.strip()]


def full_items(headers: Any) -> List[Item]:
    """An h11 ``Headers`` as ``(raw name, lower-case name, value)`` triples, without copying.

    h11 keeps exactly this list (``_full_items``); iterating ``Headers`` instead goes
    through the generic ``Sequence.__iter__``, a measurable cost per request.
    """
    items = getattr(headers, "_full_items", None)
    if items is None:  # pragma: no cover - another h11 build
        items = [(raw, raw.lower(), value) for raw, value in headers.raw_items()]
    return items


def check_request(method: bytes, target: bytes, items: Sequence[Item]) -> None:
    """Refuse what h11 lets through: CONNECT (405), the HTTP/2 preface, ambiguous body
    framing, an absolute-form target whose authority is not the Host, a ``#`` in the target
    (400, as HAProxy: a fragment is never sent, and one would slip past path ACLs)."""
    if b"#" in target:
        raise HeadError("a '#' in the request target")
    if method == b"CONNECT":
        raise HeadError("CONNECT is not supported by a reverse proxy", status=405)
    if method == b"PRI" and target == b"*":
        raise HeadError("HTTP/2 connection preface on an HTTP/1.1 frontend", flags="CR")
    has_length = has_te = False
    codings: List[bytes] = []
    host: Optional[bytes] = None
    for _, name, value in items:
        if name == b"content-length":
            has_length = True
        elif name == b"transfer-encoding":
            has_te = True
            codings.extend(tokens(value))
        elif name == b"host":
            host = value
    if host is not None and target[:1] != b"/":
        absolute = split_absolute_target(target)
        if absolute is not None and absolute[0].lower() != host.strip().lower():
            raise HeadError("the absolute URI's authority differs from the Host header")
    if has_te:
        if has_length:
            raise HeadError("both Content-Length and Transfer-Encoding")
        status = coding_refusal(codings)
        if status:
            raise HeadError("a Transfer-Encoding other than chunked", status=status)


def coding_refusal(codings: Sequence[bytes]) -> int:
    """0 for a request's Transfer-Encoding codings that are just ``chunked`` (the only
    ones forwarded), else HAProxy 2.6's answer: 422 when they end with one ``chunked``
    behind others (well formed, a coding the proxy does not apply: ``gzip, chunked``),
    400 otherwise (``gzip`` alone, ``chunked, gzip``, ``chunked, chunked``)."""
    if len(codings) == 1 and codings[0] == b"chunked":
        return 0
    if len(codings) > 1 and codings[-1] == b"chunked" and codings.count(b"chunked") == 1:
        return 422
    return 400


def transfer_coding_status(head: bytes) -> int:
    """:func:`coding_refusal` of every Transfer-Encoding field of the raw ``head`` (a head
    h11 refused for its Transfer-Encoding)."""
    codings: List[bytes] = []
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"transfer-encoding":
            codings.extend(tokens(value))
    return coding_refusal(codings) or 400


def is_bodyless(items: Sequence[Item]) -> bool:
    """A request whose framing says it has no body (no Transfer-Encoding, no or 0 length)."""
    for _, name, value in items:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return False
    return True


def is_chunked(items: Sequence[Item]) -> bool:
    # Loops, not any() over a generator: these run on every request's few fields.
    for item in items:
        if item[1] == b"transfer-encoding":
            return True
    return False


def has_hop_by_hop(items: Sequence[Item]) -> bool:
    """Whether any of ``items`` is hop-by-hop by name (Connection may name others)."""
    for item in items:
        if item[1] in HOP_BY_HOP:
            return True
    return False


def upgrade_field(items: Sequence[Item]) -> Optional[Item]:
    """The ``Upgrade`` field when ``Connection`` lists ``upgrade``.

    Only such a message asks for (or accepts) a protocol switch: an ``Upgrade`` field
    that ``Connection`` does not name is hop-by-hop noise and is dropped like the rest.
    """
    upgrade: Optional[Item] = None
    listed = False
    for item in items:
        name = item[1]
        if name == b"upgrade":
            upgrade = item
        elif name == b"connection" and b"upgrade" in tokens(item[2]):
            listed = True
    return upgrade if listed and upgrade is not None and upgrade[2].strip() else None


def request_upgrade(items: Sequence[Item]) -> Optional[Item]:
    """The protocol switch a request asks for and we pass on, if any.

    ``h2c`` (HTTP/2 over cleartext by upgrade) is dropped, as HAProxy does: the server
    would turn the connection into HTTP/2 that the proxy could neither balance per
    request nor log.
    """
    upgrade = upgrade_field(items)
    if upgrade is not None and {b"h2c", b"h2"} & set(tokens(upgrade[2])):
        return None
    return upgrade


def end_to_end_items(items: Sequence[Item], keep: AbstractSet[bytes] = frozenset()) -> List[Item]:
    """:func:`end_to_end` keeping h11's triples (for ``Headers``, no normalization).

    ``keep``: names never dropped for being listed in ``Connection`` (the ones the proxy's
    own rules set: a client may not strip them).
    """
    named: Optional[set] = None
    for _, name, value in items:
        if name in _CONNECTION_FIELDS:
            named = (named or set()) | set(tokens(value))
    if named is None:
        return [item for item in items if item[1] not in HOP_BY_HOP]
    named -= keep
    return [item for item in items if item[1] not in HOP_BY_HOP and item[1] not in named]


CONNECTION_CLOSE: Item = (b"connection", b"connection", b"close")
CONNECTION_UPGRADE: Item = (b"Connection", b"connection", b"upgrade")


def upgrade_fields(upgrade: Item) -> List[Item]:
    """What asks for (or answers with) a protocol switch: ``Connection`` and ``Upgrade``."""
    return [CONNECTION_UPGRADE, upgrade]


def split_absolute_target(target: bytes) -> Optional[Tuple[bytes, bytes]]:
    """``(authority, origin-form target)`` for an absolute-form target, else None."""
    lower = target[:8].lower()
    if not (lower.startswith(b"http://") or lower.startswith(b"https://")):
        return None
    rest = target[target.index(b"//") + 2 :]
    cut = len(rest)
    for sep in (b"/", b"?"):
        i = rest.find(sep)
        if i >= 0:
            cut = min(cut, i)
    authority, path = rest[:cut], rest[cut:]
    if b"@" in authority:  # userinfo is not part of Host
        authority = authority.rsplit(b"@", 1)[1]
    if not path.startswith(b"/"):
        path = b"/" + path
    return authority, path


def set_item(items: List[Item], name: bytes, value: bytes) -> List[Item]:
    """Replace every ``name`` field (lower-case) by one, at the first one's place."""
    out: List[Item] = []
    placed = False
    for item in items:
        if item[1] == name:
            if not placed:
                out.append((item[0], name, value))
                placed = True
        else:
            out.append(item)
    if not placed:
        out.append((name, name, value))
    return out


class ForwardRule:
    """``option forwardfor`` ready to apply: the header name and the excepted network."""

    def __init__(self, config: ForwardFor) -> None:
        self.header = config.header.encode()
        self.lower = self.header.lower()
        self.except_net: Optional[Network] = (
            ipaddress.ip_network(config.except_net, strict=False) if config.except_net else None
        )
        self.if_none = config.if_none

    def client_value(self, client_ip: Optional[str]) -> Optional[bytes]:
        """The value for this client address whatever the request (a connection keeps it)."""
        if not client_ip:
            return None  # HAProxy adds nothing for unix-socket clients
        addr = ipaddress.ip_address(client_ip.split("%")[0])
        if self.except_net is not None and addr in self.except_net:
            return None
        return client_ip.encode()

    def item_for(self, client_value: Optional[bytes], items: Sequence[Item]) -> Optional[Item]:
        """The field to append to ``items`` (triples), or None."""
        if client_value is None:
            return None
        if self.if_none and any(name == self.lower for _, name, _ in items):
            return None
        return (self.header, self.lower, client_value)
