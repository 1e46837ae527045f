"""Log sinks: deliver session and event lines to a proxy's ``log`` targets without ever blocking.

A ``LogSink`` is built from a tuple of ``LogTarget`` (the config layer has already resolved
``log global``). Each target is a file descriptor (``stdout``, ``stderr``, ``fd@N``), a unix
datagram socket (``/dev/log`` or any path: syslog over AF_UNIX), or a UDP syslog address
(``ip[:port]``, ``udp@``, ``ipv4@``, ``ipv6@``; port 514 by default). Like HAProxy, a message
that cannot be sent right away is dropped and counted, never queued or waited for.

``log_event`` is the bridge for startup, admin and health events: they go to twistd's log
through twisted.logger and, when a sink is given, to the proxy's log targets as well.

Where twistd's own log goes decides two things (``twistd_log``, set once at start):

- under ``twistd -n`` without ``--logfile``, twistd's log *is* stdout: an event that a
  ``log stdout`` (or ``stderr``, when it is the same file) target already printed is not
  printed a second time by twistd;
- as a daemon (no ``-n``), stdout and stderr are /dev/null: ``log stdout`` / ``log stderr``
  lines go to twistd's log file instead (``--logfile``, rotated as twistd rotates it), and
  the process says so once.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import select
import socket
import time
from dataclasses import dataclass
from datetime import tzinfo
from typing import Callable, List, Optional, Sequence, Tuple, Union

from twisted.logger import Logger, LogLevel

from ..config.model import LogTarget
from .formats import FORMATS, LEVELS, level_number, syslog_frame

DEFAULT_LEN = 1024  # HAProxy's default ``len``
SYSLOG_PORT = 514
SUN_PATH_MAX = 108
DEFAULT_TAG = "udsproxy"

FD = "fd"
UNIX = "unix"
UDP = "udp"

_UNSUPPORTED = ("ring@", "tcp@", "tcp4@", "tcp6@", "uxst@", "sockpair@")
_IP_PREFIXES = ("udp@", "udp4@", "udp6@", "ipv4@", "ipv6@")
# Errors that mean "try later": the receiver is full. The message is dropped, the socket kept.
_FULL = (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.EINTR, errno.EMSGSIZE)


@dataclass(frozen=True)
class TargetAddress:
    """Where one ``log`` line sends to, parsed from its address word."""

    kind: str  # FD | UNIX | UDP
    fd: int = -1
    path: Union[str, bytes] = ""  # UNIX: a file path, or bytes for an abstract name
    host: str = ""  # UDP
    port: int = SYSLOG_PORT

    def __str__(self) -> str:
        if self.kind == FD:
            return f"fd@{self.fd}"
        if self.kind == UNIX:
            if isinstance(self.path, str):
                return self.path
            return "abns@" + self.path[1:].rstrip(b"\0").decode("utf-8", "replace")
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _split_host_port(text: str, word: str) -> Tuple[str, int]:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid log address '{word}'")
        port_text = rest[1:]
    elif text.count(":") > 1:
        # HAProxy: "an IPv6 address followed by a colon and optionally a UDP port".
        host, _, port_text = text.rpartition(":")
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise ValueError(f"log address '{word}' has no host")
    if not port_text:
        return host, SYSLOG_PORT
    if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise ValueError(f"invalid port '{port_text}' in log address '{word}'")
    return host, int(port_text)


def parse_target(word: str) -> TargetAddress:
    """Parse a ``log`` address (``stdout``, ``fd@3``, ``/dev/log``, ``udp@host:514``, ...).

    Raises ValueError for malformed or unsupported addresses (rings and stream targets).
    Pure: host names are resolved later, when a ``LogSink`` is built.
    """
    if word == "stdout":
        return TargetAddress(FD, fd=1)
    if word == "stderr":
        return TargetAddress(FD, fd=2)
    if word.startswith(_UNSUPPORTED):
        raise ValueError(f"log target '{word}' is not supported: use a datagram, UDP or fd target")
    if word.startswith("fd@"):
        num = word[3:]
        if not num.isdigit():
            raise ValueError(f"invalid file descriptor in log target '{word}'")
        return TargetAddress(FD, fd=int(num))
    if word.startswith("unix@") or word.startswith("uxdg@"):
        return TargetAddress(UNIX, path=word[5:])
    if word.startswith("/"):
        return TargetAddress(UNIX, path=word)
    if word.startswith("abns@"):
        # HAProxy pads abstract names with NULs to the whole sun_path.
        raw = word[5:].encode()
        return TargetAddress(UNIX, path=b"\0" + raw + b"\0" * (SUN_PATH_MAX - 1 - len(raw)))
    rest = word
    for prefix in _IP_PREFIXES:
        if word.startswith(prefix):
            rest = word[len(prefix) :]
            break
    host, port = _split_host_port(rest, word)
    return TargetAddress(UDP, host=host, port=port)


# -- where twistd's own log goes -----------------------------------------------------------


@dataclass
class TwistdLog:
    """How twistd was started, as far as logging is concerned (``tap.makeService`` sets it)."""

    daemon: bool = False  # no -n: fds 1 and 2 are /dev/null
    console_fds: Tuple[int, ...] = ()  # our fds that are twistd's log file (-n, no --logfile)
    logfile: str = ""  # twistd's --logfile ("" : twistd.log in the run directory)
    told: bool = False  # the daemon-mode notice was logged


twistd_log = TwistdLog()


def _same_file(fd: int, other: int) -> bool:
    try:
        a, b = os.fstat(fd), os.fstat(other)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def configure_twistd_log(nodaemon: bool, logfile: Optional[str], syslog: bool) -> None:
    """Record where twistd logs: ``-n``, ``--logfile``, ``--syslog`` of its command line."""
    twistd_log.daemon = not nodaemon
    twistd_log.logfile = logfile or ""
    if nodaemon and not syslog and logfile in (None, "", "-"):
        twistd_log.console_fds = (1, 2) if _same_file(1, 2) else (1,)
    else:
        twistd_log.console_fds = ()
    twistd_log.told = False


class _TwistdLogWriter:
    """A ``log stdout``/``stderr`` target of a daemon: its lines go to twistd's log."""

    is_fd = True
    is_twistd_log = True

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, data: bytes) -> bool:
        _session_logger.info("{line}", line=data.rstrip(b"\n").decode("utf-8", "replace"))
        return True

    def close(self) -> None:
        pass


# -- writers: one per target, each send() either delivers at once or reports a drop --------


class _FdWriter:
    """Writes to an inherited descriptor, polling first so a full pipe never blocks us."""

    is_fd = True

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.is_twistd_log = fd in twistd_log.console_fds  # read at start: see TwistdLog
        self._poll = select.poll()
        self._poll.register(fd, select.POLLOUT)

    def send(self, data: bytes) -> bool:
        # We do not set O_NONBLOCK: fds 1 and 2 are usually shared with twistd's own
        # logging and the parent shell. A zero-timeout poll tells us a pipe has at least
        # PIPE_BUF bytes free, so a log line of that size is written without blocking.
        try:
            ready = self._poll.poll(0)
        except OSError:
            return False
        if not any(ev & select.POLLOUT and not ev & select.POLLERR for _, ev in ready):
            return False
        try:
            return os.write(self.fd, data) == len(data)
        except OSError:  # EAGAIN on an already non-blocking fd, EPIPE, EBADF: drop
            return False

    def close(self) -> None:
        # The descriptor is inherited (stdout, stderr, fd@N), not ours to close.
        pass


_SockAddr = Union[str, bytes, Tuple[str, int]]


class _DgramWriter:
    """Sends datagrams to a unix or UDP syslog socket, opened lazily and reopened on error."""

    is_fd = False
    is_twistd_log = False

    def __init__(self, family: int, address: _SockAddr, connect: bool) -> None:
        self._family = family
        self._address = address
        self._connect = connect  # unix: connect, so a vanished receiver is noticed
        self._sock: Optional[socket.socket] = None

    def _open(self) -> socket.socket:
        sock = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if self._connect:
                sock.connect(self._address)
        except OSError:
            sock.close()
            raise
        return sock

    def send(self, data: bytes) -> bool:
        # Two tries: when the receiver went away (syslogd restarted) the first send fails
        # on the stale socket and the second goes to the new one.
        for _ in range(2):
            if self._sock is None:
                try:
                    self._sock = self._open()
                except OSError:
                    return False
            try:
                if self._connect:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, self._address)
                return True
            except OSError as exc:
                if exc.errno in _FULL:
                    return False
                self.close()
        return False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


_Writer = Union[_FdWriter, _DgramWriter, _TwistdLogWriter]


def _resolve_udp(host: str, port: int) -> Tuple[int, Tuple[str, int]]:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        # A host name: resolved once, when the sink is built, as HAProxy does at startup.
        try:
            info = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0]
        except OSError as exc:
            raise ValueError(f"cannot resolve log server '{host}': {exc}") from None
        return info[0], (str(info[4][0]), port)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return family, (str(ip), port)


def _make_writer(addr: TargetAddress) -> _Writer:
    if addr.kind == FD:
        if twistd_log.daemon and addr.fd in (1, 2):
            if not twistd_log.told:
                twistd_log.told = True
                where = twistd_log.logfile or "twistd.log in the run directory"
                log_event(
                    f"log {'stdout' if addr.fd == 1 else 'stderr'}: running as a daemon, "
                    f"so these log lines go to twistd's log file ({where})"
                )
            return _TwistdLogWriter(addr.fd)
        return _FdWriter(addr.fd)
    if addr.kind == UNIX:
        return _DgramWriter(socket.AF_UNIX, addr.path, connect=True)
    family, sockaddr = _resolve_udp(addr.host, addr.port)
    return _DgramWriter(family, sockaddr, connect=False)


@dataclass
class _Output:
    target: LogTarget
    address: TargetAddress
    writer: _Writer
    fmt: str
    max_level: int
    min_level: int
    max_len: int
    sent: int = 0
    dropped: int = 0


class LogSink:
    """Sends log lines to a tuple of ``LogTarget``; with no targets it writes nothing.

    ``clock`` (epoch seconds) and ``tz`` (None: local time) make the syslog headers
    deterministic in tests. ``tag``, ``pid`` and ``hostname`` fill the header fields
    (``hostname`` is HAProxy's ``log-send-hostname``; None leaves it out).
    """

    # Process-wide count of dropped messages (HAProxy's DroppedLogs in ``show info``).
    total_dropped = 0

    def __init__(
        self,
        targets: Sequence[LogTarget] = (),
        *,
        clock: Callable[[], float] = time.time,
        tz: Optional[tzinfo] = None,
        tag: str = DEFAULT_TAG,
        pid: Optional[int] = None,
        hostname: Optional[str] = None,
    ) -> None:
        self._clock = clock
        self._tz = tz
        self.tag = tag
        self.pid = os.getpid() if pid is None else pid
        self.hostname = hostname
        self._outputs: List[_Output] = []
        try:
            for target in targets:
                self._outputs.append(self._output(target))
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _output(target: LogTarget) -> _Output:
        fmt = target.format or "local"
        if fmt not in FORMATS:
            raise ValueError(f"unknown log format '{fmt}' (expected one of {', '.join(FORMATS)})")
        max_level = level_number(target.level or "debug")
        min_level = level_number(target.min_level) if target.min_level else 0
        address = parse_target(target.target)
        # ``len`` is not in the model yet; honour it once the config layer adds it.
        max_len = int(getattr(target, "length", 0) or DEFAULT_LEN)
        return _Output(target, address, _make_writer(address), fmt, max_level, min_level, max_len)

    @property
    def enabled(self) -> bool:
        """True if there is at least one target (callers may skip building lines otherwise)."""
        return bool(self._outputs)

    @property
    def sent(self) -> int:
        """Messages delivered, summed over the targets."""
        return sum(out.sent for out in self._outputs)

    @property
    def dropped(self) -> int:
        """Messages dropped (receiver full or absent), summed over the targets."""
        return sum(out.dropped for out in self._outputs)

    def session(self, line: str, level: str = "info") -> None:
        """Log a session (traffic) line, at level ``info`` like HAProxy unless a rule set
        another (``set-log-level``)."""
        self.emit(line, level)

    def event(self, text: str, level: str) -> bool:
        """Log an event (server up/down, start, stop) at its own level; True if it was
        written to a descriptor that is twistd's log too (see ``TwistdLog``)."""
        return self.emit(text, level)

    def emit(self, text: str, level: str) -> bool:
        """Send ``text`` at ``level`` to every target whose level filter lets it through;
        True if one of them is twistd's own log file (stdout under ``twistd -n``)."""
        if not self._outputs:
            return False
        on_console = False
        severity = level_number(level)
        when = self._clock()
        for out in self._outputs:
            if severity > out.max_level:
                continue
            # minlevel caps, it does not filter: "logs emitted with a more severe level
            # than this one will be capped to this level".
            capped = max(severity, out.min_level)
            framed = syslog_frame(
                out.fmt, text, facility=out.target.facility, level=LEVELS[capped],
                when=when, tag=self.tag, pid=self.pid, hostname=self.hostname, tz=self._tz,
            )  # fmt: skip
            data = framed.encode("utf-8", "replace")
            # HAProxy 2.6 keeps ``len`` bytes before the LF on sockets, one fewer on fds.
            limit = out.max_len - 1 if out.writer.is_fd else out.max_len
            if out.writer.send(data[:limit] + b"\n"):
                out.sent += 1
                on_console = on_console or out.writer.is_twistd_log
            else:
                out.dropped += 1
                LogSink.total_dropped += 1
        return on_console

    def close(self) -> None:
        """Close the sockets this sink opened (inherited descriptors stay open)."""
        for out in self._outputs:
            out.writer.close()

    def __repr__(self) -> str:
        return f"<LogSink {', '.join(str(out.address) for out in self._outputs) or 'off'}>"


# -- the twistd bridge --------------------------------------------------------------------

_TWISTED_LEVELS = {
    "emerg": LogLevel.critical,
    "alert": LogLevel.critical,
    "crit": LogLevel.critical,
    "err": LogLevel.error,
    "warning": LogLevel.warn,
    "notice": LogLevel.info,
    "info": LogLevel.info,
    "debug": LogLevel.debug,
}

_logger = Logger(namespace="udsproxy")
_session_logger = Logger(namespace="udsproxy.log")


def log_event(
    text: str,
    level: str = "notice",
    sink: Optional[LogSink] = None,
    logger: Optional[Logger] = None,
) -> None:
    """Write an event to twistd's log (twisted.logger) and, if given, to ``sink``."""
    level_number(level)  # reject unknown level names before logging anything
    if sink is not None and sink.event(text, level) and logger is None:
        return  # already on twistd's log file (log stdout under twistd -n): once is enough
    # The text goes in as a field, so braces in it are not taken as format fields.
    (logger or _logger).emit(_TWISTED_LEVELS[level], "{text}", text=text, syslog_level=level)
