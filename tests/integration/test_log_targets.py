"""LogSink on real sockets: unix datagram syslog, UDP syslog and pipes, including the drop paths.

Every receiver is a plain socket with a short timeout, bound in a temp dir or on 127.0.0.1:0,
and every test closes what it opened. None of them needs the reactor: sends never block.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from datetime import timezone
from pathlib import Path
from typing import Iterator, List

import pytest

from udsproxy.config.model import LogTarget
from udsproxy.log import LogSink

WHEN = 1795462873.452954  # 2026-11-23T19:41:13.452954Z


def sink_for(*targets: LogTarget) -> LogSink:
    """A sink with a fixed clock, zone, tag and pid."""
    return LogSink(targets, clock=lambda: WHEN, tz=timezone.utc, tag="udsproxy", pid=7)


def unix_receiver(path: Path) -> socket.socket:
    """A fake syslogd: a unix datagram socket bound at ``path``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    return sock


def drain(sock: socket.socket) -> List[bytes]:
    """Every datagram queued on ``sock`` right now."""
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(1 << 16))
    except BlockingIOError:
        return out
    finally:
        sock.settimeout(2)


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short temp dir: sun_path is limited to 108 bytes."""
    with tempfile.TemporaryDirectory(prefix="udslog") as d:
        yield Path(d)


def test_unix_datagram_syslog(sock_dir: Path) -> None:
    """The default format over a unix datagram socket, one datagram per line."""
    path = sock_dir / "log"
    rx = unix_receiver(path)
    sink = sink_for(LogTarget(target=str(path), format=""))
    try:
        sink.session("unix:1 [..] fe b/a 0/0/0 0 -- 1/1/0/0/0 0/0")
        sink.event("Server b/a is DOWN", "alert")
        assert rx.recv(4096) == (
            b"<134>Nov 23 19:41:13 udsproxy[7]: unix:1 [..] fe b/a 0/0/0 0 -- 1/1/0/0/0 0/0\n"
        )
        assert rx.recv(4096) == b"<129>Nov 23 19:41:13 udsproxy[7]: Server b/a is DOWN\n"
        assert sink.sent == 2 and sink.dropped == 0
    finally:
        sink.close()
        rx.close()


def test_unix_datagram_truncated_to_len(sock_dir: Path) -> None:
    """Datagrams keep ``len`` (1024) bytes plus the LF, as HAProxy 2.6 sends them."""
    path = sock_dir / "log"
    rx = unix_receiver(path)
    sink = sink_for(LogTarget(target=f"unix@{path}", format="raw"))
    try:
        sink.session("x" * 5000)
        assert rx.recv(1 << 16) == b"x" * 1024 + b"\n"
    finally:
        sink.close()
        rx.close()


def test_unix_receiver_absent_then_appears(sock_dir: Path) -> None:
    """No receiver yet: messages are dropped and counted; once it binds, they arrive."""
    path = sock_dir / "log"
    sink = sink_for(LogTarget(target=str(path), format="raw"))
    try:
        sink.session("lost")
        assert sink.dropped == 1 and sink.sent == 0
        rx = unix_receiver(path)
        try:
            sink.session("found")
            assert rx.recv(4096) == b"found\n"
        finally:
            rx.close()
    finally:
        sink.close()


def test_unix_receiver_restart_reconnects(sock_dir: Path) -> None:
    """A restarted syslogd (new socket at the same path) gets the next message at once."""
    path = sock_dir / "log"
    rx = unix_receiver(path)
    sink = sink_for(LogTarget(target=str(path), format="raw"))
    try:
        sink.session("one")
        assert rx.recv(4096) == b"one\n"
        rx.close()
        path.unlink()
        rx = unix_receiver(path)
        sink.session("two")
        assert rx.recv(4096) == b"two\n"
        assert sink.dropped == 0
    finally:
        sink.close()
        rx.close()


def test_unix_receiver_full_drops_without_blocking(sock_dir: Path) -> None:
    """A receiver that never reads fills up; further lines are dropped, fast, and counted."""
    path = sock_dir / "log"
    rx = unix_receiver(path)
    sink = sink_for(LogTarget(target=str(path), format="raw"))
    before = LogSink.total_dropped
    try:
        start = time.monotonic()
        for i in range(500):
            sink.session(f"line {i} " + "p" * 200)
        assert time.monotonic() - start < 2
        assert sink.dropped > 0 and sink.sent + sink.dropped == 500
        assert LogSink.total_dropped - before == sink.dropped
        # What did get through is intact and in order.
        got = drain(rx)
        assert len(got) == sink.sent and got[0].startswith(b"line 0 ")
    finally:
        sink.close()
        rx.close()


def test_udp_syslog_ipv4() -> None:
    """ip:port and udp@ip:port targets send one UDP datagram per line."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    port = rx.getsockname()[1]
    sink = sink_for(
        LogTarget(target=f"127.0.0.1:{port}", facility="local1"),
        LogTarget(target=f"udp@127.0.0.1:{port}", format="rfc5424"),
    )
    try:
        sink.event("started", "notice")
        got = sorted([rx.recv(4096), rx.recv(4096)])
        assert got == [
            b"<133>1 2026-11-23T19:41:13.452954+00:00 - udsproxy 7 - - started\n",
            b"<141>Nov 23 19:41:13 udsproxy[7]: started\n",  # "local": no hostname
        ]
    finally:
        sink.close()
        rx.close()


def test_udp_syslog_ipv6() -> None:
    """ipv6@::1:port sends over IPv6."""
    try:
        rx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        rx.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    rx.settimeout(2)
    port = rx.getsockname()[1]
    sink = sink_for(LogTarget(target=f"ipv6@::1:{port}", format="short"))
    try:
        sink.session("v6")
        assert rx.recv(4096) == b"<6>v6\n"
    finally:
        sink.close()
        rx.close()


def test_fd_target_pipe() -> None:
    """fd@N writes each line to an inherited pipe."""
    r, w = os.pipe()
    sink = sink_for(LogTarget(target=f"fd@{w}", format="raw", level="info"))
    try:
        sink.session("a")
        sink.event("b", "debug")  # above the target's max level
        sink.event("c", "err")
        assert os.read(r, 4096) == b"a\nc\n"
    finally:
        sink.close()
        os.close(r)
        os.close(w)


def test_fd_target_full_pipe_drops_without_blocking() -> None:
    """A full blocking pipe does not block the sender: the line is dropped and counted."""
    r, w = os.pipe()
    try:
        # Fill the pipe, then make the write end blocking again, as stdout usually is.
        os.set_blocking(w, False)
        try:
            while True:
                os.write(w, b"z" * 4096)
        except BlockingIOError:
            pass
        os.set_blocking(w, True)
        sink = sink_for(LogTarget(target=f"fd@{w}", format="raw"))
        start = time.monotonic()
        sink.session("lost")
        assert time.monotonic() - start < 1
        assert sink.dropped == 1 and sink.sent == 0
        sink.close()
    finally:
        os.close(r)
        os.close(w)


def test_fd_target_closed_reader_drops() -> None:
    """A pipe whose reader is gone (EPIPE) drops lines instead of raising."""
    r, w = os.pipe()
    os.close(r)
    try:
        sink = sink_for(LogTarget(target=f"fd@{w}", format="raw"))
        sink.session("nobody listens")
        assert sink.dropped == 1
    finally:
        os.close(w)


def test_several_targets_filter_independently(sock_dir: Path) -> None:
    """Each target applies its own format and level, like several global log lines."""
    path = sock_dir / "log"
    rx = unix_receiver(path)
    r, w = os.pipe()
    sink = sink_for(
        LogTarget(target=str(path), format="short", level="info"),
        LogTarget(target=f"fd@{w}", format="raw", level="notice"),
    )
    try:
        sink.session("s")
        sink.event("e", "warning")
        assert drain(rx) == [b"<6>s\n", b"<4>e\n"]
        assert os.read(r, 4096) == b"e\n"
    finally:
        sink.close()
        rx.close()
        os.close(r)
        os.close(w)
