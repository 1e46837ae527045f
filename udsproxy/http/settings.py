"""What one frontend/backend pair means for HTTP: limits, timeouts, reuse, options, pages.

Built once per listener from the frozen config; the exchange reads plain attributes on
its hot path instead of walking config objects per request.
"""

from __future__ import annotations

from typing import FrozenSet, Optional, Tuple

from ..backend import Backend
from ..config.model import Algorithm, Global, Proxy
from ..routing import ServerRules, server_rules
from ..stream import resolve_timeouts
from .actions import ResponseRules, SectionRules, response_sections
from .hashkey import HashKey, make_hash_key
from .headers import ForwardRule
from .pages import ErrorPages


def _either(frontend: Proxy, backend: Optional[Proxy], option: str) -> bool:
    return frontend.has_option(option) or (backend is not None and backend.has_option(option))


class HTTPSettings:
    """The HTTP behaviour of one frontend and the backend it sends to."""

    def __init__(self, frontend: Proxy, backend: Optional[Proxy], global_: Global) -> None:
        self.head_limit = global_.bufsize - global_.maxrewrite
        self.maxhdr = global_.http_maxhdr
        # After an Upgrade (WebSocket) the tunnel's timeouts apply, as in TCP mode.
        self.timeouts = t = resolve_timeouts(frontend, backend)
        # Read on every request: plain attributes.
        self.client_timeout = t.client
        self.server_timeout = t.server
        self.request_timeout = t.http_request
        self.keep_alive_timeout = t.keep_alive
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
        # unique-id-header: the request's ID goes to the server in this field.
        header = frontend.unique_id_header
        self.unique_id_header: Optional[Tuple[bytes, bytes]] = (
            (header.encode("latin-1"), header.lower().encode("latin-1"))
            if header is not None and frontend.unique_id_format is not None
            else None
        )
        self.pages = ErrorPages(
            frontend.errorfiles, backend.errorfiles if backend is not None else ()
        )
        # http-request/redirect/http-response rules: the frontend's run before routing,
        # the backend's after it (a listen section's once); responses backend first.
        self.frontend_rules = SectionRules.of(frontend)
        same = (
            backend is not None
            and backend.kind == frontend.kind == "listen"
            and (backend.name == frontend.name)
        )
        self.backend_rules = None if same else SectionRules.of(backend)
        self.response_rules: Optional[ResponseRules] = response_sections(
            self.frontend_rules, self.backend_rules
        )
        self.keep: FrozenSet[bytes] = frozenset().union(
            *(r.added for r in (self.frontend_rules, self.backend_rules) if r is not None)
        )


class Route:
    """Where ``use_backend`` sends a request: the backend, the HTTP settings of the
    frontend/backend pair, and the backend's ``use-server`` rules (None: none)."""

    __slots__ = ("backend", "settings", "servers")

    def __init__(self, backend: Optional[Backend], settings: HTTPSettings) -> None:
        self.backend = backend
        self.settings = settings
        self.servers: Optional[ServerRules] = (
            server_rules(backend.proxy.use_servers, backend.servers)
            if backend is not None
            else None
        )
