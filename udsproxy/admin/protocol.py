"""The stats socket protocol: HAProxy's line-oriented CLI framing (one command, or ``prompt``).

Framing follows HAProxy's management guide §9.3: a client sends one or more commands
separated by ``;`` or newlines; in non-interactive mode the connection closes after the
reply; ``prompt`` switches to interactive mode (a ``> `` prompt, ``quit`` to leave). Each
reply ends with an empty line. The commands themselves are not active yet: every one is
answered ``Unknown command.`` with a note, so scripts get a clear, stable answer.
"""

from __future__ import annotations

from typing import Callable, List

from twisted.internet.protocol import Factory, Protocol

MAX_LINE = 16384

# A command handler: (words, level) -> reply text (without the final empty line).
Dispatcher = Callable[[List[str], str], str]


def not_yet_active(words: List[str], level: str) -> str:
    """The reply to every command until the stats socket's commands land."""
    return (
        f"Unknown command: '{' '.join(words)}'. "
        "The stats socket commands (show stat, show info, set server ...) are not active yet "
        "in this version of udsproxy."
    )


class StatsProtocol(Protocol):
    """One stats socket client."""

    def __init__(self, level: str, dispatch: Dispatcher) -> None:
        self.level = level
        self.dispatch = dispatch
        self.buffer = b""
        self.interactive = False

    def dataReceived(self, data: bytes) -> None:
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
        for command in (c.strip() for c in line.split(";")):
            words = command.split()
            if not words:
                continue
            if words == ["prompt"]:
                self.interactive = not self.interactive
                continue
            if words == ["quit"]:
                self.transport.loseConnection()  # type: ignore[union-attr]
                return False
            out.append(self.dispatch(words, self.level).rstrip("\n") + "\n\n")
        reply = "".join(out)
        if self.interactive:
            reply += "> "
        self.transport.write(reply.encode())  # type: ignore[union-attr]
        if not self.interactive:
            self.transport.loseConnection()  # type: ignore[union-attr]
            return False
        return True

    def connectionMade(self) -> None:
        self.interactive = False


class StatsFactory(Factory):
    """Builds a StatsProtocol per client, at the socket's level."""

    noisy = False

    def __init__(self, level: str, dispatch: Dispatcher = not_yet_active) -> None:
        self.level = level
        self.dispatch = dispatch

    def buildProtocol(self, addr: object) -> StatsProtocol:
        return StatsProtocol(self.level, self.dispatch)
