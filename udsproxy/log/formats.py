"""Pure log formatters: the session record, dates, encodings, server state lines, syslog headers.

Session lines (``option httplog``, ``tcplog``, ``log-format``) are log-format strings that
``udsproxy.logformat`` compiles; what they print comes from a :class:`SessionRecord` and
the dates and encodings here. Nothing here does I/O or reads the clock: every timestamp
comes in as epoch seconds and an optional ``tzinfo`` (``None``: the local zone, as HAProxy
prints it), so the output of each function is determined by its arguments. The expected
shapes were checked against lines captured from HAProxy 2.6.12 (see
``tests/unit/test_log_formats.py``).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Callable, Dict, Optional, Sequence, Tuple

# Syslog severities, most severe first; the index is the RFC 5424 numeric value.
LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

# HAProxy's 24 facility names in numeric order (``auth2`` is authpriv, ``cron2`` the second
# clock daemon; both as in HAProxy's log.c table).
FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
    "uucp", "cron", "auth2", "ftp", "ntp", "audit", "alert", "cron2",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)  # fmt: skip

# ``local`` is HAProxy's default: rfc3164 without the hostname field.
FORMATS = ("local", "rfc3164", "rfc5424", "priority", "short", "timed", "iso", "raw")

# English month names: HAProxy prints them regardless of the locale.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

NOSRV = "<NOSRV>"
BADREQ = "<BADREQ>"


def level_number(name: str) -> int:
    """The numeric severity of a level name (``emerg`` 0 ... ``debug`` 7); ValueError if unknown."""
    try:
        return LEVELS.index(name)
    except ValueError:
        raise ValueError(
            f"unknown log level '{name}' (expected one of {', '.join(LEVELS)})"
        ) from None


def facility_number(name: str) -> int:
    """The numeric syslog facility of a facility name; ValueError if unknown."""
    try:
        return FACILITIES.index(name)
    except ValueError:
        raise ValueError(f"unknown log facility '{name}'") from None


def priority(facility: str, level: str) -> int:
    """The syslog PRI value: facility * 8 + severity."""
    return facility_number(facility) * 8 + level_number(level)


def _datetime(when: float, tz: Optional[tzinfo]) -> datetime:
    # Round to whole microseconds first so 1.517 does not become 1.516999...
    micros = round(when * 1_000_000)
    utc = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=micros)
    return utc.astimezone(tz) if tz is not None else utc.astimezone()


def _day_time(d: datetime) -> str:
    return (
        f"{d.day:02d}/{_MONTHS[d.month - 1]}/{d.year:04d}:"
        f"{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
    )


def _offset(d: datetime) -> str:
    """HAProxy's zone offset: ``+0100``."""
    offset = d.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes) % 1440
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


# The text of one second, by (second, zone, style): log lines of the same second (nearly
# all of them under load) share it, as HAProxy reuses its date. Building it from a
# datetime costs more than the rest of a log line; the cache is emptied when it grows.
# Styles: %t's day and time, %T's GMT date, %Tl's local one, the RFC 3164 header's.
_SECONDS: Dict[Tuple[int, Optional[tzinfo], int], str] = {}
_DAY_TIME, _GMT, _LOCAL, _RFC3164 = 0, 1, 2, 3


def _second(sec: int, tz: Optional[tzinfo], style: int) -> str:
    key = (sec, tz, style)
    text = _SECONDS.get(key)
    if text is None:
        if len(_SECONDS) >= 64:
            _SECONDS.clear()
        d = _datetime(sec, timezone.utc if style == _GMT else tz)
        if style == _RFC3164:
            text = f"{_MONTHS[d.month - 1]} {d.day:2d} {d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        else:
            text = _day_time(d)
            if style == _GMT:
                text += " +0000"
            elif style == _LOCAL:
                text += " " + _offset(d)
        _SECONDS[key] = text
    return text


def format_accept_date(when: float, tz: Optional[tzinfo] = None) -> str:
    """HAProxy's ``%t``/``%tr`` date: ``23/Nov/2026:18:41:30.517`` (milliseconds truncated)."""
    # Whole microseconds first, so that 1.517 does not become 1.516999...
    micros = round(when * 1_000_000)
    return f"{_second(micros // 1_000_000, tz, _DAY_TIME)}.{micros // 1000 % 1000:03d}"


def format_gmt_date(when: float) -> str:
    """HAProxy's ``%T``/``%trg`` date: ``23/Nov/2026:18:41:30 +0000`` (always UTC)."""
    return _second(round(when * 1_000_000) // 1_000_000, None, _GMT)


def format_local_date(when: float, tz: Optional[tzinfo] = None) -> str:
    """HAProxy's ``%Tl``/``%trl`` date: ``23/Nov/2026:19:41:30 +0100`` (the zone's offset)."""
    return _second(round(when * 1_000_000) // 1_000_000, tz, _LOCAL)


def format_rfc3164_date(when: float, tz: Optional[tzinfo] = None) -> str:
    """The RFC 3164 timestamp: ``Feb  6 12:12:56`` (day padded with a space)."""
    return _second(round(when * 1_000_000) // 1_000_000, tz, _RFC3164)


def format_iso_date(when: float, tz: Optional[tzinfo] = None) -> str:
    """The RFC 5424 / ``iso`` timestamp: ``2026-11-23T19:41:13.452954+00:00``."""
    return _datetime(when, tz).isoformat(timespec="microseconds")


def syslog_frame(
    fmt: str,
    message: str,
    *,
    facility: str,
    level: str,
    when: float,
    tag: str,
    pid: int,
    hostname: Optional[str] = None,
    tz: Optional[tzinfo] = None,
) -> str:
    """Wrap ``message`` in the header of log format ``fmt``, as HAProxy does (no trailing LF).

    ``hostname`` is the ``log-send-hostname`` value; when it is unset HAProxy leaves the
    field out of ``local``, writes ``localhost`` in ``rfc3164`` and ``-`` in ``rfc5424``.
    """
    sev = level_number(level)
    if fmt == "raw":
        return message
    if fmt == "short":
        return f"<{sev}>{message}"
    if fmt == "iso":
        return f"{format_iso_date(when, tz)} {message}"
    if fmt == "timed":
        return f"<{sev}>{format_iso_date(when, tz)} {message}"
    pri = facility_number(facility) * 8 + sev
    if fmt == "priority":
        return f"<{pri}>{message}"
    if fmt == "rfc5424":
        host = hostname or "-"
        return f"<{pri}>1 {format_iso_date(when, tz)} {host} {tag} {pid} - - {message}"
    if fmt == "rfc3164":
        host = hostname or "localhost"
        return f"<{pri}>{format_rfc3164_date(when, tz)} {host} {tag}[{pid}]: {message}"
    if fmt == "local":
        host = f"{hostname} " if hostname else ""
        return f"<{pri}>{format_rfc3164_date(when, tz)} {host}{tag}[{pid}]: {message}"
    raise ValueError(f"unknown log format '{fmt}' (expected one of {', '.join(FORMATS)})")


# A record per request: with slots (Python 3.10's dataclass option) it is built with no
# instance dict; its 41 fields are past CPython's 30 for shared dict keys, so each record
# had a dict of its own (~1.6 KB). PyPy 3.9 lays instances out by their attributes anyway.
_SLOTS: Dict[str, bool] = {"slots": True} if sys.version_info >= (3, 10) else {}


@dataclass(**_SLOTS)
class SessionRecord:
    """What one session's log line reports; filled in by the proxy as the session runs.

    Timers are milliseconds; ``None`` means the phase was never reached and prints ``-1``.
    """

    frontend: str = ""
    backend: Optional[str] = None  # None: no backend chosen yet; HAProxy prints the frontend
    server: Optional[str] = None  # None: prints <NOSRV>
    client_ip: str = ""
    client_port: int = 0
    listener_id: Optional[int] = None  # set for unix-socket clients: %ci:%cp is unix:<id>
    accept_time: float = 0.0  # epoch seconds (%t)
    request_time: Optional[float] = None  # first byte of the request (%tr); None: accept_time
    t_request: Optional[int] = None  # TR
    t_queue: Optional[int] = None  # Tw
    t_connect: Optional[int] = None  # Tc
    t_response: Optional[int] = None  # Tr
    t_active: Optional[int] = None  # Ta
    t_total: Optional[int] = None  # Tt
    bytes_read: int = 0  # server -> client, headers included (%B)
    bytes_in: int = 0  # client -> proxy, head included (%U); 0: a "null" session (dontlognull)
    termination: str = "--"  # first two termination-state characters
    cookie_flags: str = "--"  # last two (httplog only)
    actconn: int = 0
    feconn: int = 0
    beconn: int = 0
    srv_conn: int = 0
    retries: int = 0
    redispatched: bool = False  # prints retries as +N
    srv_queue: int = 0
    backend_queue: int = 0
    status: Optional[int] = None  # HTTP status; None prints -1
    request_line: Optional[str] = None  # None prints <BADREQ>
    request_cookie: Optional[str] = None  # %CC; None prints -
    response_cookie: Optional[str] = None  # %CS; None prints -
    # What only some log formats use: filled when the frontend's formats ask for it
    # (``LogFormat.needs``), else left at these defaults.
    request_counter: int = 0  # %rt: the stream's number in this process, from 0
    unique_id: Optional[str] = None  # %ID (``unique-id-format``)
    # %hr/%hs: one entry per ``capture`` line (None: the header was absent); None when the
    # frontend captures nothing or the session never became a stream (a bad request).
    request_captures: Optional[Sequence[Optional[str]]] = None
    response_captures: Optional[Sequence[Optional[str]]] = None
    frontend_addr: Optional[Tuple[str, int]] = None  # %fi:%fp of a TCP listener (None: unix)
    server_addr: Optional[Tuple[str, int]] = None  # %si:%sp: ("unix", 0) for a socket file
    server_source: Optional[Tuple[str, int]] = None  # %bi:%bp: the server connection's own
    log_count: int = 0  # %lc: lines the frontend logged before this one
    sample: object = None  # %[expr]: what the rules engine evaluates the expressions on


def encoder(codes: Sequence[int], escape: str, backslash: str = "") -> Callable[[str], str]:
    """HAProxy's log encodings: each code in ``codes`` becomes ``<escape>XX`` (hex), each
    character of ``backslash`` not among them gets a ``\\`` before it (``+E``).

    Most text needs nothing: one regex search decides, the translation runs only then.
    """
    table = {code: f"{escape}{code:02X}" for code in codes}
    for ch in backslash:
        table.setdefault(ord(ch), "\\" + ch)
    search = re.compile("[" + "".join(re.escape(chr(code)) for code in sorted(table)) + "]").search

    def encode(text: str) -> str:
        return text.translate(table) if search(text) else text

    return encode


# HAProxy's log encoding maps (log.c, init_log): what it writes as #XX in a log line.
_UNPRINTABLE = [*range(32), *range(127, 256)]
URL_CODES = _UNPRINTABLE + [ord(c) for c in '"#']  # the request line (%r, %HU, ...)
HDR_CODES = URL_CODES + [ord(c) for c in "{|}"]  # captured headers (%hr, %hs)
RFC5424_SPECIALS = '"\\]'  # what +E prefixes with a backslash


def is_null_session(rec: SessionRecord) -> bool:
    """True when the client sent nothing: ``option dontlognull`` suppresses such lines."""
    return rec.bytes_in == 0


# -- server and backend state lines -------------------------------------------------------


def _server_name(backend: str, server: str, backup: bool) -> str:
    return f"{'Backup ' if backup else ''}Server {backend}/{server}"


def _check_details(
    reason: Optional[str], code: Optional[int], info: Optional[str], duration: Optional[int]
) -> str:
    # HAProxy appends each part only when it is known (check.c, srv_append_status).
    text = ""
    if reason:
        text += f", reason: {reason}"
    if code is not None:
        text += f", code: {code}"
    if info:
        text += f', info: "{info}"'
    if duration is not None:
        text += f", check duration: {duration}ms"
    return text


def _running_on_backup(active: int, backup: int) -> str:
    return " Running on backup." if active == 0 and backup > 0 else ""


def format_server_down(
    backend: str,
    server: str,
    *,
    reason: Optional[str] = None,
    code: Optional[int] = None,
    info: Optional[str] = None,
    check_duration: Optional[int] = None,
    active: int = 0,
    backup: int = 0,
    sessions_active: int = 0,
    requeued: int = 0,
    queued: int = 0,
    is_backup: bool = False,
) -> str:
    """``Server b/a is DOWN, reason: ..., check duration: 0ms. 1 active and 0 backup servers left.``

    ``active``/``backup`` count the servers still usable after this one went down; HAProxy
    logs it at level ``alert``.
    """
    return (
        f"{_server_name(backend, server, is_backup)} is DOWN"
        f"{_check_details(reason, code, info, check_duration)}. "
        f"{active} active and {backup} backup servers left.{_running_on_backup(active, backup)} "
        f"{sessions_active} sessions active, {requeued} requeued, {queued} remaining in queue."
    )


def format_server_up(
    backend: str,
    server: str,
    *,
    reason: Optional[str] = None,
    code: Optional[int] = None,
    info: Optional[str] = None,
    check_duration: Optional[int] = None,
    active: int = 0,
    backup: int = 0,
    requeued: int = 0,
    queued: int = 0,
    is_backup: bool = False,
) -> str:
    """``Server b/a is UP, reason: Layer4 check passed, ... 2 active and 0 backup servers online.``

    Counts include the server that came up; HAProxy logs it at level ``notice``.
    """
    return (
        f"{_server_name(backend, server, is_backup)} is UP"
        f"{_check_details(reason, code, info, check_duration)}. "
        f"{active} active and {backup} backup servers online.{_running_on_backup(active, backup)} "
        f"{requeued} sessions requeued, {queued} total in queue."
    )


def format_health_event(
    backend: str,
    server: str,
    up: bool,
    *,
    reason: Optional[str] = None,
    code: Optional[int] = None,
    info: Optional[str] = None,
    check_duration: Optional[int] = None,
    active: int = 0,
    backup: int = 0,
    sessions_active: int = 0,
    requeued: int = 0,
    queued: int = 0,
    is_backup: bool = False,
) -> str:
    """A health-check transition line: ``format_server_up`` or ``format_server_down``."""
    if up:
        return format_server_up(
            backend, server, reason=reason, code=code, info=info, check_duration=check_duration,
            active=active, backup=backup, requeued=requeued, queued=queued, is_backup=is_backup,
        )  # fmt: skip
    return format_server_down(
        backend, server, reason=reason, code=code, info=info, check_duration=check_duration,
        active=active, backup=backup, sessions_active=sessions_active, requeued=requeued,
        queued=queued, is_backup=is_backup,
    )  # fmt: skip


def health_event_level(up: bool) -> str:
    """The level HAProxy logs a server transition at: UP ``notice``, DOWN ``alert``."""
    return "notice" if up else "alert"


def format_server_maint(
    backend: str,
    server: str,
    *,
    active: int = 0,
    backup: int = 0,
    sessions_active: int = 0,
    requeued: int = 0,
    queued: int = 0,
    is_backup: bool = False,
) -> str:
    """``Server b/a is going DOWN for maintenance. ...`` (level ``alert``)."""
    return (
        f"{_server_name(backend, server, is_backup)} is going DOWN for maintenance. "
        f"{active} active and {backup} backup servers left.{_running_on_backup(active, backup)} "
        f"{sessions_active} sessions active, {requeued} requeued, {queued} remaining in queue."
    )


def format_server_ready(
    backend: str, server: str, *, was: str = "maint", is_backup: bool = False
) -> str:
    """Leaving an admin state (level ``notice``): ``... is UP/READY (leaving forced maintenance).``

    ``was`` is ``maint`` or ``drain``.
    """
    name = _server_name(backend, server, is_backup)
    if was == "drain":
        return f"{name} is UP (leaving forced drain)."
    return f"{name} is UP/READY (leaving forced maintenance)."


def format_server_drain(
    backend: str,
    server: str,
    *,
    active: int = 0,
    backup: int = 0,
    requeued: int = 0,
    queued: int = 0,
    is_backup: bool = False,
) -> str:
    """``Server b/a enters drain state. 1 active and 0 backup servers online. ...`` (``notice``)."""
    return (
        f"{_server_name(backend, server, is_backup)} enters drain state. "
        f"{active} active and {backup} backup servers online.{_running_on_backup(active, backup)} "
        f"{requeued} sessions requeued, {queued} total in queue."
    )


def format_backend_down(backend: str) -> str:
    """``backend b has no server available!`` as HAProxy logs it (level ``emerg``).

    HAProxy's stderr copy quotes the name (``backend 'b' ...``); the log line does not.
    """
    return f"backend {backend} has no server available!"


def format_proxy_stopped(name: str, fe_conns: int, be_conns: int) -> str:
    """``Proxy fe stopped (cumulated conns: FE: 2, BE: 0).`` at soft stop (level ``warning``)."""
    return f"Proxy {name} stopped (cumulated conns: FE: {fe_conns}, BE: {be_conns})."
