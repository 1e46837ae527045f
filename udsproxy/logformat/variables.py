"""HAProxy's log-format variables: what each prints from a :class:`SessionRecord`.

Each entry of :data:`VARIABLES` turns a variable's flags into *code*: a Python expression
over ``rec`` (the record) and ``tz`` (the zone dates print in) that uses only the helpers
of :data:`HELPERS`. The compiler joins the expressions of a whole format into one function
(see ``compiler``), so that a field read costs an attribute access, not a call. Output
follows ``sess_build_logline`` (log.c, HAProxy 2.6):

* strings (``%b``, ``%ID``, ...): ``+Q`` quotes, ``+E`` escapes ``"\\]``, and an empty
  value prints ``-`` when the variable is mandatory (log lines) and not quoted;
* numbers ignore ``+Q``; ``+X`` prints ``%Ts %ms %rt %lc %pid``, addresses and ports in
  hexadecimal (a unix socket has no hexadecimal address: HAProxy ends the line there,
  which the code says by raising :class:`Truncated`);
* the request line and the variables cut from it (``%r``, ``%HU``, ...) encode bytes
  outside 32..126, ``"`` and ``#`` as ``#XX``; captured headers also ``{|}``.

Timers are HAProxy's: ``TR Tw Tc Tr Ta Tt`` are kept in the record, ``Ti`` (the idle time
before the request) is the request's start minus the stream's accept, ``Th`` is 0 (no TLS
nor PROXY handshake), ``Tq = Th + Ti + TR``, ``Tu = Tt - Ti``, ``Td = Tt - (Tq + Tw + Tc +
Tr)``. A variable HAProxy reserves for HTTP mode is marked ``http_only``; ``need`` names
the record field that only the formats using it make the data path fill.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

from ..log.formats import (
    BADREQ,
    HDR_CODES,
    NOSRV,
    RFC5424_SPECIALS,
    URL_CODES,
    SessionRecord,
    encoder,
    format_accept_date,
    format_gmt_date,
    format_local_date,
)
from .parse import Flag

Code = str  # a Python expression over ``rec`` and ``tz`` (and the names of HELPERS)
Factory = Callable[[Flag], Code]

# Record fields filled only for the formats that print them (``LogFormat.needs``).
NEED_REQUEST_CAPTURES = "request_captures"
NEED_RESPONSE_CAPTURES = "response_captures"
NEED_FRONTEND_ADDR = "frontend_addr"
NEED_SERVER_ADDR = "server_addr"
NEED_SERVER_SOURCE = "server_source"
NEED_LOG_COUNT = "log_count"
NEED_REQUEST_COUNTER = "request_counter"
NEED_SAMPLES = "samples"

UNIX = "unix"


class Truncated(Exception):
    """HAProxy stops writing the line at this variable (what came before is the line)."""


@dataclass(frozen=True)
class Variable:
    """One ``%name``: its code, where it may be used, what it needs filled."""

    factory: Factory
    http_only: bool = False
    need: str = ""
    # Prints nothing at all (not even a separator's worth) when the record's field named
    # here is None: the header captures of a session that never became a stream.
    optional_on: str = ""


# -- helpers the code calls (all in HELPERS) ------------------------------------------------

_TEXT_E = encoder((), "", RFC5424_SPECIALS)
_URL = encoder(URL_CODES, "#")
_URL_E = encoder(URL_CODES, "#", RFC5424_SPECIALS)
_HDR = encoder(HDR_CODES, "#")
_HDR_E = encoder(HDR_CODES, "#", RFC5424_SPECIALS)


def _esc(value: Optional[str]) -> str:
    """+E on a string: ``"``, ``\\`` and ``]`` get a backslash."""
    return _TEXT_E(value) if value else ""


def _hex_ip(host: Optional[str], absent: str) -> str:
    """+X on an address: its bytes in hexadecimal; a unix socket ends the line."""
    if host is None:
        return absent
    if host == UNIX:
        raise Truncated()  # lf_ip() has no hexadecimal form for AF_UNIX
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).packed.hex().upper()
    except ValueError:
        raise Truncated() from None


def _pair(pair: Optional[Tuple[str, int]], index: int) -> object:
    return None if pair is None else pair[index]


def _port(port: Optional[int], absent: str, hexa: bool) -> str:
    if port is None:
        return absent
    return format(port, "04X") if hexa else str(port)


def _accept_ms(rec: SessionRecord) -> int:
    # Whole microseconds first, as format_accept_date (1.517 must not become .516).
    return round(rec.accept_time * 1_000_000) // 1000 % 1000


def idle_ms(rec: SessionRecord) -> int:
    """Ti: from the stream's accept to the request's first byte; -1 without a request."""
    if rec.request_time is None:
        return -1
    # In whole microseconds first (4 ms must not become 3.999).
    return max(0, (round(rec.request_time * 1e6) - round(rec.accept_time * 1e6)) // 1000)


def _tq(rec: SessionRecord) -> int:
    if rec.t_request is None or rec.t_request < 0:
        return -1
    return max(idle_ms(rec), 0) + rec.t_request


def _tu(rec: SessionRecord) -> int:
    total = rec.t_total if rec.t_total is not None else -1
    return total - max(idle_ms(rec), 0)


def _td(rec: SessionRecord) -> int:
    """Data transfer time: after the response head (HTTP) or the connect (TCP); else -1."""
    total = rec.t_total if rec.t_total is not None else 0
    if rec.t_request is not None:  # an HTTP stream (a TCP session has no request timer)
        if rec.t_response is None:
            return -1
        before = _tq(rec) + (rec.t_queue or 0) + (rec.t_connect or 0) + rec.t_response
        return total - before
    if rec.t_connect is None:
        return -1
    return total - (rec.t_queue or 0) - rec.t_connect


# The request line and what is cut from it, as HAProxy cuts it from its copy of the line.
_SPHT = " \t"


def _after_method(uri: str) -> int:
    """Where the target starts (after the method and its spaces); 0 if there is no space."""
    i = 0
    end = len(uri)
    while i < end and uri[i] not in _SPHT:
        i += 1
    spaces = i
    while i < end and uri[i] in _SPHT:
        i += 1
    return i if i > spaces else 0


def _word_end(uri: str, start: int, stop: str = _SPHT) -> int:
    i = start
    while i < len(uri) and uri[i] not in stop:
        i += 1
    return i


def http_method(line: Optional[str]) -> str:
    """%HM: the method (``<BADREQ>`` without a request line or a space in it)."""
    line = BADREQ if line is None else line
    end = _word_end(line, 0)
    return BADREQ if end == len(line) else line[:end]


def http_uri(line: Optional[str]) -> str:
    """%HU: the request target as received."""
    start = _after_method(line) if line is not None else 0
    if line is None or not start:
        return BADREQ
    return line[start : _word_end(line, start)]


def http_path(line: Optional[str]) -> str:
    """%HP: the target up to its query string."""
    start = _after_method(line) if line is not None else 0
    if line is None or not start:
        return BADREQ
    return line[start : _word_end(line, start, "?" + _SPHT)]


def path_only(target: str) -> str:
    """%HPO's path: an absolute-form target loses its scheme and authority, then the query
    goes (HAProxy's http_parse_path); nothing for ``*``, an authority or an empty target."""
    if not target or target[0] == "*":
        return ""
    if target[0] != "/":
        if not (target[0].isascii() and target[0].isalpha()):
            return ""
        i = 1
        while (
            i < len(target) and target[i].isascii() and (target[i].isalnum() or target[i] in "+-.")
        ):
            i += 1
        if not target.startswith("://", i):
            return ""
        slash = target.find("/", i + 3)
        if slash < 0:
            return ""
        target = target[slash:]
    q = target.find("?")
    return target if q < 0 else target[:q]


def http_path_only(line: Optional[str]) -> str:
    """%HPO: the path alone (no scheme, authority nor query)."""
    start = _after_method(line) if line is not None else 0
    if line is None or not start:
        return BADREQ
    return path_only(line[start : _word_end(line, start)])


def http_query(line: Optional[str]) -> str:
    """%HQ: from the first ``?`` of the request line to the next space, ``?`` included."""
    if line is None:
        return BADREQ
    q = line.find("?")
    if q < 0:
        return ""
    return line[q : _word_end(line, q)]


def http_version(line: Optional[str]) -> str:
    """%HV: what follows the target (``HTTP/0.9`` when nothing does)."""
    start = _after_method(line) if line is not None else 0
    if line is None or not start:
        return BADREQ
    i = _word_end(line, start)
    while i < len(line) and line[i] in _SPHT:
        i += 1
    return line[i:] if i < len(line) else "HTTP/0.9"


def _block(values: Sequence[Optional[str]], encode: Callable[[str], str]) -> str:
    """%hr/%hs: ``{v1|v2}``, each value encoded, an absent header as nothing."""
    return "{" + "|".join(encode(v) if v else "" for v in values) + "}"


def _list(values: Sequence[Optional[str]], encode: Callable[[str], str], quote: bool) -> str:
    """%hrl/%hsl: values separated by spaces, ``-`` for an absent header when unquoted."""
    if quote:
        return " ".join(f'"{encode(v)}"' if v else '""' for v in values)
    return " ".join("-" if v is None else encode(v) for v in values)


_HOSTNAME: Optional[str] = None


def hostname() -> str:
    """%H: this host's name, read once (HAProxy reads it at start)."""
    global _HOSTNAME
    if _HOSTNAME is None:
        _HOSTNAME = socket.gethostname()
    return _HOSTNAME


HELPERS: Dict[str, object] = {
    "NOSRV": NOSRV,
    "BADREQ": BADREQ,
    "_TEXT_E": _TEXT_E,
    "_URL": _URL,
    "_URL_E": _URL_E,
    "_HDR": _HDR,
    "_HDR_E": _HDR_E,
    "_esc": _esc,
    "_hex_ip": _hex_ip,
    "_pair": _pair,
    "_port": _port,
    "_accept_ms": _accept_ms,
    "_tq": _tq,
    "_tu": _tu,
    "_td": _td,
    "_block": _block,
    "_list": _list,
    "idle_ms": idle_ms,
    "hostname": hostname,
    "getpid": os.getpid,
    "http_method": http_method,
    "http_uri": http_uri,
    "http_path": http_path,
    "http_path_only": http_path_only,
    "http_query": http_query,
    "http_version": http_version,
    "accept_date": format_accept_date,
    "gmt_date": format_gmt_date,
    "local_date": format_local_date,
}


# -- code builders --------------------------------------------------------------------------


def text_code(value: Code, flags: Flag) -> Code:
    """A string (``value`` may be None or empty): HAProxy's lf_text with the flags."""
    quote = Flag.QUOTE in flags
    escape = Flag.ESCAPE in flags
    if quote:
        inner = f"_esc({value})" if escape else f"({value} or '')"
        return f"'\"%s\"' % {inner}"
    empty = "-" if Flag.MANDATORY in flags else ""
    if escape:
        return f"(_esc({value}) or {empty!r})"
    return f"({value} or {empty!r})"


def _text(value: Code) -> Factory:
    return lambda flags: text_code(value, flags)


def _number(value: Code) -> Factory:
    return lambda flags: value


def _timer(field: str) -> Factory:
    """A timer in ms; None (the phase was never reached) prints -1."""
    return lambda flags: f"(-1 if rec.{field} is None else rec.{field})"


def _hexable(value: Code, width: str = "04X") -> Factory:
    """A number that ``+X`` prints in hexadecimal (``%Ts %ms %rt %lc %pid``)."""
    return lambda flags: f"format({value}, {width!r})" if Flag.HEXA in flags else value


def _address(host: Code) -> Factory:
    """An IP address (``unix`` for a unix socket, ``-`` when there is none with M)."""

    def factory(flags: Flag) -> Code:
        if Flag.HEXA in flags:
            return f"_hex_ip({host}, {text_code('None', flags)})"
        return text_code(host, flags)

    return factory


def _port_of(port: Code) -> Factory:
    """A port (``-`` when there is no address); ``+X``: 4 hexadecimal digits."""
    return lambda flags: f"_port({port}, {text_code('None', flags)}, {Flag.HEXA in flags})"


def _encoded(code: str, encode: str = "_URL") -> Factory:
    """``#XX``-encoded text (HAProxy's lf_encode_*): ``code`` with ``{encode}`` the encoder
    (+E's variant with E); Q quotes the whole."""

    def factory(flags: Flag) -> Code:
        out = code.format(encode=encode + "_E" if Flag.ESCAPE in flags else encode)
        return f"'\"%s\"' % {out}" if Flag.QUOTE in flags else out

    return factory


def _request(part: str) -> Factory:
    """The request line or a part of it (``part``: a helper of the line)."""
    return _encoded(f"{{encode}}({part}(rec.request_line))")


def _captures_list(field: str) -> Factory:
    def factory(flags: Flag) -> Code:
        encode = "_HDR_E" if Flag.ESCAPE in flags else "_HDR"
        return f"_list(rec.{field}, {encode}, {Flag.QUOTE in flags})"

    return factory


def _frontend_transport(flags: Flag) -> Code:
    """%ft: the frontend's name (a '~' would follow for TLS); Q quotes, E does not apply."""
    return "'\"%s\"' % rec.frontend" if Flag.QUOTE in flags else "rec.frontend"


def _client_port(flags: Flag) -> Code:
    """%cp: the port, or the listener id of a unix socket (never hexadecimal)."""
    port = "format(rec.client_port, '04X')" if Flag.HEXA in flags else "rec.client_port"
    return f"(rec.listener_id if rec.listener_id is not None else {port})"


def _frontend_port(flags: Flag) -> Code:
    """%fp: the listener's port, or its id for a unix socket."""
    port = "format(rec.frontend_addr[1], '04X')" if Flag.HEXA in flags else "rec.frontend_addr[1]"
    return f"((rec.listener_id or 0) if rec.frontend_addr is None else {port})"


def _ms(flags: Flag) -> Code:
    """%ms: the accept date's milliseconds, 3 digits (``+X``: 2 hexadecimal ones)."""
    return f"format(_accept_ms(rec), {'02X' if Flag.HEXA in flags else '03d'!r})"


def _captures(letter: str, field: str, need: str) -> Dict[str, Variable]:
    """%hr/%hrl (``letter`` r) or %hs/%hsl (s): printed only where the record has captures."""
    return {
        f"h{letter}": Variable(
            _encoded(f"_block(rec.{field}, {{encode}})", "_HDR"), need=need, optional_on=field
        ),
        f"h{letter}l": Variable(_captures_list(field), need=need, optional_on=field),
    }


def _const(code: Code) -> Factory:
    return lambda flags: code


# Expressions rather than helper calls where one is short: a call costs more than most
# variables do.
BACKEND = "(rec.frontend if rec.backend is None else rec.backend)"  # none yet: the frontend
REQUEST_TIME = "(rec.accept_time if rec.request_time is None else rec.request_time)"
REQUEST_LINE = "(BADREQ if rec.request_line is None else rec.request_line)"
CLIENT_IP = "('unix' if rec.listener_id is not None else rec.client_ip)"
FRONTEND_IP = "('unix' if rec.frontend_addr is None else rec.frontend_addr[0])"
# Two state characters, '-' for a missing one (HAProxy pads with '-'): the text of
# ``format(flags[:2], '-<2')``, without a format spec to parse.
TERMINATION = "(rec.termination + '--')[:2]"
COOKIE_FLAGS = "(rec.cookie_flags + '--')[:2]"

VARIABLES: Dict[str, Variable] = {
    "B": Variable(_number("rec.bytes_read")),
    "CC": Variable(_text("rec.request_cookie"), http_only=True),
    "CS": Variable(_text("rec.response_cookie"), http_only=True),
    "H": Variable(_text("hostname()")),
    "HM": Variable(_request("http_method"), http_only=True),
    "HP": Variable(_request("http_path"), http_only=True),
    "HPO": Variable(_request("http_path_only"), http_only=True),
    "HQ": Variable(_request("http_query"), http_only=True),
    "HU": Variable(_request("http_uri"), http_only=True),
    "HV": Variable(_request("http_version"), http_only=True),
    "ID": Variable(_text("rec.unique_id")),
    "ST": Variable(_const("(-1 if rec.status is None else rec.status)")),
    "T": Variable(_const("gmt_date(rec.accept_time)")),
    "Ta": Variable(_timer("t_active"), http_only=True),
    "Tc": Variable(_timer("t_connect")),
    "Td": Variable(_const("_td(rec)")),
    "Th": Variable(_const("0")),
    "Ti": Variable(_const("idle_ms(rec)"), http_only=True),
    "Tl": Variable(_const("local_date(rec.accept_time, tz)")),
    "Tq": Variable(_const("_tq(rec)"), http_only=True),
    "TR": Variable(_timer("t_request"), http_only=True),
    "Tr": Variable(_timer("t_response"), http_only=True),
    "Ts": Variable(_hexable("int(rec.accept_time)")),
    "Tt": Variable(_timer("t_total")),
    "Tu": Variable(_const("_tu(rec)")),
    "Tw": Variable(_timer("t_queue")),
    "U": Variable(_number("rec.bytes_in")),
    "ac": Variable(_number("rec.actconn")),
    "b": Variable(_text(BACKEND)),
    "bc": Variable(_number("rec.beconn")),
    "bi": Variable(_address("_pair(rec.server_source, 0)"), need=NEED_SERVER_SOURCE),
    "bp": Variable(_port_of("_pair(rec.server_source, 1)"), need=NEED_SERVER_SOURCE),
    "bq": Variable(_number("rec.backend_queue")),
    "ci": Variable(_address(CLIENT_IP)),
    "cp": Variable(_client_port),
    "f": Variable(_text("rec.frontend")),
    "fc": Variable(_number("rec.feconn")),
    "fi": Variable(_address(FRONTEND_IP), need=NEED_FRONTEND_ADDR),
    "fp": Variable(_frontend_port, need=NEED_FRONTEND_ADDR),
    "ft": Variable(_frontend_transport),
    "lc": Variable(_hexable("rec.log_count"), need=NEED_LOG_COUNT),
    "ms": Variable(_ms),
    "pid": Variable(_hexable("getpid()")),
    "r": Variable(_encoded(f"{{encode}}({REQUEST_LINE})"), http_only=True),
    "rc": Variable(_const("(('+%d' % rec.retries) if rec.redispatched else rec.retries)")),
    "rt": Variable(_hexable("rec.request_counter"), need=NEED_REQUEST_COUNTER),
    "s": Variable(_text("(NOSRV if rec.server is None else rec.server)")),
    "sc": Variable(_number("rec.srv_conn")),
    "si": Variable(_address("_pair(rec.server_addr, 0)"), need=NEED_SERVER_ADDR),
    "sp": Variable(_port_of("_pair(rec.server_addr, 1)"), need=NEED_SERVER_ADDR),
    "sq": Variable(_number("rec.srv_queue")),
    "sslc": Variable(_text("None")),  # no TLS: HAProxy prints '-' for a clear-text session
    "sslv": Variable(_text("None")),
    "t": Variable(_const("accept_date(rec.accept_time, tz)")),
    "tr": Variable(_const(f"accept_date({REQUEST_TIME}, tz)"), http_only=True),
    "trg": Variable(_const(f"gmt_date({REQUEST_TIME})"), http_only=True),
    "trl": Variable(_const(f"local_date({REQUEST_TIME}, tz)"), http_only=True),
    "ts": Variable(_const(TERMINATION)),
    "tsc": Variable(_const(f"{TERMINATION} + {COOKIE_FLAGS}")),
    **_captures("r", "request_captures", NEED_REQUEST_CAPTURES),
    **_captures("s", "response_captures", NEED_RESPONSE_CAPTURES),
}
