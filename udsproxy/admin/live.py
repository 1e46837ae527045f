"""The stats socket's view of live streams: TCP sessions and HTTP clients as LiveStreams.

The shell side of ``show sess`` and ``shutdown sessions server``: it reads the sets the
data path keeps (``TCPContext.sessions``, ``HTTPContext.clients``) and kills a stream by
aborting its transports, with HAProxy's ``K`` termination flag (killed by an admin).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, List, Optional, Tuple

from twisted.internet.address import IPv4Address, IPv6Address

from ..runtime import ServerState
from .commands import LiveStream


def _proto_and_source(peer: Any) -> Tuple[str, Optional[str]]:
    if isinstance(peer, IPv4Address):
        return "tcpv4", f"{peer.host}:{peer.port}"
    if isinstance(peer, IPv6Address):
        return "tcpv6", f"[{peer.host}]:{peer.port}"
    return "unix_stream", None


class TCPStream(LiveStream):
    """A TCP-mode session."""

    def __init__(self, session: Any) -> None:
        ctx = session.ctx
        self.session = session
        self.ident = id(session)
        self.proto, source = _proto_and_source(session.peer)
        self.source = source or f"unix:{ctx.listener_id}"
        self.frontend = ctx.frontend.name
        backend = session.backend
        self.backend = backend.name if backend is not None else None
        self.server: Optional[ServerState] = session.target
        self.started = session.accepted

    def kill(self) -> None:
        phase = "D" if self.session.server_t is not None else "C"
        self.session.abort("K" + phase)


class HTTPStream(LiveStream):
    """An HTTP client connection; its server is the current exchange's."""

    def __init__(self, client: Any) -> None:
        ctx = client.ctx
        self.client = client
        self.ident = id(client)
        self.proto = "unix_stream" if client.client_ip is None else "tcpv4"
        self.source = client.peer_label()
        self.frontend = ctx.frontend.name
        ex = client.exchange
        backend = ex.backend if ex is not None else ctx.backend
        self.backend = backend.name if backend is not None else None
        self.server = ex.server if ex is not None else None
        self.started = ex.started if ex is not None else client.accepted

    def kill(self) -> None:
        ex = self.client.exchange
        if ex is not None and ex.flags == "--":
            ex.flags = "KD" if ex.status is not None else "KH"
        self.client.abort()


class Streams:
    """Every live stream of a generation's contexts."""

    def __init__(self) -> None:
        self.tcp: List[Any] = []  # TCPContexts
        self.http: List[Any] = []  # HTTPContexts

    def __call__(self) -> Iterable[LiveStream]:
        return list(self._all())

    def _all(self) -> Iterator[LiveStream]:
        for ctx in self.tcp:
            for session in list(ctx.sessions):
                yield TCPStream(session)
        for hctx in self.http:
            for client in list(hctx.clients):
                yield HTTPStream(client)
