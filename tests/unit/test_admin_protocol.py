"""Stats socket framing: one-shot commands, ';' lists, prompt mode, and the interim answer."""

from __future__ import annotations

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
