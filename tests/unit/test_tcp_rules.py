"""TCP mode rules in memory: tcp-request connection/content, inspect-delay, routing."""

from __future__ import annotations

import textwrap
from typing import Any, List, Optional, Tuple

from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.task import Clock

from tests.unit.test_tcp_session import FakeConnector, Transport, accepted
from udsproxy.backend import build_backends
from udsproxy.config.parser import parse_text
from udsproxy.runtime import Runtime
from udsproxy.sweeper import IdleSweeper
from udsproxy.tcp import ClientSide, Phase, TCPContext, TCPSession

LAN = IPv4Address("TCP", "10.0.0.5", 4000)
WAN = IPv4Address("TCP", "198.51.100.7", 4000)

BASE = """
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
"""


class Setup:
    def __init__(self, cfg: str, connects: int = 5) -> None:
        config = parse_text(textwrap.dedent(BASE) + textwrap.dedent(cfg), "t.cfg", {})
        self.clock = Clock()
        self.runtime = Runtime(config, self.clock)
        backends = build_backends(self.runtime)
        fe = config.frontends[0]
        be = config.backend_for(fe)
        self.connector = FakeConnector([accepted] * connects)
        self.ctx = TCPContext(
            frontend=fe,
            frontend_counters=self.runtime.frontends[fe.name],
            backend=backends[be.name] if be is not None else None,
            reactor=self.clock,
            sweeper=IdleSweeper(self.clock, 1000),
            sink=None,
            listener_id=1,
            connector=self.connector,
            backends=backends,
        )

    def open(self, peer: Any = LAN, port: int = 8443) -> Tuple[ClientSide, Transport]:
        client = ClientSide(self.ctx)
        transport = Transport(peer)
        transport.hostAddr = (
            IPv4Address("TCP", "127.0.0.1", port)
            if isinstance(peer, IPv4Address)
            else UNIXAddress(None)
        )
        transport.protocol = client
        client.makeConnection(transport)
        return client, transport

    def server_of(self, client: ClientSide) -> Optional[str]:
        s = client.session
        return s.target.name if s is not None and s.target is not None else None


def test_connection_reject_makes_no_session() -> None:
    """tcp-request connection reject: closed at accept, no session, counted in dcon."""
    s = Setup(
        """
        listen l
            bind :1
            tcp-request connection reject unless { src 10.0.0.0/8 }
            server a /a.sock
        """
    )
    client, transport = s.open(WAN)
    assert client.session is None and transport.disconnecting
    client.dataReceived(b"ignored")  # whatever was already read goes nowhere
    counters = s.runtime.frontends["l"]
    assert counters.dcon == 1 and counters.stot == 0 and s.connector.calls == []
    client, transport = s.open(LAN)
    assert s.server_of(client) == "a" and counters.stot == 1


def test_inspect_waits_for_enough_data_then_accepts() -> None:
    """A rule over req.len waits while data may still come; the held bytes reach the server."""
    s = Setup(
        """
        listen l
            bind :1
            tcp-request inspect-delay 5s
            tcp-request content accept if { req.len ge 4 }
            tcp-request content reject
            server a /a.sock
        """
    )
    client, transport = s.open()
    session = client.session
    assert isinstance(session, TCPSession)
    assert session.phase is Phase.INSPECT and s.connector.calls == []
    client.dataReceived(b"ab")
    assert session.phase is Phase.INSPECT and s.connector.calls == []
    client.dataReceived(b"cd")
    assert session.phase is Phase.TUNNEL and s.connector.calls == ["/a.sock"]
    assert session.server_t.value() == b"abcd"
    assert session.inspect_timer is None  # cancelled once decided


def test_inspect_reads_the_held_bytes_in_place() -> None:
    """Chunks held during inspection grow one buffer the rules read without a join per
    chunk (linear work); once decided the rules keep a snapshot and the server gets it all."""
    s = Setup(
        """
        listen l
            bind :1
            tcp-request inspect-delay 5s
            tcp-request content accept if { req.len ge 5000 } { req.payload(0,2) -m bin 4142 }
            server a /a.sock
        """
    )
    client, transport = s.open()
    session = client.session
    assert isinstance(session, TCPSession) and session.rules is not None
    data = b"AB" + bytes(range(256)) * 20
    for i in range(4999):
        client.dataReceived(data[i : i + 1])
    assert session.phase is Phase.INSPECT
    assert session.rules.payload is session.held  # no copy made per chunk
    client.dataReceived(data[4999:])
    assert session.phase is Phase.TUNNEL and session.server_t.value() == data
    payload = session.rules.payload
    assert type(payload) is bytes and payload == data and not session.held


def test_inspect_delay_expiry_rejects_short_data() -> None:
    """When inspect-delay ends the contents are definitive: the reject rule applies (PR)."""
    s = Setup(
        """
        listen l
            bind :1
            tcp-request inspect-delay 2s
            tcp-request content accept if { req.len ge 4 }
            tcp-request content reject
            server a /a.sock
        """
    )
    client, transport = s.open()
    client.dataReceived(b"ab")
    s.clock.advance(1.9)
    assert not transport.disconnecting
    s.clock.advance(0.2)
    assert transport.disconnecting and s.connector.calls == []
    assert client.session is not None and client.session.flags == "PR"
    assert s.runtime.frontends["l"].dreq == 1


def test_client_fin_makes_contents_definitive() -> None:
    """A client that closes its side during inspection gets the final verdict at once."""
    s = Setup(
        """
        listen l
            bind :1
            tcp-request inspect-delay 10s
            tcp-request content accept if { req.len ge 4 }
            tcp-request content reject
            server a /a.sock
        """
    )
    client, transport = s.open()
    client.dataReceived(b"ab")
    assert not transport.disconnecting  # more may come: the first rule waits
    client.readConnectionLost()
    assert transport.disconnecting and s.connector.calls == []


def test_route_by_source_port_and_payload() -> None:
    """use_backend in mode tcp: by src, by dst_port, by the first bytes (req.payload)."""
    cfg = """
        frontend fe
            bind :1
            tcp-request inspect-delay 5s
            tcp-request content accept if { req.len gt 0 }
            use_backend lan if { src 10.0.0.0/8 } { dst_port 8443 }
            use_backend ssh if { req.payload(0,4) -m bin 5353482d }
            default_backend web
        backend web
            server w /w.sock
        backend lan
            server l /l.sock
        backend ssh
            server s /s.sock
        """
    cases = [(LAN, 8443, b"GET /", "l"), (LAN, 80, b"GET /", "w"), (WAN, 8443, b"SSH-2.0", "s")]
    for peer, port, data, server in cases:
        s = Setup(cfg)
        client, _ = s.open(peer, port)
        assert s.connector.calls == []  # waiting for the first bytes
        client.dataReceived(data)
        assert s.server_of(client) == server, (peer, port, data)


def test_a_complete_payload_that_does_not_match_decides_at_once() -> None:
    """A req.payload(0,4) rule that fails on its 4 bytes does not wait for inspect-delay (as
    HAProxy): the next rules decide with the data received so far."""
    s = Setup(
        """
        listen l
            bind :1
            tcp-request inspect-delay 10s
            tcp-request content reject if { req.payload(0,4) -m bin 5353482d }
            tcp-request content accept if { req.len gt 0 }
            server a /a.sock
        """
    )
    client, transport = s.open()
    session = client.session
    assert isinstance(session, TCPSession)
    client.dataReceived(b"GE")
    assert session.phase is Phase.INSPECT and s.connector.calls == []
    client.dataReceived(b"T /")
    assert session.phase is Phase.TUNNEL and s.connector.calls == ["/a.sock"]
    assert session.inspect_timer is None and not transport.disconnecting


def test_matching_rule_decides_without_waiting() -> None:
    """A rule whose condition already holds acts at once (only failures may wait)."""
    s = Setup(
        """
        listen l
            bind :1
            tcp-request inspect-delay 10s
            tcp-request content reject if { req.len lt 4 }
            server a /a.sock
        """
    )
    client, transport = s.open()
    assert transport.disconnecting and s.connector.calls == []


def test_no_inspect_delay_decides_at_once() -> None:
    """Without inspect-delay the rules see what arrived at accept (nothing) and decide."""
    s = Setup(
        """
        listen l
            bind :1
            tcp-request content reject if { req.len eq 0 }
            server a /a.sock
        """
    )
    client, transport = s.open()
    assert transport.disconnecting and s.connector.calls == []


def test_unix_client_routes_on_unix_src() -> None:
    """A unix-socket client: src is 'unix', IP patterns do not match it, nothing crashes."""
    s = Setup(
        """
        frontend fe
            bind :1
            use_backend lan if { src 10.0.0.0/8 }
            default_backend web
        backend web
            server w /w.sock
        backend lan
            server l /l.sock
        """
    )
    client, _ = s.open(UNIXAddress(None))
    assert s.server_of(client) == "w"


def test_use_server_in_tcp() -> None:
    """use-server works in TCP mode too."""
    s = Setup(
        """
        listen l
            bind :1
            use-server b if { src 10.0.0.0/8 }
            server a /a.sock
            server b /b.sock
        """
    )
    names: List[Optional[str]] = []
    for _ in range(3):
        client, _ = s.open(LAN)
        names.append(s.server_of(client))
    assert names == ["b", "b", "b"]
