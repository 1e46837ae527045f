"""The stats socket protocol: HAProxy's line-oriented CLI framing (one command, or ``prompt``).

Framing follows HAProxy's management guide §9.3: a client sends one or more commands
separated by ``;`` or newlines; in non-interactive mode the connection closes after the
reply; ``prompt`` switches to interactive mode (a ``> `` prompt, ``quit`` to leave). Each
reply ends with an empty line. A ``;`` inside a command is written ``\\;``. The commands
are the registry's (:mod:`udsproxy.admin.commands`); each client has a
:class:`~udsproxy.admin.registry.CliSession` holding its level, which ``operator`` and
``user`` may lower.

Global ``stats timeout`` closes a client idle that long (no command received, nothing
written); ``stats maxconn`` is enforced by the service, which pauses accepting on the
stats sockets while that many clients are connected (``on_open``/``on_close``). A client's
FIN (``echo 'show info' | socat - UNIX:...``) runs a last unterminated command, then the
connection closes once the reply is written: the protocol is half-close aware.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from .registry import CliSession, Level

MAX_LINE = 16384

# A command handler: (words, the client's session) -> reply (without the final empty line).
Dispatcher = Callable[[List[str], CliSession], str]


def not_configured(words: List[str], session: CliSession) -> str:
    """The reply when a factory was built without commands (tests of the framing)."""
    return f"Unknown command: '{' '.join(words)}'."


def split_commands(line: str) -> List[List[str]]:
    """A line's ``;``-separated commands as word lists; ``\\;`` is a literal ``;``."""
    commands: List[List[str]] = []
    current: List[str] = []
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and line[i + 1 : i + 2] == ";":
            current.append(";")
            i += 2
            continue
        if ch == ";":
            commands.append("".join(current).split())
            current = []
        else:
            current.append(ch)
        i += 1
    commands.append("".join(current).split())
    return [words for words in commands if words]


def _nothing() -> None:
    pass


@implementer(IHalfCloseableProtocol)
class StatsProtocol(Protocol):
    """One stats socket client."""

    def __init__(
        self,
        level: str,
        dispatch: Dispatcher,
        clock: Any = None,
        timeout: float = 0.0,
        on_open: Callable[[], None] = _nothing,
        on_close: Callable[[], None] = _nothing,
    ) -> None:
        self.session = CliSession(Level.parse(level))
        self.dispatch = dispatch
        self.buffer = b""
        self.interactive = False
        self.clock = clock  # IReactorTime; None: no idle timeout
        self.timeout = timeout  # seconds; 0: none
        self.on_open = on_open
        self.on_close = on_close
        self.idle_timer: Optional[Any] = None
        self.timed_out = False
        self.closed = False

    # -- idle timeout ---------------------------------------------------------------------
    def _arm(self) -> None:
        if self.clock is None or not self.timeout or self.closed:
            return
        if self.idle_timer is not None and self.idle_timer.active():
            self.idle_timer.reset(self.timeout)
        else:
            self.idle_timer = self.clock.callLater(self.timeout, self._timed_out)

    def _disarm(self) -> None:
        if self.idle_timer is not None and self.idle_timer.active():
            self.idle_timer.cancel()
        self.idle_timer = None

    def _timed_out(self) -> None:
        self.idle_timer = None
        if self.timed_out:
            # A reply the client never read is still queued: give up on it.
            self.transport.abortConnection()  # type: ignore[union-attr]
            return
        self.timed_out = True
        self.transport.loseConnection()  # type: ignore[union-attr]
        self._arm()

    # -- Protocol ---------------------------------------------------------------------------
    def connectionMade(self) -> None:
        self.interactive = False
        self.on_open()
        self._arm()

    def connectionLost(self, reason: Any = None) -> None:
        self._disarm()
        if not self.closed:
            self.closed = True
            self.on_close()

    def readConnectionLost(self) -> None:
        """The client sent FIN: run an unterminated last command, then close after the reply."""
        if self.buffer.strip() and not self.transport.disconnecting:  # type: ignore[union-attr]
            line, self.buffer = self.buffer, b""
            self.interactive = False
            if not self.handle_line(line.decode("utf-8", "replace").strip()):
                return
        self.transport.loseConnection()  # type: ignore[union-attr]

    def writeConnectionLost(self) -> None:
        """The client will read no more: nothing left to say."""
        self.transport.loseConnection()  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        if not self.timed_out:
            self._arm()
        self.buffer += data
        if len(self.buffer) > MAX_LINE and b"\n" not in self.buffer:
            self.transport.write(b"Command line too long.\n\n")  # type: ignore[union-attr]
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if not self.handle_line(line.decode("utf-8", "replace").strip()):
                return

    def handle_line(self, line: str) -> bool:
        """Run every ';'-separated command of a line; False when the connection closes."""
        out: List[str] = []
        for words in split_commands(line):
            if words == ["prompt"]:
                self.interactive = not self.interactive
                continue
            if words == ["quit"]:
                self.transport.loseConnection()  # type: ignore[union-attr]
                return False
            reply = self.dispatch(words, self.session).rstrip("\n")
            out.append(reply + "\n\n" if reply else "\n")
        reply = "".join(out)
        if self.interactive:
            reply += "> "
        self.transport.write(reply.encode())  # type: ignore[union-attr]
        if not self.interactive:
            self.transport.loseConnection()  # type: ignore[union-attr]
            return False
        return True


class StatsFactory(Factory):
    """Builds a StatsProtocol per client, at the socket's level.

    ``clock`` and ``timeout_ms`` give each client its idle timeout (global ``stats
    timeout``); ``on_open``/``on_close`` count the clients (global ``stats maxconn``).
    """

    noisy = False

    def __init__(
        self,
        level: str,
        dispatch: Dispatcher = not_configured,
        clock: Any = None,
        timeout_ms: int = 0,
        on_open: Callable[[], None] = _nothing,
        on_close: Callable[[], None] = _nothing,
    ) -> None:
        self.level = level
        self.dispatch = dispatch
        self.clock = clock
        self.timeout = timeout_ms / 1000.0
        self.on_open = on_open
        self.on_close = on_close

    def buildProtocol(self, addr: object) -> StatsProtocol:
        return StatsProtocol(
            self.level, self.dispatch, self.clock, self.timeout, self.on_open, self.on_close
        )
