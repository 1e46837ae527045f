"""TCP mode end to end: real twistd, real backends on socket files, real clients."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import threading
import time

import pytest

from tests.integration.backends import connect, free_port, read_until_close, recv_line

TIMEOUTS = """
    defaults
        mode tcp
        log global
        option tcplog
        timeout connect 1s
        timeout client 10s
        timeout server 10s
"""


def names_over(address: str, count: int) -> list[str]:
    """Open ``count`` connections; each tcp-name backend answers its name first."""
    names = []
    for _ in range(count):
        with connect(address) as sock:
            names.append(recv_line(sock).decode().strip())
    return names


def test_unix_frontend_balances_each_connection(sockdir, start_backend, start_proxy) -> None:  # type: ignore[no-untyped-def]
    """roundrobin over three unix backends: six connections hit each backend twice, in turns."""
    for name in ("a", "b", "c"):
        start_backend(name, f"{sockdir}/{name}.sock", mode="tcp-name")
    fe = f"unix@{sockdir}/fe.sock"
    start_proxy(
        f"""
        global
            log stdout format raw local0
        {TIMEOUTS}
        frontend fe
            bind {fe} mode 600
            default_backend be
        backend be
            server a {sockdir}/a.sock
            server b {sockdir}/b.sock
            server c {sockdir}/c.sock
        """,
        ready=fe,
    )
    names = names_over(fe, 6)
    assert sorted(names) == ["a", "a", "b", "b", "c", "c"]
    assert names[:3] == names[3:]
    assert oct(os.stat(f"{sockdir}/fe.sock").st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("kind", ["abns", "abnsz", "tcp"])
def test_binary_data_both_ways(kind: str, sockdir, start_backend, start_proxy) -> None:  # type: ignore[no-untyped-def]
    """All 256 byte values cross abns, abnsz and TCP frontends to a unix backend and back."""
    start_backend("echo", f"{sockdir}/echo.sock", mode="tcp-echo")
    fe = {
        "abns": f"abns@udsp-test-{os.getpid()}",
        "abnsz": f"abnsz@udsp-test-{os.getpid()}",
        "tcp": f"127.0.0.1:{free_port()}",
    }[kind]
    start_proxy(
        f"""
        {TIMEOUTS}
        listen l
            bind {fe}
            server echo {sockdir}/echo.sock
        """,
        ready=fe,
    )
    payload = bytes(range(256)) * 4
    with connect(fe) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        assert read_until_close(sock) == payload


def test_large_transfer_and_half_close(sockdir, start_backend, start_proxy) -> None:  # type: ignore[no-untyped-def]
    """8 MiB through an echo server arrives intact (sha256); the client's FIN reaches the server
    and the echo keeps flowing back after it; with both FINs the session is over, so a
    graceful stop has nothing to wait for."""
    start_backend("echo", f"{sockdir}/echo.sock", mode="tcp-echo")
    fe = f"unix@{sockdir}/fe.sock"
    proxy = start_proxy(
        f"{TIMEOUTS}\nlisten l\n    bind {fe}\n    server echo {sockdir}/echo.sock\n", ready=fe
    )
    data = os.urandom(8 * 1024 * 1024)
    received = bytearray()
    with connect(fe, timeout=30) as sock:

        def reader() -> None:
            received.extend(read_until_close(sock, timeout=30))

        thread = threading.Thread(target=reader)
        thread.start()
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        thread.join(35)
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(data).hexdigest()
    proxy.proc.send_signal(signal.SIGTERM)
    assert proxy.proc.wait(5) == 0  # not the 10s of 'timeout client': nothing was left open


def test_server_half_close_keeps_client_direction(sockdir, start_proxy) -> None:  # type: ignore[no-untyped-def]
    """A server that sends and shuts down its write side still receives what the client sends."""
    path = f"{sockdir}/half.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(4)
    got = bytearray()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"hello")
            conn.shutdown(socket.SHUT_WR)
            got.extend(read_until_close(conn, timeout=10))

    thread = threading.Thread(target=serve)
    thread.start()
    fe = f"unix@{sockdir}/fe.sock"
    try:
        start_proxy(f"{TIMEOUTS}\nlisten l\n    bind {fe}\n    server s {path}\n", ready=None)
        deadline = time.monotonic() + 10
        while not os.path.exists(f"{sockdir}/fe.sock") and time.monotonic() < deadline:
            time.sleep(0.02)
        with connect(fe) as sock:
            assert sock.recv(5) == b"hello"
            assert sock.recv(5) == b""  # the server's FIN arrived
            sock.sendall(b"after fin")
            sock.shutdown(socket.SHUT_WR)
            thread.join(10)
        assert bytes(got) == b"after fin"
    finally:
        listener.close()


def test_connect_errors_are_retried_then_redispatched(sockdir, start_backend, start_proxy) -> None:  # type: ignore[no-untyped-def]
    """A missing socket, a stale socket and a full backlog: with two active servers and no
    hash, option redispatch moves on after one retry (+1), as HAProxy 2.6."""
    start_backend("ok", f"{sockdir}/ok.sock", mode="tcp-name")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(f"{sockdir}/stale.sock")
    stale.close()  # the file stays, nobody listens: ECONNREFUSED
    full = socket.socket(socket.AF_UNIX)
    full.bind(f"{sockdir}/full.sock")
    full.listen(0)
    fillers = []
    try:
        for _ in range(8):  # fill the accept queue: further connects get EAGAIN
            s = socket.socket(socket.AF_UNIX)
            s.setblocking(False)
            try:
                s.connect(f"{sockdir}/full.sock")
            except BlockingIOError:
                s.close()
                break
            fillers.append(s)
        listens = "".join(
            f"""
            listen {kind}
                bind unix@{sockdir}/fe-{kind}.sock
                balance first
                server {kind} {sockdir}/{kind}.sock id 1
                server ok {sockdir}/ok.sock id 2
            """
            for kind in ("missing", "stale", "full")
        )
        proxy = start_proxy(
            f"""
            global
                log stdout format raw local0
            {TIMEOUTS}
                retries 2
                option redispatch
            {listens}
            """,
            ready=f"unix@{sockdir}/fe-full.sock",
        )
        # "first" picks the dead server; the failure goes back to balancing at once.
        for kind, errno_text in (
            ("missing", "no such file or directory"),
            ("stale", "connection refused"),
            ("full", "resource temporarily unavailable"),
        ):
            assert names_over(f"unix@{sockdir}/fe-{kind}.sock", 1) == ["ok"]
            log = proxy.wait_log(f"{kind} {kind}/ok ")
            line = [x for x in log.splitlines() if f"{kind} {kind}/ok " in x][-1]
            assert line.split()[-2].endswith("/+1"), line
            assert f"{sockdir}/{kind}.sock" in log
            assert errno_text in log, log
    finally:
        for s in fillers:
            s.close()
        full.close()


def test_all_servers_dead_closes_the_client_with_sc(sockdir, start_proxy) -> None:  # type: ignore[no-untyped-def]
    """With every connect failing, the client is closed after retries and the log says SC."""
    fe = f"unix@{sockdir}/fe.sock"
    proxy = start_proxy(
        f"""
        global
            log stdout format raw local0
        {TIMEOUTS}
        frontend fe
            bind {fe}
            default_backend be
        backend be
            server dead {sockdir}/dead.sock
        """,
        ready=fe,
    )
    with connect(fe) as sock:
        # Nothing sent: the proxy may close before a write would land (EPIPE, a flaky test).
        assert read_until_close(sock) == b""
    log = proxy.wait_log(" SC ")
    assert "be/dead" in log and "/3 " in log  # retries 3, the default


def test_maxconn_queue_and_queue_timeout(sockdir, start_backend, start_proxy) -> None:  # type: ignore[no-untyped-def]
    """maxconn 1: a second client waits, gets the slot when the first leaves, or times out (sQ);
    a client leaving the queue frees its place at once."""
    start_backend("echo", f"{sockdir}/echo.sock", mode="tcp-echo")
    fe = f"unix@{sockdir}/fe.sock"
    proxy = start_proxy(
        f"""
        global
            log stdout format raw local0
        {TIMEOUTS}
            timeout queue 400ms
        frontend fe
            bind {fe}
            default_backend be
        backend be
            server echo {sockdir}/echo.sock maxconn 1
        """,
        ready=fe,
    )
    first = connect(fe)
    first.sendall(b"1")
    assert first.recv(1) == b"1"
    # queued, then timed out
    started = time.monotonic()
    with connect(fe) as second:
        second.sendall(b"2")
        assert read_until_close(second, timeout=5) == b""
    assert time.monotonic() - started >= 0.35
    proxy.wait_log(" sQ ")
    # queued, then served when the first leaves
    third = connect(fe)
    third.sendall(b"3")
    time.sleep(0.05)
    first.close()
    assert third.recv(1) == b"3"
    # a client that leaves the queue is gone at once: the next one is served right away
    leaver = connect(fe)
    leaver.sendall(b"x")
    time.sleep(0.05)
    leaver.close()
    proxy.wait_log(" CQ ")
    third.close()
    with connect(fe) as fourth:
        fourth.sendall(b"4")
        assert fourth.recv(1) == b"4"


def test_thin_behind_a_tcp_frontend(sockdir, thin_backend, start_proxy) -> None:  # type: ignore[no-untyped-def]
    """Two real thin servers on socket files answer through a TCP frontend, one per connection."""
    thin_backend("thin0", f"{sockdir}/thin0.sock")
    thin_backend("thin1", f"{sockdir}/thin1.sock")
    port = free_port()
    fe = f"127.0.0.1:{port}"
    start_proxy(
        f"""
        {TIMEOUTS}
        frontend fe
            bind {fe}
            default_backend thins
        backend thins
            server thin0 {sockdir}/thin0.sock
            server thin1 {sockdir}/thin1.sock
        """,
        ready=fe,
    )
    seen = set()
    for _ in range(4):
        with connect(fe) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            reply = read_until_close(sock)
        assert reply.startswith(b"HTTP/1.")
        seen.add(reply.rsplit(b"hello from ", 1)[1].strip())
    assert seen == {b"thin0", b"thin1"}


def test_frontend_maxconn_pauses_accept(sockdir, start_backend, start_proxy) -> None:  # type: ignore[no-untyped-def]
    """Frontend maxconn 1: a second client waits in the backlog until the first one leaves."""
    start_backend("a", f"{sockdir}/a.sock", mode="tcp-name")
    fe = f"unix@{sockdir}/fe.sock"
    start_proxy(
        f"""
        {TIMEOUTS}
        frontend fe
            bind {fe}
            maxconn 1
            default_backend be
        backend be
            server a {sockdir}/a.sock
        """,
        ready=fe,
    )
    time.sleep(0.1)  # the readiness probe's session ends
    first = connect(fe)
    assert recv_line(first) == b"a\n"
    second = connect(fe, timeout=0.3)  # the kernel backlog takes it; the proxy does not accept
    with pytest.raises(socket.timeout):
        second.recv(1)
    first.close()
    second.settimeout(5)
    assert recv_line(second) == b"a\n"
    second.close()


@pytest.mark.skipif(os.getuid() != 0, reason="root bypasses permission checks; runs as nobody")
def test_eacces_names_the_directory_and_redispatches(sockdir, start_backend, start_proxy) -> None:  # type: ignore[no-untyped-def]
    """Running as nobody, a socket in a directory without search permission fails with EACCES
    naming that directory; redispatch serves the client from another server."""
    os.chmod(sockdir, 0o755)
    start_backend("ok", f"{sockdir}/ok.sock", mode="tcp-name")
    private = os.path.join(sockdir, "private")
    os.mkdir(private, 0o700)
    hidden = socket.socket(socket.AF_UNIX)
    hidden.bind(f"{private}/app.sock")
    hidden.listen(8)
    fe = f"unix@{sockdir}/fe.sock"
    try:
        proxy = start_proxy(
            f"""
            global
                user nobody
                log stdout format raw local0
            {TIMEOUTS}
                retries 1
                option redispatch
            listen l
                bind {fe} mode 666
                balance first
                server hidden {private}/app.sock id 1
                server ok {sockdir}/ok.sock id 2
            """,
            ready=fe,
        )
        assert names_over(fe, 1) == ["ok"]
        log = proxy.wait_log("l/ok ")
        assert "permission denied" in log.lower() and private in log
    finally:
        hidden.close()
