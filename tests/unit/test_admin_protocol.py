"""Stats socket framing: one-shot commands, ';' lists, prompt mode, and the interim answer."""

from __future__ import annotations

from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from udsproxy.admin.protocol import StatsFactory


def connect() -> tuple:  # type: ignore[type-arg]
    proto = StatsFactory("admin").buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport


def test_one_command_answers_unknown_and_closes() -> None:
    """Non-interactive: the reply ends with an empty line and the connection closes."""
    proto, transport = connect()
    proto.dataReceived(b"show stat\n")
    reply = transport.value().decode()
    assert reply.startswith("Unknown command: 'show stat'.")
    assert reply.endswith("\n\n")
    assert transport.disconnecting


def test_semicolon_separates_commands() -> None:
    """'a; b' runs both commands in order."""
    proto, transport = connect()
    proto.dataReceived(b"show info; show stat\n")
    reply = transport.value().decode()
    assert reply.index("'show info'") < reply.index("'show stat'")


def test_prompt_keeps_the_connection_open() -> None:
    """After 'prompt' each reply ends with '> ' and the connection stays until 'quit'."""
    proto, transport = connect()
    proto.dataReceived(b"prompt\n")
    assert not transport.disconnecting
    proto.dataReceived(b"help\n")
    assert transport.value().decode().endswith("\n\n> ")
    assert not transport.disconnecting
    proto.dataReceived(b"quit\n")
    assert transport.disconnecting


def test_commands_split_across_reads() -> None:
    """A command arriving in pieces is handled once complete."""
    proto, transport = connect()
    proto.dataReceived(b"show ")
    assert transport.value() == b""
    proto.dataReceived(b"info\n")
    assert b"'show info'" in transport.value()


def clocked(timeout_ms: int = 10000) -> tuple:  # type: ignore[type-arg]
    clock = Clock()
    counts = {"open": 0, "close": 0}

    def opened() -> None:
        counts["open"] += 1

    def closed() -> None:
        counts["close"] += 1

    factory = StatsFactory("admin", clock=clock, timeout_ms=timeout_ms, on_open=opened)
    factory.on_close = closed
    proto = factory.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport, clock, counts


def test_idle_client_is_closed_after_stats_timeout() -> None:
    """A client silent for 'stats timeout' is closed; no timer is left once it is gone."""
    proto, transport, clock, _ = clocked(10000)
    proto.dataReceived(b"prompt\n")
    clock.advance(9.9)
    assert not transport.disconnecting
    clock.advance(0.1)
    assert transport.disconnecting
    proto.connectionLost(None)
    assert clock.getDelayedCalls() == []


def test_each_command_restarts_the_idle_timeout() -> None:
    """In prompt mode every received command restarts the idle timer."""
    proto, transport, clock, _ = clocked(10000)
    proto.dataReceived(b"prompt\n")
    for _ in range(3):
        clock.advance(8)
        proto.dataReceived(b"help\n")
    assert not transport.disconnecting
    clock.advance(10)
    assert transport.disconnecting


def test_unread_reply_is_aborted_one_timeout_after_close() -> None:
    """A client that never reads its reply is aborted a second timeout after the close."""
    proto, transport, clock, _ = clocked(1000)
    clock.advance(1)
    assert transport.disconnecting and not transport.disconnected
    clock.advance(1)
    assert transport.disconnected  # abortConnection()


def test_open_and_close_are_counted_once() -> None:
    """on_open at connection, on_close once at loss: what the stats maxconn limit counts."""
    proto, _, clock, counts = clocked()
    assert counts == {"open": 1, "close": 0}
    proto.connectionLost(None)
    proto.connectionLost(None)
    assert counts == {"open": 1, "close": 1}
    assert clock.getDelayedCalls() == []


def test_fin_runs_an_unterminated_last_command_then_closes() -> None:
    """'printf "show info" | socat': the command without newline is answered on FIN, then close."""
    proto, transport, _, _ = clocked()
    assert IHalfCloseableProtocol.providedBy(proto)
    proto.dataReceived(b"show info")
    assert transport.value() == b""
    proto.readConnectionLost()
    assert b"'show info'" in transport.value()
    assert transport.value().endswith(b"\n\n")
    assert transport.disconnecting


def test_fin_in_prompt_mode_closes_without_a_prompt_left_waiting() -> None:
    """A FIN after prompt-mode commands closes the connection (the reply already written)."""
    proto, transport, _, _ = clocked()
    proto.dataReceived(b"prompt\nhelp\n")
    proto.readConnectionLost()
    assert transport.disconnecting
