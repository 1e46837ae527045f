"""Session log keywords: ``log-format``, ``option httplog [clf]`` / ``tcplog``, ``capture``,
``declare capture``, ``unique-id-format`` and ``unique-id-header``; and their compilation
once a proxy is read.

Capture slots: a frontend's ``capture request|response header`` and ``declare capture``
lines, and its ``http-request capture ... len`` rules, each add a slot in file order (one
numbering per direction, from 0): what ``%hr``/``%hs`` print and ``capture.req.hdr(<idx>)``
reads. Rules store into a slot by its number (``id``), also from a backend, where the
number refers to the frontend's slots.

The three format keywords set one thing, the proxy's format line, and the last one
written wins (a frontend inherits its defaults section's); ``option httplog`` is the
log-format string HAProxy declares for it. Formats are compiled when the whole proxy is
known (its mode decides which variables are allowed, as in HAProxy), by
:func:`compile_proxy_formats`, which the parser calls for each frontend.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Tuple

from ..errors import ConfigError
from ..logformat import CLF, HTTPLOG, LOG, TCPLOG, UNIQUE_ID, LogFormat, compile_format
from ..logformat.compiler import SampleEvaluator, Usage
from ..rules import Where, compile_sample
from .builders import Context, need, no_more
from .model import Capture, Notice, Proxy
from .values import parse_int

LOG_FORMAT = "log-format"
UNIQUE_ID_FORMAT = "unique-id-format"
CAPTURE_USAGE = "capture request|response header <name> len <length>"
DECLARE_USAGE = "declare capture request|response len <length>"
CAPTURE_MAX = 65536  # longer than any header value can be (tune.bufsize)


@dataclass(frozen=True)
class FormatLine:
    """A format as written: which keyword set it, its text, and where."""

    keyword: str  # "log-format", "option httplog", "option httplog clf", "option tcplog", ...
    text: str
    filename: str
    lineno: int


def _set_format(ctx: Context, field: str, keyword: str, text: str) -> None:
    ctx.px.fields[field] = FormatLine(keyword, text, ctx.filename, ctx.lineno)


def _one_format(args: List[str], keyword: str) -> str:
    need(args, 1, f"{keyword} <format>")
    if len(args) > 1:
        raise ConfigError(
            f"{keyword} expects only one argument, don't forget to escape spaces!",
            hint="quote the whole format (\"...\") or write each space as '\\ '",
        )
    return args[0]


def p_log_format(ctx: Context, args: List[str]) -> None:
    """``log-format <format>``."""
    _set_format(ctx, LOG_FORMAT, "log-format", _one_format(args, "log-format"))


def o_httplog(ctx: Context, args: List[str]) -> None:
    """``option httplog [clf]``: HAProxy's HTTP line, or the Common Log Format."""
    if args and args != ["clf"]:
        raise ConfigError(f"unexpected word '{args[0]}'", hint="usage: option httplog [clf]")
    ctx.px.options["httplog"] = not ctx.negated
    if not ctx.negated:
        clf = bool(args)
        keyword = "option httplog clf" if clf else "option httplog"
        _set_format(ctx, LOG_FORMAT, keyword, CLF if clf else HTTPLOG)
    else:
        _clear_format(ctx, ("option httplog", "option httplog clf"))


def o_tcplog(ctx: Context, args: List[str]) -> None:
    """``option tcplog``: HAProxy's TCP line."""
    no_more(args, 0, "option tcplog")
    ctx.px.options["tcplog"] = not ctx.negated
    if not ctx.negated:
        _set_format(ctx, LOG_FORMAT, "option tcplog", TCPLOG)
    else:
        _clear_format(ctx, ("option tcplog",))


def _clear_format(ctx: Context, keywords: Tuple[str, ...]) -> None:
    """``no option httplog``: the line it set goes (a later log-format stays)."""
    line = ctx.px.fields.get(LOG_FORMAT)
    if isinstance(line, FormatLine) and line.keyword in keywords:
        del ctx.px.fields[LOG_FORMAT]


def p_unique_id_format(ctx: Context, args: List[str]) -> None:
    """``unique-id-format <format>``: each request's ID (%ID, and ``unique-id-header``)."""
    _set_format(ctx, UNIQUE_ID_FORMAT, "unique-id-format", _one_format(args, UNIQUE_ID_FORMAT))


def p_unique_id_header(ctx: Context, args: List[str]) -> None:
    """``unique-id-header <name>``: the request header the ID is sent to the server in."""
    usage = "unique-id-header <name>"
    need(args, 1, usage)
    no_more(args, 1, usage)
    name = args[0]
    if not all(c.isascii() and (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in name):
        raise ConfigError(
            f"'{name}' is not a valid header name",
            hint="use letters, digits and -, e.g. X-Unique-ID",
        )
    ctx.px.fields["unique-id-header"] = name


def p_capture(ctx: Context, args: List[str]) -> None:
    """``capture request|response header <name> len <length>``."""
    need(args, 1, CAPTURE_USAGE)
    kind = args[0]
    if kind == "cookie":
        raise ConfigError(
            "'capture cookie' is not supported",
            hint="udsproxy has no cookie persistence; log the header instead: "
            "capture request header Cookie len <n>",
        )
    if kind not in ("request", "response"):
        raise ConfigError(f"unknown capture '{kind}'", hint=f"usage: {CAPTURE_USAGE}")
    if len(args) < 5 or args[1] != "header" or args[3] != "len":
        raise ConfigError(
            f"'capture {kind}' expects 'header' <header_name> 'len' <len>",
            hint=f"e.g. capture {kind} header "
            f"{'User-Agent' if kind == 'request' else 'Content-Type'} len 64",
        )
    no_more(args, 5, CAPTURE_USAGE)
    add_slot(ctx, kind, capture_length(args[4]), args[2])


def p_declare(ctx: Context, args: List[str]) -> None:
    """``declare capture request|response len <length>``: a slot for capture rules."""
    need(args, 1, DECLARE_USAGE)
    if args[0] != "capture":
        raise ConfigError(f"unknown declaration '{args[0]}'", hint=f"usage: {DECLARE_USAGE}")
    if len(args) < 4 or args[1] not in ("request", "response") or args[2] != "len":
        raise ConfigError(
            "'declare capture' expects 'request' or 'response', then 'len' <length>",
            hint=f"usage: {DECLARE_USAGE}",
        )
    no_more(args, 4, DECLARE_USAGE)
    add_slot(ctx, args[1], capture_length(args[3]))


def capture_length(word: str) -> int:
    """A capture slot's length: the bytes of a value it keeps, 1 to CAPTURE_MAX."""
    try:
        return parse_int(word, "capture length", 1, CAPTURE_MAX)
    except ConfigError as exc:
        raise ConfigError(
            exc.message, hint=f"the number of bytes of the value to keep, 1 to {CAPTURE_MAX}"
        ) from None


def add_slot(ctx: Context, kind: str, length: int, header: str = "") -> int:
    """A new ``kind`` ("request" or "response") capture slot of the frontend being read,
    filled from ``header`` (else by rules); its number."""
    slots = ctx.px.request_captures if kind == "request" else ctx.px.response_captures
    slots.append(Capture(header, length))
    return len(slots) - 1


def compile_lf(
    text: str,
    usage: Usage,
    *,
    http: bool,
    where: Where,
    filename: str = "",
    lineno: int = 0,
    what: str = "",
) -> LogFormat:
    """Compile a log-format string of a config line, ``%[expr]`` by the rules engine for
    evaluation at ``where``: what ``log-format``, ``unique-id-format`` and the values of
    http-request/response actions use (``usage``: LOG, UNIQUE_ID or HTTP_VALUE).

    Raises ConfigError with the file and line, and "failed to parse <what>" (HAProxy's
    words) before the problem; render the result with ``LogFormat.render(record)``.
    """

    def samples(expr: str) -> SampleEvaluator:
        sample = compile_sample(expr, where=where, filename=filename, lineno=lineno)
        return sample.text_of  # type: ignore[return-value]

    try:
        return compile_format(text, usage, http_mode=http, samples=samples)
    except ConfigError as exc:
        raise ConfigError(
            f"failed to parse {what or usage.name} : {exc.message}", filename, lineno, hint=exc.hint
        ) from None


def _compile(line: FormatLine, usage: Usage, http: bool, where: Where) -> LogFormat:
    try:
        return compile_lf(
            line.text, usage, http=http, where=where, filename=line.filename, lineno=line.lineno
        )
    except ConfigError as exc:
        exc.keyword = line.keyword
        raise


def compile_proxy_formats(
    proxy: Proxy, fields: Dict[str, object]
) -> Tuple[Proxy, List[ConfigError], List[Notice]]:
    """``proxy`` with its formats compiled (frontends only), the errors and the warnings."""
    if not proxy.is_frontend:
        return proxy, [], []
    errors: List[ConfigError] = []
    notices: List[Notice] = []
    http = proxy.proxy_mode == "http"
    log_line = fields.get(LOG_FORMAT)
    if (
        isinstance(log_line, FormatLine)
        and not http
        and log_line.keyword.startswith("option httplog")
    ):
        notices.append(
            Notice(
                f"'{log_line.keyword}' not usable with {proxy.kind} '{proxy.name}' (needs "
                "'mode http'). Falling back to 'option tcplog'.",
                log_line.filename,
                log_line.lineno,
                log_line.keyword,
            )
        )
        log_line = replace(log_line, text=TCPLOG)
    compiled: List[Optional[LogFormat]] = []
    # A unique ID is made when the request is (HAProxy: with the request's fetches only).
    id_where = Where.HTTP_REQUEST if http else Where.TCP_CONTENT
    for line, usage, where in (
        (log_line, LOG, Where.LOG),
        (fields.get(UNIQUE_ID_FORMAT), UNIQUE_ID, id_where),
    ):
        if not isinstance(line, FormatLine):
            compiled.append(None)
            continue
        try:
            fmt = _compile(line, usage, http, where)
        except ConfigError as exc:
            errors.append(exc)
            compiled.append(None)
            continue
        compiled.append(fmt)
        notices.extend(
            Notice(f"{line.keyword}: {text}", line.filename, line.lineno, line.keyword)
            for text in fmt.warnings
        )
    header = fields.get("unique-id-header")
    proxy = replace(
        proxy,
        log_format=compiled[0],
        unique_id_format=compiled[1],
        unique_id_header=header if isinstance(header, str) else None,
    )
    return proxy, errors, notices
