"""Listening sockets: the only place a ``bind`` address becomes a socket that accepts connections.

Unix socket files are bound HAProxy-style (REFERENCE §2.2): bind a temporary
``<path>.<pid>.tmp``, chown/chmod it, then make it appear at ``<path>`` in one step, so the
final path never exists with the wrong owner or mode. Unlike Twisted's ``unix.Port`` the
socket is not chmod-ed to 0666, keeps the configured backlog and is unlinked on stop only
if the path still names our socket (REFERENCE §4.2), so a reload or a successor process
never loses its socket file to us.

Every family (unix, abns/abnsz, IPv4/IPv6, inherited fd@) is served by the same small
:class:`Listener`, which accepts connections itself and wraps them into Twisted's own
``unix.Server`` / ``tcp.Server`` transports.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import stat
import time
from typing import Any, NamedTuple, Optional, Tuple

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IReadDescriptor
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from udsproxy.config.model import (
    ABNS,
    ABNSZ,
    FD,
    IPV4,
    IPV6,
    SUN_PATH_MAX,
    SYSTEMD,
    UNIX,
    Address,
    Bind,
    SocketPerms,
)
from udsproxy.errors import BindError
from udsproxy.net.connect import (
    Reactor,
    TwistedAddress,
    build_transport,
    errno_name,
    explain_access_denied,
    first_missing_directory,
    protocol_address,
)

log = Logger(namespace="udsproxy.net.listen")

Identity = Tuple[int, int]  # (st_dev, st_ino) of a socket file

# accept() errors that mean "out of resources": retrying at once would spin the event loop.
_RESOURCE_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
# accept() errors about one connection only: skip it and go on with the next.
_TRANSIENT_ERRNOS = (errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR)
NO_PERMS = SocketPerms()  # a bind line without mode, owner or group
RESOURCE_RETRY_S = 0.1  # pause accepting this long after EMFILE & co. (HAProxy: 100 ms)
ACCEPTS_PER_READ = 64  # bound the work per readiness event so one port cannot starve others
DIR_LOCK_WAIT_S = 2.0


def tmp_suffix(pid: int) -> str:
    """The suffix of the temporary name a unix socket is bound under."""
    return f".{pid}.tmp"


def max_unix_path_len(pid: int) -> int:
    """The longest socket path (bytes) bindable by process ``pid``: 107 minus the suffix."""
    return SUN_PATH_MAX - 1 - len(tmp_suffix(pid))


class BoundSocket(NamedTuple):
    """A listening socket ready to be served, and what is needed to clean it up later."""

    sock: socket.socket
    identity: Optional[Identity]  # unix socket files only
    inherited: bool
    # A replacement for a path we listen on already: bound and listening at this temporary
    # name, renamed over the path by install_staged() (None: the socket is in place).
    staged: Optional[str] = None


# ---------------------------------------------------------------------------------------
# Error texts


def _error(address: Address, what: str, err: Optional[int], fix: str = "") -> BindError:
    name = f" [{errno_name(err)}]" if err is not None else ""
    tail = f"; {fix}" if fix else ""
    return BindError(f"cannot bind {address}: {what}{name}{tail}", err)


def _unix_bind_error(address: Address, target: str, exc: OSError) -> BindError:
    """A BindError for bind()/link()/rename() on a unix socket path failing with ``exc``."""
    err = exc.errno if exc.errno is not None else 0
    path = address.path
    if err == errno.ENOENT:
        missing = first_missing_directory(target) or os.path.dirname(os.path.abspath(target))
        return _error(
            address,
            f"directory {missing} does not exist",
            err,
            "create it (mkdir -p) or fix the path",
        )
    if err in (errno.EACCES, errno.EPERM):
        why = _sticky_reason(target) or explain_access_denied(target, creating=True)
        return _error(
            address,
            f"permission denied ({why})",
            err,
            "run as a user allowed to create files there or change the directory's permissions",
        )
    if err == errno.EADDRINUSE:
        return _error(
            address,
            f"{target} already exists",
            err,
            "remove it if no process uses it",
        )
    if err == errno.ENAMETOOLONG:
        return _error(address, f"a component of {path} is too long", err, "use a shorter path")
    if err == errno.ENOTDIR:
        return _error(address, f"a component of {path} is not a directory", err, "fix the path")
    if err == errno.EROFS:
        return _error(address, f"{path} is on a read-only file system", err)
    return _error(address, f"{os.strerror(err).lower()} on {target}", err)


def _sticky_reason(target: str) -> str:
    """Why replacing ``target`` is denied when its directory is sticky (like /tmp)."""
    try:
        st = os.lstat(target)
        directory = os.path.dirname(os.path.abspath(target))
        dst = os.stat(directory)
    except OSError:
        return ""
    euid = os.geteuid()
    if dst.st_mode & stat.S_ISVTX and euid not in (0, st.st_uid, dst.st_uid):
        return f"{target} belongs to uid {st.st_uid} in sticky directory {directory}"
    return ""


def _ip_bind_error(address: Address, exc: OSError) -> BindError:
    err = exc.errno if isinstance(exc.errno, int) and exc.errno > 0 else None
    if err == errno.EADDRINUSE:
        return _error(address, "address already in use", err, "stop the other listener")
    if err == errno.EACCES:
        return _error(
            address,
            "permission denied",
            err,
            "ports below 1024 need root or CAP_NET_BIND_SERVICE",
        )
    if err == errno.EADDRNOTAVAIL:
        return _error(address, "address not available on this host", err, "fix the address")
    return _error(address, str(exc.strerror or exc).lower(), err)


# ---------------------------------------------------------------------------------------
# Unix socket files


class _DirLock:
    """flock() on the socket's directory, serialising udsproxy processes binding there.

    Checking for a stale socket and replacing it are two steps; the lock makes them one for
    every udsproxy process. Without read permission on the directory (or if some unrelated
    program holds a flock on it) we go on unlocked: link() still keeps the common case
    (path absent) race-free.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.fd = -1

    def __enter__(self) -> _DirLock:
        try:
            self.fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return self
        deadline = time.monotonic() + DIR_LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EINTR):
                    break
            if time.monotonic() >= deadline:
                log.warn("could not lock {dir}; binding without the lock", dir=self.directory)
                break
            time.sleep(0.01)
        os.close(self.fd)
        self.fd = -1
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing releases the flock
            self.fd = -1


def _probe(path: str) -> str:
    """Whether the socket file at ``path`` has a listener: "live", "stale" or "gone"."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.setblocking(False)
        err = probe.connect_ex(path)
    finally:
        probe.close()
    if err == 0 or err in (errno.EAGAIN, errno.EWOULDBLOCK):
        return "live"  # EAGAIN: a listener whose backlog is full is very much alive
    if err == errno.ECONNREFUSED:
        return "stale"
    if err == errno.ENOENT:
        return "gone"
    raise BindError(
        f"cannot bind unix@{path}: cannot tell whether another process uses {path}: "
        f"connect() failed [{errno_name(err)}] ({os.strerror(err).lower()}); "
        "remove the file if it is stale",
        err,
    )


def _install(address: Address, tmp: str, identity: Identity) -> None:
    """Make the bound ``tmp`` socket appear at the final path, or raise BindError."""
    path = address.path
    # A successful link() proves the path was free: a competing process creating it
    # meanwhile makes link() fail with EEXIST. rename() is used only over a stale socket.
    for _ in range(5):
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
                raise _unix_bind_error(address, path, e) from e
            # File systems without hard links: fall back to rename over a checked-free path.
            if not os.path.lexists(path):
                _rename(address, tmp, identity)
                return
        else:
            os.unlink(tmp)
            return
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISSOCK(st.st_mode):
            raise _error(
                address,
                f"{path} exists and is not a socket",
                errno.EEXIST,
                "remove it or choose another path",
            )
        state = _probe(path)
        if state == "live":
            raise _error(
                address,
                f"another process is listening on {path}",
                errno.EADDRINUSE,
                "stop it or choose another path",
            )
        if state == "stale":
            _rename(address, tmp, identity)
            return
    raise _error(address, f"{path} keeps changing while binding", errno.EAGAIN, "retry")


def _rename(address: Address, tmp: str, identity: Identity) -> None:
    try:
        os.rename(tmp, address.path)
    except OSError as e:
        raise _unix_bind_error(address, address.path, e) from e
    # Re-check: a process not taking the directory lock may have replaced it meanwhile.
    st = os.lstat(address.path)
    if (st.st_dev, st.st_ino) != identity:
        raise _error(
            address,
            f"another process replaced {address.path} while binding",
            errno.EADDRINUSE,
            "make sure only one proxy binds this path",
        )


def _remove_leftover_tmp(address: Address, tmp: str) -> None:
    """Remove a temporary socket left by a crashed process that had our pid."""
    try:
        st = os.lstat(tmp)
    except FileNotFoundError:
        return
    except OSError as e:
        raise _unix_bind_error(address, tmp, e) from e
    if not stat.S_ISSOCK(st.st_mode):
        raise _error(address, f"{tmp} exists and is not a socket", errno.EEXIST, "remove it")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise _unix_bind_error(address, tmp, e) from e


def current_umask() -> int:
    """The process umask (reading it means setting it: done at start, on the reactor thread)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _apply_perms(address: Address, tmp: str, perms: SocketPerms) -> None:
    try:
        if perms.uid is not None or perms.gid is not None:
            uid = perms.uid if perms.uid is not None else -1
            gid = perms.gid if perms.gid is not None else -1
            os.chown(tmp, uid, gid)
        # Without ``mode``: 0666 & ~umask, what a regular file would get (bind() alone
        # would leave the execute bits of 0777 & ~umask, which mean nothing on a socket).
        os.chmod(tmp, perms.mode if perms.mode is not None else 0o666 & ~current_umask())
    except OSError as e:
        err = e.errno
        raise _error(
            address,
            f"cannot set owner/mode of {tmp}: {os.strerror(err or 0).lower()}",
            err,
            "changing the owner needs root (or CAP_CHOWN); a group must be one of yours",
        ) from e


def _unlink_if_ours(path: str, identity: Identity) -> None:
    try:
        st = os.lstat(path)
        if (st.st_dev, st.st_ino) == identity:
            os.unlink(path)
    except OSError:
        pass


def _names(path: str, identity: Identity) -> bool:
    """Whether ``path`` is the socket file ``identity`` (our listener's, still in place)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == identity


def _bind_unix_file(
    address: Address, perms: SocketPerms, backlog: int, pid: int, install: bool = True
) -> BoundSocket:
    path = address.path
    if not path:
        raise _error(address, "empty socket path", errno.EINVAL)
    suffix = tmp_suffix(pid)
    limit = max_unix_path_len(pid)
    size = len(os.fsencode(path))
    if size > limit:
        raise _error(
            address,
            f"name too long for a UNIX socket: {size} bytes, the limit is {limit} "
            f"(108-byte sun_path with its NUL, minus the '{suffix}' temporary suffix)",
            errno.ENAMETOOLONG,
            "use a shorter path",
        )
    tmp = path + suffix
    _remove_leftover_tmp(address, tmp)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    identity: Optional[Identity] = None  # set once tmp exists and is ours to clean up
    try:
        sock.setblocking(False)
        try:
            sock.bind(tmp)
        except OSError as e:
            raise _unix_bind_error(address, tmp, e) from e
        st = os.lstat(tmp)
        identity = (st.st_dev, st.st_ino)
        _apply_perms(address, tmp, perms)
        # listen() before the socket appears at its final path (HAProxy does it after):
        # clients never see a refused connection on the new socket, and a racing process's
        # stale-socket probe never mistakes our half-made socket for a stale one.
        sock.listen(backlog)
        if install:
            with _DirLock(os.path.dirname(os.path.abspath(path))):
                _install(address, tmp, identity)
    except BaseException:
        sock.close()
        if identity is not None:
            _unlink_if_ours(tmp, identity)
        raise
    return BoundSocket(sock, identity, False, None if install else tmp)


def _stage_replacement(address: Address, perms: SocketPerms, backlog: int, pid: int) -> BoundSocket:
    """A socket to replace our live one at ``address.path`` (other owner or mode): bound at
    the temporary name with its owner and mode, listening, not yet at the path.

    What install_staged() will do is checked here, so that the swap does not fail: in a
    sticky directory, replacing a file needs its owner, the directory's, or root.
    """
    reason = _sticky_reason(address.path)
    if reason:
        raise _error(
            address,
            f"cannot replace {address.path}: permission denied ({reason})",
            errno.EPERM,
            "restart the proxy to apply the new owner or mode",
        )
    return _bind_unix_file(address, perms, backlog, pid, install=False)


def install_staged(address: Address, bound: BoundSocket) -> None:
    """Rename a staged replacement over the live path: one step, so a client connecting
    meanwhile finds either the old socket (old owner and mode) or the new one, never none."""
    assert bound.staged is not None and bound.identity is not None
    with _DirLock(os.path.dirname(os.path.abspath(address.path))):
        _rename(address, bound.staged, bound.identity)


# ---------------------------------------------------------------------------------------
# Other families


def _bind_abstract(address: Address, backlog: int) -> BoundSocket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        try:
            sock.bind(address.sockaddr())  # type: ignore[arg-type]
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise _error(
                    address,
                    "abstract name already in use by another socket",
                    e.errno,
                    "stop the other process or choose another name",
                ) from e
            raise _error(address, str(e.strerror or e).lower(), e.errno) from e
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return BoundSocket(sock, None, False)


def _bind_ip(address: Address, backlog: int) -> BoundSocket:
    family = socket.AF_INET6 if address.family == IPV6 else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as e:
        raise _ip_bind_error(address, e) from e
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address.sockaddr())  # type: ignore[arg-type]
        except OSError as e:
            raise _ip_bind_error(address, e) from e
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return BoundSocket(sock, None, False)


def _adopt_fd(address: Address) -> BoundSocket:
    fd = address.fd
    try:
        sock = socket.socket(fileno=fd)
    except OSError as e:
        if e.errno == errno.EBADF:
            raise _error(address, f"fd {fd} is not open", e.errno, "pass it from the parent") from e
        if e.errno == errno.ENOTSOCK:
            raise _error(address, f"fd {fd} is not a socket", e.errno) from e
        raise _error(address, str(e.strerror or e).lower(), e.errno) from e
    try:
        if sock.family not in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6):
            raise _error(address, f"fd {fd} is not a unix or IP socket", errno.EAFNOSUPPORT)
        if sock.type != socket.SOCK_STREAM:
            raise _error(address, f"fd {fd} is not a stream socket", errno.EPROTOTYPE)
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            raise _error(
                address,
                f"fd {fd} is not listening",
                errno.EINVAL,
                "the parent must bind() and listen() before passing it",
            )
        sock.setblocking(False)
    except BaseException:
        # Not adopted: leave the descriptor open for whoever owns it.
        sock.detach()
        raise
    return BoundSocket(sock, None, True)


def needs_rebind(listener: Listener, bind: Bind) -> bool:
    """Whether ``bind`` asks another socket file than ``listener``'s: another owner, group
    or mode (a backlog is changed in place: Listener.relisten). Inherited sockets are never
    rebound, chmod-ed or chowned."""
    return (
        bind.address.family == UNIX
        and not listener.inherited
        and listener.identity is not None
        and listener.perms != bind.perms
    )


def bind_socket(
    bind: Bind, backlog: int, pid: Optional[int] = None, replacing: Optional[Identity] = None
) -> BoundSocket:
    """Create the listening socket for a ``bind`` line (no reactor involved); BindError if not.

    For ``fd@`` the descriptor is adopted as is (not re-listened: the parent chose the
    backlog) and owned by the result from then on. ``replacing``: the identity of our
    socket file at a unix path bound again with other options; while the path still names
    it, the new socket is only staged (``BoundSocket.staged``, see install_staged).
    """
    address = bind.address
    if address.family == UNIX:
        pid = os.getpid() if pid is None else pid
        if replacing is not None and _names(address.path, replacing):
            return _stage_replacement(address, bind.perms, backlog, pid)
        return _bind_unix_file(address, bind.perms, backlog, pid)
    if address.family in (ABNS, ABNSZ):
        return _bind_abstract(address, backlog)
    if address.family in (IPV4, IPV6):
        return _bind_ip(address, backlog)
    if address.family == FD:
        return _adopt_fd(address)
    if address.family == SYSTEMD:
        raise _error(
            address,
            "no socket was passed by systemd (LISTEN_FDS/LISTEN_PID unset or not ours)",
            errno.EBADF,
            "start through the .socket unit, or bind an address",
        )
    raise _error(address, f"unknown address family {address.family!r}", errno.EAFNOSUPPORT)


# ---------------------------------------------------------------------------------------
# The listening port


@implementer(IListeningPort, IReadDescriptor)
class Listener:
    """A listening socket served by the reactor; outlives config reloads.

    ``factory`` may be replaced at any time (a reload); connections already accepted keep
    their protocols. Factories get doStart() when they start being used by a running
    listener and doStop() when they stop, like with Twisted's ports.
    """

    def __init__(
        self,
        reactor: Reactor,
        address: Address,
        bound: BoundSocket,
        factory: IProtocolFactory,
        perms: SocketPerms = NO_PERMS,
        backlog: int = 0,
    ) -> None:
        self.reactor = reactor
        self.address = address
        self.inherited = bound.inherited
        self.identity = bound.identity
        self.staged = bound.staged  # not at its path yet: install() puts it there
        # The options it was bound with (a reload compares them with the new bind line's).
        self.perms = perms
        self.backlog = backlog
        self._socket: Optional[socket.socket] = bound.sock
        self._fileno = bound.sock.fileno()
        self._family = bound.sock.family
        # Any: zope interface methods do not type-check as bound methods without mypy-zope.
        self._factory: Any = factory
        self._paused = False
        self._throttle: Any = None  # DelayedCall while accept() is out of resources
        self._reading = False
        self._started = False
        self._sessionno = 0
        self._resource_warned = False

    def __repr__(self) -> str:
        return f"<Listener {self.address}>"

    # -- public API ----------------------------------------------------------------------

    @property
    def factory(self) -> IProtocolFactory:
        factory: IProtocolFactory = self._factory
        return factory

    @factory.setter
    def factory(self, factory: IProtocolFactory) -> None:
        old, self._factory = self._factory, factory
        if self._started and old is not factory:
            self._factory.doStart()
            old.doStop()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def closed(self) -> bool:
        return self._socket is None

    @property
    def accepting(self) -> bool:
        """Started (paused or not) and not stopped."""
        return self._started and self._socket is not None

    def start(self) -> None:
        """Start accepting (bind_listener already did; a no-op then)."""
        if self._started or self._socket is None:
            return
        self._started = True
        self._factory.doStart()
        self._update_reading()

    def pause(self) -> None:
        """Stop accepting; new clients wait in the kernel backlog (frontend maxconn)."""
        self._paused = True
        self._update_reading()

    def resume(self) -> None:
        """Accept again after pause()."""
        self._paused = False
        self._update_reading()

    def stop(self, unlink: bool = True) -> Deferred:
        """Stop accepting and close the socket; fires when done (at once).

        With ``unlink``, a unix socket file is removed only if the path still is the file we
        bound: never for abstract names or inherited descriptors.
        """
        sock = self._socket
        if sock is None:
            return succeed(None)
        self._cancel_throttle()
        if self._reading:
            # Before dropping the socket: the reactor finds readers by fileno().
            self._reading = False
            self.reactor.removeReader(self)
        self._socket = None
        if self.staged is not None and self.identity is not None:
            _unlink_if_ours(self.staged, self.identity)  # never installed: a rolled back reload
        elif unlink and self.identity is not None and not self.inherited:
            # Residual race: another process may rename its socket onto the path between
            # our lstat() and unlink(); there is no unlink-if-inode syscall. The window is
            # a few microseconds and a successor should not replace the path while we stop.
            _unlink_if_ours(self.address.path, self.identity)
        sock.close()
        if self._started:
            self._started = False
            self._factory.doStop()
        return succeed(None)

    def install(self) -> None:
        """Put a staged replacement at its path (install_staged); BindError if it cannot."""
        if self.staged is not None and self._socket is not None:
            install_staged(
                self.address, BoundSocket(self._socket, self.identity, False, self.staged)
            )
            self.staged = None

    def relisten(self, backlog: int) -> None:
        """A new backlog for the socket in place: listen() again on a listening socket sets
        it (Linux), with no rebind and nothing lost from the queue. Not for inherited
        sockets, whose backlog their parent chose."""
        sock = self._socket
        if sock is None or self.inherited or backlog == self.backlog:
            return
        sock.listen(backlog)
        self.backlog = backlog

    def drain(self) -> int:
        """Close a socket another one has replaced at its path: first accept what is queued
        on it (clients that connected just before the swap), so that none is reset; how
        many were."""
        sock = self._socket
        accepted = 0
        if sock is not None and self._started:
            for _ in range(max(self.backlog, ACCEPTS_PER_READ) + ACCEPTS_PER_READ):
                try:
                    conn, peer = sock.accept()
                except OSError as e:
                    if e.errno in _TRANSIENT_ERRNOS:
                        continue
                    if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                        log.warn(
                            "{listener}: accept() failed with {err} while draining",
                            listener=self,
                            err=errno_name(e.errno or 0),
                        )
                    break
                self._serve(conn, peer)
                accepted += 1
        self.stop(unlink=True)
        return accepted

    # IListeningPort
    def startListening(self) -> None:
        self.start()

    def stopListening(self) -> Deferred:
        return self.stop()

    def getHost(self) -> TwistedAddress:
        """The configured address; for IP the real port (after binding port 0)."""
        if self._family == socket.AF_UNIX:
            if self.address.family in (UNIX, ABNS, ABNSZ):
                return UNIXAddress(self.address.sockaddr())  # type: ignore[arg-type]
            return UNIXAddress(self._sockname() or None)
        name = self._sockname()
        if self._family == socket.AF_INET6:
            return IPv6Address("TCP", name[0], name[1])
        return IPv4Address("TCP", name[0], name[1])

    # IReadDescriptor
    def fileno(self) -> int:
        return self._fileno if self._socket is not None else -1

    def logPrefix(self) -> str:
        return f"Listener {self.address}"

    def connectionLost(self, reason: Failure) -> None:
        # The reactor drops readers at shutdown: close, but leave the file (HAProxy does).
        self._reading = False
        self.stop(unlink=False)

    def doRead(self) -> None:
        for _ in range(ACCEPTS_PER_READ):
            sock = self._socket
            if sock is None or not self._reading:
                return
            try:
                conn, peer = sock.accept()
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return
                if e.errno in _RESOURCE_ERRNOS:
                    self._out_of_resources(e)
                    return
                if e.errno in _TRANSIENT_ERRNOS:
                    continue
                log.failure("accept() failed on {listener}", listener=self)
                return
            self._serve(conn, peer)

    # -- internals -----------------------------------------------------------------------

    def _sockname(self) -> Any:
        return self._socket.getsockname() if self._socket is not None else None

    def _update_reading(self) -> None:
        want = (
            self._socket is not None
            and self._started
            and not self._paused
            and self._throttle is None
        )
        if want and not self._reading:
            self._reading = True
            self.reactor.addReader(self)
        elif not want and self._reading:
            self._reading = False
            self.reactor.removeReader(self)

    def _out_of_resources(self, exc: OSError) -> None:
        # The pending connection stays readable: retrying at once would spin the loop, so
        # stop accepting for a moment, as HAProxy does.
        if not self._resource_warned:
            self._resource_warned = True
            log.warn(
                "{listener}: accept() failed with {err} ({msg}); pausing accepts for {ms} ms",
                listener=self,
                err=errno_name(exc.errno or 0),
                msg=exc.strerror,
                ms=int(RESOURCE_RETRY_S * 1000),
            )
        self._throttle = self.reactor.callLater(RESOURCE_RETRY_S, self._end_throttle)
        self._update_reading()

    def _end_throttle(self) -> None:
        self._throttle = None
        self._update_reading()

    def _cancel_throttle(self) -> None:
        if self._throttle is not None:
            if self._throttle.active():
                self._throttle.cancel()
            self._throttle = None

    def _serve(self, conn: socket.socket, peer: Any) -> None:
        self._resource_warned = False
        try:  # (build_transport makes it non-blocking)
            if self._family == socket.AF_INET6:
                host = socket.getnameinfo(peer, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
                peer = (host[0],) + tuple(peer[1:])
            proto = self._factory.buildProtocol(protocol_address(self._family, peer))
        except Exception:
            conn.close()
            log.failure("{listener}: buildProtocol failed", listener=self)
            return
        if proto is None:
            conn.close()
            return
        self._sessionno += 1
        pinned = None
        if self.address.family in (UNIX, ABNS, ABNSZ):
            pinned = UNIXAddress(self.address.sockaddr())  # type: ignore[arg-type]
        transport = build_transport(
            self.reactor, conn, proto, peer, self._sessionno, pinned, self._family
        )
        try:
            proto.makeConnection(transport)
        except Exception:
            log.failure("{listener}: connectionMade failed", listener=self)
            transport.abortConnection()


def bind_listener(
    bind: Bind,
    factory: IProtocolFactory,
    reactor: Reactor,
    backlog: int,
    pid: Optional[int] = None,
) -> Listener:
    """Bind ``bind`` and return a Listener that is already accepting; BindError if not.

    ``pid`` names the temporary socket file (default: our pid). Binding is synchronous.
    """
    bound = bind_socket(bind, backlog, pid)
    listener = Listener(reactor, bind.address, bound, factory, bind.perms, backlog)
    listener.start()
    return listener
