"""HTTP actions: what ``http-request``, ``http-response`` and ``redirect`` rules do, compiled once.

Each action is built at config load into a function of the request's
:class:`~.context.RuleContext` that rewrites it in place (the head as fetches read it:
``method``, ``target``, ``headers``; ``status``/``res_headers`` for a response) and returns
None to go on, or an outcome that ends the rule list:

- :data:`ALLOW`: no further rule of this section (``allow``);
- :data:`REJECT`: the connection closes, nothing is sent (``reject``);
- a :class:`Reply`: the proxy answers itself (``deny``, ``return``, ``redirect``, ``auth``;
  ``http-response deny`` replaces the server's response);
- a :class:`Failed`: a rewrite produced something the proxy will not send (HAProxy's
  strict mode: a 500, ``IR``/``IH`` in the log).

Semantics are HAProxy 2.6's (compared with it): rules run in file order; header names
match case-insensitively; ``set-header`` computes its value, removes every occurrence and
appends one; ``add-header`` appends; ``del-header -m str|beg|end|sub`` compares names
case-insensitively and ``-m reg`` matches the lower-case name; ``replace-header`` matches a
whole line and replaces all of it; ``replace-value`` matches each comma-separated value
(quoted strings respected) and replaces that value and the blanks around it; replacement
texts take ``\\0``..``\\9`` and ``\\xHH``.

Header items are never changed in place: an action that changes them builds a new list
(the one h11 parsed stays as it was), so a request no rule rewrote is forwarded without a
copy.

Framing stays the proxy's (no request smuggling through a rule). The fields in
:data:`PROTECTED` (Content-Length and the hop-by-hop fields the proxy sets per
connection) can be neither set, added, replaced nor deleted by a rule: refused at config
time, also for a ``del-header`` pattern that would match one. ``Host`` decides where an
HTTP/1.1 request goes, so it is re-validated per request: ``set-header``,
``replace-header`` and ``replace-value`` on it must leave one syntactically valid host,
else the rewrite fails; ``add-header Host`` and ``del-header Host`` are refused at config
time. Every computed header value is checked for CR, LF and NUL, every computed method
for token characters (and neither to nor from HEAD, nor CONNECT: the response's framing
depends on it) and every computed target for blanks and control characters.
"""

from __future__ import annotations

import re
from typing import Any, Callable, List, Optional, Pattern, Sequence, Tuple, Union

from .context import Item, RuleContext, split_list
from .lfvalue import LfValue
from .sample import to_text

# What rules may not touch: the body's framing and the fields of one connection hop
# (udsproxy.http.headers.HOP_BY_HOP is a subset: a test keeps them in step).
PROTECTED = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"proxy-connection",
        b"keep-alive",
        b"te",
        b"upgrade",
    }
)
HOST = b"host"

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_HOST_VALUE = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+;=%-]*)(?::[0-9]*)?\Z")
_TARGET_BAD = re.compile(r"[\x00-\x20\x7f]")
_VALUE_BAD = re.compile(r"[\r\n\x00]")
_BACKREF = re.compile(r"\\(?:([0-9])|x([0-9A-Fa-f]{2})|(.)|\Z)", re.S)

Run = Callable[[RuleContext], Any]
Test = Callable[[RuleContext], bool]


# ----------------------------------------------------------------- outcomes
class Allow:
    """``allow``: the request (or response) passes this section's remaining rules."""

    def __repr__(self) -> str:
        return "ALLOW"


ALLOW = Allow()


class Reject:
    """``reject``: the client's connection closes at once, without a response."""

    def __repr__(self) -> str:
        return "REJECT"


REJECT = Reject()


class Failed:
    """A rewrite that cannot be sent (HAProxy's failed rewrite in strict mode)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Failed({self.reason!r})"


class Reply:
    """A response the proxy makes itself.

    ``page``: the proxy's page for ``status`` (its errorfile, else the built-in one) with
    ``fields`` appended (``auth``'s WWW-Authenticate); ``raw``: a whole response read from
    a file, written as it is; otherwise ``fields`` (Content-Length included, in HAProxy's
    order) and ``body``. ``flags`` are the log's termination flags (``PR`` deny, ``PH``
    response deny, ``LR`` return/redirect/auth).
    """

    __slots__ = ("status", "reason", "fields", "body", "page", "raw", "flags")

    def __init__(
        self,
        status: int,
        reason: bytes,
        fields: List[Item],
        body: bytes = b"",
        page: bool = False,
        raw: Optional[bytes] = None,
        flags: str = "LR",
    ) -> None:
        self.status = status
        self.reason = reason
        self.fields = fields
        self.body = body
        self.page = page
        self.raw = raw
        self.flags = flags

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.flags})"


# ----------------------------------------------------------------- the compiled action
class Action:
    """One compiled action: ``run(ctx)`` applies it; ``record``: its values print log-format
    variables (the data path then gives the rules the request's session record). Compares
    by the words it was written with and what it read from files (the config model's
    equality)."""

    __slots__ = ("words", "run", "key", "record")

    def __init__(
        self, words: Sequence[str], run: Run, files: Any = (), record: bool = False
    ) -> None:
        self.words = tuple(words)
        self.run = run
        self.key = (self.words, files)
        self.record = record

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Action) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.words)

    def __repr__(self) -> str:
        return f"Action({' '.join(self.words)!r})"


Step = Tuple[Optional[Test], Run]


def run_steps(steps: Sequence[Step], ctx: RuleContext) -> Any:
    """Run the rules in order; the first outcome ends them (None: every rule ran)."""
    for test, run in steps:
        if test is None or test(ctx):
            out = run(ctx)
            if out is not None:
                return out
    return None


def item(name: bytes, value: bytes) -> Item:
    return (name, name.lower(), value)


def _enc(text: str) -> bytes:
    return text.encode("latin-1", "replace")


def _value_fn(value: LfValue) -> Callable[[RuleContext], bytes]:
    const = value.const
    if const is not None:
        data = _enc(const)
        return lambda ctx: data
    fn = value.fn
    return lambda ctx: _enc(fn(ctx))


def _headers_attr(response: bool) -> str:
    return "res_headers" if response else "headers"


# ----------------------------------------------------------------- header actions
def set_header(name: bytes, value: LfValue, response: bool, add: bool = False) -> Run:
    """``set-header`` (every occurrence replaced by one, appended) or ``add-header``."""
    lower = name.lower()
    attr = _headers_attr(response)
    const = value.const
    host = lower == HOST and not response
    if const is not None:
        fixed = (name, lower, _enc(const))

        def set_const(ctx: RuleContext) -> Any:
            items = getattr(ctx, attr)
            new = list(items) if add else [i for i in items if i[1] != lower]
            new.append(fixed)
            ctx.set_headers(new, response)
            if host:
                sync_authority(ctx, fixed[2])
            return None

        if not host:
            set_const.edit = ("add" if add else "set", lower, fixed)  # type: ignore[attr-defined]
        return set_const
    fn = value.fn

    def set_computed(ctx: RuleContext) -> Any:
        text = fn(ctx)  # before the removal: it may read the header it replaces
        if _VALUE_BAD.search(text):
            return Failed(f"{name.decode()}: a CR, LF or NUL in the value")
        data = _enc(text)
        if host and not _HOST_VALUE.match(text):
            return Failed(f"Host: '{text}' is not a host")
        items = getattr(ctx, attr)
        new = list(items) if add else [i for i in items if i[1] != lower]
        new.append((name, lower, data))
        ctx.set_headers(new, response)
        if host:
            sync_authority(ctx, data)
        return None

    return set_computed


NameTest = Callable[[bytes], bool]


def name_matcher(pattern: str, method: str) -> NameTest:
    """How ``del-header -m <method>`` tests a lower-case header name (config checked)."""
    if method == "reg":
        search = re.compile(pattern).search
        return lambda lower: search(lower.decode("latin-1")) is not None
    p = pattern.lower().encode("latin-1")
    if method == "beg":
        return lambda lower: lower.startswith(p)
    if method == "end":
        return lambda lower: lower.endswith(p)
    if method == "sub":
        return lambda lower: p in lower
    return lambda lower: lower == p


def del_header(pattern: str, method: str, response: bool) -> Run:
    """``del-header <name> [-m str|beg|end|sub|reg]``: every matching field removed."""
    attr = _headers_attr(response)
    if method == "str":
        lower = pattern.lower().encode("latin-1")

        def del_exact(ctx: RuleContext) -> Any:
            items = getattr(ctx, attr)
            for it in items:
                if it[1] == lower:
                    ctx.set_headers([i for i in items if i[1] != lower], response)
                    break
            return None

        del_exact.edit = ("del", lower, None)  # type: ignore[attr-defined]
        return del_exact
    match = name_matcher(pattern, method)

    def del_matching(ctx: RuleContext) -> Any:
        items = getattr(ctx, attr)
        new = [i for i in items if not match(i[1])]
        if len(new) != len(items):
            ctx.set_headers(new, response)
        return None

    return del_matching


def parse_replacement(text: str) -> Optional[List[Union[str, int]]]:
    """A replacement text's pieces: literal text and group numbers (``\\0``..``\\9``);
    ``\\xHH`` is that byte, a backslash before another character is that character (as
    HAProxy's exp_replace). None for a text ending with a lone backslash."""
    parts: List[Union[str, int]] = []
    pos = 0
    for m in _BACKREF.finditer(text):
        parts.append(text[pos : m.start()])
        group, hexa, other = m.group(1), m.group(2), m.group(3)
        if group is not None:
            parts.append(int(group))
        elif hexa is not None:
            parts.append(chr(int(hexa, 16)))
        elif other is not None:
            parts.append(other)
        else:
            return None
        pos = m.end()
    parts.append(text[pos:])
    return parts


def _expand(parts: Sequence[Union[str, int]], m: re.Match[str]) -> str:
    out = []
    groups = m.re.groups
    for p in parts:
        if type(p) is int:
            if p <= groups:
                out.append(m.group(p) or "")
        else:
            out.append(p)
    return "".join(out)


def replace_header(
    name: bytes, regex: Pattern[str], fmt: LfValue, response: bool, per_value: bool
) -> Run:
    """``replace-header`` (whole lines) or ``replace-value`` (each comma-separated value)."""
    lower = name.lower()
    attr = _headers_attr(response)
    host = lower == HOST and not response
    const_parts = parse_replacement(fmt.const) if fmt.const is not None else None
    fmt_fn = fmt.fn
    search = regex.search

    def replace_one(value: str, parts: Sequence[Union[str, int]]) -> Optional[str]:
        if not per_value:
            m = search(value)
            return None if m is None else _expand(parts, m)
        pieces = split_list(value)  # each piece keeps its blanks
        changed = False
        for k, piece in enumerate(pieces):
            m = search(piece.strip(" \t"))
            if m is not None:
                pieces[k] = _expand(parts, m)
                changed = True
        return ",".join(pieces) if changed else None

    def replace(ctx: RuleContext) -> Any:
        items = getattr(ctx, attr)
        if not any(i[1] == lower for i in items):
            return None
        parts = const_parts if const_parts is not None else parse_replacement(fmt_fn(ctx))
        if parts is None:
            return Failed("a replacement ending with a lone backslash")
        new: List[Item] = []
        changed = False
        for it in items:
            if it[1] == lower:
                out = replace_one(it[2].decode("latin-1"), parts)
                if out is not None:
                    if _VALUE_BAD.search(out):
                        return Failed(f"{name.decode()}: a CR, LF or NUL in the value")
                    if host and not _HOST_VALUE.match(out):
                        return Failed(f"Host: '{out}' is not a host")
                    it = (it[0], lower, _enc(out))
                    changed = True
            new.append(it)
        if changed:
            ctx.set_headers(new, response)
            if host:
                sync_authority(ctx, next(i[2] for i in new if i[1] == HOST))
        return None

    return replace


# ----------------------------------------------------------------- the request line
def _split_target(target: bytes) -> Tuple[bytes, bytes, bytes]:
    """(scheme://authority, path, ?query) of a request target (each may be empty)."""
    prefix = b""
    rest = target
    if target[:1] != b"/":
        scheme = target.find(b"://")
        if scheme > 0:
            end = len(target)
            for sep in (b"/", b"?"):
                k = target.find(sep, scheme + 3)
                if 0 <= k < end:
                    end = k
            prefix, rest = target[:end], target[end:]
    q = rest.find(b"?")
    if q < 0:
        return prefix, rest, b""
    return prefix, rest[:q], rest[q:]


def _new_target(ctx: RuleContext, target: bytes) -> Any:
    if not target or _TARGET_BAD.search(target.decode("latin-1")):
        return Failed(f"'{target.decode('latin-1')}' is not a request target")
    ctx.target = target
    ctx.forget("path", "query", "url")
    return None


def sync_authority(ctx: RuleContext, host: bytes) -> None:
    """A rule set Host: an absolute-form target's authority follows (HAProxy's
    http_update_authority), so that the server sees the same host either way."""
    prefix, path, query = _split_target(ctx.target)
    if prefix:
        scheme = prefix[: prefix.find(b"://") + 3]
        ctx.target = scheme + host + path + query
        ctx.forget("url")


def set_path(fmt: LfValue) -> Run:
    """``set-path``: the path replaced; the scheme, authority and query stay."""
    value = _value_fn(fmt)

    def run(ctx: RuleContext) -> Any:
        path = value(ctx)
        if ctx.target == b"*":
            return _new_target(ctx, path)
        prefix, _, query = _split_target(ctx.target)
        return _new_target(ctx, prefix + path + query)

    return run


def set_query(fmt: LfValue) -> Run:
    """``set-query``: what follows the first '?' replaced; a '?' is added for a non-empty
    value and never removed."""
    value = _value_fn(fmt)

    def run(ctx: RuleContext) -> Any:
        query = value(ctx)
        target = ctx.target
        q = target.find(b"?")
        if q < 0:
            return _new_target(ctx, target + b"?" + query) if query else None
        return _new_target(ctx, target[: q + 1] + query)

    return run


def set_pathq(fmt: LfValue) -> Run:
    """``set-pathq``: the path and the query replaced; the scheme and authority stay."""
    value = _value_fn(fmt)

    def run(ctx: RuleContext) -> Any:
        if ctx.target == b"*":
            return _new_target(ctx, value(ctx))
        prefix, _, _ = _split_target(ctx.target)
        return _new_target(ctx, prefix + value(ctx))

    return run


def set_uri(fmt: LfValue) -> Run:
    """``set-uri``: the whole target; an absolute URI's authority becomes the Host (HAProxy's
    http_update_host)."""
    value = _value_fn(fmt)
    return lambda ctx: _whole_target(ctx, value(ctx))


def _whole_target(ctx: RuleContext, target: bytes) -> Any:
    """The request's target replaced whole (``set-uri``, ``replace-uri``)."""
    failed = _new_target(ctx, target)
    if failed is not None:
        return failed
    prefix, _, _ = _split_target(target)
    if prefix:
        authority = prefix[prefix.find(b"://") + 3 :]
        if b"@" in authority:
            authority = authority.rsplit(b"@", 1)[1]
        if not _HOST_VALUE.match(authority.decode("latin-1")):
            return Failed(f"'{authority.decode('latin-1')}' is not a host")
        items = [i for i in ctx.headers if i[1] != HOST]
        items.append((b"host", HOST, authority))
        ctx.set_headers(items)
    return None


# What ``replace-path``, ``replace-pathq`` and ``replace-uri`` match and replace.
PATH, PATHQ, URI = "path", "pathq", "uri"


def replace_target(part: str, regex: Pattern[str], fmt: LfValue) -> Run:
    """``replace-path`` (the path: no scheme, authority nor query), ``replace-pathq`` (the
    path and the query) or ``replace-uri`` (the whole target): when ``regex`` matches in
    it, the part becomes the replacement with its ``\\N`` groups (as ``replace-header``);
    the rest of the target stays. A target without a path (``*``) has nothing to replace
    but for ``replace-uri``."""
    const_parts = parse_replacement(fmt.const) if fmt.const is not None else None
    fmt_fn = fmt.fn
    search = regex.search

    def run(ctx: RuleContext) -> Any:
        target = ctx.target
        if part == URI:
            prefix, old, rest = b"", target, b""
        elif target[:1] != b"/" and b"://" not in target:
            return None  # "*" or an authority: no path
        else:
            prefix, path, query = _split_target(target)
            old, rest = (path, query) if part == PATH else (path + query, b"")
        m = search(old.decode("latin-1"))
        if m is None:
            return None
        parts = const_parts if const_parts is not None else parse_replacement(fmt_fn(ctx))
        if parts is None:
            return Failed("a replacement ending with a lone backslash")
        new = prefix + _enc(_expand(parts, m)) + rest
        return _whole_target(ctx, new) if part == URI else _new_target(ctx, new)

    return run


def method_problem(method: str, original: Optional[str] = None) -> str:
    """Why ``method`` cannot replace the request's (``original``: its method), or ''."""
    if not _TOKEN.match(method):
        return f"'{method}' is not a method (letters, digits and !#$%&'*+-.^_`|~ only)"
    if method == "CONNECT":
        return "CONNECT turns the request into a tunnel"
    if method == "PRI":
        return "PRI is the HTTP/2 preface"
    if original is not None and (method == "HEAD") != (original == "HEAD"):
        return "a request to or from HEAD changes how the response is framed"
    return ""


def set_method(fmt: LfValue) -> Run:
    """``set-method``: validated per request (a token; HEAD-ness and CONNECT unchanged)."""
    fn = fmt.fn

    def run(ctx: RuleContext) -> Any:
        method = fn(ctx)
        problem = method_problem(method, ctx.method_str)
        if problem:
            return Failed(problem)
        ctx.method = method.encode("latin-1")
        ctx.forget("method_str")
        return None

    return run


# ----------------------------------------------------------------- response status
def set_status(status: int, reason: bytes) -> Run:
    """``http-response set-status <code> [reason <text>]``."""

    def run(ctx: RuleContext) -> Any:
        ctx.status = status
        ctx.reason = reason
        return None

    return run


# ----------------------------------------------------------------- replies
Body = Union[bytes, LfValue]


def reply(
    status: int,
    reason: bytes,
    flags: str,
    content_type: Optional[bytes] = None,
    body: Body = b"",
    hdrs: Sequence[Tuple[bytes, LfValue]] = (),
    page: bool = False,
    raw: Optional[bytes] = None,
) -> Run:
    """``deny``/``return``: the proxy's page for ``status`` (``page``), a file's raw
    response (``raw``), or a response built from ``hdrs``, a Content-Length, the
    ``content_type`` and ``body`` (in HAProxy's order)."""
    if page or raw is not None:
        fixed = Reply(status, reason, [], page=page, raw=raw, flags=flags)
        return lambda ctx: fixed
    headers = tuple((name, name.lower(), _value_fn(v)) for name, v in hdrs)
    tail: List[Item] = []
    if content_type is not None:
        tail.append(item(b"content-type", content_type))
    if isinstance(body, bytes) and not headers:
        fields = [item(b"content-length", b"%d" % len(body)), *tail]
        return lambda ctx: Reply(status, reason, list(fields), body, flags=flags)
    body_fn = _value_fn(body) if isinstance(body, LfValue) else (lambda ctx: body)

    def build(ctx: RuleContext) -> Any:
        fields: List[Item] = []
        for name, lower, value in headers:
            data = value(ctx)
            if not data:
                continue  # HAProxy leaves out a reply's hdr whose value is empty
            if _VALUE_BAD.search(data.decode("latin-1")):
                return Failed(f"{name.decode()}: a CR, LF or NUL in the value")
            fields.append((name, lower, data))
        payload = body_fn(ctx)
        fields.append(item(b"content-length", b"%d" % len(payload)))
        fields.extend(tail)
        return Reply(status, reason, fields, payload, flags=flags)

    return build


REDIRECT_REASONS = {
    301: b"Moved Permanently",
    302: b"Found",
    303: b"See Other",
    307: b"Temporary Redirect",
    308: b"Permanent Redirect",
}


def redirect(
    kind: str,
    value: Union[str, LfValue],
    code: int,
    drop_query: bool,
    append_slash: bool,
    cookie: Optional[bytes],
    ignore_empty: bool,
) -> Run:
    """``redirect location|prefix|scheme`` as HAProxy's http_apply_redirect_rule builds it.

    ``value``: a plain string (the ``redirect`` keyword) or an lf-string (``http-request
    redirect``). ``prefix`` puts the value before the path (nothing for exactly ``/``),
    ``scheme`` before ``://``, the first Host value and the path; both keep the query
    unless ``drop_query``; ``append_slash`` adds a ``/`` to a location not ending with one.
    """
    text = value if isinstance(value, str) else value.const
    fixed = _enc(text) if text is not None else None
    fn = value.fn if isinstance(value, LfValue) else None
    reason = REDIRECT_REASONS[code]
    extra: List[Item] = []
    if code in (302, 303, 307):
        extra.append(item(b"cache-control", b"no-cache"))
    if cookie is not None:
        extra.append(item(b"set-cookie", cookie))
    skip_prefix = kind == "prefix" and fixed == b"/"

    def run(ctx: RuleContext) -> Any:
        head = fixed if fixed is not None else _enc(fn(ctx))  # type: ignore[misc]
        if not head and ignore_empty:
            return None
        if kind == "location":
            location = head
        else:
            _, path, query = _split_target(ctx.target)
            if ctx.target == b"*" or not path:
                path, query = b"/", b""
            if not drop_query:
                path += query
            if kind == "prefix":
                location = path if skip_prefix else head + path
            else:
                hosts = ctx.header_values(HOST)
                host = _enc(hosts[0]) if hosts else b""
                location = head + b"://" + host + path
            if append_slash and location[-1:] != b"/":
                location += b"/"
        if _VALUE_BAD.search(location.decode("latin-1")):
            return Failed("Location: a CR, LF or NUL in the value")
        fields = [item(b"content-length", b"0"), item(b"location", location), *extra]
        return Reply(code, reason, fields, flags="LR")

    return run


def auth(realm: str) -> Run:
    """``auth [realm <realm>]``: the proxy's 401 page with a Basic challenge."""
    challenge = item(b"www-authenticate", b'Basic realm="%s"' % _enc(realm))
    fixed = Reply(401, b"Unauthorized", [challenge], page=True, flags="LR")
    return lambda ctx: fixed


def allow(ctx: RuleContext) -> Any:
    return ALLOW


def reject(ctx: RuleContext) -> Any:
    return REJECT


def set_log_level(level: str) -> Run:
    """``set-log-level <level>``: the request's session line is logged at ``level`` (a
    syslog level), or not at all (``silent``); the last rule that runs wins."""

    def run(ctx: RuleContext) -> Any:
        ctx.log_level = level
        return None

    return run


def capture(value: Callable[[RuleContext], Any], slot: int, response: bool) -> Run:
    """``http-request capture <sample> len|id`` and ``http-response capture <sample> id``:
    the sample's value as text in the stream's capture slot ``slot``, cut to the slot's
    length; a sample without a value leaves the slot as it was (HAProxy)."""

    def run(ctx: RuleContext) -> Any:
        caps = ctx.res_caps if response else ctx.req_caps
        if caps is not None:
            text = to_text(value(ctx))
            if text is not None:
                caps.store(slot, text)
        return None

    return run


Steps = Tuple[Step, ...]


Edit = Tuple[str, bytes, Optional[Item]]  # ("set"|"add"|"del", lower-case name, field)


def steps_of(rules: Sequence[Any], response: bool = False) -> Steps:
    """(condition function or None, action function) of each rule, in order.

    Consecutive unconditional header edits with constant values (``set-header``,
    ``add-header``, ``del-header`` by name; not Host) are fused into one step that makes
    the same list in one pass: a typical edge config's edits cost one copy of the header
    list per request, not one per rule.
    """
    steps: List[Step] = []
    run_of: List[Edit] = []

    def flush() -> None:
        if len(run_of) == 1:
            steps.append((None, single[0]))
        elif run_of:
            steps.append((None, fused_edits(run_of, response)))
        run_of.clear()
        single.clear()

    single: List[Run] = []
    for r in rules:
        edit = getattr(r.action.run, "edit", None)
        if r.condition is None and edit is not None:
            run_of.append(edit)
            single.append(r.action.run)
            continue
        flush()
        steps.append((r.condition.fn if r.condition is not None else None, r.action.run))
    flush()
    return tuple(steps)


def fused_edits(edits: Sequence[Edit], response: bool) -> Run:
    """One step doing ``edits`` in order: the original fields of every name set or deleted
    go, then the fields set or added that no later edit removed are appended."""
    removed = frozenset(lower for kind, lower, _ in edits if kind != "add")
    appended: List[Item] = []
    for kind, lower, field in edits:
        if kind != "add":
            appended = [i for i in appended if i[1] != lower]
        if field is not None:
            appended.append(field)
    tail = tuple(appended)

    if response:

        def fused_response(ctx: RuleContext) -> Any:
            new = [i for i in ctx.res_headers if i[1] not in removed]
            new += tail
            ctx.set_headers(new, True)

        return fused_response

    def fused_request(ctx: RuleContext) -> Any:
        new = [i for i in ctx.headers if i[1] not in removed]
        new += tail
        ctx.set_headers(new)

    return fused_request


def header_names_set(rules: Sequence[Any]) -> frozenset:
    """The lower-case names the rules may set or add (kept even when the client's
    Connection field names them: a client cannot strip what the proxy adds)."""
    out: set = set()
    for r in rules:
        words = r.action.words
        if words and words[0] in ("set-header", "add-header") and len(words) > 1:
            out.add(words[1].lower().encode("latin-1"))
    return frozenset(out)
