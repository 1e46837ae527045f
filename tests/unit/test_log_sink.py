"""LogSink behaviour without a network: address parsing, level filtering, framing, the bridge.

Lines are written to a pipe through ``fd@N``, the cheapest real target.
"""

from __future__ import annotations

import os
from datetime import timezone
from typing import Iterator, List, Tuple, cast

import pytest
from twisted.logger import ILogObserver, Logger, LogLevel

from udsproxy.config.model import LogTarget
from udsproxy.log import LogSink, TargetAddress, log_event, parse_target
from udsproxy.log.targets import FD, SYSLOG_PORT, UDP, UNIX

WHEN = 1795462873.452954  # 2026-11-23T19:41:13.452954Z


@pytest.fixture
def pipe() -> Iterator[Tuple[int, int]]:
    """A pipe whose read end is non-blocking; both ends are closed afterwards."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    yield r, w
    os.close(r)
    os.close(w)


def read_lines(fd: int) -> List[str]:
    """Everything written to the pipe so far, split into lines (each ends with LF)."""
    try:
        data = os.read(fd, 1 << 16)
    except BlockingIOError:
        return []
    assert data.endswith(b"\n")
    return data.decode().splitlines()


def make_sink(
    w: int,
    format: str = "rfc3164",
    level: str = "debug",
    min_level: str = "",
    facility: str = "local0",
) -> LogSink:
    """A sink with one fd@w target and a fixed clock, zone, tag and pid."""
    t = LogTarget(
        target=f"fd@{w}", facility=facility, level=level, min_level=min_level, format=format
    )
    return LogSink((t,), clock=lambda: WHEN, tz=timezone.utc, tag="udsproxy", pid=42)


# -- parse_target ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("stdout", TargetAddress(FD, fd=1)),
        ("stderr", TargetAddress(FD, fd=2)),
        ("fd@7", TargetAddress(FD, fd=7)),
        ("/dev/log", TargetAddress(UNIX, path="/dev/log")),
        ("unix@/run/log.sock", TargetAddress(UNIX, path="/run/log.sock")),
        ("127.0.0.1", TargetAddress(UDP, host="127.0.0.1", port=SYSLOG_PORT)),
        ("127.0.0.1:1514", TargetAddress(UDP, host="127.0.0.1", port=1514)),
        ("udp@10.0.0.1:99", TargetAddress(UDP, host="10.0.0.1", port=99)),
        ("ipv4@10.0.0.1", TargetAddress(UDP, host="10.0.0.1", port=514)),
        ("ipv6@::1:1514", TargetAddress(UDP, host="::1", port=1514)),
        ("::1:", TargetAddress(UDP, host="::1", port=514)),
        ("[::1]:1514", TargetAddress(UDP, host="::1", port=1514)),
        ("[fe80::1]", TargetAddress(UDP, host="fe80::1", port=514)),
        ("logs.example:514", TargetAddress(UDP, host="logs.example", port=514)),
    ],
)
def test_parse_target(word: str, expected: TargetAddress) -> None:
    """HAProxy's log address forms map to fd, unix-datagram or UDP targets."""
    assert parse_target(word) == expected


def test_parse_abstract_target_is_padded() -> None:
    """abns@ names are NUL-padded to the whole sun_path, like HAProxy's."""
    addr = parse_target("abns@syslog")
    assert isinstance(addr.path, bytes) and len(addr.path) == 108
    assert addr.path.startswith(b"\0syslog\0") and str(addr) == "abns@syslog"


@pytest.mark.parametrize(
    "word", ["ring@buf", "tcp@1.2.3.4:514", "uxst@/x", "fd@x", "1.2.3.4:0", "1.2.3.4:99999", ":514"]
)
def test_parse_target_rejects(word: str) -> None:
    """Rings, stream targets and malformed addresses are refused with ValueError."""
    with pytest.raises(ValueError):
        parse_target(word)


# -- framing and filtering ----------------------------------------------------------------


def test_no_targets_writes_nothing() -> None:
    """A proxy without log lines logs nothing and reports itself disabled."""
    sink = LogSink(())
    sink.session("x")
    sink.event("y", "emerg")
    assert not sink.enabled and sink.sent == 0 and sink.dropped == 0


def test_default_format_is_haproxy_local(pipe: Tuple[int, int]) -> None:
    """An empty format is HAProxy's default 'local' (rfc3164 without the host), also on fds."""
    r, w = pipe
    sink = make_sink(w, format="")
    sink.session("hello")
    assert read_lines(r) == ["<134>Nov 23 19:41:13 udsproxy[42]: hello"]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("raw", "hello"),
        ("short", "<6>hello"),
        ("rfc3164", "<134>Nov 23 19:41:13 localhost udsproxy[42]: hello"),
        ("rfc5424", "<134>1 2026-11-23T19:41:13.452954+00:00 - udsproxy 42 - - hello"),
    ],
)
def test_session_line_framing(pipe: Tuple[int, int], fmt: str, expected: str) -> None:
    """Session lines go out at level info in the target's format, one LF-terminated line."""
    r, w = pipe
    make_sink(w, format=fmt).session("hello")
    assert read_lines(r) == [expected]


def test_max_level_drops_less_severe(pipe: Tuple[int, int]) -> None:
    """With 'local0 notice', info sessions are not sent but warning and alert events are."""
    r, w = pipe
    sink = make_sink(w, format="short", level="notice")
    sink.session("session")
    sink.event("debug", "debug")
    sink.event("stopping", "warning")
    sink.event("down", "alert")
    sink.event("up", "notice")
    assert read_lines(r) == ["<4>stopping", "<1>down", "<5>up"]
    # Filtered lines are neither sent nor dropped: they were never meant for this target.
    assert sink.sent == 3 and sink.dropped == 0


def test_min_level_caps_severity(pipe: Tuple[int, int]) -> None:
    """minlevel caps more severe messages to itself instead of dropping them (HAProxy)."""
    r, w = pipe
    sink = make_sink(w, format="short", level="info", min_level="err")
    sink.event("emerg", "emerg")
    sink.event("warn", "warning")
    sink.session("info")
    assert read_lines(r) == ["<3>emerg", "<4>warn", "<6>info"]


def test_facility_in_priority(pipe: Tuple[int, int]) -> None:
    """The target's facility goes into PRI: daemon.err is 27."""
    r, w = pipe
    make_sink(w, format="priority", facility="daemon").event("x", "err")
    assert read_lines(r) == ["<27>x"]


def test_fd_lines_truncated_like_haproxy(pipe: Tuple[int, int]) -> None:
    """Over an fd a long line keeps 1023 bytes before its LF (HAProxy 2.6 with len 1024)."""
    r, w = pipe
    make_sink(w, format="raw").session("a" * 3000)
    data = os.read(r, 1 << 16)
    assert data == b"a" * 1023 + b"\n"


def test_unknown_format_or_level_rejected(pipe: Tuple[int, int]) -> None:
    """Bad formats fail when the sink is built; bad levels when an event is sent."""
    _, w = pipe
    with pytest.raises(ValueError):
        make_sink(w, format="json")
    with pytest.raises(ValueError):
        make_sink(w).event("x", "warn")


def test_repr_names_targets(pipe: Tuple[int, int]) -> None:
    """repr() shows where the sink writes, for debugging."""
    _, w = pipe
    assert repr(make_sink(w)) == f"<LogSink fd@{w}>"
    assert repr(LogSink()) == "<LogSink off>"


# -- the twistd bridge ----------------------------------------------------------------------


def collecting_logger(seen: List[dict]) -> Logger:
    """A twisted Logger whose events are appended to ``seen``."""
    return Logger(namespace="test", observer=cast(ILogObserver, seen.append))


def test_log_event_goes_to_twisted_and_sink(pipe: Tuple[int, int]) -> None:
    """log_event writes to twisted.logger at the mapped level and to the sink."""
    r, w = pipe
    seen: List[dict] = []
    logger = collecting_logger(seen)
    log_event("Server b/a is DOWN {not a field}", "alert", make_sink(w, format="short"), logger)
    assert read_lines(r) == ["<1>Server b/a is DOWN {not a field}"]
    (event,) = seen
    assert event["log_level"] is LogLevel.critical
    assert event["text"] == "Server b/a is DOWN {not a field}"
    assert event["syslog_level"] == "alert"


@pytest.mark.parametrize(
    ("level", "expected"),
    [("warning", LogLevel.warn), ("notice", LogLevel.info), ("err", LogLevel.error)],
)
def test_log_event_without_sink(level: str, expected: LogLevel) -> None:
    """Without a sink only twistd's log gets the event."""
    seen: List[dict] = []
    log_event("Proxy fe started.", level, logger=collecting_logger(seen))
    assert [e["log_level"] for e in seen] == [expected]


def test_log_event_rejects_unknown_level() -> None:
    """An unknown level is an error before anything is logged."""
    seen: List[dict] = []
    with pytest.raises(ValueError):
        log_event("x", "warn", logger=collecting_logger(seen))
    assert seen == []
