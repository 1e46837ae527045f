"""Hostile clients with real sockets: one client cannot pin memory or starve the others."""

from __future__ import annotations

import re
import socket
import threading
import time

from tests.integration.backends import HTTPClient
from tests.integration.proxy import StartProxy


def config(sockdir: str) -> str:
    return f"""
    defaults
        mode http
        timeout connect 2s
        timeout client 30s
        timeout server 30s
    frontend fe
        bind unix@{sockdir}/fe.sock
        default_backend be
    backend be
        server a {sockdir}/a.sock
        server b {sockdir}/b.sock
    """


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_client_that_never_reads_is_stopped_and_others_are_served(
    sockdir, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """Pipelined GETs from a client that never reads: reading it stops, memory stays flat,
    another client is answered at once meanwhile (HAProxy stops after ~4.5 MB here)."""
    start_backend("a", f"{sockdir}/a.sock")
    start_backend("b", f"{sockdir}/b.sock")
    fe = f"{sockdir}/fe.sock"
    proxy = start_proxy(config(sockdir), ready=fe)
    with HTTPClient(fe) as warm:
        warm.request("GET", "/")
    before = rss_kib(proxy.proc.pid)
    hostile = socket.socket(socket.AF_UNIX)
    hostile.connect(fe)
    hostile.setblocking(False)
    burst = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 200
    accepted = 0
    stalled_since = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            accepted += hostile.send(burst)
            stalled_since = None
        except BlockingIOError:
            # Our writes stop being taken once the proxy stops reading: wait until that
            # has lasted a while (the kernel buffers are full, not just busy).
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 1.0:
                break
            time.sleep(0.01)
    assert stalled_since is not None, f"the proxy read {accepted} bytes and kept reading"
    assert accepted < 8 * 1024 * 1024
    with HTTPClient(fe) as other:
        for _ in range(5):
            started = time.monotonic()
            assert other.request("GET", "/").status == 200
            assert time.monotonic() - started < 1.0
    assert rss_kib(proxy.proc.pid) - before < 20 * 1024
    hostile.close()


def test_twenty_thousand_pipelined_requests_are_answered_in_order(
    sockdir, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """20,000 requests written at once on one connection: every answer, in request order."""
    start_backend("a", f"{sockdir}/a.sock")
    start_backend("b", f"{sockdir}/b.sock")
    fe = f"{sockdir}/fe.sock"
    start_proxy(config(sockdir), ready=fe)
    count = 20000
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(fe)
    sock.settimeout(60)
    wire = b"".join(b"GET /headers?i=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(count))
    writer = threading.Thread(target=sock.sendall, args=(wire,))
    writer.start()
    received = bytearray()
    last = b'"target": "/headers?i=%d"' % (count - 1)
    while not (received.endswith(b"}\n") and last in received[-4096:]):
        data = sock.recv(1 << 20)
        assert data, f"closed after {received.count(b'HTTP/1.1 ')} responses"
        received += data
    writer.join()
    sock.close()
    assert received.count(b"HTTP/1.1 200 OK\r\n") == count
    targets = re.findall(rb'"target": "/headers\?i=(\d+)"', received)
    assert [int(t) for t in targets] == list(range(count))
