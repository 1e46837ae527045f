"""Outgoing connections: the one ``connect()`` used by TCP mode, the HTTP pool and health checks.

``connect()`` does the ``connect(2)`` itself on a non-blocking socket so that the errno is
never lost, classifies failures into a :class:`ConnectError` whose message names the address
and, for permission errors, the directory or file that lacks the permission, and hands the
connected socket to Twisted as an ordinary stream transport.

Why not Twisted's client endpoints: an AF_UNIX ``connect()`` never returns EINPROGRESS, and
when the server's backlog is full it fails with EAGAIN, which Twisted treats as "in progress"
and later reports as "Connection was closed cleanly" with the errno gone (REFERENCE §4.2).

This module also owns the transport construction shared with ``net.listen`` (accepted and
connected sockets become the same ``unix.Server`` / ``tcp.Server`` transports) and the
explanation of EACCES on a socket path, which bind errors reuse.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import socket
import stat
from typing import Any, Callable, NamedTuple, Optional, Tuple, Union, cast

from twisted.internet import main, tcp, unix
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IWriteDescriptor
from twisted.python.failure import Failure
from zope.interface import implementer

from udsproxy.config.model import ABNS, ABNSZ, FD, IPV6, UNIX, Address
from udsproxy.errors import UdsProxyError
from udsproxy.strenum import StrEnum

# Reactors are typed as Any: the zope interfaces (IReactorFDSet, IReactorTime) do not
# type-check as protocols without the mypy-zope plugin.
Reactor = Any

ProtocolFactoryLike = Union[IProtocolFactory, Callable[[], IProtocol]]
TwistedAddress = Union[UNIXAddress, IPv4Address, IPv6Address]


class ConnectKind(StrEnum):
    """A failed connect's class: what retries, logs and health checks tell apart."""

    ENOENT = "ENOENT"  # no socket file (a thin restart deletes and re-creates it)
    ECONNREFUSED = "ECONNREFUSED"  # nobody listening (a stale socket file)
    EAGAIN = "EAGAIN"  # a unix server's backlog is full
    EACCES = "EACCES"
    ENOTSOCK = "ENOTSOCK"
    ETIMEDOUT = "ETIMEDOUT"  # ``timeout connect`` expired (or the kernel's)
    EMFILE = "EMFILE"  # no file descriptor left (ours, or the system's: ENFILE)
    OTHER = "OTHER"


_KIND_BY_ERRNO = {
    errno.ENOENT: ConnectKind.ENOENT,
    errno.ECONNREFUSED: ConnectKind.ECONNREFUSED,
    errno.EAGAIN: ConnectKind.EAGAIN,
    errno.EWOULDBLOCK: ConnectKind.EAGAIN,
    errno.EACCES: ConnectKind.EACCES,
    errno.ENOTSOCK: ConnectKind.ENOTSOCK,
    errno.ETIMEDOUT: ConnectKind.ETIMEDOUT,
    errno.EMFILE: ConnectKind.EMFILE,
    errno.ENFILE: ConnectKind.EMFILE,
}


class ConnectError(UdsProxyError):
    """A connect() that failed: a coarse ``kind`` for retry decisions plus a readable message."""

    def __init__(self, kind: ConnectKind, errno: int, address: Address, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.errno = errno
        self.address = address
        self.message = message

    def __str__(self) -> str:
        return self.message


def errno_name(err: int) -> str:
    """The symbolic name of an errno value ("EACCES"), or "errno N" when unknown."""
    return errno.errorcode.get(err, f"errno {err}")


def classify_errno(err: int) -> ConnectKind:
    """The ConnectError kind for an errno value."""
    return _KIND_BY_ERRNO.get(err, ConnectKind.OTHER)


def _reason(address: Address, kind: ConnectKind, err: int) -> str:
    unix_family = address.is_unix
    if kind == "ENOENT":
        return "no such file or directory"
    if kind == "ECONNREFUSED":
        if address.family == UNIX:
            return "connection refused (no process is listening on the socket)"
        if unix_family:
            return "connection refused (nothing is bound to this abstract name)"
        return "connection refused"
    if kind == "EAGAIN":
        if unix_family:
            return "resource temporarily unavailable (the server's listen backlog is full)"
        return "resource temporarily unavailable (no free local port)"
    if kind == "EACCES":
        return "permission denied [EACCES]"
    if kind == "ENOTSOCK":
        return "not a socket"
    if kind == "ETIMEDOUT":
        return "connection timed out"
    return f"{os.strerror(err).lower()} [{errno_name(err)}]"


def format_connect_message(address: Address, kind: ConnectKind, err: int, detail: str = "") -> str:
    """The human-readable text of a ConnectError; pure, so the wording is unit-testable."""
    text = f"connect to {address}: {_reason(address, kind, err)}"
    return f"{text} ({detail})" if detail else text


def effective_access(path: str, mode: int) -> bool:
    """os.access with the effective ids, as the kernel checks connect(), bind(), unlink()."""
    if os.access in os.supports_effective_ids:
        return os.access(path, mode, effective_ids=True)
    return os.access(path, mode)


def _ancestors(path: str) -> list:
    """The directories leading to ``path``, outermost first ("/", "/run", "/run/x")."""
    result = []
    parent = os.path.dirname(os.path.abspath(path))
    while True:
        result.append(parent)
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    result.reverse()
    return result


def missing_permission(
    path: str,
    creating: bool,
    access: Callable[[str, int], bool] = effective_access,
) -> Optional[Tuple[str, str]]:
    """The first permission missing on the way to ``path`` for bind (creating) or connect,
    and the directory or file that lacks it; None when the modes allow it."""
    dirs = _ancestors(path)
    for directory in dirs:
        if not access(directory, os.X_OK):
            return f"search permission missing on directory {directory}", directory
    if creating and not access(dirs[-1], os.W_OK):
        return f"no write permission on directory {dirs[-1]}", dirs[-1]
    if not creating and not access(path, os.W_OK):
        return f"no write permission on socket file {path}", path
    return None


def explain_access_denied(
    path: str,
    creating: bool,
    access: Callable[[str, int], bool] = effective_access,
) -> str:
    """Which permission is missing on the way to ``path``: for bind (creating) or connect."""
    missing = missing_permission(path, creating, access)
    if missing is not None:
        return missing[0]
    if creating:
        where = f"in directory {os.path.dirname(os.path.abspath(path))}"
        return f"denied {where} although the file modes allow it (ACL or LSM?)"
    return f"denied on {path} although the file modes allow it (ACL or LSM?)"


class Identity(NamedTuple):
    """Who the process is, as the kernel checks it: effective user and every group."""

    uid: int
    user: str
    gids: Tuple[int, ...]  # the effective group first
    groups: Tuple[str, ...]

    def describe(self) -> str:
        groups = ", ".join(self.groups) or "none"
        return f"user {self.user} (uid {self.uid}, groups {groups})"


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _identity(uid: int, gid: int, others: Any) -> Identity:
    gids = (gid, *sorted(set(others) - {gid}))
    return Identity(uid, _user_name(uid), gids, tuple(_group_name(g) for g in gids))


def current_identity() -> Identity:
    """The effective uid and groups of this process, with their names."""
    return _identity(os.geteuid(), os.getegid(), os.getgroups())


def future_identity(uid: int, gid: int, groups_of: Optional[str]) -> Identity:
    """Who a process dropping to ``uid``/``gid`` becomes: with ``groups_of``, that user's
    groups (initgroups), else no supplementary group (privileges.plan_drop's plan)."""
    return _identity(uid, gid, os.getgrouplist(groups_of, gid) if groups_of else ())


_MODE_BITS = ((os.R_OK, 4), (os.W_OK, 2), (os.X_OK, 1))


def access_as(
    who: Identity, stat_path: Callable[[str], os.stat_result] = os.stat
) -> Callable[[str, int], bool]:
    """An ``access(path, mode)`` for ``who`` rather than this process: the mode bits of the
    owner, group or others class, as the kernel picks it (ACLs and LSMs not seen)."""

    def access(path: str, mode: int) -> bool:
        if who.uid == 0:
            return True
        try:
            st = stat_path(path)
        except OSError:
            return False
        if st.st_uid == who.uid:
            bits = st.st_mode >> 6
        elif st.st_gid in who.gids:
            bits = st.st_mode >> 3
        else:
            bits = st.st_mode
        return all(bits & bit for flag, bit in _MODE_BITS if mode & flag)

    return access


def _owner(st: os.stat_result, group: str) -> str:
    return f"owner {_user_name(st.st_uid)}, group {group}, mode {stat.S_IMODE(st.st_mode):04o}"


def _fix(
    st: os.stat_result, group: str, who: Identity, group_bit: int, what: str, widen: str
) -> str:
    """One sentence: the change that grants ``who`` the permission ``st`` lacks for it."""
    if st.st_gid in who.gids:
        return f"fix: {widen} (group {group} lacks {what})"
    if st.st_mode & group_bit:
        return f"fix: add user {who.user} to group {group}, then restart udsproxy"
    return f"fix: add user {who.user} to group {group} and {widen}"


# What explain_access_denied found -> (the group bit that would grant it, its name, the
# change that widens it for a group); ``{}`` is the path.
_REMEDIES = {
    "search permission missing on directory ": (
        stat.S_IXGRP,
        "search permission",
        "give the directory group search permission (chmod g+x {})",
    ),
    "no write permission on directory ": (
        stat.S_IWGRP,
        "write permission",
        "make the directory group-writable (chmod g+w {})",
    ),
    "no write permission on socket file ": (
        stat.S_IWGRP,
        "write permission",
        "set the server's socket mode to 0660",
    ),
}


def access_advice(
    path: str,
    creating: bool = False,
    access: Callable[[str, int], bool] = effective_access,
    stat_path: Callable[[str], os.stat_result] = os.stat,
    who: Optional[Identity] = None,
) -> str:
    """An EACCES in full: what lacks which permission (with its owner, group and mode), who
    the proxy runs as, and the fix in one sentence. Used by connect errors and checks."""
    who = who if who is not None else current_identity()
    detail = explain_access_denied(path, creating, access)
    for prefix, (group_bit, what, widen) in _REMEDIES.items():
        if detail.startswith(prefix):
            target = detail[len(prefix) :]
            try:
                st = stat_path(target)
            except OSError:
                return f"{detail} for {who.describe()}"
            gid = st.st_gid
            group = who.groups[who.gids.index(gid)] if gid in who.gids else _group_name(gid)
            fix = _fix(st, group, who, group_bit, what, widen.format(target))
            return f"{detail} ({_owner(st, group)}) for {who.describe()}; {fix}"
    return (
        f"{detail} for {who.describe()}; fix: look at ACLs (getfacl) and the AppArmor/SELinux log"
    )


def first_missing_directory(path: str) -> Optional[str]:
    """The outermost ancestor directory of ``path`` that does not exist, if any."""
    for directory in _ancestors(path):
        if not os.path.isdir(directory):
            return directory
    return None


def _file_kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a socket"


def diagnose(address: Address, err: int) -> Tuple[ConnectKind, int, str]:
    """Classify a failed connect: (kind, errno, detail), looking at the filesystem for paths."""
    kind = classify_errno(err)
    if address.family != UNIX:
        if address.family in (ABNS, ABNSZ) and kind == "ECONNREFUSED":
            other = "abnsz@" if address.family == ABNS else "abns@"
            return kind, err, f"{other} names a different socket: check both sides use one form"
        return kind, err, ""
    path = address.path
    if kind == "ENOENT":
        missing = first_missing_directory(path)
        if missing is not None:
            return kind, err, f"directory {missing} does not exist"
        return kind, err, f"socket file {path} does not exist"
    if kind == "EACCES":
        return kind, err, access_advice(path)
    if kind == "ECONNREFUSED":
        # Linux answers ECONNREFUSED for a path that exists but is not a socket.
        try:
            st = os.stat(path)
        except OSError:
            return kind, err, ""
        if not stat.S_ISSOCK(st.st_mode):
            return ConnectKind.ENOTSOCK, errno.ENOTSOCK, f"{path} is {_file_kind(st.st_mode)}"
        return kind, err, "stale socket file"
    if err == errno.ENOTDIR:
        return kind, err, f"a component of {path} is not a directory"
    return kind, err, ""


def connect_error(address: Address, err: int) -> ConnectError:
    """A ConnectError for a failed connect() with errno ``err``, diagnosed and worded."""
    kind, code, detail = diagnose(address, err)
    return ConnectError(kind, code, address, format_connect_message(address, kind, code, detail))


def socket_family(address: Address) -> int:
    """The AF_* constant for an address family of the config model."""
    if address.is_unix:
        return socket.AF_UNIX
    if address.family == IPV6:
        return socket.AF_INET6
    return socket.AF_INET


def protocol_address(family: int, addr: Any) -> TwistedAddress:
    """A Twisted address object for a socket-module address (peer or local)."""
    if family == socket.AF_UNIX:
        return UNIXAddress(addr or None)
    if family == socket.AF_INET6:
        return IPv6Address("TCP", *addr)
    return IPv4Address("TCP", *addr)


def pending_output(transport: Any) -> int:
    """Bytes written to ``transport`` and not sent yet (Twisted's write queue); 0 if unknown."""
    try:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    except AttributeError:
        return 0


class _Labels:
    """Twisted's ``repstr``, made when a connection is printed, not stored per connection."""

    @property
    def repstr(self) -> str:
        t: Any = self
        return f"<{t.logstr} #{t.sessionno} with {t.client!r}>"

    @repstr.setter
    def repstr(self, value: str) -> None:
        pass  # tcp.Server sets it when it has a Port (we do not use one)


# Unsent bytes a transport holds beyond which its producer (the other side's reading)
# pauses: HAProxy's 16 KiB buffer. Twisted's 64 KiB let a client that reads slowly hold
# the rest of one 64 KiB read and all of the next: 130 KiB per large response in flight.
WRITE_HIGH_WATER = 16384
# Bytes asked for per read. A large body moves in half as many reads (and reactor turns)
# as with Twisted's 64 KiB: the bench's large-body scenario (1 MiB responses, 50
# clients) went from 0.70x/0.90x to 0.98x/1.00x HAProxy's req/s in two runs, for 2-3 MiB
# more peak RSS (what a client's socket does not take at once is copied until it does,
# at most one read per connection before its server is paused).
READ_SIZE = 131072


class _WriteNow:
    """``write()`` sends at once when nothing is queued, instead of on the next poll.

    Twisted's ``write`` only queues and registers the socket for writability, so each
    write costs two ``epoll_ctl`` calls and a reactor turn before the ``send``. A proxy
    writes once per read in the common case and its peer's buffer is rarely full, so
    sending at once saves that whole round (about a tenth of the CPU per proxied HTTP
    request). Whatever ``send`` does not take goes through Twisted's queue as before, so
    ordering, producers (back-pressure) and close-after-flush are unchanged, except that
    the producer pauses above :data:`WRITE_HIGH_WATER`.
    """

    bufferSize = WRITE_HIGH_WATER

    def write(self, data: Union[bytes, memoryview]) -> None:
        t: Any = self
        if (
            data
            and t.connected
            and not t.disconnecting
            and not t._aborting
            and not t._writeDisconnecting
            and not t._tempDataLen
            and t.offset == len(t.dataBuffer)
        ):
            try:
                sent = t.socket.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # Twisted's own send reports the error the usual way
            if sent == len(data):
                return
            data = data[sent:]
        if type(data) is not bytes:
            data = bytes(data)  # a view of READ_BUFFER: what waits must outlive the read
        super().write(data)  # type: ignore[misc]


# Where every transport reads: one buffer for the whole process (the reactor reads on one
# thread, and a read is done with before the next one starts).
READ_BUFFER = bytearray(READ_SIZE)
_READ_VIEW = memoryview(READ_BUFFER)


class _ReadInto:
    """``doRead`` into :data:`READ_BUFFER`: no new buffer per read.

    ``socket.recv(n)`` makes an n-byte buffer per call whatever arrives. On PyPy that
    buffer comes from the GC: Twisted's 64 KiB reads fill PyPy's nursery (1 MiB here)
    every few reads even when they carry a hundred bytes, and each minor collection then
    promotes the per-connection objects alive at that moment, which major collections
    must free later (http-close: 0.72 minor collections per request before, 0.38 after).

    The protocol gets a copy of what was read, as bytes; one whose class sets
    ``transient_reads`` gets a memoryview of the buffer instead, valid until its
    ``dataReceived`` returns: a response body written on at once (``_WriteNow.write``
    copies only what the socket does not take) is never copied here at all.
    """

    def doRead(self) -> Any:
        t: Any = self
        try:
            n = t.socket.recv_into(READ_BUFFER)
        except OSError as se:
            if se.args[0] == errno.EWOULDBLOCK:  # EAGAIN too, the same value on Linux
                return None
            return main.CONNECTION_LOST
        if not n:
            return main.CONNECTION_DONE
        protocol = t.protocol
        if getattr(protocol, "transient_reads", False):
            return protocol.dataReceived(_READ_VIEW[:n])
        return protocol.dataReceived(_READ_VIEW[:n].tobytes())


class _TCPTransport(_Labels, _ReadInto, _WriteNow, tcp.Server):
    """``tcp.Server`` that reads into one buffer and writes at once when it can."""


class _UNIXTransport(_Labels, _ReadInto, _WriteNow, unix.Server):
    """``unix.Server`` reading with recv_into(), whose getHost() may be pinned to an address.

    A listener binds a temporary name and renames it, so getsockname() on accepted sockets
    returns the temporary name; the configured path is what users expect to see.
    """

    _pinned_host: Optional[UNIXAddress] = None

    # Plain recv_into()/send(): unix.Server's recvmsg()/sendmsg() path exists to pass file
    # descriptors, which a proxy never does, and costs a wrapper call per read.
    writeSomeData = tcp.Connection.writeSomeData

    def getHost(self) -> UNIXAddress:
        if self._pinned_host is not None:
            return self._pinned_host
        host: UNIXAddress = super().getHost()
        return host


def build_transport(
    reactor: Reactor,
    sock: socket.socket,
    protocol: IProtocol,
    peer: Any,
    sessionno: int,
    host: Optional[UNIXAddress] = None,
    family: Optional[int] = None,
) -> Any:
    """Wrap a connected socket into a Twisted stream transport (not yet made); Twisted's
    constructor makes the socket non-blocking.

    ``peer`` is the socket-module peer address (what getPeer() reports); ``family`` the
    socket's, when the caller knows it (``sock.family`` is a lookup and an enum each time).
    The caller calls ``protocol.makeConnection(transport)``, as Twisted's own ports do.
    """
    transport: Any
    if family is None:
        family = sock.family
    if family == socket.AF_UNIX:
        transport = _UNIXTransport(sock, protocol, peer, None, sessionno, reactor)
        transport._pinned_host = host
    else:
        if family == socket.AF_INET6 and len(peer) == 2:
            peer = (peer[0], peer[1], 0, 0)
        transport = _TCPTransport(sock, protocol, peer, None, sessionno, reactor)  # type: ignore[arg-type]
        # As HAProxy: no Nagle. The proxy already writes whole messages (one write per
        # read, see http.flow.WriteBatch); holding a partial segment for an ACK only adds
        # latency (and, against a delayed ACK, 40 ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Twisted prefixes what is logged while a connection is handled with its logstr (read
    # on every event): the protocol's name, shared, rather than a string per connection
    # (ten thousand idle clients). repstr is made when asked for (see _Labels).
    transport.logstr = protocol.__class__.__name__
    return transport


def _build_protocol(factory: ProtocolFactoryLike, addr: TwistedAddress) -> Any:
    # Any: zope interfaces' methods do not type-check as bound methods without mypy-zope.
    build = getattr(factory, "buildProtocol", None)
    if build is not None:
        return build(addr)
    make = cast(Callable[[], Any], factory)
    return make()


@implementer(IWriteDescriptor)
class _ConnectAttempt:
    """One connect in progress: waits for writability (TCP), owns the socket until handover."""

    def __init__(
        self,
        reactor: Reactor,
        address: Address,
        factory: ProtocolFactoryLike,
        timeout_ms: Optional[int],
    ) -> None:
        self.reactor = reactor
        self.address = address
        self.factory = factory
        self.timeout_ms = timeout_ms
        self.sock: Optional[socket.socket] = None
        self.writing = False
        self.timer: Any = None
        self.deferred: Deferred = Deferred(self._cancel)

    def start(self) -> Deferred:
        address = self.address
        if address.family == FD:
            self._fail(
                ConnectError(
                    ConnectKind.OTHER,
                    errno.EINVAL,
                    address,
                    f"connect to {address}: an fd@ address can only be listened on",
                )
            )
            return self.deferred
        try:
            self.sock = socket.socket(socket_family(address), socket.SOCK_STREAM)
            self.sock.setblocking(False)
            err = self.sock.connect_ex(address.sockaddr())  # type: ignore[arg-type]
        except OSError as e:
            # e.g. a host name that does not resolve (gaierror carries no usable errno).
            code = e.errno if isinstance(e.errno, int) and e.errno > 0 else errno.EINVAL
            self._fail(
                ConnectError(
                    classify_errno(code), code, address, f"connect to {address}: {e.strerror or e}"
                )
            )
            return self.deferred
        if err == 0:
            self._connected()
        elif err == errno.EINPROGRESS and not address.is_unix:
            self.writing = True
            self.reactor.addWriter(self)
            if self.timeout_ms:
                self.timer = self.reactor.callLater(self.timeout_ms / 1000.0, self._expired)
        else:
            self._fail(connect_error(address, err))
        return self.deferred

    # IWriteDescriptor
    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def logPrefix(self) -> str:
        return f"connect {self.address}"

    def doWrite(self) -> None:
        self._stop_waiting()
        assert self.sock is not None
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._fail(connect_error(self.address, err))
        else:
            self._connected()

    def connectionLost(self, reason: Failure) -> None:
        # The reactor calls this instead of doWrite when poll reports an error or hangup
        # (e.g. a refused TCP connect), and at shutdown: SO_ERROR tells which.
        if self.deferred.called:
            return
        err = 0
        if self.sock is not None:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._fail(connect_error(self.address, err))
        else:
            self._fail(
                ConnectError(
                    ConnectKind.OTHER,
                    errno.ECONNABORTED,
                    self.address,
                    f"connect to {self.address}: aborted ({reason.getErrorMessage()})",
                )
            )

    def _stop_waiting(self) -> None:
        if self.writing:
            self.writing = False
            self.reactor.removeWriter(self)
        if self.timer is not None:
            if self.timer.active():
                self.timer.cancel()
            self.timer = None

    def _close(self) -> None:
        self._stop_waiting()
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _fail(self, error: ConnectError) -> None:
        self._close()
        self.deferred.errback(error)

    def _expired(self) -> None:
        self.timer = None
        err = errno.ETIMEDOUT
        message = format_connect_message(
            self.address, ConnectKind.ETIMEDOUT, err, f"no answer within {self.timeout_ms} ms"
        )
        self._fail(ConnectError(ConnectKind.ETIMEDOUT, err, self.address, message))

    def _cancel(self, _: Deferred) -> None:
        self._close()

    def _connected(self) -> None:
        sock = self.sock
        assert sock is not None
        self._stop_waiting()
        self.sock = None  # from here on the transport owns the socket
        address = self.address
        family = socket_family(address)
        peer = address.sockaddr()
        try:
            if not address.is_unix:
                peer = sock.getpeername()
            proto = _build_protocol(self.factory, protocol_address(family, peer))
        except Exception:
            sock.close()
            self.deferred.errback()
            return
        if proto is None:
            sock.close()
            self.deferred.errback(
                ConnectError(
                    ConnectKind.OTHER,
                    errno.ECONNABORTED,
                    address,
                    f"connect to {address}: the protocol factory refused the connection",
                )
            )
            return
        transport = build_transport(self.reactor, sock, proto, peer, 0, family=family)
        try:
            proto.makeConnection(transport)
        except Exception:
            transport.abortConnection()
            self.deferred.errback()
            return
        self.deferred.callback(proto)


def connect(
    reactor: Reactor,
    address: Address,
    protocol_factory: ProtocolFactoryLike,
    timeout_ms: Optional[int],
) -> Deferred:
    """Connect to ``address``; the Deferred fires with the connected protocol.

    ``protocol_factory`` is an IProtocolFactory (only ``buildProtocol`` is used; ClientFactory
    callbacks such as clientConnectionFailed are not) or a plain callable returning a
    protocol. The protocol's connectionMade has run when the Deferred fires. Failures are
    :class:`ConnectError`. ``timeout_ms`` bounds a TCP connect in progress (``None`` or 0: no
    limit); AF_UNIX connects complete or fail at once. Cancelling the Deferred closes the
    socket and cancels the timer. Host names in TCP addresses are resolved synchronously;
    the config is expected to hold IP literals.
    """
    return _ConnectAttempt(reactor, address, protocol_factory, timeout_ms).start()
