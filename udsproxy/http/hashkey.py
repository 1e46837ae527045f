"""The balancing key of ``balance uri``, ``url_param`` and ``hdr()`` (HAProxy's backend.c).

Pure functions of the request head (and, for ``url_param ... check_post``, of the first
bytes of its body). The backend's hash balancer hashes the key as ``hash-type`` says; a
request without a key is balanced round robin, as in HAProxy.

- ``uri [len <n>] [depth <n>] [whole] [path-only]``: the request target as received (an
  absolute-form target keeps its scheme and authority unless ``path-only``), cut at the
  first ``?`` unless ``whole``, to ``len`` bytes, and before the ``depth+1``-th ``/``.
  The slashes of ``http://`` count too, as in HAProxy: ``path-only`` avoids that.
- ``url_param <name> [check_post]``: the value of the first ``<name>=`` of the query
  string (an empty value is a key too: HAProxy 2.6 hashes it, whatever its manual says).
  With ``check_post`` a POST whose query lacks it is searched in its body
  (:class:`BodySearch`): the exchange holds the body until the parameter shows, the body
  ends or ``min(Content-Length, tune.bufsize)`` bytes are held.
- ``hdr(<name>) [use_domain_only]``: the first comma-separated value of the first
  ``<name>`` field (HAProxy's ``http_find_header``); empty or absent is no key.
  ``use_domain_only`` keeps the label before the last dot (``www.example.org:8080`` ->
  ``example``; a value without a dot is kept whole).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

from ..config.model import Algorithm, Balance
from .headers import Item

HTTP_ALGORITHMS = frozenset({Algorithm.URI, Algorithm.URL_PARAM, Algorithm.HDR})
_BLANK = frozenset(b" \t\r\n")
# RFC 9110 tchar: a form body's value must start with one (HAProxy's HTTP_IS_TOKEN check).
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

HeadKey = Callable[[bytes, Sequence[Item]], Optional[bytes]]


def uri_path(target: bytes) -> bytes:
    """The path of a request target from its first ``/`` (HAProxy's ``http_get_path``).

    An origin-form target is its own path; ``scheme://authority/path`` gives ``/path``;
    ``*``, an authority alone or a scheme without ``//`` give ``b""``.
    """
    if not target or target[:1] == b"*":
        return b""
    pos = 0
    if target[:1].isalpha():
        pos = 1
        size = len(target)
        while pos < size and (target[pos : pos + 1].isalnum() or target[pos] in b"+-."):
            pos += 1
        if target[pos : pos + 3] != b"://":
            return b""
        pos += 3
    slash = target.find(b"/", pos)
    return b"" if slash < 0 else target[slash:]


def param_span(data: bytes, prefix: bytes) -> Optional[Tuple[int, int]]:
    """``(start, end)`` of the value of the first ``&``-separated item starting ``prefix``."""
    start = 0
    while True:
        if data.startswith(prefix, start):
            begin = start + len(prefix)
            end = data.find(b"&", begin)
            return begin, len(data) if end < 0 else end
        amp = data.find(b"&", start)
        if amp < 0:
            return None
        start = amp + 1


def first_value(value: bytes) -> bytes:
    """A field's first comma-separated value, commas inside quoted strings kept, trimmed."""
    if b'"' not in value:
        end = value.find(b",")
        return (value if end < 0 else value[:end]).strip(b" \t")
    quoted = escaped = False
    end = len(value)
    for i, c in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            if c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:
                quoted = False
        elif c == 0x22:
            quoted = True
        elif c == 0x2C:
            end = i
            break
    return value[:end].strip(b" \t")


def domain_only(value: bytes) -> bytes:
    """The label before the last dot (HAProxy's ``use_domain_only``); no dot: all of it.

    As HAProxy scans from the end and never looks at the first byte, a leading dot alone
    does not count.
    """
    last = value.rfind(b".", 1)
    if last < 0:
        return value
    return value[value.rfind(b".", 0, last) + 1 : last]


class BodySearch:
    """Where ``url_param <name> check_post`` looks in a POST body, and how far."""

    __slots__ = ("prefix", "limit", "held", "resume")

    def __init__(self, prefix: bytes, limit: int) -> None:
        self.prefix = prefix
        self.limit = limit  # body bytes looked at: min(Content-Length, tune.bufsize)
        self.held = bytearray()  # what :meth:`feed` has seen, at most ``limit`` bytes
        self.resume = 0  # where the first item not yet ruled out starts

    def feed(self, chunk: bytes, complete: bool) -> Tuple[bool, Optional[bytes]]:
        """:meth:`find` over every chunk fed so far, in time linear in the body.

        The body arrives in pieces (a hostile client sends one byte at a time): items
        already ruled out are not scanned again, and nothing is joined.
        """
        room = self.limit - len(self.held)
        if room > 0 and chunk:
            self.held += chunk[:room]
        data = self.held
        complete = complete or len(data) >= self.limit
        prefix = self.prefix
        start = self.resume
        while True:
            if data.startswith(prefix, start):
                begin = start + len(prefix)
                end = data.find(b"&", begin)
                if end < 0:
                    if not complete:
                        self.resume = start
                        return False, None  # the value may go on in bytes still to come
                    end = len(data)
                return True, self._classify(bytes(data[begin:end]))
            amp = data.find(b"&", start)
            if amp < 0:
                self.resume = start  # the last item may still become ours
                return complete, None
            start = amp + 1

    @staticmethod
    def _classify(value: bytes) -> Optional[bytes]:
        if not value or value[0] in _BLANK:
            return b""
        if value[0] in _TCHAR:
            return value
        return None

    def find(self, body: bytes, complete: bool) -> Tuple[bool, Optional[bytes]]:
        """``(decided, key)`` for a whole body held so far (:meth:`feed` on a fresh search).

        Undecided only while not ``complete`` (the body goes on and fewer than ``limit``
        bytes are held) and the parameter is not seen with its value ended by ``&``. As in
        HAProxy, a value starting with a blank is empty, and one starting with another
        non-token byte is no key (the body is not URL-encoded).
        """
        return BodySearch(self.prefix, self.limit).feed(body, complete)


class HashKey:
    """A backend's HTTP hash key, its ``balance`` arguments read once."""

    def __init__(self, balance: Balance, bufsize: int) -> None:
        algorithm = balance.algorithm
        self.bufsize = bufsize
        self.check_post = False
        self.whole = self.path_only = self.use_domain_only = False
        self.length = self.depth = 0
        self.prefix = self.header = b""
        head: HeadKey
        if algorithm == Algorithm.URI:
            opts = balance.uri
            self.length, self.depth = opts.length, opts.depth
            self.whole, self.path_only = opts.whole, opts.path_only
            head = self._uri
        elif algorithm == Algorithm.URL_PARAM:
            if not balance.url_param:
                raise ValueError("balance url_param needs a parameter name")
            self.prefix = balance.url_param.encode("latin-1") + b"="
            self.check_post = balance.check_post
            head = self._url_param
        elif algorithm == Algorithm.HDR:
            self.header = balance.header.lower().encode("latin-1")
            self.use_domain_only = balance.use_domain_only
            head = self._hdr
        else:
            raise ValueError(f"'balance {balance.spelling}' has no HTTP key")
        self._head_key = head

    # ----------------------------------------------------------------- the head
    def key(self, target: bytes, items: Sequence[Item]) -> Optional[bytes]:
        """The key found in the request's target and fields, None for none."""
        return self._head_key(target, items)

    def for_request(
        self, method: bytes, target: bytes, items: Sequence[Item]
    ) -> Tuple[Optional[bytes], Optional[BodySearch]]:
        """The key from the head, or where to look for it in the body (check_post)."""
        key = self._head_key(target, items)
        if key is None and self.check_post and method == b"POST":
            return None, self.body_search(items)
        return key, None

    def _uri(self, target: bytes, items: Sequence[Item]) -> Optional[bytes]:
        uri = uri_path(target) if self.path_only else target
        if self.length:
            uri = uri[: self.length]
        if not self.whole:
            mark = uri.find(b"?")
            if mark >= 0:
                uri = uri[:mark]
        if self.depth:
            pos = -1
            for _ in range(self.depth + 1):
                pos = uri.find(b"/", pos + 1)
                if pos < 0:
                    break
            else:
                uri = uri[:pos]
        return uri

    def _url_param(self, target: bytes, items: Sequence[Item]) -> Optional[bytes]:
        mark = target.find(b"?")
        if mark < 0:
            return None
        query = target[mark + 1 :]
        span = param_span(query, self.prefix)
        if span is None:
            return None
        return query[span[0] : span[1]]

    def _hdr(self, target: bytes, items: Sequence[Item]) -> Optional[bytes]:
        name = self.header
        for _, lower, value in items:
            if lower == name:
                value = first_value(value)
                if not value:
                    return None
                return domain_only(value) if self.use_domain_only else value
        return None

    # ----------------------------------------------------------------- the body
    def body_search(self, items: Sequence[Item]) -> Optional[BodySearch]:
        """How far to look in the body: ``min(Content-Length, tune.bufsize)``; None: no body."""
        limit = 0
        for _, name, value in items:
            if name == b"transfer-encoding":
                limit = self.bufsize
                break
            if name == b"content-length":
                try:
                    limit = min(int(value), self.bufsize)
                except ValueError:
                    return None
        return BodySearch(self.prefix, limit) if limit > 0 else None


def make_hash_key(balance: Balance, bufsize: int) -> Optional[HashKey]:
    """The HTTP key of ``balance``, or None when its algorithm does not hash the request."""
    if balance.algorithm not in HTTP_ALGORITHMS:
        return None
    return HashKey(balance, bufsize)
