"""What one frontend/backend pair means for HTTP: limits, timeouts, reuse, options, pages.

Built once per listener from the frozen config; the exchange reads plain attributes on
its hot path instead of walking config objects per request.
"""

from __future__ import annotations

from typing import Optional, Sequence

from ..config.model import Algorithm, Global, Proxy
from .hashkey import HashKey, make_hash_key
from .headers import ForwardRule
from .pages import ErrorPages


def seconds(value: Optional[int]) -> Optional[float]:
    """Milliseconds -> seconds; None and 0 stay "no timeout" (HAProxy: infinite)."""
    return value / 1000.0 if value else None


def _either(frontend: Proxy, backend: Optional[Proxy], option: str) -> bool:
    return frontend.has_option(option) or (backend is not None and backend.has_option(option))


class HTTPSettings:
    """The HTTP behaviour of one frontend and the backend it sends to."""

    def __init__(self, frontend: Proxy, backend: Optional[Proxy], global_: Global) -> None:
        ft = frontend.timeouts
        bt = backend.timeouts if backend is not None else ft
        self.head_limit = global_.bufsize - global_.maxrewrite
        self.maxhdr = global_.http_maxhdr
        self.client_timeout = seconds(ft.client)
        self.server_timeout = seconds(bt.server)
        self.connect_timeout = bt.connect
        http_request = ft.http_request if ft.http_request is not None else ft.client
        self.request_timeout = seconds(http_request)
        self.keep_alive_timeout = seconds(ft.effective_keep_alive)
        # After an Upgrade (WebSocket): ``timeout tunnel`` when set, for both sides.
        tunnel = bt.tunnel if bt.tunnel is not None else ft.tunnel
        self.tunnel_client_timeout = seconds(tunnel) if tunnel is not None else self.client_timeout
        self.tunnel_server_timeout = seconds(tunnel) if tunnel is not None else self.server_timeout
        self.client_fin_timeout = seconds(ft.client_fin) or self.tunnel_client_timeout
        self.server_fin_timeout = seconds(bt.server_fin) or self.tunnel_server_timeout
        self.server_close = _either(frontend, backend, "http-server-close") or _either(
            frontend, backend, "httpclose"
        )
        self.client_close = _either(frontend, backend, "httpclose")
        self.abortonclose = backend is not None and backend.has_option("abortonclose")
        # balance uri|url_param|hdr(): the key each request is hashed on (None: not those).
        self.source_key = backend is not None and backend.balance.algorithm == Algorithm.SOURCE
        self.hash_key: Optional[HashKey] = (
            make_hash_key(backend.balance, global_.bufsize) if backend is not None else None
        )
        # HAProxy ignores prefer-last-server when the algorithm hashes (BE_LB_KIND_HI).
        self.prefer_last_server = (
            backend is not None
            and backend.has_option("prefer-last-server")
            and backend.balance.algorithm != Algorithm.SOURCE
            and self.hash_key is None
        )
        self.reuse = backend.http_reuse if backend is not None else "safe"
        # HAProxy: the backend's forwardfor wins over the frontend's.
        ff = (backend.forwardfor if backend is not None else None) or frontend.forwardfor
        self.forwardfor: Optional[ForwardRule] = ForwardRule(ff) if ff is not None else None
        self.httplog = frontend.has_option("httplog")
        self.tcplog = frontend.has_option("tcplog")
        self.dontlognull = frontend.has_option("dontlognull")
        self.pages = ErrorPages(
            frontend.errorfiles, backend.errorfiles if backend is not None else ()
        )

    def shortest_timeout(self) -> Optional[float]:
        """The shortest timeout in seconds, for the sweeper's tick."""
        values: Sequence[Optional[float]] = (
            self.client_timeout,
            self.server_timeout,
            self.request_timeout,
            self.keep_alive_timeout,
            self.tunnel_client_timeout,
            self.tunnel_server_timeout,
        )
        present = [v for v in values if v]
        return min(present) if present else None
