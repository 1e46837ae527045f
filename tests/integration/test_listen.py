"""Listening sockets on real files, abstract names, TCP ports and inherited fds."""

from __future__ import annotations

import errno
import os
import signal
import socket
import stat
import subprocess
import uuid

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.utils import getProcessOutputAndValue

from tests.integration.conftest_net import (
    NOBODY,
    RecordingFactory,
    make_sockdir,
    run_forked,
    spin,
    wait_for,
)
from udsproxy.config.model import (
    ABNS,
    ABNSZ,
    FD,
    IPV4,
    SUN_PATH_MAX,
    UNIX,
    Address,
    Bind,
    SocketPerms,
)
from udsproxy.errors import BindError
from udsproxy.net.listen import bind_listener, bind_socket, max_unix_path_len


@pytest.fixture
def sockdir():
    yield from make_sockdir()


def unix_bind(path: str, **perms: int) -> Bind:
    return Bind(Address(UNIX, path=path), SocketPerms(**perms))


def identity(path: str) -> tuple:
    st = os.lstat(path)
    return (st.st_dev, st.st_ino)


def stale_socket(path: str) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()


def client(addr: object) -> socket.socket:
    c = socket.socket(socket.AF_UNIX if not isinstance(addr, tuple) else socket.AF_INET)
    c.setblocking(False)
    err = c.connect_ex(addr)  # type: ignore[arg-type]
    if err not in (0, errno.EINPROGRESS):
        c.close()
        raise OSError(err, os.strerror(err))
    return c


def abstract_name() -> str:
    return f"udsp-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"


# --- socket files: permissions, backlog, stale/live handling ------------------------------


def test_mode_applied(sockdir):
    """``mode`` is applied to the socket file."""
    path = os.path.join(sockdir, "a.sock")
    bound = bind_socket(unix_bind(path, mode=0o660), backlog=5)
    try:
        st = os.lstat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert bound.identity == (st.st_dev, st.st_ino)
        assert os.listdir(sockdir) == ["a.sock"]  # no temporary file left behind
    finally:
        bound.sock.close()


def test_mode_unset_keeps_umask_default(sockdir):
    """Without ``mode`` the file gets 0666 & ~umask (no execute bits), as the README says."""
    path = os.path.join(sockdir, "a.sock")
    umask = os.umask(0o022)
    os.umask(umask)
    bound = bind_socket(unix_bind(path), backlog=5)
    try:
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o666 & ~umask
    finally:
        bound.sock.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_owner_and_group_applied(sockdir):
    """``uid``/``gid`` are applied to the socket file."""
    path = os.path.join(sockdir, "a.sock")
    bound = bind_socket(unix_bind(path, uid=NOBODY, gid=NOBODY, mode=0o600), backlog=5)
    try:
        st = os.lstat(path)
        assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY)
        assert stat.S_IMODE(st.st_mode) == 0o600
    finally:
        bound.sock.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_only_gid_set_keeps_uid(sockdir):
    """A gid alone changes the group and leaves the owner (chown with uid -1)."""
    path = os.path.join(sockdir, "a.sock")
    bound = bind_socket(unix_bind(path, gid=NOBODY), backlog=5)
    try:
        st = os.lstat(path)
        assert (st.st_uid, st.st_gid) == (os.geteuid(), NOBODY)
    finally:
        bound.sock.close()


def test_backlog_visible_in_ss(sockdir):
    """The configured backlog reaches listen(): ``ss -xl`` shows it as Send-Q."""
    path = os.path.join(sockdir, "a.sock")
    bound = bind_socket(unix_bind(path), backlog=7)
    try:
        # ss shows the name bound (the temporary one); match on the socket's own inode.
        sock_ino = str(os.fstat(bound.sock.fileno()).st_ino)
        out = subprocess.run(
            ["ss", "-xlnH"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
        rows = [line.split() for line in out.splitlines()]
        mine = [r for r in rows if len(r) >= 7 and r[5] == sock_ino]
        assert mine, out
        assert mine[0][1] == "LISTEN"
        assert mine[0][3] == "7"
    finally:
        bound.sock.close()


def test_stale_socket_replaced(sockdir):
    """A socket file nobody listens on is replaced."""
    path = os.path.join(sockdir, "a.sock")
    stale_socket(path)
    before = identity(path)
    bound = bind_socket(unix_bind(path), backlog=5)
    try:
        assert identity(path) != before
        assert identity(path) == bound.identity
        c = client(path)
        c.close()
    finally:
        bound.sock.close()


def test_leftover_temporary_socket_removed(sockdir):
    """A ``<path>.<pid>.tmp`` socket left by a crashed process with our pid is cleaned up."""
    path = os.path.join(sockdir, "a.sock")
    stale_socket(f"{path}.4242.tmp")
    bound = bind_socket(unix_bind(path), backlog=5, pid=4242)
    try:
        assert sorted(os.listdir(sockdir)) == ["a.sock"]
    finally:
        bound.sock.close()


def test_live_socket_refused(sockdir):
    """A socket file with a live listener is left alone and reported."""
    path = os.path.join(sockdir, "a.sock")
    live = socket.socket(socket.AF_UNIX)
    live.bind(path)
    live.listen(5)
    before = identity(path)
    try:
        with pytest.raises(BindError) as info:
            bind_socket(unix_bind(path), backlog=5)
        assert f"another process is listening on {path}" in str(info.value)
        assert info.value.errno == errno.EADDRINUSE
        assert identity(path) == before
        assert os.listdir(sockdir) == ["a.sock"]
    finally:
        live.close()


def test_live_socket_with_full_backlog_refused(sockdir):
    """A live listener whose backlog is full (probe gets EAGAIN) still counts as live."""
    path = os.path.join(sockdir, "a.sock")
    live = socket.socket(socket.AF_UNIX)
    live.bind(path)
    live.listen(0)
    filler = client(path)
    try:
        with pytest.raises(BindError, match="another process is listening"):
            bind_socket(unix_bind(path), backlog=5)
    finally:
        filler.close()
        live.close()


def test_not_a_socket_refused(sockdir):
    """A regular file at the path is never replaced."""
    path = os.path.join(sockdir, "a.sock")
    with open(path, "w") as f:
        f.write("keep me")
    with pytest.raises(BindError) as info:
        bind_socket(unix_bind(path), backlog=5)
    assert "exists and is not a socket" in str(info.value)
    assert path in str(info.value)
    with open(path) as f:
        assert f.read() == "keep me"
    assert os.listdir(sockdir) == ["a.sock"]


def test_missing_directory_named(sockdir):
    """A missing directory is named in the error, with ENOENT."""
    path = os.path.join(sockdir, "missing", "sub", "a.sock")
    with pytest.raises(BindError) as info:
        bind_socket(unix_bind(path), backlog=5)
    text = str(info.value)
    assert f"directory {sockdir}/missing does not exist" in text
    assert "ENOENT" in text
    assert info.value.errno == errno.ENOENT


def test_path_too_long(sockdir):
    """A path longer than 107 bytes minus the ``.PID.tmp`` suffix is refused with the limit."""
    pid = 12345
    limit = max_unix_path_len(pid)
    assert limit == SUN_PATH_MAX - 1 - len(".12345.tmp")
    base = os.path.join(sockdir, "")
    ok_path = base + "x" * (limit - len(base))
    long_path = ok_path + "y"
    with pytest.raises(BindError) as info:
        bind_socket(unix_bind(long_path), backlog=5, pid=pid)
    assert f"the limit is {limit}" in str(info.value)
    assert "ENAMETOOLONG" in str(info.value)
    assert os.listdir(sockdir) == []
    bound = bind_socket(unix_bind(ok_path), backlog=5, pid=pid)
    bound.sock.close()
    assert os.path.exists(ok_path)


def test_permission_denied_names_directory(sockdir):
    """Binding in a directory we cannot write says so (checked as a non-root user)."""
    target = os.path.join(sockdir, "ro")
    os.mkdir(target, 0o755)  # owned by us; the forked child is someone else when we are root

    def attempt() -> str:
        try:
            bind_socket(unix_bind(os.path.join(target, "a.sock")), backlog=5)
        except BindError as e:
            return str(e)
        return "bound"

    if os.geteuid() != 0:
        os.chmod(target, 0o555)
    text = run_forked(attempt)
    assert "EACCES" in text
    assert f"no write permission on directory {target}" in text


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a file owned by another user")
def test_stale_socket_of_another_user_in_sticky_directory(sockdir):
    """Replacing another user's stale socket in a sticky directory names the owner."""
    sticky = os.path.join(sockdir, "sticky")
    os.mkdir(sticky)
    os.chmod(sticky, 0o1777)
    path = os.path.join(sticky, "a.sock")
    stale_socket(path)
    os.chmod(path, 0o777)  # so that the probe can tell it is stale

    def attempt() -> str:
        try:
            bind_socket(unix_bind(path), backlog=5)
        except BindError as e:
            return str(e)
        return "bound"

    text = run_forked(attempt)
    assert f"{path} belongs to uid 0 in sticky directory {sticky}" in text
    assert os.listdir(sticky) == ["a.sock"]


def test_two_processes_racing_one_wins(sockdir):
    """Processes binding one path at once (free or stale): exactly one of them wins."""
    path = os.path.join(sockdir, "race.sock")
    for setup in (lambda: None, lambda: stale_socket(path)):
        if os.path.lexists(path):
            os.unlink(path)
        setup()
        go_r, go_w = os.pipe()
        hold_r, hold_w = os.pipe()
        results = []
        pids = []
        for _ in range(4):
            rfd, wfd = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                try:
                    signal.alarm(10)  # never outlive a broken parent
                    os.close(rfd)
                    os.close(go_w)
                    os.close(hold_w)  # else hold_r never sees EOF
                    os.read(go_r, 1)  # start together
                    try:
                        kept = bind_socket(unix_bind(path), backlog=5)  # noqa: F841 - keep open
                        os.write(wfd, b"won")
                    except BindError:
                        os.write(wfd, b"lost")
                    os.close(wfd)
                    os.read(hold_r, 1)  # keep the socket open until everyone reported
                finally:
                    os._exit(0)
            os.close(wfd)
            results.append(rfd)
            pids.append(pid)
        os.write(go_w, b"x" * 4)
        outcomes = []
        for rfd in results:
            outcomes.append(os.read(rfd, 10))
            os.close(rfd)
        os.close(hold_w)
        for pid in pids:
            os.waitpid(pid, 0)
        for fd in (go_r, go_w, hold_r):
            os.close(fd)
        assert sorted(outcomes) == [b"lost", b"lost", b"lost", b"won"]
        assert os.listdir(sockdir) == ["race.sock"]


# --- the Listener on the reactor ------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_unix_listener_serves_and_reports_addresses(sockdir):
    """Accepted connections get a real transport whose getHost() is the configured path."""
    path = os.path.join(sockdir, "a.sock")
    factory = RecordingFactory(greeting=b"hi")
    listener = bind_listener(unix_bind(path), factory, reactor, backlog=5)
    c = client(path)
    try:
        yield wait_for(lambda: factory.built and factory.built[0].made)
        proto = factory.built[0]
        assert proto.transport.getHost() == UNIXAddress(path)
        assert isinstance(proto.transport.getPeer(), UNIXAddress)
        assert listener.getHost() == UNIXAddress(path)
        assert factory.starts == 1
        c.sendall(b"ping")
        yield wait_for(lambda: proto.data == b"ping")
        c.setblocking(True)
        c.settimeout(2)
        assert c.recv(10) == b"hi"
    finally:
        c.close()
        yield listener.stop()
    assert factory.stops == 1
    assert not os.path.exists(path)


@pytest_twisted.inlineCallbacks
def test_stop_keeps_a_path_that_is_no_longer_ours(sockdir):
    """stop() leaves the path alone when another file has replaced our socket."""
    path = os.path.join(sockdir, "a.sock")
    listener = bind_listener(unix_bind(path), RecordingFactory(), reactor, backlog=5)
    other = os.path.join(sockdir, "other.sock")
    stale_socket(other)
    os.rename(other, path)
    theirs = identity(path)
    yield listener.stop()
    assert identity(path) == theirs


@pytest_twisted.inlineCallbacks
def test_stop_without_unlink_keeps_file(sockdir):
    """stop(unlink=False) closes the socket but leaves the (now stale) file."""
    path = os.path.join(sockdir, "a.sock")
    listener = bind_listener(unix_bind(path), RecordingFactory(), reactor, backlog=5)
    yield listener.stop(unlink=False)
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    probe = socket.socket(socket.AF_UNIX)
    assert probe.connect_ex(path) == errno.ECONNREFUSED
    probe.close()
    yield listener.stop()  # a second stop is harmless


@pytest_twisted.inlineCallbacks
def test_pause_and_resume(sockdir):
    """A paused listener accepts nothing; resume() accepts what waited in the backlog."""
    path = os.path.join(sockdir, "a.sock")
    factory = RecordingFactory()
    listener = bind_listener(unix_bind(path), factory, reactor, backlog=5)
    listener.pause()
    assert listener.paused
    c = client(path)
    try:
        yield spin(0.05)
        assert factory.built == []
        listener.resume()
        yield wait_for(lambda: len(factory.built) == 1)
    finally:
        c.close()
        yield listener.stop()


@pytest_twisted.inlineCallbacks
def test_factory_replaced(sockdir):
    """A new factory serves new connections; the old one gets doStop()."""
    path = os.path.join(sockdir, "a.sock")
    first, second = RecordingFactory(), RecordingFactory()
    listener = bind_listener(unix_bind(path), first, reactor, backlog=5)
    listener.factory = second
    assert (first.stops, second.starts) == (1, 1)
    c = client(path)
    try:
        yield wait_for(lambda: len(second.built) == 1)
        assert first.built == []
    finally:
        c.close()
        yield listener.stop()
    assert second.stops == 1


@pytest_twisted.inlineCallbacks
def test_abstract_padded_and_tight():
    """abns@ binds the NUL-padded name, abnsz@ the exact one; each reachable only that way."""
    for family in (ABNS, ABNSZ):
        name = abstract_name()
        padded = b"\0" + name.encode().ljust(SUN_PATH_MAX - 1, b"\0")
        tight = b"\0" + name.encode()
        right, wrong = (padded, tight) if family == ABNS else (tight, padded)
        factory = RecordingFactory()
        listener = bind_listener(Bind(Address(family, path=name)), factory, reactor, backlog=5)
        try:
            probe = socket.socket(socket.AF_UNIX)
            assert probe.connect_ex(wrong) == errno.ECONNREFUSED
            probe.close()
            c = client(right)
            yield wait_for(lambda f=factory: len(f.built) == 1)
            assert factory.built[0].transport.getHost() == UNIXAddress(right)
            c.close()
            with pytest.raises(BindError, match="abstract name already in use"):
                bind_socket(Bind(Address(family, path=name)), backlog=5)
        finally:
            yield listener.stop()


@pytest_twisted.inlineCallbacks
def test_abstract_padded_reachable_by_socat():
    """socat with unix-tightsocklen=0 (HAProxy-style padding) reaches an abns@ listener."""
    if not os.path.exists("/usr/bin/socat"):
        pytest.skip("socat not installed")
    name = abstract_name()
    factory = RecordingFactory(greeting=b"hello\n")
    listener = bind_listener(Bind(Address(ABNS, path=name)), factory, reactor, backlog=5)
    try:
        out, _err, code = yield getProcessOutputAndValue(
            "/usr/bin/socat",
            ["-T1", "-", f"ABSTRACT-CONNECT:{name},unix-tightsocklen=0"],
            env=os.environ,
        )
        assert code == 0
        assert out == b"hello\n"
    finally:
        yield listener.stop()


@pytest_twisted.inlineCallbacks
def test_tcp_on_ephemeral_port():
    """IPv4 on 127.0.0.1:0 listens on a real port; transports report IPv4 addresses."""
    factory = RecordingFactory()
    listener = bind_listener(
        Bind(Address(IPV4, host="127.0.0.1", port=0)), factory, reactor, backlog=5
    )
    host = listener.getHost()
    assert isinstance(host, IPv4Address) and host.port > 0
    c = client(("127.0.0.1", host.port))
    try:
        yield wait_for(lambda: len(factory.built) == 1)
        transport = factory.built[0].transport
        assert transport.getHost() == host
        assert transport.getPeer().host == "127.0.0.1"
        with pytest.raises(BindError, match="address already in use"):
            bind_socket(Bind(Address(IPV4, host="127.0.0.1", port=host.port)), backlog=5)
    finally:
        c.close()
        yield listener.stop()


@pytest_twisted.inlineCallbacks
def test_fd_adoption(sockdir):
    """fd@ adopts an inherited listening socket, serves it and never unlinks its file."""
    path = os.path.join(sockdir, "inherited.sock")
    parent = socket.socket(socket.AF_UNIX)
    parent.bind(path)
    parent.listen(5)
    fd = os.dup(parent.fileno())
    parent.close()
    factory = RecordingFactory()
    listener = bind_listener(Bind(Address(FD, fd=fd)), factory, reactor, backlog=5)
    assert listener.inherited
    assert listener.fileno() == fd
    c = client(path)
    try:
        yield wait_for(lambda: len(factory.built) == 1)
    finally:
        c.close()
        yield listener.stop()
    assert os.path.exists(path)
    with pytest.raises(OSError):
        os.fstat(fd)  # the listener owned and closed it


def test_fd_not_listening_refused():
    """fd@ on a socket that is not listening is refused and the fd left open."""
    s = socket.socket(socket.AF_INET)
    try:
        with pytest.raises(BindError, match="is not listening"):
            bind_socket(Bind(Address(FD, fd=s.fileno())), backlog=5)
        os.fstat(s.fileno())
    finally:
        s.close()


def test_fd_not_a_socket_refused():
    """fd@ on a pipe or a closed descriptor is refused."""
    r, w = os.pipe()
    try:
        with pytest.raises(BindError, match="not a socket"):
            bind_socket(Bind(Address(FD, fd=r)), backlog=5)
        os.fstat(r)
    finally:
        os.close(r)
        os.close(w)
    with pytest.raises(BindError, match="is not open"):
        bind_socket(Bind(Address(FD, fd=r)), backlog=5)
