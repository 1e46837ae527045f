"""What a sample is fetched from: one connection's addresses and one request's head.

A :class:`ConnInfo` is made once per client connection (addresses and names that do not
change between its requests); a :class:`RuleContext` once per request that is evaluated
against rules (HTTP), or once per TCP session (``tcp-request`` rules). Both are plain
slotted objects the data path fills with what it already has — bytes as they were
received — and fetches read. What a fetch derives from them (the path, the query, a
header's values) is computed on first use and kept for the rest of the request, so that
twenty ACLs over the path split the target once.

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


class Where(enum.Enum):
    """A place where rules or samples are evaluated, with what is available there."""

    TCP_CONNECTION = ("tcp-request connection", Need.L4)
    TCP_CONTENT = ("tcp-request content", Need.L4 | Need.PAYLOAD | Need.BACKEND)
    HTTP_REQUEST = ("http-request", Need.L4 | Need.REQUEST | Need.BACKEND)
    HTTP_RESPONSE = (
        "http-response",
        Need.L4 | Need.BACKEND | Need.SERVER | Need.RESPONSE,
    )
    # Log lines are written once the response is complete: everything is known (the
    # request head is kept with the exchange).
    LOG = ("log-format", Need.L4 | Need.REQUEST | Need.BACKEND | Need.SERVER | Need.RESPONSE)
    # An ``acl`` line: checked for every place, then again where a condition uses it.
    ANYWHERE = (
        "acl",
        Need.L4 | Need.PAYLOAD | Need.REQUEST | Need.BACKEND | Need.SERVER | Need.RESPONSE,
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


# Derived values: computed on first access (``RuleContext.__getattr__``), then plain
# attribute reads for the rest of the request.
_LAZY: Dict[str, Callable[[RuleContext], Any]] = {}


def lazy(name: str) -> Callable[[Callable[[RuleContext], Any]], Callable[[RuleContext], Any]]:
    """Register how ``RuleContext.<name>`` is derived the first time it is read."""

    def register(fn: Callable[[RuleContext], Any]) -> Callable[[RuleContext], Any]:
        _LAZY[name] = fn
        return fn

    return register


class RuleContext:
    """One request (or TCP session) as fetches see it.

    Set by the data path: ``conn``, and as they become known ``method``, ``target``,
    ``version`` and ``headers`` (the request head as received: bytes, header items as
    ``(raw name, lower name, value)``), ``backend`` and ``server`` (names), ``unique_id``,
    ``status``, ``reason`` and ``res_headers`` (the response), ``payload`` and ``final`` (tcp-request
    content: the bytes received so far, and whether more can come). ``vars`` holds
    ``set-var`` variables by their full name (``txn.x``).

    Derived on first read (see :func:`lazy`): ``path``, ``query``, ``url`` (str, latin-1
    decoded), ``memo`` (a dict where fetches defined
    outside the engine keep what they computed for this request). Rules that rewrite the
    request or response give the new header items to :meth:`set_headers` and call
    :meth:`forget` for the other derived values they changed.
    """

    __slots__ = (
        "conn",
        "method",
        "target",
        "version",
        "headers",
        "backend",
        "server",
        "unique_id",
        "status",
        "reason",
        "res_headers",
        "payload",
        "final",
        "vars",
        # derived (lazy)
        "path",
        "query",
        "url",
        "method_str",
        "memo",
        "hdr_cache",  # values by header name, made on the first read
    )

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
        self.backend: Optional[str] = None
        self.server: Optional[str] = None
        self.unique_id: Optional[str] = None
        self.status: Optional[int] = None
        self.reason: Optional[bytes] = None  # set by http-response set-status
        self.res_headers: Sequence[Item] = NO_ITEMS
        self.payload = b""
        self.final = True
        self.vars: Optional[Dict[str, Any]] = None
        # Values by header name, made on the first header read (None: none read yet).
        self.hdr_cache: Optional[Dict[Tuple[bytes, bool], List[str]]] = None

    def __getattr__(self, name: str) -> Any:
        # Only called for a slot not set yet: derive it once.
        fn = _LAZY.get(name)
        if fn is None:
            raise AttributeError(name)
        value = fn(self)
        object.__setattr__(self, name, value)
        return value

    def forget(self, *names: str) -> None:
        """Drop derived values (``path``, ``query``, ``url``, ``method_str``) after the data
        they come from was rewritten: the next read derives them again."""
        for name in names:
            try:
                delattr(self, name)
            except AttributeError:
                pass  # never derived

    def set_headers(self, items: Sequence[Item], response: bool = False) -> None:
        """Rules rewrote the request's (or the response's) header items: fetches read the
        new ones from now on."""
        if response:
            self.res_headers = items
        else:
            self.headers = items
        if self.hdr_cache:
            self.hdr_cache = None

    def header_values(self, lower: bytes, response: bool = False) -> List[str]:
        """Every comma-separated value of header ``lower`` (lower-case name), in order."""
        cache = self.hdr_cache
        if cache is None:
            cache = self.hdr_cache = {}
        key = (lower, response)
        values = cache.get(key)
        if values is None:
            values = []
            for _, name, value in self.res_headers if response else self.headers:
                if name == lower:
                    if b"," in value:
                        values.extend(v.strip().decode("latin-1") for v in value.split(b","))
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


@lazy("memo")
def _memo(ctx: RuleContext) -> Dict[str, Any]:
    return {}


@lazy("method_str")
def _method_str(ctx: RuleContext) -> str:
    return ctx.method.decode("latin-1")


@lazy("url")
def _url(ctx: RuleContext) -> str:
    return ctx.target.decode("latin-1")


def _origin(target: bytes) -> bytes:
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


@lazy("path")
def _path(ctx: RuleContext) -> Optional[str]:
    origin = _origin(ctx.target)
    q = origin.find(b"?")
    return (origin if q < 0 else origin[:q]).decode("latin-1")


@lazy("query")
def _query(ctx: RuleContext) -> Optional[str]:
    q = ctx.target.find(b"?")
    return None if q < 0 else ctx.target[q + 1 :].decode("latin-1")
