"""The log-format compiler (udsproxy.logformat): syntax, every variable and flag, separators.

Expected strings follow HAProxy 2.6's log.c (sess_build_logline, lf_text_len, lf_ip,
lf_port, lf_encode_*) and lines captured from ``haproxy -db`` here (noted as captured);
tests/integration/test_log_format_haproxy.py compares with a running HAProxy.
"""

from __future__ import annotations

import calendar
import os
import socket
from datetime import timedelta, timezone
from typing import List, Optional, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from udsproxy.errors import ConfigError
from udsproxy.log.formats import SessionRecord
from udsproxy.logformat import (
    CLF,
    HTTP_VALUE,
    HTTPLOG,
    LOG,
    NEED_FRONTEND_ADDR,
    NEED_REQUEST_CAPTURES,
    NEED_SAMPLES,
    TCPLOG,
    UNIQUE_ID,
    VARIABLES,
    Flag,
    compile_format,
)
from udsproxy.logformat.parse import Expr, Sep, Text, Var, parse
from udsproxy.logformat.session import SessionLog, address_pair, request_line
from udsproxy.logformat.variables import path_only

UTC = timezone.utc
ACCEPT = calendar.timegm((2026, 11, 23, 19, 41, 13, 0, 0, 0)) + 0.452954


def record(**fields: object) -> SessionRecord:
    """A served request from an IPv4 client, with every usual field set."""
    base: dict = dict(
        frontend="fe", backend="b", server="a", client_ip="10.0.1.2", client_port=33317,
        accept_time=ACCEPT, request_time=ACCEPT + 0.004, t_request=1, t_queue=0, t_connect=2,
        t_response=3, t_active=7, t_total=11, status=200, bytes_read=159, bytes_in=38,
        actconn=3, feconn=2, beconn=1, srv_conn=1, srv_queue=0, backend_queue=0,
        request_line="GET /p/q?x=1 HTTP/1.1", request_counter=5, log_count=2,
    )  # fmt: skip
    base.update(fields)
    return SessionRecord(**base)  # type: ignore[arg-type]


def render(fmt: str, rec: Optional[SessionRecord] = None, **kwargs: object) -> str:
    return compile_format(fmt, **kwargs).render(rec or record(), UTC)  # type: ignore[arg-type]


def error(fmt: str, **kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        compile_format(fmt, **kwargs)  # type: ignore[arg-type]
    return info.value


# -- syntax ---------------------------------------------------------------------------------


def test_parse_nodes() -> None:
    """Text, one separator per space, variables with flags, %o, %%, expressions."""
    nodes, warnings = parse("a %b%%c %{+Q}r %{+X}o %[src,lower] %ci", Flag.MANDATORY, True)
    assert nodes == [
        Text("a"), Sep(), Var("b", Flag.MANDATORY, 2), Text("%c"), Sep(),
        Var("r", Flag.MANDATORY | Flag.QUOTE, 8), Sep(), Sep(),
        Expr("src,lower", Flag.MANDATORY | Flag.HEXA, 22), Sep(),
        Var("ci", Flag.MANDATORY | Flag.HEXA, 35),
    ]  # fmt: skip
    assert warnings == []


def test_parse_without_merged_spaces_keeps_them_as_text() -> None:
    """lf-strings of http-request actions: a space is text."""
    nodes, _ = parse("a  %b", Flag.NONE, False)
    assert nodes == [Text("a  "), Var("b", Flag.NONE, 3)]


def test_a_percent_before_what_starts_no_name_is_dropped() -> None:
    """As HAProxy: '%!' prints '!', '%%' prints '%'."""
    assert render("%!a%%b") == "!a%b"


def test_flags_apply_in_order_and_unknown_ones_warn() -> None:
    """'+' adds, '-' removes, the last sign of a token counts; unknown letters are ignored
    (as HAProxy) with a warning."""
    nodes, warnings = parse("%{+Q,-M,+Z,Q}b", Flag.MANDATORY, True)
    assert nodes == [Var("b", Flag.QUOTE, 0)]
    assert warnings == [
        "unknown flag 'Z' in '%{+Q,-M,+Z,Q}' ignored (flags: +Q quote, +X hexadecimal, "
        "+E escape, +M '-' for empty values)",
        "flag 'Q' in '%{+Q,-M,+Z,Q}' has no '+' or '-': ignored",
    ]
    assert compile_format("%{+Z}b").warnings


@pytest.mark.parametrize(
    "fmt, message",
    [
        ("abc%", "truncated line after '%'"),
        ("%{+Q", "truncated line after '+Q'"),
        ("%{+Q}", "parse argument modifier without variable name near '%{+Q}'"),
        ("%{+Q}:", "parse argument modifier without variable name near '%{+Q}'"),
        ("% x", "unexpected variable name near ' ' at position 1 line : '% x'"),
        ("%5", "unexpected variable name near '5' at position 1 line : '%5'"),
        ("%[src", "missing ']' after 'src'"),
        ("%[ ]", "empty sample expression '%[]'"),
    ],
)
def test_syntax_errors_have_haproxys_words_and_a_hint(fmt: str, message: str) -> None:
    """Each syntax error: HAProxy's message (log.c) and a hint."""
    exc = error(fmt)
    assert exc.message == message
    assert exc.hint


def test_unknown_variable_suggests_the_closest() -> None:
    """An unknown variable names itself, HAProxy's advice about '%%', and a did-you-mean."""
    exc = error("%ci:%cpx")
    assert exc.message.startswith("no such format variable 'cpx'")
    assert "'%%'" in exc.message and exc.hint == "did you mean '%cp'?"
    assert error("%zzz").hint == "see configuration.txt section 8.2.6"


def test_http_variables_are_refused_in_tcp_mode() -> None:
    """HAProxy: 'format variable 'r' is reserved for HTTP mode'."""
    exc = error("%ci %r", http_mode=False)
    assert exc.message == "format variable 'r' is reserved for HTTP mode"
    assert "mode http" in exc.hint
    assert compile_format(TCPLOG, http_mode=False)  # the TCP variables are not


def test_samples_need_a_compiler() -> None:
    """Without the rules engine, %[expr] is refused, never printed as text."""
    exc = error("%[src]")
    assert "sample expression '%[src]' cannot be used here" in exc.message


# -- separators -----------------------------------------------------------------------------


def test_spaces_merge_and_lead_nothing() -> None:
    """A run of spaces prints one space after output, none before the first (HAProxy)."""
    assert render("  a  %b   %s  ") == "a b a "


def test_absent_captures_print_nothing_and_keep_one_space() -> None:
    """%hr/%hs without captures (or without a stream) print nothing, not even a space."""
    assert render("%ST %hr %hs %B") == "200 159"
    rec = record(request_captures=["x"], response_captures=None)
    assert render("%ST %hr %hs %B", rec) == "200 {x} 159"


def test_empty_variables_still_count_as_output() -> None:
    """An empty value is output: the separator after it prints (unique-id without values)."""
    assert render("%ID %b", usage=UNIQUE_ID) == " b"


# -- variables ------------------------------------------------------------------------------


def test_httplog_is_haproxys_default_line() -> None:
    """The compiled HTTPLOG string is option httplog's line (HAProxy's doc example)."""
    rec = record(
        frontend="http-in", backend="static", server="srv1", accept_time=ACCEPT,
        request_time=calendar.timegm((2009, 2, 6, 12, 14, 14, 0, 0, 0)) + 0.655,
        t_request=10, t_queue=0, t_connect=30, t_response=69, t_active=109, bytes_read=2750,
        request_cookie="SID=abc", cookie_flags="NI", actconn=1, feconn=1, retries=2,
        redispatched=True, request_line="GET /index.html HTTP/1.1",
    )  # fmt: skip
    assert render(HTTPLOG, rec) == (
        '10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 '
        '2750 SID=abc - --NI 1/1/1/1/+2 0/0 "GET /index.html HTTP/1.1"'
    )  # fmt: skip


def test_httplog_with_captures_as_captured_from_haproxy() -> None:
    """option httplog with two request and one response capture (captured)."""
    rec = record(
        listener_id=1, backend="b", server="a", accept_time=ACCEPT, request_time=ACCEPT,
        t_request=0, t_queue=0, t_connect=0, t_response=2, t_active=2, bytes_read=159,
        actconn=1, feconn=1, beconn=0, srv_conn=0, request_line="GET / HTTP/1.1",
        request_captures=['a"b', None], response_captures=["a"],
    )  # fmt: skip
    assert render(HTTPLOG, rec) == (
        'unix:1 [23/Nov/2026:19:41:13.452] fe b/a 0/0/0/2/2 200 159 - - ---- 1/1/0/0/0 0/0 '
        '{a#22b|} {a} "GET / HTTP/1.1"'
    )  # fmt: skip


def test_clf_as_captured_from_haproxy() -> None:
    """option httplog clf, with captures (captured from HAProxy 2.6.12)."""
    rec = record(
        listener_id=1, accept_time=calendar.timegm((2026, 12, 3, 9, 43, 30, 0, 0, 0)) + 0.307,
        request_time=None, t_request=0, t_queue=0, t_connect=0, t_response=1, t_active=1,
        actconn=1, feconn=1, beconn=0, srv_conn=0, request_line="GET / HTTP/1.1",
        request_captures=['a"b', None], response_captures=["a"],
    )  # fmt: skip
    assert render(CLF, rec) == (
        'unix - - [03/Dec/2026:09:43:30 +0000] "GET / HTTP/1.1" 200 159 "" "" 1 307 "fe" "b" '
        '"a" 0 0 0 1 1 ---- 1 1 0 0 0 0 0 "" "" "a#22b" "" "a"'
    )  # fmt: skip
    # Without captures, the separators before %hrl %hsl leave one trailing space (captured).
    assert render(CLF, record(listener_id=1)).endswith('"" "" ')


@pytest.mark.parametrize(
    "fmt, expected",
    [
        ("%ci:%cp", "10.0.1.2:33317"),
        ("%b/%s", "b/a"),
        ("%f %ft", "fe fe"),
        ("%TR/%Tw/%Tc/%Tr/%Ta/%Tt", "1/0/2/3/7/11"),
        ("%Th %Ti %Tq %Tu %Td", "0 4 5 7 1"),  # Tq = Ti + TR, Tu = Tt - Ti, Td = Tt - 10
        ("%ST %B %U", "200 159 38"),
        ("%CC %CS", "- -"),
        ("%ts %tsc", "-- ----"),
        ("%ac/%fc/%bc/%sc/%rc %sq/%bq", "3/2/1/1/0 0/0"),
        ("%rt %lc", "5 2"),
        ("%sslc %sslv", "- -"),
        ("%ID", "-"),
        ("%Ts %ms", f"{int(ACCEPT)} 452"),
        ("%t", "23/Nov/2026:19:41:13.452"),
        ("%tr", "23/Nov/2026:19:41:13.456"),
        ("%T %trg", "23/Nov/2026:19:41:13 +0000 23/Nov/2026:19:41:13 +0000"),
        ("%Tl", "23/Nov/2026:19:41:13 +0000"),
        ("%r", "GET /p/q?x=1 HTTP/1.1"),
        ("%HM|%HU|%HP|%HPO|%HQ|%HV", "GET|/p/q?x=1|/p/q|/p/q|?x=1|HTTP/1.1"),
        ("%hr%hs%hrl%hsl", ""),
        ("%fi:%fp", "unix:0"),
        ("%si:%sp %bi:%bp", "-:- -:-"),
    ],
)
def test_each_variable(fmt: str, expected: str) -> None:
    """What each variable prints for a served request (timers in ms, -1 when unknown)."""
    assert render(fmt) == expected


def test_unix_client_and_listener() -> None:
    """A unix-socket client prints 'unix' and the listener id (HAProxy's %ci:%cp and %fi:%fp)."""
    rec = record(listener_id=3, client_ip="", client_port=0)
    assert render("%ci:%cp %fi:%fp %{+X}cp", rec) == "unix:3 unix:3 3"


def test_addresses_of_listener_and_server() -> None:
    """%fi:%fp of a TCP listener, %si:%sp and %bi:%bp as the record holds them."""
    rec = record(
        frontend_addr=("127.0.0.1", 8080), server_addr=("unix", 0), server_source=("::1", 443)
    )
    assert render("%fi:%fp %si:%sp %bi:%bp", rec) == "127.0.0.1:8080 unix:0 ::1:443"
    assert render("%{+X}fi:%{+X}fp %{+X}bi", rec) == "7F000001:1F90 " + "0" * 30 + "01"


def test_missing_timers_print_minus_one() -> None:
    """A request that never reached a server: -1 where the phase was not reached."""
    rec = record(t_queue=None, t_connect=None, t_response=None, status=None)
    assert render("%Tw/%Tc/%Tr %Td %ST", rec) == "-1/-1/-1 -1 -1"
    tcp = record(t_request=None, request_time=None, t_connect=4, t_total=20)
    assert render("%Td %Tu", tcp, http_mode=False) == "16 20"  # TCP: Td = Tt - Tw - Tc


def test_no_backend_prints_the_frontend_and_nosrv() -> None:
    """Refused before a backend was chosen: %b is the frontend, %s <NOSRV>, %r <BADREQ>."""
    rec = record(backend=None, server=None, request_line=None)
    assert render("%b/%s %{+Q}r %HM %HU %HP %HPO %HQ %HV", rec) == (
        'fe/<NOSRV> "<BADREQ>" <BADREQ> <BADREQ> <BADREQ> <BADREQ> <BADREQ> <BADREQ>'
    )


def test_redispatched_retries_get_a_plus() -> None:
    assert render("%rc", record(retries=3, redispatched=True)) == "+3"


def test_process_fields() -> None:
    """%pid and %H: this process and host."""
    assert render("%pid %H") == f"{os.getpid()} {socket.gethostname()}"


def test_local_date_prints_the_zone_offset() -> None:
    """%Tl and %trl: local dates with HAProxy's +hhmm (here a fixed -05:30 zone)."""
    zone = timezone(-timedelta(hours=5, minutes=30))
    fmt = compile_format("%Tl %trl %T")
    assert fmt.render(record(), zone) == (
        "23/Nov/2026:14:11:13 -0530 23/Nov/2026:14:11:13 -0530 23/Nov/2026:19:41:13 +0000"
    )


@pytest.mark.parametrize(
    "line, parts",
    [
        ("GET http://h.example:80/a/b?q=1 HTTP/1.1", ("GET", "http://h.example:80/a/b?q=1",
         "http://h.example:80/a/b", "/a/b", "?q=1", "HTTP/1.1")),
        ("OPTIONS * HTTP/1.1", ("OPTIONS", "*", "*", "", "", "HTTP/1.1")),
        ("CONNECT h.example:443 HTTP/1.1", ("CONNECT", "h.example:443", "h.example:443", "",
         "", "HTTP/1.1")),
        ("GET /x", ("GET", "/x", "/x", "/x", "", "HTTP/0.9")),
        ("GET", ("<BADREQ>", "<BADREQ>", "<BADREQ>", "<BADREQ>", "", "<BADREQ>")),
    ],
)  # fmt: skip
def test_request_line_parts(line: str, parts: Tuple[str, ...]) -> None:
    """%HM %HU %HP %HPO %HQ %HV cut the request line as HAProxy does."""
    rec = record(request_line=line)
    assert tuple(render("%HM;%HU;%HP;%HPO;%HQ;%HV", rec).split(";")) == parts


def test_path_only_of_odd_targets() -> None:
    assert path_only("http://h") == "" and path_only("1ab://h/x") == ""
    assert path_only("/a?b") == "/a" and path_only("svc+x://h/p") == "/p"


# -- flags ----------------------------------------------------------------------------------


def test_quote_flag() -> None:
    """+Q quotes strings ('""' when empty, never '-'); numbers stay unquoted (captured)."""
    rec = record(request_cookie="", unique_id="u1")
    assert render("%{+Q}b %{+Q}CC %{+Q}ID %{+Q}ST %{+Q}B %{+Q}ci %{+Q}ft", rec) == (
        '"b" "" "u1" 200 159 "10.0.1.2" "fe"'
    )


def test_global_flags_with_o() -> None:
    """%o sets the flags of every variable after it (HAProxy's CLF declaration)."""
    assert render("%{+Q}o %b %{-Q}s %f") == '"b" a "fe"'


def test_escape_flag() -> None:
    """+E: '"', '\\' and ']' get a backslash in strings; encoded fields keep #22 for '"'."""
    rec = record(unique_id='a"b\\c]d', request_line='GET /a"\\] HTTP/1.1')
    assert render("%{+E}ID", rec) == 'a\\"b\\\\c\\]d'
    assert render("%{+E}r", rec) == "GET /a#22\\\\\\] HTTP/1.1"
    assert render("%{+Q,+E}ID", rec) == '"a\\"b\\\\c\\]d"'


def test_mandatory_flag() -> None:
    """-M: an empty value prints nothing instead of '-'."""
    assert render("[%{-M}ID] [%ID]") == "[] [-]"


def test_hexadecimal_flag() -> None:
    """+X on addresses, ports and %Ts %ms %rt %lc %pid (captured shapes)."""
    rec = record(request_counter=1, log_count=17)
    assert render("%{+X}ci:%{+X}cp %{+X}rt %{+X}lc %{+X}ms", rec) == "0A000102:8225 0001 0011 1C4"
    assert render("%{+X}Ts", rec) == format(int(ACCEPT), "04X")
    assert render("%{+X}pid") == format(os.getpid(), "04X")
    v6 = record(client_ip="2001:db8::1")
    assert render("%{+X}ci", v6) == "20010DB8000000000000000000000001"


def test_hexadecimal_unix_address_ends_the_line() -> None:
    """HAProxy has no hexadecimal form for a unix socket: the line stops there."""
    rec = record(listener_id=1)
    assert render("a %b %{+X}ci %s", rec) == "a b "
    assert render("%{+X}ci %s", rec) == ""


def test_request_line_and_captures_are_encoded() -> None:
    """Bytes outside 32..126, '"' and '#' become #XX; captures also '{|}' (captured)."""
    rec = record(
        request_line='GET /a"b#c\x01\x7f\xe9{|} HTTP/1.1', request_captures=['a"b#c{d|e}', ""]
    )
    assert render("%r", rec) == "GET /a#22b#23c#01#7F#E9{|} HTTP/1.1"
    assert render("%hr %hrl %{+Q}hrl", rec) == (
        '{a#22b#23c#7Bd#7Ce#7D|} a#22b#23c#7Bd#7Ce#7D  "a#22b#23c#7Bd#7Ce#7D" ""'
    )
    absent = record(request_captures=["x", None])
    assert render("%hrl %{+Q}hrl %{+Q}hr", absent) == 'x - "x" "" "{x|}"'


@given(st.text(alphabet=st.characters(max_codepoint=255)))
def test_logged_request_line_is_printable_and_quote_free(target: str) -> None:
    """Whatever the request carried (one byte per char), %r stays printable ASCII, unquoted."""
    out = render("%r", record(request_line=target))
    assert all(32 <= ord(c) <= 126 for c in out) and '"' not in out


# -- usages ---------------------------------------------------------------------------------


def test_unique_id_and_header_values_encode_samples_for_http() -> None:
    """In unique-id-format and lf-strings, samples are %XX-encoded where a header value
    cannot carry a byte, never quoted nor '-' (HAProxy's LOG_OPT_HTTP; captured)."""

    def compiler(text: str):  # type: ignore[no-untyped-def]
        return lambda ctx: {"a": "a\x01b\x7fc d%", "none": None}[text]

    fmt = compile_format("%[a]_%{+Q}[a]_%[none]|%ID", UNIQUE_ID, samples=compiler)
    assert fmt.render(record(sample=object()), UTC) == "a%01b%7Fc d%_a%01b%7Fc d%_|"
    log = compile_format("%[a] %{+Q}[none] %[none]", LOG, samples=compiler)
    assert log.render(record(sample=object()), UTC) == 'a\x01b\x7fc d% "" -'
    # No rule context (a session that never had a request): no value.
    assert log.render(record(), UTC) == '- "" -'
    value = compile_format("x  %[a] ", HTTP_VALUE, samples=compiler)
    assert value.render(record(sample=object()), UTC) == "x  a%01b%7Fc d% "


def test_needs_name_what_the_data_path_must_fill() -> None:
    """Only the formats that print optional fields ask for them."""
    assert compile_format(HTTPLOG).needs == {NEED_REQUEST_CAPTURES, "response_captures"}
    assert compile_format("%fi %[x]", samples=lambda t: lambda c: None).needs == {
        NEED_FRONTEND_ADDR,
        NEED_SAMPLES,
    }
    assert compile_format(TCPLOG, http_mode=False).needs == frozenset()


def test_formats_compare_by_text_and_use() -> None:
    """The config model compares formats: same text and use, equal."""
    assert compile_format("%b") == compile_format("%b")
    assert hash(compile_format("%b")) == hash(compile_format("%b"))
    assert compile_format("%b") != compile_format("%b", UNIQUE_ID)
    assert compile_format("%b") != compile_format("%s")


def test_every_variable_renders_for_http_and_tcp_records() -> None:
    """No variable fails on a record of either mode (fields unset print their default)."""
    http = record(request_captures=["x"], response_captures=[None], unique_id="i")
    tcp = record(request_line=None, t_request=None, request_time=None, status=0)
    for name, var in VARIABLES.items():
        out = compile_format(f"%{name}").render(http, UTC)
        assert isinstance(out, str), name
        if not var.http_only:
            assert isinstance(compile_format(f"%{name}", http_mode=False).render(tcp, UTC), str)


# -- separators against a reference ---------------------------------------------------------


def reference(tokens: List[str], rec: SessionRecord) -> str:
    """HAProxy's loop, written out: last_isspace starts true; a separator prints a space
    only after output; %hr/%hs without captures print nothing and leave it alone."""
    out: List[str] = []
    last_is_space = True
    for token in tokens:
        if token == " ":
            if not last_is_space:
                out.append(" ")
                last_is_space = True
        elif (
            token in ("%hr", "%hs")
            and getattr(rec, "request_captures" if token == "%hr" else "response_captures") is None
        ):
            continue
        else:
            out.append(compile_format(token).render(rec, UTC) if token.startswith("%") else token)
            last_is_space = False
    return "".join(out)


@given(
    st.lists(st.sampled_from([" ", "-", "%b", "%ST", "%hr", "%hs", "%{-M}ID", "%CC"]), max_size=12),
    st.booleans(),
    st.booleans(),
)
def test_compiled_separators_match_haproxys_loop(tokens: List[str], req: bool, res: bool) -> None:
    """For any sequence of text, spaces and variables (some printing nothing), the compiled
    layout prints what HAProxy's run-time loop would."""
    rec = record(request_captures=["h"] if req else None, response_captures=[] if res else None)
    fmt = "".join(tokens)
    assert compile_format(fmt).render(rec, UTC) == reference(tokens, rec)


# -- what the data path fills ---------------------------------------------------------------


def test_request_line_is_cut_to_haproxys_buffer() -> None:
    """HAProxy keeps 1023 bytes of the request line for the log; bytes become chars."""
    line = request_line(b"GET", b"/" + b"a" * 2000, b"1.1")
    assert len(line) == 1023 and line.startswith("GET /aaa")
    assert request_line(b"GET", b"/\xe9", b"1.0") == "GET /\xe9 HTTP/1.0"


def test_address_pair() -> None:
    """(host, port) of an IP address; ('unix', 0) of a socket file (HAProxy's %si:%sp)."""
    from twisted.internet.address import IPv4Address, UNIXAddress

    assert address_pair(IPv4Address("TCP", "127.0.0.1", 80)) == ("127.0.0.1", 80)
    assert address_pair(UNIXAddress(b"/s.sock")) == ("unix", 0)
    assert address_pair(None) is None


class Counters:
    log_count = 0


class Proxy:
    """What SessionLog reads of a frontend."""

    def __init__(self, fmt: str, uid: str = "", options: Tuple[str, ...] = ()) -> None:
        self.log_format = compile_format(fmt) if fmt else None
        self.unique_id_format = compile_format(uid, UNIQUE_ID) if uid else None
        self.request_captures = ()
        self.response_captures = ()
        self.options = options

    def has_option(self, name: str) -> bool:
        return name in self.options


def test_session_log_counts_lines_and_skips_null_and_empty_ones() -> None:
    """%lc counts lines logged; dontlognull drops sessions without a byte; a line a variable
    ended before anything was written is not logged (HAProxy sends no empty line)."""
    counters = Counters()
    log = SessionLog(Proxy("%lc %b", options=("dontlognull",)), counters, None)  # type: ignore[arg-type]
    assert log.line(record()) == "0 b" and log.line(record()) == "1 b"
    assert log.line(record(bytes_in=0)) is None
    empty = SessionLog(Proxy("%{+X}ci"), counters, None)  # type: ignore[arg-type]
    assert empty.line(record(listener_id=1)) is None
    assert counters.log_count == 2


def test_unique_id_is_bounded_and_header_safe() -> None:
    """At most 127 characters (HAProxy's UNIQUEID_LEN); a control character from the
    config's own text is %XX-encoded rather than put in a header."""
    log = SessionLog(Proxy("", uid="%b-" + "x" * 200), Counters(), None)  # type: ignore[arg-type]
    assert log.unique_id(record()) == "b-" + "x" * 125
    ctl = SessionLog(Proxy("", uid="a\nb%b"), Counters(), None)  # type: ignore[arg-type]
    assert ctl.unique_id(record()) == "a%0Abb"
