"""Hostile clients with real sockets: one client cannot pin memory or starve the others."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from typing import List

import pytest

from tests.integration.backends import HTTPClient
from tests.integration.proxy import TWISTD, StartProxy, child_env


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


def test_clients_that_flood_pipelined_requests_do_not_starve_another(
    sockdir, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """Four clients whose input is always ready (each keeps 64 pipelined GETs in flight and
    reads as fast as it can): a fifth client's requests are each answered within half a
    second meanwhile, and every flooder keeps being served (reading is fair per turn)."""
    start_backend("a", f"{sockdir}/a.sock")
    start_backend("b", f"{sockdir}/b.sock")
    fe = f"{sockdir}/fe.sock"
    start_proxy(config(sockdir), ready=fe)
    stop = threading.Event()
    answered = [0] * 4
    burst = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 64

    def flood(index: int) -> None:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(fe)
            sock.settimeout(10)
            while not stop.is_set():
                sock.sendall(burst)
                seen = 0
                while seen < 64:
                    data = sock.recv(1 << 16)
                    assert data, "a flooding client was closed"
                    seen += data.count(b"HTTP/1.1 200 ")
                answered[index] += seen

    threads = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 10
        while min(answered) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # every flooder has been answered at least once: all are on
        slowest = 0.0
        with HTTPClient(fe) as other:
            for _ in range(20):
                started = time.monotonic()
                assert other.request("GET", "/").status == 200
                slowest = max(slowest, time.monotonic() - started)
        assert slowest < 0.5, f"a request waited {slowest:.2f} s behind the flooders"
        before = list(answered)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(
            after > was for after, was in zip(answered, before)
        ):
            time.sleep(0.01)  # polled: each flooder is answered again
        assert all(after > was for after, was in zip(answered, before)), (before, answered)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)


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


class RecordingServer:
    """A unix-socket HTTP server that records every request head and answers 200 ``ok``."""

    def __init__(self, path: str, early: bool = False) -> None:
        self.early = early  # answer 413 on the head, then read the body
        self.bodies: List[int] = []  # body bytes read per request with a Content-Length
        self.heads: List[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        self.sock.listen(16)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        data = b""
        conn.settimeout(5)
        with conn:
            while True:
                while b"\r\n\r\n" not in data:
                    try:
                        chunk = conn.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    data += chunk
                head, data = data.split(b"\r\n\r\n", 1)
                self.heads.append(head)
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                if length is None:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    continue
                if self.early:
                    conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\n\r\nbig")
                left = int(length.group(1)) - len(data)
                while left > 0:
                    chunk = conn.recv(min(left, 1 << 20))
                    if not chunk:
                        return
                    left -= len(chunk)
                data = b""
                self.bodies.append(int(length.group(1)))
                if not self.early:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def close(self) -> None:
        self.sock.close()


def exchange_raw(address: str, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data``, half-close, read until the proxy closes."""
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(timeout)
    sock.connect(address)
    sock.sendall(data)
    if data.endswith(b"\r\n\r\n"):
        sock.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        out += chunk
    sock.close()
    return out


def test_framing_leftovers_as_haproxy(sockdir, start_proxy: StartProxy) -> None:  # type: ignore[no-untyped-def]
    """The HTTP/2 preface and an HTTP/0.9 line get 400 and reach no server; an HTTP/1.0
    request without Host arrives as sent; an absolute URI naming another host is a 400."""
    recorder = RecordingServer(f"{sockdir}/a.sock")
    fe = f"{sockdir}/fe.sock"
    cfg = config(sockdir).replace(f"        server b {sockdir}/b.sock\n", "")
    proxy = start_proxy(
        "global\n    log stdout format raw local0\n"
        + cfg.replace(
            "    mode http\n",
            # dontlognull: the readiness probe's silent connection is not a 400 line here.
            "    mode http\n        log global\n        option httplog\n"
            "        option dontlognull\n",
        ),
        ready=fe,
    )
    try:
        assert exchange_raw(fe, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").startswith(b"HTTP/1.1 400 ")
        started = time.monotonic()
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(5)
        sock.connect(fe)
        sock.sendall(b"GET /x\r\n")  # HTTP/0.9: no version, no blank line will follow
        assert sock.recv(65536).startswith(b"HTTP/1.1 400 ")
        assert time.monotonic() - started < 1.0
        sock.close()
        answer = exchange_raw(
            fe, b"GET http://example.com/ HTTP/1.1\r\nHost: other.example\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert recorder.heads == []
        assert exchange_raw(fe, b"GET /ten HTTP/1.0\r\n\r\n").endswith(b"ok")
        (head,) = recorder.heads
        assert head.startswith(b"GET /ten HTTP/1.0\r\n") and b"host:" not in head.lower()
        log = proxy.wait_log('"GET /ten HTTP/1.0"')
        # As HAProxy 2.6.12 logs a head its parser refuses: the HTTP/2 preface CR--, the
        # HTTP/0.9 line and the absolute URI PR-- (the client had not closed), each
        # "<BADREQ>" on the frontend, no page bytes counted.
        assert log.count(" 400 ") == 3 and log.count(" CR-- ") == 1
        # (The connection counts depend on whether the previous client's close was seen.)
        refused = r'fe/<NOSRV> -1/-1/-1/-1/0 400 0 - - PR-- \d+/\d+/0/0/0 0/0 "<BADREQ>"'
        assert len(re.findall(refused, log)) == 2, log
        assert log.count('"<BADREQ>"') == 3
    finally:
        recorder.close()


def test_a_server_answering_before_a_20mb_upload_still_gets_the_body(
    sockdir, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """The server answers 413 on the head, then reads the 20 MB body: the client gets the
    413 at once, its upload completes (no EPIPE), the server gets every byte, and the next
    request on the same client connection is answered."""
    recorder = RecordingServer(f"{sockdir}/a.sock", early=True)
    fe = f"{sockdir}/fe.sock"
    start_proxy(config(sockdir).replace(f"        server b {sockdir}/b.sock\n", ""), ready=fe)
    size = 20 * 1024 * 1024
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(30)
    sock.connect(fe)
    errors: List[BaseException] = []

    def upload() -> None:
        try:
            sock.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
            sock.sendall(b"x" * size)
        except BaseException as exc:  # noqa: B036 - reported by the test below
            errors.append(exc)

    writer = threading.Thread(target=upload)
    writer.start()
    answer = b""
    while not answer.endswith(b"big"):
        chunk = sock.recv(65536)
        assert chunk, "closed before the 413"
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ")
    writer.join(30)
    assert not errors and not writer.is_alive()
    try:
        sock.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b"ok"):
            chunk = sock.recv(65536)
            assert chunk, "closed instead of answering the next request"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert recorder.bodies == [size]
    finally:
        sock.close()
        recorder.close()


def under_nofile(limit: int) -> List[str]:
    """A command prefix with RLIMIT_NOFILE at ``limit``, soft and hard, unprivileged when we
    are root (without CAP_SYS_RESOURCE: root may raise its hard limit, as HAProxy does)."""
    prefix = ["prlimit", f"--nofile={limit}:{limit}", "--"]
    if os.geteuid() == 0:
        prefix = ["setpriv", "--bounding-set=-sys_resource"] + prefix
    return prefix


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) missing")
def test_a_maxconn_the_fd_limit_cannot_back_is_refused_at_start(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """global maxconn 1000 with 256 file descriptors: twistd exits with the numbers and the fix."""
    os.chmod(tmp_path, 0o755)
    name = f"udsp-{os.getpid()}-{time.monotonic_ns()}"
    cfg = tmp_path / "fd.cfg"
    cfg.write_text(
        "global\n    maxconn 1000\ndefaults\n    mode http\n    timeout connect 1s\n"
        "    timeout client 1s\n    timeout server 1s\n"
        f"frontend fe\n    bind abns@{name}\n    default_backend be\n"
        "backend be\n    server a /nonexistent.sock\n"
    )
    os.chmod(cfg, 0o644)
    result = subprocess.run(
        under_nofile(256) + TWISTD + ["-n", "--pidfile=", "udsproxy", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
        cwd="/",
    )
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "global maxconn 1000 needs about" in out and "open-file limit is 256" in out
    assert "ulimit -n" in out


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) missing")
def test_four_hundred_clients_under_256_fds_all_get_answers(
    sockdir, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """ulimit -n 256, no maxconn, 400 clients at once: maxconn is derived from the limit,
    the others wait in the backlog, and every request is answered 200 (none 503/EMFILE)."""
    start_backend("a", f"{sockdir}/a.sock")
    start_backend("b", f"{sockdir}/b.sock")
    fe = f"{sockdir}/fe.sock"
    proxy = start_proxy(
        "global\n    log stdout format raw local0\n" + config(sockdir),
        ready=fe,
        prefix=["prlimit", "--nofile=256:256", "--"],
    )
    log = proxy.wait_log("global maxconn")
    assert "derived from the open-file limit 256" in log
    clients = []
    for _ in range(400):
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(30)
        sock.connect(fe)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        clients.append(sock)
    statuses = []
    for sock in clients:
        answer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        statuses.append(answer[:12])
        sock.close()
    assert statuses == [b"HTTP/1.1 200"] * 400


def test_timeout_http_request_fires_on_time(
    sockdir, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """timeout http-request 1s against a head that never completes: 408 within 100 ms of it
    (HAProxy: 1.00 s), even with a 30 s client timeout making the check period long."""
    start_backend("a", f"{sockdir}/a.sock")
    fe = f"{sockdir}/fe.sock"
    cfg = config(sockdir).replace(f"        server b {sockdir}/b.sock\n", "")
    start_proxy(
        cfg.replace("timeout client 30s", "timeout client 30s\n        timeout http-request 1s"),
        ready=fe,
    )
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(5)
    sock.connect(fe)
    started = time.monotonic()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    answer = sock.recv(65536)
    elapsed = time.monotonic() - started
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert 1.0 <= elapsed < 1.1, elapsed
