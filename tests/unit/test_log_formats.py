"""Pure formatters in udsproxy.log.formats, and the compiled ``option httplog`` / ``tcplog``
formats (udsproxy.logformat), against lines captured from HAProxy 2.6.12.

The expected strings were produced by ``haproxy -db`` here, with unix and TCP listeners in
front of unix-socket servers, logging to a unix datagram socket in every format (TZ=UTC
unless noted). Only the inputs were read back from them: the timers, counters and dates.
"""

from __future__ import annotations

import calendar
import functools
from datetime import timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from udsproxy.log import formats
from udsproxy.log.formats import (
    SessionRecord,
    format_accept_date,
    format_backend_down,
    format_health_event,
    format_proxy_stopped,
    format_server_down,
    format_server_drain,
    format_server_maint,
    format_server_ready,
    format_server_up,
    health_event_level,
    is_null_session,
    priority,
    syslog_frame,
)
from udsproxy.logformat import HTTPLOG, TCPLOG, compile_format

UTC = timezone.utc
HTTPLOG_LINE = compile_format(HTTPLOG)
TCPLOG_LINE = compile_format(TCPLOG, http_mode=False)


def format_httplog(rec: SessionRecord, tz: timezone) -> str:
    """The ``option httplog`` line."""
    return HTTPLOG_LINE.render(rec, tz)


def format_tcplog(rec: SessionRecord, tz: timezone) -> str:
    """The ``option tcplog`` line."""
    return TCPLOG_LINE.render(rec, tz)


def epoch(y: int, mo: int, d: int, h: int, mi: int, s: int, frac: float = 0.0) -> float:
    """Epoch seconds of a UTC date."""
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + frac


# -- session lines ---------------------------------------------------------------------


def test_httplog_unix_client_ok() -> None:
    """A served request from a unix listener (captured from HAProxy)."""
    rec = SessionRecord(
        frontend="fe", backend="b_ok", server="a", listener_id=1,
        accept_time=epoch(2026, 11, 23, 19, 41, 13, 0.452954),
        t_request=0, t_queue=0, t_connect=0, t_response=0, t_active=0,
        status=200, bytes_read=54, bytes_in=70, termination="--", cookie_flags="--",
        actconn=1, feconn=1, request_line="GET / HTTP/1.1",
    )  # fmt: skip
    assert format_httplog(rec, UTC) == (
        'unix:1 [23/Nov/2026:19:41:13.452] fe b_ok/a 0/0/0/0/0 200 54 - - ---- '
        '1/1/0/0/0 0/0 "GET / HTTP/1.1"'
    )  # fmt: skip


def test_httplog_dead_server_after_retries() -> None:
    """Connect failures: Tc and Tr are -1, SC--, three retries (captured)."""
    rec = SessionRecord(
        frontend="fe", backend="b_dead", server="x", listener_id=1,
        accept_time=epoch(2026, 11, 23, 19, 41, 13, 0.461),
        t_request=0, t_queue=0, t_active=0, status=503, bytes_read=217,
        termination="SC", actconn=1, feconn=1, retries=3, request_line="GET /dead HTTP/1.1",
    )  # fmt: skip
    assert format_httplog(rec, UTC) == (
        'unix:1 [23/Nov/2026:19:41:13.461] fe b_dead/x 0/0/-1/-1/0 503 217 - - SC-- '
        '1/1/0/0/3 0/0 "GET /dead HTTP/1.1"'
    )  # fmt: skip


def test_httplog_no_server() -> None:
    """No server available: <NOSRV>, Tw is -1 too (captured)."""
    rec = SessionRecord(
        frontend="fe", backend="b_ok", listener_id=1,
        accept_time=epoch(2026, 11, 23, 19, 41, 16, 0.498), t_request=0, t_active=0,
        status=503, bytes_read=217, termination="SC", actconn=1, feconn=1,
        request_line="GET / HTTP/1.1",
    )  # fmt: skip
    assert format_httplog(rec, UTC) == (
        'unix:1 [23/Nov/2026:19:41:16.498] fe b_ok/<NOSRV> 0/-1/-1/-1/0 503 217 - - SC-- '
        '1/1/0/0/0 0/0 "GET / HTTP/1.1"'
    )  # fmt: skip


def test_httplog_bad_request_before_backend() -> None:
    """A rejected request: frontend as backend, <BADREQ>, every timer but Ta -1 (captured)."""
    rec = SessionRecord(
        frontend="fe", listener_id=1, accept_time=epoch(2026, 11, 23, 19, 41, 44, 0.062),
        t_active=0, status=400, termination="PR", actconn=1, feconn=1,
    )  # fmt: skip
    assert format_httplog(rec, UTC) == (
        'unix:1 [23/Nov/2026:19:41:44.062] fe fe/<NOSRV> -1/-1/-1/-1/0 400 0 - - PR-- '
        '1/1/0/0/0 0/0 "<BADREQ>"'
    )  # fmt: skip


def test_httplog_tcp_client_and_second_listener() -> None:
    """An IPv4 client prints ip:port; the request line is logged as received (captured)."""
    rec = SessionRecord(
        frontend="fe", backend="b_ok", server="c", client_ip="127.0.0.1", client_port=37048,
        accept_time=epoch(2026, 11, 23, 19, 41, 13, 0.469),
        t_request=0, t_queue=0, t_connect=0, t_response=0, t_active=0, status=200,
        bytes_read=54, actconn=1, feconn=1, request_line="GET /q%22x HTTP/1.1",
    )  # fmt: skip
    assert format_httplog(rec, UTC) == (
        '127.0.0.1:37048 [23/Nov/2026:19:41:13.469] fe b_ok/c 0/0/0/0/0 200 54 - - ---- '
        '1/1/0/0/0 0/0 "GET /q%22x HTTP/1.1"'
    )  # fmt: skip


def test_httplog_uses_request_date_cookies_and_redispatch() -> None:
    """%tr comes from request_time; captured cookies and +retries print as HAProxy does."""
    rec = SessionRecord(
        frontend="http-in", backend="static", server="srv1", client_ip="10.0.1.2",
        client_port=33317, accept_time=epoch(2009, 2, 6, 12, 14, 10),
        request_time=epoch(2009, 2, 6, 12, 14, 14, 0.655),
        t_request=10, t_queue=0, t_connect=30, t_response=69, t_active=109, status=200,
        bytes_read=2750, request_cookie="SID=abc", cookie_flags="NI", actconn=1, feconn=1,
        beconn=1, srv_conn=1, retries=2, redispatched=True,
        request_line="GET /index.html HTTP/1.1",
    )  # fmt: skip
    assert format_httplog(rec, UTC) == (
        '10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 '
        '2750 SID=abc - --NI 1/1/1/1/+2 0/0 "GET /index.html HTTP/1.1"'
    )  # fmt: skip


def test_tcplog_doc_example() -> None:
    """The example of configuration.txt §8.2.2."""
    rec = SessionRecord(
        frontend="fnt", backend="bck", server="srv1", client_ip="10.0.1.2", client_port=33313,
        accept_time=epoch(2009, 2, 6, 12, 12, 51, 0.443), t_queue=0, t_connect=0,
        t_total=5007, bytes_read=212, retries=3,
    )  # fmt: skip
    assert format_tcplog(rec, UTC) == (
        "10.0.1.2:33313 [06/Feb/2009:12:12:51.443] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/0"
    )


def test_tcplog_unix_client() -> None:
    """A unix client of a tcp frontend (captured)."""
    rec = SessionRecord(
        frontend="ft", backend="b_tcp", server="t", listener_id=1,
        accept_time=epoch(2026, 11, 23, 19, 41, 13, 0.475), t_queue=1, t_connect=0, t_total=0,
        bytes_read=62, actconn=1, feconn=1,
    )  # fmt: skip
    assert format_tcplog(rec, UTC) == (
        "unix:1 [23/Nov/2026:19:41:13.475] ft b_tcp/t 1/0/0 62 -- 1/1/0/0/0 0/0"
    )


@pytest.mark.parametrize("flags", ["--", "SC", "sQ", "CD", "cD", "sD"])
def test_tcplog_termination_flags(flags: str) -> None:
    """The two termination characters appear as given, queue positions after the counters."""
    rec = SessionRecord(
        frontend="f", backend="b", listener_id=2, termination=flags, srv_queue=3,
        backend_queue=4,
    )  # fmt: skip
    line = format_tcplog(rec, UTC)
    assert line == f"unix:2 [01/Jan/1970:00:00:00.000] f b/<NOSRV> -1/-1/-1 0 {flags} 0/0/0/0/0 3/4"


def test_tcplog_pads_short_termination() -> None:
    """A one-character state is padded with '-' so the field count never changes."""
    rec = SessionRecord(frontend="f", backend="b", server="s", listener_id=1, termination="C")
    assert " C- " in format_tcplog(rec, UTC)


def test_accept_date_truncates_milliseconds_and_follows_tz() -> None:
    """%t keeps milliseconds truncated (not rounded) and prints in the given zone."""
    when = epoch(2026, 11, 23, 18, 41, 30, 0.5179)
    assert format_accept_date(when, UTC) == "23/Nov/2026:18:41:30.517"
    est = timezone(timedelta(hours=-5))
    assert format_accept_date(when, est) == "23/Nov/2026:13:41:30.517"


def test_dates_of_one_second_by_style_and_zone() -> None:
    """The per-second date cache keys on the zone and the style, and stays right once it
    was emptied: the same second in every date style, in two zones, before and after."""
    when = epoch(2026, 11, 23, 18, 41, 30, 0.5179)
    est = timezone(timedelta(hours=-5))
    expected = [
        ("23/Nov/2026:18:41:30.517", "23/Nov/2026:13:41:30.517"),
        ("23/Nov/2026:18:41:30 +0000", "23/Nov/2026:18:41:30 +0000"),
        ("23/Nov/2026:18:41:30 +0000", "23/Nov/2026:13:41:30 -0500"),
        ("Nov 23 18:41:30", "Nov 23 13:41:30"),
    ]

    def dates(tz: timezone) -> list:
        return [
            formats.format_accept_date(when, tz),
            formats.format_gmt_date(when),
            formats.format_local_date(when, tz),
            formats.format_rfc3164_date(when, tz),
        ]

    for _ in range(2):
        assert list(zip(dates(UTC), dates(est))) == expected
        for second in range(100):  # more seconds than the cache keeps
            formats.format_rfc3164_date(when + 1 + second, UTC)
        assert len(formats._SECONDS) <= 64


def test_accept_date_exact_milliseconds() -> None:
    """A value like .517 that floats store as .51699... still prints .517."""
    assert format_accept_date(1.517, UTC).endswith(":00:00:01.517")


@given(
    st.lists(st.floats(min_value=0, max_value=4e9, allow_nan=False), min_size=1, max_size=6),
    st.sampled_from([UTC, timezone(timedelta(hours=-5)), None]),
)
def test_accept_dates_in_a_row_are_those_of_each_time(whens: list, tz: object) -> None:
    """The date kept from one line to the next is only reused within its second and zone."""
    for when in sorted(whens) + sorted(whens, reverse=True):
        d = formats._datetime(when, tz)  # type: ignore[arg-type]
        expected = d.strftime("%d/") + formats._MONTHS[d.month - 1] + d.strftime("/%Y:%H:%M:%S")
        assert format_accept_date(when, tz) == f"{expected}.{d.microsecond // 1000:03d}"  # type: ignore[arg-type]


def test_null_session() -> None:
    """dontlognull skips sessions where the client sent nothing."""
    assert is_null_session(SessionRecord())
    assert not is_null_session(SessionRecord(bytes_in=1))


# -- server and backend state lines -------------------------------------------------------


def test_server_down_unix_socket_error() -> None:
    """A failed check on a unix server (captured)."""
    assert format_server_down(
        "b_ok", "c", reason="Socket error",
        info="General socket error (Connection refused)", check_duration=0, active=1,
    ) == (
        'Server b_ok/c is DOWN, reason: Socket error, info: "General socket error '
        '(Connection refused)", check duration: 0ms. 1 active and 0 backup servers left. '
        "0 sessions active, 0 requeued, 0 remaining in queue."
    )  # fmt: skip


def test_server_down_layer4_and_running_on_backup() -> None:
    """The brief's Layer4 line; with only backups left HAProxy adds 'Running on backup.'."""
    down = format_health_event(
        "b", "a", False, reason="Layer4 connection problem", info="Connection refused",
        check_duration=0, active=1,
    )  # fmt: skip
    assert down == (
        'Server b/a is DOWN, reason: Layer4 connection problem, info: "Connection refused", '
        "check duration: 0ms. 1 active and 0 backup servers left. 0 sessions active, "
        "0 requeued, 0 remaining in queue."
    )
    on_backup = format_server_down("b", "a", reason="Layer4 timeout", check_duration=1001, backup=1)
    assert on_backup == (
        "Server b/a is DOWN, reason: Layer4 timeout, check duration: 1001ms. 0 active and "
        "1 backup servers left. Running on backup. 0 sessions active, 0 requeued, "
        "0 remaining in queue."
    )


def test_server_up_layer4_and_layer7() -> None:
    """UP lines (the first captured); a layer-7 check adds its code and info."""
    assert format_health_event(
        "b_ok", "c", True, reason="Layer4 check passed", check_duration=0, active=2
    ) == (
        "Server b_ok/c is UP, reason: Layer4 check passed, check duration: 0ms. "
        "2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue."
    )
    assert format_server_up(
        "b", "a", reason="Layer7 check passed", code=200, info="OK", check_duration=3,
        active=1, is_backup=True,
    ) == (
        'Backup Server b/a is UP, reason: Layer7 check passed, code: 200, info: "OK", '
        "check duration: 3ms. 1 active and 0 backup servers online. 0 sessions requeued, "
        "0 total in queue."
    )  # fmt: skip


def test_admin_state_lines() -> None:
    """drain, maint and back to ready, as HAProxy logged them after 'set server' (captured)."""
    assert format_server_drain("b", "a", backup=1) == (
        "Server b/a enters drain state. 0 active and 1 backup servers online. Running on "
        "backup. 0 sessions requeued, 0 total in queue."
    )
    assert format_server_ready("b", "a", was="drain") == "Server b/a is UP (leaving forced drain)."
    assert format_server_maint("b", "a", backup=1) == (
        "Server b/a is going DOWN for maintenance. 0 active and 1 backup servers left. "
        "Running on backup. 0 sessions active, 0 requeued, 0 remaining in queue."
    )
    assert format_server_ready("b", "a") == "Server b/a is UP/READY (leaving forced maintenance)."
    assert format_server_maint("b", "z", active=1, is_backup=True) == (
        "Backup Server b/z is going DOWN for maintenance. 1 active and 0 backup servers left. "
        "0 sessions active, 0 requeued, 0 remaining in queue."
    )


def test_backend_and_proxy_lines() -> None:
    """'no server available' (unquoted in the log) and the soft-stop line (captured)."""
    assert format_backend_down("b_ok") == "backend b_ok has no server available!"
    assert format_proxy_stopped("fe", 2, 0) == "Proxy fe stopped (cumulated conns: FE: 2, BE: 0)."


def test_health_event_levels() -> None:
    """HAProxy logs UP at notice and DOWN at alert (<133> and <129> with local0)."""
    assert priority("local0", health_event_level(True)) == 133
    assert priority("local0", health_event_level(False)) == 129


# -- syslog headers -------------------------------------------------------------------------

MSG = "unix:1 [23/Nov/2026:19:41:13.452] fe b_ok/a 0/0/0/0/0 200 54 - - ---- 1/1/0/0/0 0/0"
WHEN = epoch(2026, 11, 23, 19, 41, 13, 0.452954)


@pytest.mark.parametrize(
    ("fmt", "facility", "expected"),
    [
        ("local", "local0", f"<134>Nov 23 19:41:13 haproxy[4339]: {MSG}"),
        ("rfc3164", "local1", f"<142>Nov 23 19:41:13 localhost haproxy[4339]: {MSG}"),
        ("rfc5424", "local2", f"<150>1 2026-11-23T19:41:13.452954+00:00 - haproxy 4339 - - {MSG}"),
        ("short", "local3", f"<6>{MSG}"),
        ("priority", "local4", f"<166>{MSG}"),
        ("iso", "local5", f"2026-11-23T19:41:13.452954+00:00 {MSG}"),
        ("timed", "local6", f"<6>2026-11-23T19:41:13.452954+00:00 {MSG}"),
        ("raw", "local7", MSG),
    ],
)
def test_syslog_frame_formats(fmt: str, facility: str, expected: str) -> None:
    """Each log format's header, as HAProxy sent it for an info line (captured)."""
    framed = syslog_frame(
        fmt, MSG, facility=facility, level="info", when=WHEN, tag="haproxy", pid=4339, tz=UTC
    )
    assert framed == expected


def test_syslog_frame_with_hostname_and_zone() -> None:
    """log-send-hostname adds the host to local and rfc5424; dates follow the zone (captured)."""
    est = timezone(timedelta(hours=-5))
    when = epoch(2026, 11, 23, 19, 42, 10, 0.238593)
    frame = functools.partial(
        syslog_frame, facility="local0", level="info", when=when, tag="mytag", pid=5029,
        hostname="vm", tz=est,
    )  # fmt: skip
    assert frame("local", "m") == "<134>Nov 23 14:42:10 vm mytag[5029]: m"
    assert frame("rfc3164", "m") == "<134>Nov 23 14:42:10 vm mytag[5029]: m"
    assert frame("rfc5424", "m") == "<134>1 2026-11-23T14:42:10.238593-05:00 vm mytag 5029 - - m"


def test_rfc3164_pads_single_digit_day() -> None:
    """RFC 3164 pads the day with a space: 'Feb  6'."""
    when = epoch(2009, 2, 6, 12, 12, 56)
    framed = syslog_frame(
        "local", "x", facility="local0", level="info", when=when, tag="t", pid=1, tz=UTC
    )
    assert framed == "<134>Feb  6 12:12:56 t[1]: x"


def test_priority_values() -> None:
    """PRI = facility * 8 + severity over the whole table."""
    assert priority("kern", "emerg") == 0
    assert priority("local0", "emerg") == 128
    assert priority("local0", "info") == 134
    assert priority("local7", "debug") == 191
    assert priority("daemon", "err") == 27
    assert [formats.facility_number(f) for f in formats.FACILITIES] == list(range(24))


def test_unknown_names_rejected() -> None:
    """Unknown levels, facilities and formats are errors, not silent defaults."""
    with pytest.raises(ValueError):
        priority("local8", "info")
    with pytest.raises(ValueError):
        priority("local0", "warn")
    with pytest.raises(ValueError):
        syslog_frame("json", "x", facility="local0", level="info", when=0, tag="t", pid=1)


timer = st.one_of(st.none(), st.integers(min_value=0, max_value=10**7))


@given(st.tuples(timer, timer, timer, timer, timer), timer)
def test_httplog_timers_and_status_print_minus_one_when_unknown(
    times: tuple, status: object
) -> None:
    """The written-out timers and status field are _ms of each (-1 for a phase not reached)."""
    tr, tw, tc, tresp, ta = times
    rec = SessionRecord(
        frontend="f",
        backend="b",
        server="s",
        t_request=tr,
        t_queue=tw,
        t_connect=tc,
        t_response=tresp,
        t_active=ta,
        status=status,  # type: ignore[arg-type]
        request_line="GET / HTTP/1.1",
    )
    fields = format_httplog(rec, UTC).split(" ")
    assert fields[4] == "/".join("-1" if t is None else str(t) for t in times)
    assert fields[5] == ("-1" if status is None else str(status))
