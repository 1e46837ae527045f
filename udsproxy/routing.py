"""Routing: the backend a request (HTTP) or session (TCP) goes to, and the server rules pin.

Built once per generation from a frontend's ``use_backend`` rules and the generation's
backends; HTTP and TCP share it, each with its own per-backend payload (a *route*: the
backend and what the mode needs of it, e.g. the HTTP settings of the frontend/backend
pair). Per request it walks the compiled rules in file order — a condition is one call
into the rules engine — and the first that holds names the route; none: the default.

A computed name (``use_backend %[...]``) that names no backend of the frontend's mode is
:class:`Missing` (the caller answers 503 and logs the name). ``use-server`` rules
(:class:`ServerRules`) pin a request to a server when their condition holds and the
server is up (HAProxy skips a rule whose server is down).
"""

from __future__ import annotations

from typing import (
    Any,
    Callable,
    Dict,
    Generic,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

from twisted.internet.address import IPv4Address, IPv6Address

from .backend import Backend
from .config.model import NameFormat, Proxy, TcpAction, TcpRule, UseBackend, UseServer
from .log.targets import log_event
from .rules import MISS, PASS, ConnInfo, RuleContext, to_text
from .rules.codegen import first_match
from .runtime import ServerState

R = TypeVar("R")
Test = Callable[[RuleContext], bool]


class Missing:
    """A computed backend name that names no backend (``name`` as computed)."""

    __slots__ = ("name", "text")

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text

    def log(self, frontend: str, outcome: str, sink: Any) -> None:
        """The event line naming the backend that does not exist, and what follows."""
        log_event(
            f"frontend '{frontend}': use_backend {self.text} names backend '{self.name}', "
            f"which does not exist: {outcome}",
            "warning",
            sink,
        )


def name_function(fmt: NameFormat) -> Callable[[RuleContext], str]:
    """The function computing a name from its literal parts and samples ('' if one is missing)."""
    parts = tuple(p if isinstance(p, str) else p.fn for p in fmt.parts)
    if len(parts) == 1 and not isinstance(parts[0], str):
        only = parts[0]
        return lambda ctx: to_text(only(ctx)) or ""

    def compute(ctx: RuleContext) -> str:
        out: List[str] = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = to_text(part(ctx))
                if value is None:
                    return ""
                out.append(value)
        return "".join(out)

    return compute


class Router(Generic[R]):
    """A frontend's ``use_backend`` rules, resolved to routes.

    ``select(ctx)`` gives the route of the first rule whose condition holds, else the
    default (whose backend may be None: no backend at all); :class:`Missing` for a computed
    name that names no backend. The rules are one generated function (``codegen``).
    """

    def __init__(
        self, rules: Sequence[UseBackend], routes: Mapping[str, R], default: Optional[R]
    ) -> None:
        compiled: List[Tuple[Any, Any, bool]] = []
        for rule in rules:
            if isinstance(rule.backend, str):
                compiled.append((rule.condition, routes[rule.backend], False))
            else:
                compiled.append((rule.condition, self.resolver(rule.backend, routes), True))
        self.routes = routes
        self.default = default
        self.select: Callable[[RuleContext], Union[R, Missing, None]] = first_match(
            compiled, default
        )

    @staticmethod
    def resolver(fmt: NameFormat, routes: Mapping[str, R]) -> Callable[[RuleContext], Any]:
        compute = name_function(fmt)

        def resolve(ctx: RuleContext) -> Union[R, Missing]:
            name = compute(ctx)
            found = routes.get(name)
            return Missing(name, fmt.text) if found is None else found

        return resolve


class ServerRules:
    """A backend's ``use-server`` rules bound to its servers; ``pick(ctx)`` per request."""

    def __init__(self, rules: Sequence[UseServer], servers: Mapping[str, ServerState]) -> None:
        self.rules = tuple((rule.condition.fn, servers[rule.server]) for rule in rules)
        # (Not one generated function: a rule whose server is down is skipped, which is
        # state read per request.)

    def pick(self, ctx: RuleContext) -> Optional[ServerState]:
        for test, server in self.rules:
            if server.available and test(ctx):
                return server
        return None


def server_rules(
    rules: Sequence[UseServer], servers: Sequence[ServerState]
) -> Optional[ServerRules]:
    if not rules:
        return None
    return ServerRules(rules, {s.name: s for s in servers})


class TcpVerdict:
    """What ``tcp-request`` rules decided: accept, reject, or wait for more data."""

    ACCEPT = "accept"
    REJECT = "reject"
    WAIT = "wait"


def connection_verdict(rules: Sequence[Tuple[Optional[Test], bool]], ctx: RuleContext) -> bool:
    """``tcp-request connection`` rules: True to accept (the first matching rule decides;
    none: accept)."""
    for test, accept in rules:
        if test is None or test(ctx):
            return accept
    return True


def compile_connection_rules(rules: Sequence[TcpRule]) -> Tuple[Tuple[Optional[Test], bool], ...]:
    return tuple(
        (r.condition.fn if r.condition is not None else None, r.action == TcpAction.ACCEPT)
        for r in rules
    )


def content_verdict(rules: Sequence[TcpRule], ctx: RuleContext) -> str:
    """``tcp-request content`` rules on the data received so far (``ctx.payload``; ``ctx.final``
    once no more can come): a rule whose condition cannot decide yet makes them wait."""
    for rule in rules:
        cond = rule.condition
        if cond is None:
            result = PASS
        else:
            result = cond.eval3(ctx)
            if result == MISS:
                return TcpVerdict.WAIT
        if result == PASS:
            return TcpVerdict.ACCEPT if rule.action == TcpAction.ACCEPT else TcpVerdict.REJECT
    return TcpVerdict.ACCEPT


def make_router(
    frontend: Proxy,
    backends: Optional[Mapping[str, Backend]],
    route_to: Callable[[Backend], Optional[R]],
    default: R,
) -> Optional[Router[R]]:
    """The frontend's router over the generation's ``backends`` (``route_to``: the route
    to one, None for a backend of another mode); None without use_backend rules."""
    if not frontend.use_backends or backends is None:
        return None
    routes: Dict[str, R] = {}
    for name, backend in backends.items():
        route = route_to(backend)
        if route is not None:
            routes[name] = route
    return Router(frontend.use_backends, routes, default)


def connection_info(transport: Any, frontend: str, listener_id: int) -> ConnInfo:
    """A client connection as rules see it (``src``/``dst`` None for unix sockets)."""
    peer, host = transport.getPeer(), transport.getHost()
    remote = isinstance(peer, (IPv4Address, IPv6Address))
    local = isinstance(host, (IPv4Address, IPv6Address))
    return ConnInfo(
        peer.host if remote else None,
        peer.port if remote else 0,
        host.host if local else None,
        host.port if local else 0,
        frontend,
        listener_id,
    )
