"""log-format lines side by side with HAProxy 2.6: one config, the same requests, field by field.

Each test runs the installed ``haproxy`` and udsproxy on the same config (only the listener
addresses differ) in front of the same backend, sends the same requests to both and
compares the log lines field by field. Fields that must differ between two processes are
compared by kind: timers by whether they are -1, dates by their shape, ports and counts of
bytes as integers (HAProxy counts its internal representation of a message, udsproxy the
bytes on the wire).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple

import pytest

from tests.integration.backends import (
    connect,
    free_port,
    http_request,
    raw_exchange,
    read_until_close,
    stop_process,
    wait_connectable,
)
from tests.integration.proxy import StartProxy

HAPROXY = "/usr/sbin/haproxy"
pytestmark = pytest.mark.skipif(not shutil.which(HAPROXY), reason="HAProxy is not installed")

SEP = ";;"  # between fields: no field of these formats prints it
MARK = "LF"  # the first field of every line, to find the lines in udsproxy's output

# How a field is compared: exactly, or by what two processes must agree on.
EXACT = "exact"
TIMER = "timer"  # -1 in both, or a non-negative integer in both
INT = "int"  # an integer in both (ports, byte counts, pids; connection counts, which
# depend on when each process noticed the previous client's close)
DATE = "date"  # the same shape (digits masked): dates
HEX = "hex"  # hexadecimal in both (a port, milliseconds)
# A counter (%rt, %lc): the same steps from one line to the next in both. Where it starts
# depends on whether a process made a stream of the readiness probe's empty connection.
COUNTER = "counter"
PATTERNS = {INT: r"-?[0-9]+", HEX: r"[0-9A-F]+"}
Kinds = Sequence[Tuple[str, str]]  # (variable, kind)


def shape(value: str) -> str:
    return re.sub(r"[0-9A-F]", "9", value)


def same(kind: str, ours: str, theirs: str) -> bool:
    if kind == EXACT:
        return ours == theirs
    if kind == COUNTER:
        return True  # compared across lines (compare)
    if kind == TIMER:
        return (ours == "-1") == (theirs == "-1") and re.fullmatch(r"-1|\d+", ours) is not None
    if kind in PATTERNS:
        return all(re.fullmatch(PATTERNS[kind], v) is not None for v in (ours, theirs))
    return shape(ours) == shape(theirs)


def log_format(fields: Kinds) -> str:
    return SEP.join([MARK] + [var for var, _ in fields])


def lines_of(text: str) -> List[List[str]]:
    return [line.split(SEP)[1:] for line in text.splitlines() if line.startswith(MARK + SEP)]


def compare(fields: Kinds, ours: List[List[str]], theirs: List[List[str]]) -> None:
    assert len(ours) == len(theirs), (ours, theirs)
    for i, (var, kind) in enumerate(fields):
        if kind == COUNTER:
            base = 16 if "+X" in var else 10
            steps = []
            for lines in (ours, theirs):
                values = [int(line[i], base) for line in lines if len(line) > i]
                steps.append([v - values[0] for v in values])
            # Both count up from line to line; HAProxy may count a stream more in between
            # (a readiness probe accepted late on a loaded machine), so only udsproxy's
            # steps are exact: one per logged stream.
            ours_steps, their_steps = steps
            assert ours_steps == list(range(len(ours_steps))), (var, steps)
            assert their_steps == sorted(set(their_steps)), (var, steps)
    for n, (mine, ref) in enumerate(zip(ours, theirs)):
        # A line may end early (HAProxy stops at a variable it cannot print): alike.
        assert len(mine) == len(ref) <= len(fields), (n, mine, ref)
        wrong = [
            f"{var}: udsproxy {a!r}, haproxy {b!r}"
            for (var, kind), a, b in zip(fields, mine, ref)
            if not same(kind, a, b)
        ]
        assert not wrong, f"line {n}: " + "; ".join(wrong)


def head(mode: str, fe: str, port: int) -> str:
    """The global and defaults sections and a frontend listening on ``fe`` and ``port``
    that logs to stdout (what follows is the frontend's own lines)."""
    return f"""
global
    log stdout format raw local0
defaults
    mode {mode}
    log global
    retries 2
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind {fe}
    bind 127.0.0.1:{port}
    option dontlognull
"""


Step = Callable[[str, int], object]  # one request to the frontend (unix path, TCP port)


def marked(text: str) -> int:
    """How many marked lines a log holds."""
    return len(lines_of(text))


def run_steps(
    steps: Sequence[Step], fe: str, port: int, read: Callable[[], str], count: Callable[[str], int]
) -> List[object]:
    """Each step, then its log line (so that lines are in the order of the steps)."""
    results = []
    for n, step in enumerate(steps, start=1):
        results.append(step(fe, port))
        deadline = time.monotonic() + 5.0
        while count(read()) < n and time.monotonic() < deadline:
            time.sleep(0.02)
    return results


def run_both(
    sockdir: str,
    start_proxy: StartProxy,
    config: Callable[[str, int], str],
    steps: Sequence[Step],
    count: Callable[[str], int] = marked,
) -> Tuple[str, str, List[object], List[object]]:
    """The steps against HAProxy, then udsproxy, each on ``config(unix path, port)``: both
    logs and the steps' results (a line each, counted by ``count``)."""
    fe, port = f"{sockdir}/hfe.sock", free_port()
    cfg = os.path.join(sockdir, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(config(fe, port))
    log_path = os.path.join(sockdir, "haproxy.log")

    def their_log() -> str:
        with open(log_path) as f:
            return f.read()

    with open(log_path, "wb") as log:
        hap = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_connectable(f"unix@{fe}", proc=hap)
        theirs = run_steps(steps, fe, port, their_log, count)
    finally:
        stop_process(hap)
    fe, port = f"{sockdir}/ufe.sock", free_port()
    proxy = start_proxy(config(fe, port), ready=f"unix@{fe}")
    ours = run_steps(steps, fe, port, proxy.log, count)
    return proxy.log(), their_log(), ours, theirs


# -- HTTP ----------------------------------------------------------------------------------

HTTP_FIELDS: Kinds = [
    ("%ci", EXACT), ("%cp", INT), ("%fi", EXACT), ("%fp", INT), ("%tr", DATE), ("%t", DATE),
    ("%trg", DATE), ("%T", DATE), ("%ft", EXACT), ("%f", EXACT), ("%b", EXACT), ("%s", EXACT),
    ("%si", EXACT), ("%sp", EXACT), ("%bi", EXACT), ("%bp", EXACT),
    ("%TR", TIMER), ("%Tw", TIMER), ("%Tc", TIMER), ("%Tr", TIMER), ("%Ta", TIMER),
    ("%Tt", TIMER), ("%Tq", TIMER), ("%Th", TIMER), ("%Ti", TIMER), ("%Td", TIMER),
    ("%Tu", TIMER), ("%ST", EXACT), ("%B", INT), ("%U", INT), ("%CC", EXACT), ("%CS", EXACT),
    ("%tsc", EXACT), ("%ts", EXACT), ("%ac", INT), ("%fc", INT), ("%bc", INT),
    ("%sc", INT), ("%rc", EXACT), ("%sq", EXACT), ("%bq", EXACT), ("%hr", EXACT),
    ("%hs", EXACT), ("%hrl", EXACT), ("%hsl", EXACT), ("%{+Q}r", EXACT), ("%r", EXACT),
    ("%ID", EXACT), ("%HM", EXACT), ("%HU", EXACT), ("%HP", EXACT), ("%HPO", EXACT),
    ("%HQ", EXACT), ("%HV", EXACT), ("%rt", COUNTER), ("%lc", COUNTER), ("%pid", INT),
    ("%H", EXACT), ("%Ts", INT), ("%ms", INT), ("%sslv", EXACT), ("%sslc", EXACT),
    ("%[srv_name]", EXACT), ("%[fe_name]", EXACT),
    ("%[unique-id]", EXACT),
]  # fmt: skip

FLAG_FIELDS: Kinds = [
    ("%{+X}ci", EXACT), ("%{+X}cp", HEX), ("%{+X}fi", EXACT), ("%{+Q}ci", EXACT),
    ("%{+Q}b", EXACT), ("%{+Q,+E}s", EXACT), ("%{+E}r", EXACT), ("%{+Q}ST", EXACT),
    ("%{+Q}CC", EXACT), ("%{+Q}ID", EXACT), ("%{+Q}ft", EXACT), ("%{+Q}hr", EXACT),
    ("%{+Q}hrl", EXACT), ("%{+E}hr", EXACT), ("%{+Q}HU", EXACT), ("%{+X}Ts", HEX),
    ("%{+X}rt", COUNTER), ("%{+X}ms", HEX), ("%{+Q}sslv", EXACT), ("%{+Q}[be_name]", EXACT),
    ("%{+Q}o %b %{-Q}s %{+X}o %ST %{-X}o%Th", EXACT), ("%{+Q}H", EXACT),
]  # fmt: skip


def http_config(sockdir: str, fields: Kinds) -> Callable[[str, int], str]:
    def config(fe: str, port: int) -> str:
        return (
            head("http", fe, port)
            + f"""\
    log-format "{log_format(fields)}"
    capture request header X-Foo len 9
    capture request header User-Agent len 20
    capture response header X-Backend len 10
    unique-id-format %[req.hdr(x-req),lower]-%b
    unique-id-header X-Unique-ID
    use_backend dead if {{ path_beg /dead }}
    default_backend b
backend b
    server a {sockdir}/a.sock
backend dead
    server gone {sockdir}/gone.sock
"""
        )

    return config


# A served request with captures (unix client), a 404 and a POST (TCP client), a dead
# backend (503 after retries) and a head the client cut short (no stream: no captures).
HEADERS = [("X-Foo", 'a"b#c{d|e}x'), ("User-Agent", "ua/1 (x)"), ("X-Req", "ABC")]
HTTP_STEPS: List[Step] = [
    lambda fe, port: http_request(f"unix@{fe}", "GET", "/headers?x=1&y=%22", headers=HEADERS),
    lambda fe, port: http_request(
        ("127.0.0.1", port), "GET", "/status?code=404", headers=[("X-Req", "T1")]
    ),
    lambda fe, port: http_request(
        ("127.0.0.1", port), "POST", "/echo", headers=[("x-foo", "1"), ("X-Foo", "2")], body=b"hi"
    ),
    lambda fe, port: http_request(f"unix@{fe}", "GET", "/dead/x"),
    lambda fe, port: raw_exchange(f"unix@{fe}", b"GET / HT", shutdown_write=True),
]


def test_http_log_format_variables_as_haproxy(sockdir, start_backend, start_proxy) -> None:  # type: ignore[no-untyped-def]
    """Every variable of an HTTP log-format line, captures, unique ID, routing to a dead
    backend and a refused request: the same fields as HAProxy's, and the same ID header."""
    start_backend("a", f"{sockdir}/a.sock")
    ours, theirs, our_answers, their_answers = run_both(
        sockdir, start_proxy, http_config(sockdir, HTTP_FIELDS), HTTP_STEPS
    )
    compare(HTTP_FIELDS, lines_of(ours), lines_of(theirs))
    # The server received the unique ID in the header, as from HAProxy.
    for mine, ref in zip(our_answers[:1], their_answers[:1]):
        got = {k.lower(): v for k, v in json.loads(mine.body)["headers"]}  # type: ignore[attr-defined]
        want = {k.lower(): v for k, v in json.loads(ref.body)["headers"]}  # type: ignore[attr-defined]
        assert got["x-unique-id"] == want["x-unique-id"] == "abc-b"


def test_http_log_format_flags_as_haproxy(sockdir, start_backend, start_proxy) -> None:  # type: ignore[no-untyped-def]
    """+Q, +X, +E and %o on the same requests; +X on a unix client's address ends the line
    (HAProxy has no hexadecimal form for it) and an empty line is not logged."""
    start_backend("a", f"{sockdir}/a.sock")
    ours, theirs, _, _ = run_both(
        sockdir, start_proxy, http_config(sockdir, FLAG_FIELDS), HTTP_STEPS
    )
    compare(FLAG_FIELDS, lines_of(ours), lines_of(theirs))


# -- capture slots ---------------------------------------------------------------------------

CAPTURE_FIELDS: Kinds = [
    ("%hr", EXACT), ("%hs", EXACT), ("%hrl", EXACT), ("%{+Q}hsl", EXACT), ("%ST", EXACT),
    ("%[capture.req.hdr(0)]", EXACT), ("%[capture.req.hdr(1)]", EXACT),
    ("%{+Q}[capture.req.hdr(2)]", EXACT), ("%[capture.req.hdr(3)]", EXACT),
    ("%[capture.req.hdr(4)]", EXACT), ("%[capture.res.hdr(0)]", EXACT),
    ("%[capture.res.hdr(1)]", EXACT), ("%[capture.res.hdr(2)]", EXACT),
    ("%[capture.req.method]", EXACT), ("%{+Q}[capture.req.uri]", EXACT),
    ("%[capture.req.ver]", EXACT), ("%[capture.res.ver]", EXACT), ("%HM", EXACT),
    ("%TR", TIMER), ("%Tw", TIMER), ("%B", INT), ("%tsc", EXACT), ("%b", EXACT), ("%s", EXACT),
]  # fmt: skip


def test_capture_slots_as_haproxy(sockdir, start_backend, start_proxy) -> None:  # type: ignore[no-untyped-def]
    """Header captures, declared slots and capture rules (frontend and backend, request and
    response, len and id), a rule whose sample has no value, a slot cut to its length: the
    same %hr/%hs blocks and capture.req/res.hdr values as HAProxy's, and the same header
    a response rule made from a capture."""
    start_backend("a", f"{sockdir}/a.sock")

    def config(fe: str, port: int) -> str:
        return (
            head("http", fe, port)
            + f"""\
    log-format "{log_format(CAPTURE_FIELDS)}"
    capture request header X-Foo len 4
    http-request capture req.hdr(x-req) len 3
    declare capture request len 10
    declare capture response len 3
    capture response header X-Backend len 10
    http-request capture req.hdr(x-none) id 1
    http-request deny deny_status 403 if {{ path_beg /deny }}
    http-request reject if {{ path_beg /reject }}
    http-response capture status id 0
    http-response set-header X-Cap "%[capture.req.hdr(0)]/%[capture.req.hdr(2)]/%[capture.req.method]/%[capture.req.uri]/%[capture.res.ver]"
    http-request set-method PUT if {{ path_beg /status }}
    default_backend b
backend b
    http-request capture path,upper id 2
    http-response capture res.hdr(content-type) id 2
    server a {sockdir}/a.sock
"""
        )

    steps: List[Step] = [
        lambda fe, port: http_request(
            f"unix@{fe}", "GET", "/headers?x=1", headers=[("X-Foo", "a|b{c"), ("X-Req", "ABCD")]
        ),
        lambda fe, port: http_request(("127.0.0.1", port), "GET", "/status?code=404"),
        lambda fe, port: http_request(f"unix@{fe}", "GET", "/deny/me", headers=[("X-Req", "q")]),
        lambda fe, port: raw_exchange(
            f"unix@{fe}", b"HEAD http://x/headers?a=1 HTTP/1.0\r\nHost: x\r\n\r\n"
        ),
        # reject after an answered request on the same connection: that answer, then close.
        lambda fe, port: raw_exchange(
            f"unix@{fe}",
            b"GET /headers HTTP/1.1\r\nHost: x\r\nX-Req: 1\r\n\r\n"
            b"GET /reject HTTP/1.1\r\nHost: x\r\nX-Req: 2\r\n\r\n",
        ),
    ]

    def logged(text: str) -> int:
        """Steps whose lines are all in: the last one logs two (answered, rejected)."""
        n = marked(text)
        return min(n, 4) + max(0, n - 5)

    ours, theirs, our_answers, their_answers = run_both(sockdir, start_proxy, config, steps, logged)
    compare(CAPTURE_FIELDS, lines_of(ours), lines_of(theirs))
    assert len(lines_of(ours)) == 6
    rejected = our_answers[-1]
    assert rejected.startswith(b"HTTP/1.1 200 ") and rejected.count(b"HTTP/1.1 ") == 1
    assert rejected.split(b"\r\n", 1)[0] == their_answers[-1].split(b"\r\n", 1)[0]

    def answers(results: List[Any]) -> List[Tuple[int, Optional[str]]]:
        return [(r.status, r.header("x-cap")) for r in results[:3]]

    assert answers(our_answers) == answers(their_answers)


# -- option httplog and clf ----------------------------------------------------------------

HTTPLOG_RE = re.compile(
    r"^(?P<client>\S+) \[(?P<date>[^]]+)\] (?P<rest1>\S+ \S+) (?P<timers>\S+) (?P<status>\S+) "
    r"(?P<bytes>\d+) (?P<rest2>.*)$"
)


@pytest.mark.parametrize("option", ["option httplog", "option httplog clf"])
def test_httplog_and_clf_with_captures_as_haproxy(  # type: ignore[no-untyped-def]
    sockdir, start_backend, start_proxy, option: str
) -> None:
    """The default formats with header captures: HAProxy's words, in HAProxy's places."""
    start_backend("a", f"{sockdir}/a.sock")

    def config(fe: str, port: int) -> str:
        return (
            head("http", fe, port)
            + f"""\
    {option}
    capture request header X-Foo len 9
    capture request header User-Agent len 20
    capture response header X-Backend len 10
    default_backend b
backend b
    server a {sockdir}/a.sock
"""
        )

    steps: List[Step] = [
        lambda fe, port: http_request(f"unix@{fe}", "GET", "/?a=%22", headers=[("X-Foo", 'a"b|c')]),
        lambda fe, port: http_request(("127.0.0.1", port), "GET", "/status?code=500"),
    ]

    def normal(text: str) -> List[str]:
        """The lines, with what differs between two processes masked."""
        out = []
        for line in text.splitlines():
            if "GET /" not in line:
                continue
            line = re.sub(r"\[[^]]+\]", "[DATE]", line)
            line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line)
            # Timers, bytes, and the connection counts (when each process saw the previous
            # client's close); the retries and queues stay.
            line = re.sub(r" (-?\d+/){4}-?\d+ (\d+) \d+ ", r" T/T/T/T/T \2 B ", line)
            line = re.sub(r" (\S{4}) (\d+/){4}", r" \1 N/N/N/N/", line)
            if option.endswith("clf"):
                # clf: status, bytes, "" "", client port, ms, names, 5 timers, tsc, 4 counts.
                line = re.sub(r'" (\d+) \d+ "" "" \d+ \d+ ', r'" \1 B "" "" PORT MS ', line)
                line = re.sub(
                    r'("\w+") (-?\d+ ){5}(\S{4}) (\d+ ){4}', r"\1 T T T T T \3 N N N N ", line
                )
            out.append(line)
        return out

    ours, theirs, _, _ = run_both(sockdir, start_proxy, config, steps, lambda t: len(normal(t)))
    assert normal(ours) == normal(theirs)
    assert len(normal(ours)) == 2


# -- TCP -----------------------------------------------------------------------------------

TCP_FIELDS: Kinds = [
    ("%ci", EXACT), ("%cp", INT), ("%fi", EXACT), ("%t", DATE), ("%ft", EXACT), ("%b", EXACT),
    ("%s", EXACT), ("%si", EXACT), ("%sp", EXACT), ("%Tw", TIMER), ("%Tc", TIMER),
    ("%Tt", TIMER), ("%Td", TIMER), ("%B", EXACT), ("%U", EXACT), ("%ts", EXACT),
    ("%tsc", EXACT), ("%ST", EXACT), ("%ac", INT), ("%fc", INT), ("%bc", INT),
    ("%sc", INT), ("%rc", EXACT), ("%sq", EXACT), ("%bq", EXACT), ("%rt", COUNTER),
    ("%ID", EXACT), ("%{+Q}b", EXACT), ("%[be_name]", EXACT),
]  # fmt: skip


def test_tcp_log_format_as_haproxy(sockdir, start_backend, start_proxy) -> None:  # type: ignore[no-untyped-def]
    """A TCP frontend's log-format line (bytes both ways counted alike: a byte splice)."""
    start_backend("echo", f"{sockdir}/echo.sock", mode="tcp-echo")

    def config(fe: str, port: int) -> str:
        return (
            head("tcp", fe, port)
            + f"""\
    log-format "{log_format(TCP_FIELDS)}"
    unique-id-format %b-%s
    default_backend b
backend b
    server e {sockdir}/echo.sock
"""
        )

    def echo(address: object) -> bytes:
        with connect(address) as sock:  # type: ignore[arg-type]
            sock.sendall(b"hello\n")
            sock.shutdown(socket.SHUT_WR)
            return read_until_close(sock)

    steps: List[Step] = [
        lambda fe, port: echo(f"unix@{fe}"),
        lambda fe, port: echo(("127.0.0.1", port)),
    ]
    ours, theirs, answers, _ = run_both(sockdir, start_proxy, config, steps)
    assert answers == [b"hello\n", b"hello\n"]
    compare(TCP_FIELDS, lines_of(ours), lines_of(theirs))


def test_compare_masks_only_what_must_differ() -> None:
    """The comparison itself: exact fields must match, timers agree on -1, dates on shape."""
    assert same(EXACT, "b", "b") and not same(EXACT, "b", "c")
    assert same(TIMER, "0", "12") and same(TIMER, "-1", "-1") and not same(TIMER, "-1", "0")
    assert same(DATE, "01/Jan/2026:00:00:00.123", "31/Jan/2026:23:59:59.999")
    assert not same(DATE, "01/Jan/2026:00:00:00.123", "01/Jan/2026:00:00:00")
    assert same(INT, "159", "168") and not same(INT, "159", "-")
    assert same(HEX, "3A", "101") and not same(HEX, "3A", "-")
