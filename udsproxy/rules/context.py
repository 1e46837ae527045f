"""What a sample is fetched from: one connection's addresses and one request's head.

A :class:`ConnInfo` is made once per client connection (addresses and names that do not
change between its requests); a :class:`RuleContext` once per request that is evaluated
against rules (HTTP), or once per TCP session (``tcp-request`` rules). Both are plain
objects the data path fills with what it already has — bytes as they were received — and
fetches read. What a fetch derives from them (the path, the query, a header's values) is
computed on first use and kept for the rest of the request, so that twenty ACLs over the
path split the target once.

:class:`Where` names the places a rule or a sample is evaluated; each fetch declares the
:class:`Need` it has (the request head, the response, the server ...), and a fetch used
where that is not available is a config error (as HAProxy's "may not be reliably used
here").
"""

from __future__ import annotations

import enum
import ipaddress
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Item = Tuple[bytes, bytes, bytes]  # raw name, lower-case name, value (as http.headers)
NO_ITEMS: Tuple[Item, ...] = ()


class Need(enum.IntFlag):
    """What a fetch reads (HAProxy's SMP_USE_* families, coarser)."""

    L4 = 1  # connection addresses, frontend name: known from the accept on
    PAYLOAD = 2  # the request bytes received so far (tcp-request content)
    REQUEST = 4  # the HTTP request head
    BACKEND = 8  # the backend chosen (before routing: the frontend, as HAProxy)
    SERVER = 16  # the server that answered
    RESPONSE = 32  # the HTTP response head
    CAPTURES = 64  # the HTTP stream's capture slots (kept from the request to the log)


class Where(enum.Enum):
    """A place where rules or samples are evaluated, with what is available there."""

    TCP_CONNECTION = ("tcp-request connection", Need.L4)
    TCP_CONTENT = ("tcp-request content", Need.L4 | Need.PAYLOAD | Need.BACKEND)
    HTTP_REQUEST = ("http-request", Need.L4 | Need.REQUEST | Need.BACKEND | Need.CAPTURES)
    HTTP_RESPONSE = (
        "http-response",
        Need.L4 | Need.BACKEND | Need.SERVER | Need.RESPONSE | Need.CAPTURES,
    )
    # Log lines are written once the response is complete: everything is known (the
    # request head is kept with the exchange).
    LOG = (
        "log-format",
        Need.L4 | Need.REQUEST | Need.BACKEND | Need.SERVER | Need.RESPONSE | Need.CAPTURES,
    )
    # An ``acl`` line: checked for every place, then again where a condition uses it.
    ANYWHERE = (
        "acl",
        Need.L4
        | Need.PAYLOAD
        | Need.REQUEST
        | Need.BACKEND
        | Need.SERVER
        | Need.RESPONSE
        | Need.CAPTURES,
    )

    def __init__(self, label: str, available: Need) -> None:
        self.label = label
        self.available = available


NEED_NAMES = {
    Need.L4: "the connection",
    Need.PAYLOAD: "the request's bytes (tcp-request content)",
    Need.REQUEST: "the HTTP request",
    Need.BACKEND: "the backend",
    Need.SERVER: "the server",
    Need.RESPONSE: "the HTTP response",
    Need.CAPTURES: "an HTTP stream's capture slots",
}


class ConnInfo:
    """One client connection as rules see it; made once per connection.

    ``src``/``dst`` are None for a unix-socket client or listener (the ``src`` fetch then
    gives the string ``unix``, as HAProxy logs such clients). ``vars`` holds the
    connection's ``sess.*`` variables (None until one is set).
    """

    __slots__ = ("src", "src_port", "dst", "dst_port", "frontend", "listener_id", "vars")

    def __init__(
        self,
        src: Optional[str] = None,
        src_port: int = 0,
        dst: Optional[str] = None,
        dst_port: int = 0,
        frontend: str = "",
        listener_id: int = 0,
    ) -> None:
        self.src: Optional[IPAddress] = parse_ip(src) if src else None
        self.src_port = src_port
        self.dst: Optional[IPAddress] = parse_ip(dst) if dst else None
        self.dst_port = dst_port
        self.frontend = frontend
        self.listener_id = listener_id
        self.vars: Optional[Dict[str, Any]] = None


def parse_ip(text: str) -> Optional[IPAddress]:
    """An address from a peer's host string (a zone index is dropped), None if not one."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


class Slots(List[Optional[str]]):
    """One stream's request (or response) capture slots: a value (str) or None each, in the
    order the frontend declares them (``capture request header``, ``declare capture``,
    ``http-request capture ... len``), and each slot's length (``lengths``): what
    ``%hr``/``%hs`` print and ``capture.req.hdr(<idx>)`` reads."""

    __slots__ = ("lengths",)

    def __init__(self, lengths: Sequence[int]) -> None:
        super().__init__([None] * len(lengths))
        self.lengths = lengths

    def store(self, index: int, text: str) -> None:
        """Keep ``text`` cut to the slot's length; a slot the frontend lacks is ignored
        (HAProxy: a backend rule's ``id`` that its frontend does not declare)."""
        if 0 <= index < len(self):
            self[index] = text[: self.lengths[index]]


_UNSET: Any = object()


class RuleContext:
    """One request (or TCP session) as fetches see it.

    Set by the data path: ``conn``, and as they become known ``method``, ``target``,
    ``version`` and ``headers`` (the request head as received: bytes, header items as
    ``(raw name, lower name, value)``), ``backend`` and ``server`` (names), ``unique_id``,
    ``status``, ``reason`` and ``res_headers`` (the response), ``payload`` and ``final``
    (tcp-request content: the bytes received so far, and whether more can come),
    ``req_caps``/``res_caps`` (an HTTP stream's capture :class:`Slots`), ``received`` (its
    request head as it came, before rules rewrote it: ``.method``, ``.target``,
    ``.http_version``) and ``res_version`` (the server response's version). ``vars``
    holds ``set-var`` variables by their full name (``txn.x``); ``memo`` is a dict where
    fetches defined outside the engine keep what they computed for this request.

    Derived on first read, then kept: ``path``, ``query``, ``url``, ``method_str`` (str,
    latin-1 decoded) and header values by name. What is not set reads as the class
    default (no per-request cost for the fields a request never uses). Rules that rewrite
    the request or response give the new header items to :meth:`set_headers` and call
    :meth:`forget` for the other derived values they changed.
    """

    backend: Optional[str] = None
    server: Optional[str] = None
    unique_id: Optional[str] = None
    # Makes unique_id on first use (the data path's, until its own moment to make it: as
    # HAProxy, the ID is made when first needed, else after routing).
    unique_id_maker: Optional[Callable[[], str]] = None
    status: Optional[int] = None
    reason: Optional[bytes] = None  # set by http-response set-status
    res_headers: Sequence[Item] = NO_ITEMS
    payload: bytes | bytearray = b""  # tcp.py's live buffer while inspecting
    final = True
    req_caps: Optional[Slots] = None
    res_caps: Optional[Slots] = None
    received: Any = None
    res_version: Optional[bytes] = None
    log_level: Optional[str] = None  # set-log-level's: the session line's level, or "silent"
    vars: Optional[Dict[str, Any]] = None
    _path: Any = _UNSET
    _query: Any = _UNSET
    _url: Any = _UNSET
    _method: Any = _UNSET
    _hdrs: Optional[Dict[Tuple[bytes, bool], List[str]]] = None
    _memo: Optional[Dict[str, Any]] = None

    def __init__(
        self,
        conn: ConnInfo,
        method: bytes = b"",
        target: bytes = b"",
        version: bytes = b"1.1",
        headers: Sequence[Item] = NO_ITEMS,
    ) -> None:
        self.conn = conn
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers

    @property
    def path(self) -> Optional[str]:
        """The path: the target's origin form without the query (None for ``*``)."""
        p = self._path
        if p is _UNSET:
            origin = origin_form(self.target)
            if origin[:1] != b"/":
                p = None
            else:
                q = origin.find(b"?")
                p = (origin if q < 0 else origin[:q]).decode("latin-1")
            self._path = p
        return p

    @property
    def query(self) -> Optional[str]:
        """What follows the first ``?`` of the target (None: no ``?``)."""
        q = self._query
        if q is _UNSET:
            i = self.target.find(b"?")
            q = self._query = None if i < 0 else self.target[i + 1 :].decode("latin-1")
        return q

    @property
    def url(self) -> str:
        u = self._url
        if u is _UNSET:
            u = self._url = self.target.decode("latin-1")
        return u

    @property
    def method_str(self) -> str:
        m = self._method
        if m is _UNSET:
            m = self._method = self.method.decode("latin-1")
        return m

    @property
    def memo(self) -> Dict[str, Any]:
        m = self._memo
        if m is None:
            m = self._memo = {}
        return m

    def forget(self, *names: str) -> None:
        """Drop derived values (``path``, ``query``, ``url``, ``method_str``) after the data
        they come from was rewritten: the next read derives them again."""
        for name in names:
            self.__dict__.pop(_DERIVED[name], None)

    def set_headers(self, items: Sequence[Item], response: bool = False) -> None:
        """Rules rewrote the request's (or the response's) header items: fetches read the
        new ones from now on."""
        if response:
            self.res_headers = items
        else:
            self.headers = items
        if self._hdrs:
            self._hdrs = None

    def header_values(self, lower: bytes, response: bool = False) -> List[str]:
        """Every comma-separated value of header ``lower`` (lower-case name), in order."""
        cache = self._hdrs
        if cache is None:
            cache = self._hdrs = {}
        key = (lower, response)
        values = cache.get(key)
        if values is None:
            values = []
            for _, name, value in self.res_headers if response else self.headers:
                if name == lower:
                    if b"," in value:
                        values.extend(v.strip() for v in split_list(value.decode("latin-1")))
                    else:
                        values.append(value.strip().decode("latin-1"))
            cache[key] = values
        return values

    def full_header_values(self, lower: bytes, response: bool = False) -> List[str]:
        """Every line of header ``lower`` whole (commas kept), in order (``fhdr``)."""
        return [
            value.strip().decode("latin-1")
            for _, name, value in (self.res_headers if response else self.headers)
            if name == lower
        ]


def split_list(value: str) -> List[str]:
    """A header value's comma-separated elements, as HAProxy's ``hdr()`` splits them: a
    comma inside a double-quoted string is part of it (a backslash there escapes the next
    character)."""
    if '"' not in value:
        return value.split(",")
    out: List[str] = []
    start = 0
    quoted = escaped = False
    for i, c in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            if c == "\\":
                escaped = True
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == ",":
            out.append(value[start:i])
            start = i + 1
    out.append(value[start:])
    return out


# What forget() drops: the attribute each derived value is kept in.
_DERIVED = {"path": "_path", "query": "_query", "url": "_url", "method_str": "_method"}


def origin_form(target: bytes) -> bytes:
    """The origin-form part of a request target (absolute form: after the authority)."""
    if target[:1] == b"/":
        return target
    scheme = target.find(b"://")
    if scheme < 0:
        return target  # "*", or an authority (CONNECT): no path to cut
    slash = target.find(b"/", scheme + 3)
    query = target.find(b"?", scheme + 3)
    if slash < 0 or (0 <= query < slash):
        return b"/" + target[query:] if query >= 0 else b"/"
    return target[slash:]
