"""The sample fetches: what a rule can read of a connection, a request or a response.

Each entry says its output type, what it needs (:class:`~.context.Need`) and how it is
made from its arguments. Arguments are bound at config load: ``hdr(host)`` becomes a
function that reads the ``host`` values of the request, nothing is looked up by name per
request. HAProxy 2.6 semantics (configuration.txt §7.3): ``hdr`` gives the last value of a
header in a sample expression and every value in an ACL; ``req.cook`` the last cookie of
that name; ``url_param`` the first parameter; ``src`` of a unix-socket client is ``unix``.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Callable, Iterable, List, Optional

from .context import Need, RuleContext, origin_form, split_list
from .sample import (
    BIN,
    BOOL,
    INT,
    IP,
    STR,
    Arg,
    FetchDef,
    FetchFn,
    Origin,
    register_fetch,
    str_to_int,
)

R = Need.REQUEST
UNIX = "unix"


def _const(value: Any) -> Callable[..., FetchFn]:
    return lambda origin: lambda ctx: value


def _const_fn(fn: FetchFn) -> Callable[..., FetchFn]:
    return lambda origin: fn


def _attr(name: str) -> Callable[..., FetchFn]:
    getter = attrgetter(name)
    return lambda origin: getter


# ----------------------------------------------------------------- layer 4 and names
def _unique_id(ctx: RuleContext) -> Any:
    uid = ctx.unique_id
    if uid is None and ctx.unique_id_maker is not None:
        uid = ctx.unique_id = ctx.unique_id_maker()
    return uid


def _src(origin: Origin) -> FetchFn:
    def src(ctx: RuleContext) -> Any:
        addr = ctx.conn.src
        return UNIX if addr is None else addr

    return src


def _dst(origin: Origin) -> FetchFn:
    def dst(ctx: RuleContext) -> Any:
        addr = ctx.conn.dst
        return UNIX if addr is None else addr

    return dst


def _be_name(origin: Origin) -> FetchFn:
    # Before a backend is chosen HAProxy's stream backend is the frontend itself.
    return lambda ctx: ctx.backend if ctx.backend is not None else ctx.conn.frontend


L4 = Need.L4
register_fetch(
    FetchDef(
        "src",
        IP,
        L4,
        _src,
        help="the client's address (unix: 'unix')",
        inline="(ctx.conn.src or UNIX)",
    )
)
register_fetch(
    FetchDef(
        "src_port",
        INT,
        L4,
        _attr("conn.src_port"),
        help="the client's port",
        inline="ctx.conn.src_port",
    )
)
register_fetch(
    FetchDef(
        "dst",
        IP,
        L4,
        _dst,
        help="the address the client connected to",
        inline="(ctx.conn.dst or UNIX)",
    )
)
register_fetch(
    FetchDef(
        "dst_port",
        INT,
        L4,
        _attr("conn.dst_port"),
        help="the listener's port",
        inline="ctx.conn.dst_port",
    )
)
register_fetch(
    FetchDef(
        "fe_name",
        STR,
        L4,
        _attr("conn.frontend"),
        help="the frontend's name",
        inline="ctx.conn.frontend",
    )
)
register_fetch(FetchDef("fe_id", INT, L4, _attr("conn.listener_id"), help="the listener's number"))
register_fetch(FetchDef("be_name", STR, Need.BACKEND, _be_name, help="the backend's name"))
register_fetch(FetchDef("srv_name", STR, Need.SERVER, _attr("server"), help="the server's name"))
register_fetch(
    FetchDef("unique-id", STR, L4, lambda origin: _unique_id, help="the request's unique ID"),
    "unique_id",
)
register_fetch(FetchDef("always_true", BOOL, L4, _const(True), inline="True", help="true"))
register_fetch(FetchDef("always_false", BOOL, L4, _const(False), inline="False", help="false"))
register_fetch(
    FetchDef(
        "str", STR, L4, lambda origin, s: lambda ctx: s, (Arg("<string>"),), 1, help="a constant"
    ),
)
register_fetch(
    FetchDef(
        "int",
        INT,
        L4,
        lambda origin, n: lambda ctx: n,
        (Arg("<integer>", INT),),
        1,
        help="a constant",
    ),
)


# ----------------------------------------------------------------- layer 6 (tcp-request content)
def _req_len(origin: Origin) -> FetchFn:
    return lambda ctx: len(ctx.payload)


def _req_payload(origin: Origin, offset: int, length: int) -> FetchFn:
    def payload(ctx: RuleContext) -> Optional[bytes]:
        data = ctx.payload  # may be a buffer that grows: the value is a copy of the slice
        if length == 0:
            return bytes(data[offset:]) if len(data) >= offset else None
        return bytes(data[offset : offset + length]) if len(data) >= offset + length else None

    return payload


def _req_payload_settled(
    origin: Origin, offset: int, length: int
) -> Optional[Callable[[RuleContext], bool]]:
    if length == 0:
        return None  # to the end: grows with the data
    end = offset + length
    return lambda ctx: len(ctx.payload) >= end


register_fetch(
    FetchDef("req.len", INT, Need.PAYLOAD, _req_len, volatile=True, help="bytes received"),
    "req_len",
)
register_fetch(
    FetchDef(
        "req.payload",
        BIN,
        Need.PAYLOAD,
        _req_payload,
        (Arg("<offset>", INT), Arg("<length>", INT)),
        2,
        volatile=True,
        settled=_req_payload_settled,
        help="bytes of what was received (length 0: to the end)",
    )
)


# ----------------------------------------------------------------- HTTP request
def _header_name(origin: Origin, name: str) -> bytes:
    if not name:
        raise origin.error("a header name is needed", hint="e.g. hdr(host)")
    return name.lower().encode("latin-1")


def _pick(values: List[str], occ: int) -> Optional[str]:
    n = len(values)
    if not n:
        return None
    if occ < 0:
        return values[occ] if -occ <= n else None
    return values[occ - 1] if occ <= n else None


def _hdr_maker(response: bool, full: bool) -> Callable[..., FetchFn]:
    def make(origin: Origin, name: str, occ: int = -1) -> FetchFn:
        lower = _header_name(origin, name)
        if occ == 0:
            raise origin.error(
                "occurrence 0 does not exist", hint="1 is the first, -1 the last (default)"
            )
        resp = response
        if full:

            def fhdr(ctx: RuleContext) -> Optional[str]:
                return _pick(ctx.full_header_values(lower, resp), occ)

            return fhdr

        if occ == -1:

            def last(ctx: RuleContext) -> Optional[str]:
                values = ctx.header_values(lower, resp)
                return values[-1] if values else None

            return last

        def nth(ctx: RuleContext) -> Optional[str]:
            return _pick(ctx.header_values(lower, resp), occ)

        return nth

    return make


def _hdr_all(response: bool, full: bool) -> Callable[..., Callable[[RuleContext], Iterable[str]]]:
    def make(
        origin: Origin, name: str, occ: Optional[int] = None
    ) -> Callable[[RuleContext], Iterable[str]]:
        lower = _header_name(origin, name)
        one = _hdr_maker(response, full)(origin, name, occ) if occ is not None else None
        if one is not None:
            return lambda ctx: [v for v in (one(ctx),) if v is not None]
        if full:
            return lambda ctx: ctx.full_header_values(lower, response)
        return lambda ctx: ctx.header_values(lower, response)

    return make


def _hdr_cnt(response: bool, full: bool) -> Callable[..., FetchFn]:
    def make(origin: Origin, name: str = "") -> FetchFn:
        if not name:
            items = attrgetter("res_headers" if response else "headers")
            return lambda ctx: len(items(ctx))
        lower = _header_name(origin, name)
        if full:
            return lambda ctx: len(ctx.full_header_values(lower, response))
        return lambda ctx: len(ctx.header_values(lower, response))

    return make


def _hdr_val(response: bool) -> Callable[..., FetchFn]:
    def make(origin: Origin, name: str, occ: int = -1) -> FetchFn:
        one = _hdr_maker(response, False)(origin, name, occ)

        def val(ctx: RuleContext) -> Optional[int]:
            v = one(ctx)
            return None if v is None else str_to_int(v)

        return val

    return make


HDR_ARGS = (Arg("<name>"), Arg("<occ>", INT))
# hdr() reads the response in http-response rules (HAProxy: "hdr" is either direction).
register_fetch(
    FetchDef(
        "hdr",
        STR,
        R,
        _hdr_maker(False, False),
        HDR_ARGS,
        1,
        make_all=_hdr_all(False, False),
        response_twin="res.hdr",
        help="a header's last value (in ACLs: every value; in http-response: the response's)",
    )
)
register_fetch(
    FetchDef(
        "req.hdr",
        STR,
        R,
        _hdr_maker(False, False),
        HDR_ARGS,
        1,
        make_all=_hdr_all(False, False),
        help="a request header's last comma-separated value (in ACLs: every value)",
    )
)
register_fetch(
    FetchDef(
        "req.fhdr",
        STR,
        R,
        _hdr_maker(False, True),
        HDR_ARGS,
        1,
        make_all=_hdr_all(False, True),
        help="a request header's last line, commas kept",
    )
)
register_fetch(
    FetchDef(
        "req.hdr_cnt", INT, R, _hdr_cnt(False, False), (Arg("<name>"),), help="how many values"
    ),
    "hdr_cnt",
)
register_fetch(
    FetchDef("req.fhdr_cnt", INT, R, _hdr_cnt(False, True), (Arg("<name>"),), help="how many lines")
)
register_fetch(
    FetchDef("req.hdr_val", INT, R, _hdr_val(False), HDR_ARGS, 1, help="a header as an integer"),
    "hdr_val",
)
register_fetch(
    FetchDef(
        "res.hdr",
        STR,
        Need.RESPONSE,
        _hdr_maker(True, False),
        HDR_ARGS,
        1,
        make_all=_hdr_all(True, False),
        help="a response header's last value (in ACLs: every value)",
    ),
    "shdr",
)
register_fetch(
    FetchDef(
        "res.fhdr",
        STR,
        Need.RESPONSE,
        _hdr_maker(True, True),
        HDR_ARGS,
        1,
        make_all=_hdr_all(True, True),
        help="a response header's last line, commas kept",
    )
)
register_fetch(
    FetchDef(
        "res.hdr_cnt",
        INT,
        Need.RESPONSE,
        _hdr_cnt(True, False),
        (Arg("<name>"),),
        help="how many values",
    ),
    "shdr_cnt",
)
register_fetch(
    FetchDef(
        "res.hdr_val",
        INT,
        Need.RESPONSE,
        _hdr_val(True),
        HDR_ARGS,
        1,
        help="a header as an integer",
    ),
    "shdr_val",
)
register_fetch(
    FetchDef(
        "status",
        INT,
        Need.RESPONSE,
        _attr("status"),
        help="the response status",
        inline="ctx.status",
    )
)

register_fetch(
    FetchDef(
        "path",
        STR,
        R,
        _attr("path"),
        help="the path, without the query",
        inline="(ctx.path if ctx._path is U else ctx._path)",
    )
)
register_fetch(
    FetchDef(
        "url",
        STR,
        R,
        _attr("url"),
        help="the request target as sent",
        inline="(ctx.url if ctx._url is U else ctx._url)",
    )
)
register_fetch(
    FetchDef(
        "query",
        STR,
        R,
        _attr("query"),
        help="what follows '?'",
        inline="(ctx.query if ctx._query is U else ctx._query)",
    )
)
register_fetch(
    FetchDef(
        "method",
        STR,
        R,
        _attr("method_str"),
        help="the request method",
        inline="(ctx.method_str if ctx._method is U else ctx._method)",
    )
)


def _req_ver(origin: Origin) -> FetchFn:
    return lambda ctx: ctx.version.decode("latin-1")


# "The request is valid HTTP": always so once rules see a parsed request.
register_fetch(
    FetchDef("req.proto_http", BOOL, R, _const(True), help="a valid HTTP request", inline="True")
)
register_fetch(FetchDef("req.ver", STR, R, _req_ver, help="the version: 1.0, 1.1"), "req_ver")


# ----------------------------------------------------------------- capture slots
def _capture_hdr(response: bool) -> Callable[..., FetchFn]:
    """``capture.req.hdr(<idx>)`` / ``capture.res.hdr(<idx>)``: what the frontend's capture
    slot <idx> holds (0 is the first ``capture``/``declare capture`` line); nothing when the
    slot is empty or the frontend has no such slot."""

    def make(origin: Origin, idx: int) -> FetchFn:
        if idx < 0:
            raise origin.error(
                f"capture slot {idx} does not exist", hint="0 is the frontend's first capture"
            )
        attr = "res_caps" if response else "req_caps"

        def slot(ctx: RuleContext) -> Optional[str]:
            caps = getattr(ctx, attr)
            return caps[idx] if caps is not None and idx < len(caps) else None

        return slot

    return make


def _capture_method(ctx: RuleContext) -> Optional[str]:
    received = ctx.received
    return None if received is None else received.method.decode("latin-1")


def _capture_uri(ctx: RuleContext) -> Optional[str]:
    received = ctx.received
    if received is None:
        return None
    origin = origin_form(received.target)
    return origin.decode("latin-1") if origin[:1] == b"/" else None


def _capture_req_ver(ctx: RuleContext) -> Optional[str]:
    received = ctx.received
    return None if received is None else "HTTP/" + received.http_version.decode("latin-1")


def _capture_res_ver(ctx: RuleContext) -> Optional[str]:
    version = ctx.res_version
    return None if version is None else "HTTP/" + version.decode("latin-1")


# The request line as the client sent it (rules rewrite ``method`` and ``path``, not these)
# and the response's version: readable in response rules and logs too (HAProxy keeps them).
for _name, _fn, _help in (
    ("method", _capture_method, "the request's method as sent"),
    ("uri", _capture_uri, "the request's target as sent, from its first '/' (no host)"),
    ("ver", _capture_req_ver, "the request's version: HTTP/1.0, HTTP/1.1"),
):
    register_fetch(FetchDef(f"capture.req.{_name}", STR, Need.CAPTURES, _const_fn(_fn), help=_help))
register_fetch(
    FetchDef(
        "capture.res.ver",
        STR,
        Need.CAPTURES,
        _const_fn(_capture_res_ver),
        help="the server response's version (nothing before a response)",
    )
)

for _kind, _side in (("req", "request"), ("res", "response")):
    register_fetch(
        FetchDef(
            f"capture.{_kind}.hdr",
            STR,
            Need.CAPTURES,
            _capture_hdr(_side == "response"),
            (Arg("<idx>", INT),),
            1,
            help=f"what the frontend's {_side} capture slot <idx> holds",
        )
    )


def _base(origin: Origin) -> FetchFn:
    def base(ctx: RuleContext) -> Optional[str]:
        hosts = ctx.full_header_values(b"host")
        path = ctx.path
        if path is None:
            return None
        return (hosts[0] if hosts else "") + path

    return base


register_fetch(FetchDef("base", STR, R, _base, help="the first Host header and the path"))


def _params(query: Optional[str], delims: str) -> List[tuple]:
    if not query:
        return []
    out = []
    start = 0
    n = len(query)
    for i in range(n + 1):
        if i == n or query[i] in delims:
            part = query[start:i]
            if part:
                name, _, value = part.partition("=")
                out.append((name, value))
            start = i + 1
    return out


def _query_for(ctx: RuleContext, delim: str) -> Optional[str]:
    if not delim:
        return ctx.query
    # A delimiter given: the parameters may also start after it (HAProxy: "begins after
    # either '?' or <delim>").
    url = ctx.url
    i = min((p for p in (url.find("?"), url.find(delim)) if p >= 0), default=-1)
    return None if i < 0 else url[i + 1 :]


def _url_param(origin: Origin, name: str = "", delim: str = "") -> FetchFn:
    delims = "&;" + delim

    def param(ctx: RuleContext) -> Optional[str]:
        for k, v in _params(_query_for(ctx, delim), delims):
            if not name or k == name:
                return v
        return None

    return param


def _url_param_all(
    origin: Origin, name: str = "", delim: str = ""
) -> Callable[[RuleContext], Iterable[str]]:
    delims = "&;" + delim
    return lambda ctx: [
        v for k, v in _params(_query_for(ctx, delim), delims) if not name or k == name
    ]


URLP_ARGS = (Arg("<name>"), Arg("<delim>"))
register_fetch(
    FetchDef(
        "url_param",
        STR,
        R,
        _url_param,
        URLP_ARGS,
        0,
        make_all=_url_param_all,
        help="a query parameter's first value (in ACLs: every value)",
    ),
    "urlp",
)


def _urlp_val(origin: Origin, name: str = "", delim: str = "") -> FetchFn:
    one = _url_param(origin, name, delim)
    return lambda ctx: str_to_int(v) if (v := one(ctx)) is not None else None


register_fetch(
    FetchDef("urlp_val", INT, R, _urlp_val, URLP_ARGS, 0, help="a parameter as an integer")
)


def _cookies(ctx: RuleContext) -> List[tuple]:
    """The request's cookies: ``;`` separates them and, as HAProxy reads a Cookie field
    (http_extract_cookie_value), so does a ``,`` outside a double-quoted value."""
    out = []
    for value in ctx.full_header_values(b"cookie"):
        for piece in value.split(";"):
            for part in split_list(piece):
                name, eq, val = part.partition("=")
                if eq:
                    out.append((name.strip(), val.strip()))
    return out


def _cook(origin: Origin, name: str = "") -> FetchFn:
    def cook(ctx: RuleContext) -> Optional[str]:
        found = [v for k, v in _cookies(ctx) if not name or k == name]
        if not found:
            return None
        return found[-1] if name else found[0]

    return cook


def _cook_all(origin: Origin, name: str = "") -> Callable[[RuleContext], Iterable[str]]:
    return lambda ctx: [v for k, v in _cookies(ctx) if not name or k == name]


def _cook_cnt(origin: Origin, name: str = "") -> FetchFn:
    return lambda ctx: sum(1 for k, _ in _cookies(ctx) if not name or k == name)


def _cook_val(origin: Origin, name: str = "") -> FetchFn:
    one = _cook(origin, name)
    return lambda ctx: str_to_int(v) if (v := one(ctx)) is not None else None


COOK_ARGS = (Arg("<name>"),)
register_fetch(
    FetchDef(
        "req.cook",
        STR,
        R,
        _cook,
        COOK_ARGS,
        0,
        make_all=_cook_all,
        help="a cookie's last value (in ACLs: every value)",
    ),
    "cook",
)
register_fetch(
    FetchDef("req.cook_cnt", INT, R, _cook_cnt, COOK_ARGS, 0, help="how many such cookies"),
    "cook_cnt",
)
register_fetch(
    FetchDef("req.cook_val", INT, R, _cook_val, COOK_ARGS, 0, help="a cookie as an integer"),
    "cook_val",
)
