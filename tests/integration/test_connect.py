"""connect() against real sockets: success, each classified failure, timeout and cancel."""

from __future__ import annotations

import errno
import os
import socket
import uuid

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.defer import CancelledError, inlineCallbacks
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock

from tests.integration.conftest_net import (
    Recorder,
    RecordingFactory,
    make_sockdir,
    open_fds,
    run_forked,
    wait_for,
)
from udsproxy.config.model import ABNS, ABNSZ, FD, IPV4, SUN_PATH_MAX, UNIX, Address
from udsproxy.net.connect import ConnectError, connect


@pytest.fixture
def sockdir():
    yield from make_sockdir()


def unix(path: str) -> Address:
    return Address(UNIX, path=path)


def listening_unix(path: str, backlog: int = 5) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(backlog)
    return s


@inlineCallbacks
def expect_error(address: Address, kind: str, timeout_ms=None) -> ConnectError:
    """Run connect() and return the ConnectError it must fail with."""
    try:
        yield connect(reactor, address, RecordingFactory(), timeout_ms)
    except ConnectError as e:
        assert e.kind == kind, str(e)
        assert e.address == address
        return e
    raise AssertionError("connect() succeeded")


def failure_in_child(address: Address) -> dict:
    """connect() to ``address`` with a memory reactor (unix connects finish synchronously)."""
    result: dict = {}
    d = connect(MemoryReactorClock(), address, RecordingFactory(), None)
    d.addCallbacks(lambda p: result.update(ok=True), lambda f: result.update(f=f))
    err = result["f"].value
    return {"kind": err.kind, "errno": err.errno, "message": str(err)}


@inlineCallbacks
def read_some(conn: socket.socket):
    """Wait (reactor running) until ``conn`` has data, then return it."""
    conn.setblocking(False)
    chunks = []

    def ready() -> bool:
        try:
            chunks.append(conn.recv(65536))
        except BlockingIOError:
            return False
        return True

    yield wait_for(ready)
    return b"".join(chunks)


# --- success --------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_unix_connect_returns_the_connected_protocol(sockdir):
    """The Deferred fires with the factory's protocol, connectionMade done, peer = the path."""
    path = os.path.join(sockdir, "s.sock")
    server = listening_unix(path)
    factory = RecordingFactory()
    try:
        proto = yield connect(reactor, unix(path), factory, 1000)
        assert proto is factory.built[0]
        assert proto.made
        assert proto.transport.getPeer() == UNIXAddress(path)
        conn, _ = server.accept()
        proto.transport.write(b"hello")
        got = yield read_some(conn)
        assert got == b"hello"
        conn.sendall(b"back")
        yield wait_for(lambda: proto.data == b"back")
        conn.close()
        yield wait_for(lambda: proto.lost)
    finally:
        server.close()


@pytest_twisted.inlineCallbacks
def test_plain_callable_factory(sockdir):
    """A zero-argument callable works as the protocol factory."""
    path = os.path.join(sockdir, "s.sock")
    server = listening_unix(path)
    try:
        proto = yield connect(reactor, unix(path), Recorder, None)
        assert isinstance(proto, Recorder) and proto.made
        proto.transport.loseConnection()
    finally:
        server.close()


@pytest_twisted.inlineCallbacks
def test_tcp_connect(sockdir):
    """TCP connects (EINPROGRESS then writable) and reports IPv4 addresses."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    port = server.getsockname()[1]
    try:
        proto = yield connect(reactor, Address(IPV4, host="127.0.0.1", port=port), Recorder, 1000)
        assert proto.made
        assert proto.transport.getPeer() == IPv4Address("TCP", "127.0.0.1", port)
        proto.transport.loseConnection()
    finally:
        server.close()


@pytest_twisted.inlineCallbacks
def test_abstract_forms_must_match():
    """abns@ reaches a padded name, abnsz@ a tight one; a mismatch is refused with a hint."""
    name = f"udsp-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    server = socket.socket(socket.AF_UNIX)
    server.bind(b"\0" + name.encode().ljust(SUN_PATH_MAX - 1, b"\0"))
    server.listen(5)
    try:
        proto = yield connect(reactor, Address(ABNS, path=name), Recorder, None)
        proto.transport.loseConnection()
        err = yield expect_error(Address(ABNSZ, path=name), "ECONNREFUSED")
        assert "abns@" in str(err)
    finally:
        server.close()


# --- classified failures --------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_enoent_file_and_directory(sockdir):
    """A missing socket file or directory is ENOENT and named."""
    path = os.path.join(sockdir, "none.sock")
    err = yield expect_error(unix(path), "ENOENT")
    assert err.errno == errno.ENOENT
    assert str(err) == (
        f"connect to unix@{path}: no such file or directory (socket file {path} does not exist)"
    )
    err = yield expect_error(unix(os.path.join(sockdir, "nodir", "a.sock")), "ENOENT")
    assert f"directory {sockdir}/nodir does not exist" in str(err)


@pytest_twisted.inlineCallbacks
def test_econnrefused_stale_socket(sockdir):
    """A socket file whose listener closed is ECONNREFUSED."""
    path = os.path.join(sockdir, "s.sock")
    listening_unix(path).close()
    err = yield expect_error(unix(path), "ECONNREFUSED")
    assert "no process is listening" in str(err)


@pytest_twisted.inlineCallbacks
def test_eagain_full_backlog(sockdir):
    """A listener whose accept queue is full gives EAGAIN, not a vague 'closed cleanly'."""
    path = os.path.join(sockdir, "s.sock")
    server = listening_unix(path, backlog=0)
    fillers = []
    # Fill the queue until the kernel says EAGAIN (PyPy turns listen(0) into listen(1)).
    while len(fillers) < 10:
        filler = socket.socket(socket.AF_UNIX)
        filler.setblocking(False)
        fillers.append(filler)
        if filler.connect_ex(path) == errno.EAGAIN:
            break
    try:
        err = yield expect_error(unix(path), "EAGAIN")
        assert err.errno == errno.EAGAIN
        assert "backlog is full" in str(err)
    finally:
        close_all(server, fillers)


@pytest_twisted.inlineCallbacks
def test_enotsock_regular_file(sockdir):
    """A regular file is ENOTSOCK (Linux itself says ECONNREFUSED)."""
    path = os.path.join(sockdir, "file")
    with open(path, "w"):
        pass
    err = yield expect_error(unix(path), "ENOTSOCK")
    assert err.errno == errno.ENOTSOCK
    assert f"{path} is a regular file" in str(err)


def test_eacces_directory_without_search_permission(sockdir):
    """EACCES names the directory lacking search permission (checked as a non-root user)."""
    sub = os.path.join(sockdir, "private")
    os.mkdir(sub)
    path = os.path.join(sub, "s.sock")
    server = listening_unix(path)
    os.chmod(sub, 0o666)  # read/write but no search, for owner and others alike
    try:
        result = run_forked(lambda: failure_in_child(unix(path)))
    finally:
        server.close()
    assert result["kind"] == "EACCES"
    assert result["message"].startswith(
        f"connect to unix@{path}: permission denied [EACCES] "
        f"(search permission missing on directory {sub} (owner root, group root, mode 0666)"
        " for user nobody (uid 65534, groups nogroup); fix: "
    )


def test_eacces_socket_without_write_permission(sockdir):
    """EACCES names the socket file lacking write permission (checked as a non-root user)."""
    path = os.path.join(sockdir, "s.sock")
    server = listening_unix(path)
    os.chmod(path, 0o555)
    try:
        result = run_forked(lambda: failure_in_child(unix(path)))
    finally:
        server.close()
    assert result["kind"] == "EACCES"
    assert result["errno"] == errno.EACCES
    assert (
        f"(no write permission on socket file {path} (owner root, group root, mode 0555) "
        "for user nobody (uid 65534, groups nogroup); "
        "fix: add user nobody to group root and set the server's socket mode to 0660)"
    ) in result["message"]


@pytest_twisted.inlineCallbacks
def test_tcp_refused():
    """A closed TCP port is ECONNREFUSED."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    yield expect_error(Address(IPV4, host="127.0.0.1", port=port), "ECONNREFUSED", 1000)


@pytest_twisted.inlineCallbacks
def test_fd_address_cannot_be_connected():
    """An fd@ address is refused without touching the network."""
    yield expect_error(Address(FD, fd=3), "OTHER")


@pytest_twisted.inlineCallbacks
def test_factory_refusing_the_connection(sockdir):
    """A factory returning None fails the connect and closes the socket."""
    path = os.path.join(sockdir, "s.sock")
    server = listening_unix(path)
    try:
        with pytest.raises(ConnectError, match="refused the connection"):
            yield connect(reactor, unix(path), lambda: None, None)
        conn, _ = server.accept()
        got = yield read_some(conn)
        assert got == b""  # our side was closed
        conn.close()
    finally:
        server.close()


# --- timeout and cancel (TCP connects that stay in progress) -------------------------------


def full_tcp_listener() -> tuple:
    """A TCP listener whose accept queue is full, so further connects hang in SYN_SENT."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
        fillers.append(f)
    return server, fillers, Address(IPV4, host="127.0.0.1", port=port)


def close_all(server: socket.socket, fillers: list) -> None:
    for f in fillers:
        f.close()
    server.close()


@pytest_twisted.inlineCallbacks
def test_tcp_timeout():
    """A TCP connect in progress fails with ETIMEDOUT after timeout_ms and leaves nothing."""
    server, fillers, address = full_tcp_listener()
    before = open_fds()
    try:
        start = reactor.seconds()
        err = yield expect_error(address, "ETIMEDOUT", 100)
        assert 0.09 <= reactor.seconds() - start < 1.0
        assert "no answer within 100 ms" in str(err)
        assert err.errno == errno.ETIMEDOUT
        assert open_fds() == before
        assert not any(isinstance(w, Protocol) for w in reactor.getWriters())
    finally:
        close_all(server, fillers)


@pytest_twisted.inlineCallbacks
def test_cancel_closes_socket_and_timer():
    """Cancelling a pending connect closes the socket and cancels the timer."""
    server, fillers, address = full_tcp_listener()
    before = open_fds()
    calls_before = set(map(id, reactor.getDelayedCalls()))
    writers_before = set(reactor.getWriters())
    try:
        d = connect(reactor, address, Recorder, 5000)
        assert set(reactor.getWriters()) != writers_before
        d.cancel()
        with pytest.raises(CancelledError):
            yield d
        assert open_fds() == before
        assert set(reactor.getWriters()) == writers_before
        new_calls = [c for c in reactor.getDelayedCalls() if id(c) not in calls_before]
        assert new_calls == []
    finally:
        close_all(server, fillers)
