"""The test backends themselves: our demo backend as a process, and thin, on socket files."""

from __future__ import annotations

import hashlib
import json
import os
import select
import socket
import stat
import time

import h11
import pytest
import pytest_twisted
from twisted.internet import threads
from twisted.internet.defer import maybeDeferred

from tests.integration.backends import (
    HTTPClient,
    connect,
    http_request,
    raw_exchange,
    read_until_close,
    serialize_request,
)
from tests.integration.conftest import StartBackend, StartThin
from udsproxy.demo.backend import large_body, make_backend_service

pytestmark = pytest.mark.timeout(30)


def test_root_names_backend_and_socket_is_world_writable(
    sockdir: str, start_backend: StartBackend
) -> None:
    """``/`` answers with the backend name; the socket file is mode 0666."""
    path = os.path.join(sockdir, "b0.sock")
    backend = start_backend("b0", path)
    assert backend.address == f"unix@{path}"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
    resp = http_request(path, "GET", "/")
    assert resp.status == 200
    assert resp.body == b"hello from b0\n"
    assert resp.header("X-Backend") == "b0"


def test_keep_alive_three_requests_one_connection(
    sockdir: str, start_backend: StartBackend
) -> None:
    """Three requests reuse one connection, numbered 1..3 by the backend."""
    path = os.path.join(sockdir, "b.sock")
    start_backend("ka", path)
    with HTTPClient(path) as client:
        responses = [client.request("GET", p) for p in ("/", "/status?code=201", "/")]
    assert [r.status for r in responses] == [200, 201, 200]
    assert [r.header("X-Connection-Request") for r in responses] == ["1", "2", "3"]
    assert len({r.header("X-Connection-Id") for r in responses}) == 1


def test_pipelined_requests_answered_in_order(sockdir: str, start_backend: StartBackend) -> None:
    """Two requests in one write (the first slow) come back in request order."""
    path = os.path.join(sockdir, "b.sock")
    start_backend("pl", path)
    with HTTPClient(path) as client:
        first, second = client.pipeline(
            [("GET", "/slow?ms=100", (), b""), ("POST", "/echo", (), b"second")]
        )
    assert first.body == b"slow 100 ms\n"
    assert second.body == b"second"
    assert first.header("X-Connection-Id") == second.header("X-Connection-Id")


def test_echo_one_mebibyte_with_sha256(sockdir: str, start_backend: StartBackend) -> None:
    """A 1 MiB Content-Length body is echoed whole, with its sha256 and the raw headers."""
    path = os.path.join(sockdir, "b.sock")
    start_backend("echo", path)
    body = os.urandom(1024 * 1024)
    resp = http_request(path, "PUT", "/echo", [("X-Mixed-Case", "v")], body, timeout=15)
    assert resp.status == 200
    assert resp.body == body
    assert resp.header("X-Body-Sha256") == hashlib.sha256(body).hexdigest()
    raw = json.loads(resp.header("X-Request-Headers") or "")
    assert ["X-Mixed-Case", "v"] in raw


def test_chunked_upload(sockdir: str, start_backend: StartBackend) -> None:
    """A chunked request body is reassembled and echoed."""
    path = os.path.join(sockdir, "b.sock")
    start_backend("chunk", path)
    parts = [b"a" * 10, b"b" * 70000, b"c"]
    resp = http_request(path, "POST", "/echo", body=iter(parts))
    assert resp.body == b"".join(parts)
    raw = json.loads(resp.header("X-Request-Headers") or "")
    assert ["Transfer-Encoding", "chunked"] in raw


def test_large_and_chunked_responses(sockdir: str, start_backend: StartBackend) -> None:
    """``/large`` streams deterministic bytes; ``/chunked`` sends K chunks."""
    path = os.path.join(sockdir, "b.sock")
    start_backend("big", path)
    n = 5 * 1024 * 1024 + 7
    resp = http_request(path, "GET", f"/large?bytes={n}", timeout=15)
    assert resp.header("Content-Length") == str(n)
    assert resp.body == large_body(n)
    resp = http_request(path, "GET", "/chunked?n=4")
    assert resp.header("Transfer-Encoding") == "chunked"
    assert resp.body == b"".join(b"chunk %d\n" % i for i in range(4))


def test_close_route_closes_after_answer(sockdir: str, start_backend: StartBackend) -> None:
    """``/close`` answers with ``Connection: close`` and the backend then closes."""
    path = os.path.join(sockdir, "b.sock")
    start_backend("cl", path)
    sock = connect(path)
    try:
        sock.sendall(serialize_request("GET", "/close"))
        data = read_until_close(sock, timeout=5)
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"\r\nconnection: close" in head.lower()
    assert body == b"closing\n"


def test_die_and_partial(sockdir: str, start_backend: StartBackend) -> None:
    """``/die`` closes with no answer; ``/partial`` sends 10 of 1000 announced bytes."""
    path = os.path.join(sockdir, "b.sock")
    start_backend("bad", path)
    assert raw_exchange(path, serialize_request("GET", "/die")) == b""
    data = raw_exchange(path, serialize_request("GET", "/partial"))
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"content-length: 1000" in head.lower()
    assert body == large_body(10)


def test_tcp_echo_half_close(sockdir: str, start_backend: StartBackend) -> None:
    """tcp-echo returns everything sent before our FIN, then closes its side."""
    path = os.path.join(sockdir, "e.sock")
    start_backend("echo", path, mode="tcp-echo")
    payload = os.urandom(300_000)
    assert raw_exchange(path, payload, timeout=10, shutdown_write=True) == payload


def test_tcp_name_greets_then_echoes(sockdir: str, start_backend: StartBackend) -> None:
    """tcp-name writes its name line first, then echoes."""
    path = os.path.join(sockdir, "n.sock")
    start_backend("t1", path, mode="tcp-name")
    assert raw_exchange(path, b"ping\n", shutdown_write=True) == b"t1\nping\n"


def test_abstract_and_tcp_listeners(sockdir: str, start_backend: StartBackend) -> None:
    """One process serves a socket file, an abstract name and a TCP port."""
    path = os.path.join(sockdir, "m.sock")
    abstract = f"abnsz@udsp-test-{os.getpid()}"
    backend = start_backend("multi", [path, abstract, "ipv4@127.0.0.1:0"])
    assert backend.addresses[:2] == [f"unix@{path}", abstract]
    for address in backend.addresses:
        assert http_request(address, "GET", "/").header("X-Backend") == "multi"


def test_sigterm_removes_socket_file(sockdir: str, start_backend: StartBackend) -> None:
    """SIGTERM exits cleanly and unlinks the socket file; a stale file is replaced."""
    path = os.path.join(sockdir, "t.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)  # bound, never listening: what a killed process leaves behind
    stale.close()
    backend = start_backend("term", path)
    assert http_request(path, "GET", "/").status == 200
    assert backend.stop() == 0
    assert not os.path.exists(path)


def test_thin_starts_and_answers(sockdir: str, thin_backend: StartThin) -> None:
    """thin serves the Rack app on a socket file: ``/`` and ``/echo``."""
    path = os.path.join(sockdir, "thin.sock")
    server = thin_backend("rb0", path)
    resp = http_request(server.address, "GET", "/", timeout=10)
    assert resp.status == 200
    assert resp.body == b"hello from rb0\n"
    assert resp.header("X-Backend") == "rb0"
    resp = http_request(server.address, "POST", "/echo", body=b"ruby echo", timeout=10)
    assert resp.body == b"ruby echo"


def _rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS line")


def _wait_rss_settled(pid: int, seconds: float) -> int:
    """The largest RSS seen over ``seconds`` (the backend keeps working meanwhile)."""
    deadline = time.monotonic() + seconds
    peak = _rss_kib(pid)
    while time.monotonic() < deadline:
        select.select([], [], [], 0.05)
        peak = max(peak, _rss_kib(pid))
    return peak


def _send_until_blocked(sock: socket.socket, data: bytes, seconds: float) -> int:
    """Send without blocking for up to ``seconds``; returns how many bytes were accepted."""
    sock.setblocking(False)
    sent = 0
    deadline = time.monotonic() + seconds
    while sent < len(data) and time.monotonic() < deadline:
        try:
            sent += sock.send(data[sent : sent + 65536])
        except BlockingIOError:
            select.select([], [sock], [], max(0.0, deadline - time.monotonic()))
    return sent


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_back_pressure_on_a_client_that_does_not_read(
    sockdir: str, start_backend: StartBackend
) -> None:
    """A non-reading client of 300 MB or of a long pipeline leaves backend memory flat."""
    path = os.path.join(sockdir, "bp.sock")
    backend = start_backend("bp", path)
    http_request(path, "GET", "/")  # warm up: imports and first allocations are done
    before = _rss_kib(backend.pid)
    big = connect(path)
    pipe = connect(path)
    try:
        big.sendall(serialize_request("GET", "/large?bytes=300000000"))
        wire = serialize_request("GET", "/") * 50_000
        accepted = _send_until_blocked(pipe, wire, seconds=1.0)
        peak = _wait_rss_settled(backend.pid, 1.0)
        assert peak - before < 64 * 1024, (before, peak)
        assert accepted < len(wire)  # the backend stopped reading, so the kernel pushed back
        # The connection is still usable: read the whole body, then ask again on it.
        with HTTPClient(path) as client:
            client.sock.close()
            client.sock = big
            client.conn.send(h11.Request(method="GET", target="/large", headers=[("Host", "x")]))
            client.conn.send(h11.EndOfMessage())
            client.timeout = 20
            resp = client._read_response()
            assert len(resp.body) == 300_000_000
            assert client.request("GET", "/").header("X-Connection-Request") == "2"
    finally:
        big.close()
        pipe.close()


@pytest_twisted.ensureDeferred
async def test_in_process_service(sockdir: str) -> None:
    """``make_backend_service`` serves in this reactor and unlinks its socket on stop."""
    path = os.path.join(sockdir, "ip.sock")
    ready: list[str] = []
    svc = make_backend_service("ip", path, on_ready=ready.append)
    svc.startService()
    try:
        # The client is blocking, so it runs in a thread while the reactor serves.
        resp = await threads.deferToThread(http_request, path, "GET", "/")
    finally:
        await maybeDeferred(svc.stopService)
    assert ready == [f"unix@{path}"]
    assert resp.body == b"hello from ip\n"
    assert not os.path.exists(path)
