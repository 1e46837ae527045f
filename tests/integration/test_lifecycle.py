"""The real twistd under a process manager's signals: graceful stop, reload, sd_notify."""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest

from tests.integration.backends import HTTPClient, connect, read_until_close, wait_connectable
from tests.integration.proxy import StartProxy

HTTP_CONFIG = """
global
    {global_extra}
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend fe
    bind {sockdir}/fe.sock
    default_backend be
backend be
{servers}
"""


ADMIN = "stats socket {sockdir}/admin.sock level admin"


def stats(admin: str, command: str) -> str:
    with connect(f"unix@{admin}") as sock:
        sock.sendall(command.encode() + b"\n")
        return read_until_close(sock).decode()


def wait_server_scur(admin: str, backend: str, server: str, scur: int) -> None:
    """Poll ``show stat`` until ``backend/server`` has ``scur`` streams (a request in flight)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            answer = stats(admin, "show stat")
        except OSError:  # the stats socket is bound just after the frontend (a slow start)
            answer = ""
        for line in answer.splitlines():
            cols = line.split(",")
            if cols[:2] == [backend, server] and cols[4] == str(scur):
                return
        assert time.monotonic() < deadline, f"{backend}/{server} never had {scur} streams"
        select.select([], [], [], 0.02)


def http_config(sockdir: str, servers: str, global_extra: str = "") -> str:
    return HTTP_CONFIG.format(sockdir=sockdir, servers=servers, global_extra=global_extra)


def test_sigterm_lets_a_slow_request_finish_and_refuses_new_ones(
    sockdir: str, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM: the request in flight completes (Connection: close), new connections are
    refused, the socket file is removed and twistd exits 0."""
    start_backend("a", f"{sockdir}/a.sock")
    fe = f"{sockdir}/fe.sock"
    proxy = start_proxy(
        http_config(sockdir, f"    server a {sockdir}/a.sock", ADMIN.format(sockdir=sockdir)),
        ready=f"unix@{fe}",
    )
    idle = HTTPClient(f"unix@{fe}")
    assert idle.request("GET", "/").status == 200  # an idle keep-alive client
    with HTTPClient(f"unix@{fe}") as slow:
        slow.sock.sendall(b"GET /slow?ms=700 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_server_scur(f"{sockdir}/admin.sock", "be", "a", 1)  # in flight at the backend
        proxy.proc.send_signal(signal.SIGTERM)
        proxy.wait_log("received SIGTERM: stopping gracefully")
        assert not os.path.exists(fe)
        with pytest.raises(OSError):
            connect(f"unix@{fe}", timeout=1.0).close()
        response = slow._read_response()
        assert response.status == 200 and response.body == b"slow 700 ms\n"
        assert response.header("connection") == "close"
    assert idle.sock.recv(1) == b""  # closed by the stop while idle
    idle.close()
    assert proxy.proc.wait(10) == 0
    assert "every connection has finished: exiting" in proxy.log()


def test_second_sigterm_stops_at_once(sockdir: str, start_backend, start_proxy: StartProxy) -> None:  # type: ignore[no-untyped-def]
    """A second SIGTERM while draining exits at once, cutting the request in flight."""
    start_backend("a", f"{sockdir}/a.sock")
    fe = f"{sockdir}/fe.sock"
    proxy = start_proxy(
        http_config(sockdir, f"    server a {sockdir}/a.sock", ADMIN.format(sockdir=sockdir)),
        ready=f"unix@{fe}",
    )
    with HTTPClient(f"unix@{fe}") as slow:
        slow.sock.sendall(b"GET /slow?ms=20000 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_server_scur(f"{sockdir}/admin.sock", "be", "a", 1)
        proxy.proc.send_signal(signal.SIGTERM)
        proxy.wait_log("received SIGTERM: stopping gracefully")
        proxy.proc.send_signal(signal.SIGTERM)
        assert proxy.proc.wait(10) == 0
        # Cut: closed, or a 5xx when the server side went first during the shutdown.
        assert b"slow" not in read_until_close(slow.sock)
    assert "received SIGTERM again: stopping now, closing 1 connection(s)" in proxy.log()


def test_sd_notify_ready_and_stopping(sockdir: str, start_backend, start_proxy: StartProxy) -> None:  # type: ignore[no-untyped-def]
    """With NOTIFY_SOCKET (abstract @name): READY=1 once listening, STOPPING=1 on SIGTERM."""
    with notify_socket(sockdir) as (sd, env):
        start_backend("a", f"{sockdir}/a.sock")
        fe = f"{sockdir}/fe.sock"
        proxy = start_proxy(
            http_config(sockdir, f"    server a {sockdir}/a.sock"), ready=f"unix@{fe}", env=env
        )
        ready = sd.recv(4096).decode()
        assert ready.split("\n")[0] == "READY=1" and "STATUS=serving 1 listener(s)" in ready
        wait_connectable(f"unix@{fe}")
        proxy.proc.send_signal(signal.SIGTERM)
        assert sd.recv(4096).decode().split("\n")[0] == "STOPPING=1"
        assert proxy.proc.wait(10) == 0


class ClientLoop(threading.Thread):
    """Requests in a loop until told to stop: one keep-alive connection, or a new one each."""

    def __init__(self, address: str, keep_alive: bool) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.keep_alive = keep_alive
        self.stop = threading.Event()
        self.backends: List[str] = []
        self.failures: List[str] = []

    def run(self) -> None:
        client: Optional[HTTPClient] = None
        try:
            while not self.stop.is_set() and len(self.backends) < 5000:
                try:
                    if client is None:
                        client = HTTPClient(self.address)
                    response = client.request("GET", "/")
                    if response.status != 200:
                        self.failures.append(f"status {response.status}")
                    self.backends.append(response.header("x-backend") or "?")
                    if response.header("connection") == "close" or not self.keep_alive:
                        client.close()
                        client = None
                except Exception as exc:  # every failure counts: the test wants none
                    self.failures.append(repr(exc))
                    if client is not None:
                        client.close()
                    client = None
        finally:
            if client is not None:
                client.close()


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        select.select([], [], [], 0.02)


@contextmanager
def client_loops(address: str, *keep_alive: bool) -> Iterator[List[ClientLoop]]:
    """One ClientLoop per flag, serving (20 answers each) when the block starts; stopped
    and joined when it ends, pass or fail."""
    loops = [ClientLoop(address, keep) for keep in keep_alive]
    for loop in loops:
        loop.start()
    try:
        wait_for(lambda: all(len(loop.backends) > 20 for loop in loops), "no traffic")
        yield loops
    finally:
        for loop in loops:
            loop.stop.set()
        for loop in loops:
            loop.join(10)


def wait_answers(loops: List[ClientLoop], test: Callable[[List[str]], bool], what: str) -> None:
    """Wait until the answers each loop gets from now on pass ``test`` (their X-Backend)."""
    seen = [len(loop.backends) for loop in loops]
    wait_for(lambda: all(test(lp.backends[n:]) for lp, n in zip(loops, seen)), what)


@contextmanager
def notify_socket(sockdir: str) -> Iterator[Tuple[socket.socket, Dict[str, str]]]:
    """A datagram socket standing in for systemd's, and the NOTIFY_SOCKET (abstract) naming it."""
    name = f"udsproxy-test-{os.getpid()}-{os.path.basename(sockdir)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sd:
        sd.bind(b"\0" + name.encode())
        sd.settimeout(10)
        yield sd, {"NOTIFY_SOCKET": "@" + name}


def test_reload_adding_a_server_refuses_nothing(
    sockdir: str, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """SIGHUP during sequential and concurrent keep-alive client loops: zero failed
    requests, the new server gets traffic; an invalid reload keeps the old config."""
    start_backend("a", f"{sockdir}/a.sock")
    start_backend("b", f"{sockdir}/b.sock")
    fe = f"{sockdir}/fe.sock"
    one = f"    server a {sockdir}/a.sock"
    proxy = start_proxy(http_config(sockdir, one), ready=f"unix@{fe}")
    with client_loops(f"unix@{fe}", False, True, True) as loops:
        with open(proxy.cfg_path, "w") as f:
            f.write("backend broken\n    balanse roundrobin\n")
        proxy.proc.send_signal(signal.SIGHUP)
        proxy.wait_log("reload failed (1 error); still serving generation 1")
        with open(proxy.cfg_path, "w") as f:
            f.write(http_config(sockdir, f"{one}\n    server b {sockdir}/b.sock"))
        proxy.proc.send_signal(signal.SIGHUP)
        proxy.wait_log("reloaded")
        wait_answers(
            loops, lambda got: "b" in got, "the new server got no traffic from every client"
        )
    assert [loop.failures for loop in loops] == [[], [], []]
    log = proxy.log()
    assert "received SIGHUP: reloading the configuration" in log
    assert "'balanse'" in log
    assert "servers: 1 kept, 1 new, 0 removed or changed" in log


def test_reload_changing_a_sockets_mode_and_owner_refuses_nothing(
    sockdir: str, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """Three reloads change the frontend socket's mode and owner under connection-per-request
    and keep-alive client loops: zero failed requests; the file ends with the last mode and
    owner, no temporary file is left, and the log says what was replaced."""
    start_backend("a", f"{sockdir}/a.sock")
    fe = f"{sockdir}/fe.sock"
    base = http_config(sockdir, f"    server a {sockdir}/a.sock")
    line = f"bind {fe}"
    root = os.geteuid() == 0
    steps = ["mode 600", "mode 666", "mode 640 gid 65534" if root else "mode 640"]
    if root:
        steps.append("mode 660 uid 65534 gid 65534")
    proxy = start_proxy(base.replace(line, f"{line} mode 644"), ready=f"unix@{fe}")
    with client_loops(f"unix@{fe}", False, False, True) as loops:
        for number, options in enumerate(steps, start=2):
            with open(proxy.cfg_path, "w") as f:
                f.write(base.replace(line, f"{line} {options}"))
            proxy.proc.send_signal(signal.SIGHUP)
            proxy.wait_log(f"generation {number}; listeners: 0 new, 1 rebound, 0 closed")
            wait_answers(loops, lambda got: len(got) > 20, "no traffic after the reload")
            wait_for(  # the old socket's drain, under the loops
                lambda n=number - 1: proxy.log().count("the replaced socket is closed") == n,
                "the replaced socket was never closed",
            )
    assert [loop.failures for loop in loops] == [[], [], []]
    st = os.stat(fe)
    if root:
        assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o660, 65534, 65534)
    else:
        assert st.st_mode & 0o777 == 0o640
    assert sorted(n for n in os.listdir(sockdir) if n.endswith(".tmp")) == []
    last = "owner 65534 group 65534 mode 0660" if root else "mode 0640"
    assert f"frontend fe: unix@{fe} replaced by a new socket ({last})" in proxy.log()


def free_privileged_port() -> Optional[int]:
    """A TCP port below 1024 that an unprivileged process may not bind and nothing uses."""
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            unprivileged_from = int(f.read())
    except (OSError, ValueError):
        return None
    for port in range(min(unprivileged_from, 1024) - 1, 600, -1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return None


@pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: the proxy starts as root, drops to nobody"
)
def test_a_reload_needing_a_lost_privilege_is_refused_whole(
    sockdir: str, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """After dropping to user nobody, a reload that adds a port below 1024, a socket in a
    directory only root may write, a new mode for a socket there and a server is refused
    as a whole, naming each listener: nothing of it is bound, changed or added, the old config serves on (zero failed
    requests), sd_notify STATUS says why, then READY=1; a later valid reload works."""
    pwd = pytest.importorskip("pwd")
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    port = free_privileged_port()
    if port is None:
        pytest.skip("no port below 1024 needs a privilege here (ip_unprivileged_port_start)")
    os.chmod(sockdir, 0o755)  # root's: nobody may read and search it, not create files
    for name in ("a", "b"):
        start_backend(name, f"{sockdir}/{name}.sock")
        os.chmod(f"{sockdir}/{name}.sock", 0o666)  # nobody connects to the servers
    fe = f"{sockdir}/fe.sock"
    drop = "user nobody\n    group nogroup"
    one = f"    server a {sockdir}/a.sock"
    with notify_socket(sockdir) as (sd, env):
        proxy = start_proxy(http_config(sockdir, one, drop), ready=f"unix@{fe}", env=env)
        assert sd.recv(4096).decode().startswith("READY=1")
        proxy.wait_log("dropped privileges to uid=65534")
        mode_before = os.stat(fe).st_mode & 0o777
        with client_loops(f"unix@{fe}", False, True) as loops:
            needs_root = http_config(
                sockdir, f"{one}\n    server b {sockdir}/b.sock", drop
            ).replace(
                f"bind {fe}",
                f"bind {fe} mode 600\n    bind 127.0.0.1:{port}\n    bind {sockdir}/new.sock",
            )
            with open(proxy.cfg_path, "w") as f:
                f.write(needs_root)
            proxy.proc.send_signal(signal.SIGHUP)
            assert sd.recv(4096).decode().startswith("RELOADING=1\nMONOTONIC_USEC=")
            status = sd.recv(4096).decode()
            assert status.startswith(
                "STATUS=reload failed (3 errors); still serving generation 1: frontend fe: "
                f"cannot bind unix@{fe}: permission denied (no write permission on directory"
            ), status
            assert sd.recv(4096).decode() == "READY=1"
            log = proxy.wait_log("reload failed (3 errors); still serving generation 1")
            assert (
                f"reload failed: frontend fe: cannot bind 127.0.0.1:{port}: "
                "permission denied [EACCES]; ports below 1024 need root" in log
            )
            for path in (fe, f"{sockdir}/new.sock"):
                assert f"reload failed: frontend fe: cannot bind unix@{path}: permission " in log
            assert sorted(n for n in os.listdir(sockdir) if n.startswith(("new.", "fe."))) == [
                "fe.sock"
            ]
            assert os.stat(fe).st_mode & 0o777 == mode_before  # the old socket, untouched
            wait_answers(loops, lambda got: len(got) > 20, "the old config stopped serving")
            assert all("b" not in loop.backends for loop in loops)  # nothing of it applied
            with open(proxy.cfg_path, "w") as f:
                f.write(http_config(sockdir, f"{one}\n    server b {sockdir}/b.sock", drop))
            proxy.proc.send_signal(signal.SIGHUP)
            assert sd.recv(4096).decode().startswith("RELOADING=1")
            assert sd.recv(4096).decode() == "READY=1\nSTATUS=generation 2 serving"
            wait_answers(loops, lambda got: "b" in got, "the valid reload was not applied")
    assert [loop.failures for loop in loops] == [[], []]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_socket_activation_adopts_inherited_sockets_and_never_unlinks_them(
    sockdir: str, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """LISTEN_FDS as systemd passes them (fd 3 on, LISTEN_PID, LISTEN_FDNAMES): one socket
    adopted by name (bind systemd@web), one by address; neither is chmod-ed nor removed."""
    start_backend("a", f"{sockdir}/a.sock")
    web, other = f"{sockdir}/web.sock", f"{sockdir}/other.sock"
    inherited = []
    for path in (web, other):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        sock.listen(16)
        os.chmod(path, 0o600)
        inherited.append(sock)
    try:
        fds = [s.fileno() for s in inherited]
        # systemd sets LISTEN_PID to the service's pid: this puts the fds at 3 and 4 and
        # execs twistd under its own pid.
        setup = (
            f"import os, sys; os.dup2({fds[0]}, 3); os.dup2({fds[1]}, 4); "
            "os.environ['LISTEN_PID'] = str(os.getpid()); os.execv(sys.executable, sys.argv[1:])"
        )
        prefix = [sys.executable, "-c", setup]
        config = http_config(sockdir, f"    server a {sockdir}/a.sock").replace(
            f"bind {sockdir}/fe.sock", f"bind systemd@web\n    bind {other} mode 666"
        )
        proxy = start_proxy(
            config,
            prefix=prefix,
            env={"LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:other"},
            pass_fds=fds,
        )
        # (The sockets accept before the proxy runs: their backlog is ours.)
        proxy.wait_log(f"listening on unix@{other}")
        for path in (web, other):
            with HTTPClient(f"unix@{path}") as client:
                assert client.request("GET", "/").header("x-backend") == "a"
        assert os.stat(other).st_mode & 0o777 == 0o600  # not chmod-ed to the bind's 666
        proxy.proc.send_signal(signal.SIGTERM)
        assert proxy.proc.wait(10) == 0
        assert os.path.exists(web) and os.path.exists(other)
    finally:
        for sock in inherited:
            sock.close()


def test_reload_and_soft_stop_signals_let_requests_in_flight_finish(
    sockdir: str, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """logrotate's SIGHUP and haproxy.service's SIGUSR2 reload while a request is in flight,
    which finishes, and the proxy keeps serving; SIGUSR1 in the foreground is a soft stop:
    the request in flight finishes, then exit 0 with the socket files and pid file gone."""
    start_backend("a", f"{sockdir}/a.sock")
    fe, admin, pidfile = f"{sockdir}/fe.sock", f"{sockdir}/admin.sock", f"{sockdir}/u.pid"
    proxy = start_proxy(
        http_config(sockdir, f"    server a {sockdir}/a.sock", ADMIN.format(sockdir=sockdir)),
        ready=f"unix@{fe}",
        twistd_args=["-n", f"--pidfile={pidfile}"],
    )
    assert os.path.exists(pidfile)
    for number, signum in enumerate((signal.SIGHUP, signal.SIGUSR2), start=2):
        with HTTPClient(f"unix@{fe}") as slow:
            slow.sock.sendall(b"GET /slow?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_server_scur(admin, "be", "a", 1)
            proxy.proc.send_signal(signum)
            proxy.wait_log(f"received {signum.name}: reloading the configuration")
            proxy.wait_log(f"generation {number};")
            response = slow._read_response()
            assert response.status == 200 and response.body == b"slow 500 ms\n"
        assert proxy.proc.poll() is None
        with HTTPClient(f"unix@{fe}") as client:
            assert client.request("GET", "/").status == 200
    with HTTPClient(f"unix@{fe}") as slow:
        slow.sock.sendall(b"GET /slow?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_server_scur(admin, "be", "a", 1)
        proxy.proc.send_signal(signal.SIGUSR1)
        proxy.wait_log("received SIGUSR1: stopping gracefully")
        response = slow._read_response()
        assert response.status == 200 and response.body == b"slow 500 ms\n"
        assert response.header("connection") == "close"
    assert proxy.proc.wait(10) == 0
    assert "every connection has finished: exiting" in proxy.log()
    assert not any(os.path.exists(path) for path in (fe, admin, pidfile))
