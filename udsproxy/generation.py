"""One config generation: the Runtime, contexts and factories a frozen Config builds.

A generation is everything that follows from one config and is replaced whole when the
config changes: the mutable ``Runtime`` (server states and counters), the backend cores
built on it (balancer and queue per backend, :mod:`udsproxy.backend`), one TCP or HTTP
context and factory per ``bind`` line, a stats factory per ``stats socket``, and the
settings they read. It owns no socket: the process (``process.Process``) holds the
listeners, log sinks, sweeper, pools and accept limits, and *attaching* a generation
gives each listener that generation's factory. Connections accepted before a later
generation is attached keep the factory and context that built them, so each connection
finishes on the generation it started with.

Building a generation has no side effect on the process beyond creating (never changing)
the per-frontend accept limits it will use: limits are keyed by frontend name and their
ceilings are set on attach, so building generation 2 while generation 1 serves is safe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from . import __version__
from .admin.commands import AdminContext, dispatch
from .admin.live import Streams
from .admin.protocol import StatsFactory
from .admin.stat import ProcessInfo
from .backend import Backend, build_backends
from .config.model import Address, Bind, Config, Proxy
from .health.checker import HealthChecks
from .http.frontend import HTTPContext, HTTPFactory
from .limits import AcceptLimit, reserved_fds
from .net.listen import Listener
from .runtime import Runtime
from .tcp import TCPContext, TCPFactory

if TYPE_CHECKING:
    from .process import Process

# Backlog when neither the frontend nor the global section sets maxconn: a unix backlog
# that is too short makes clients fail with EAGAIN instead of waiting (puma #1449).
DEFAULT_BACKLOG = 4096

ListenerKey = Tuple[Address, int]  # the address and its occurrence among the config's binds


def backlog_for(frontend: Optional[Proxy], config: Config) -> int:
    """HAProxy: ``backlog`` defaults to the frontend's maxconn (then the global one)."""
    if frontend is not None:
        if frontend.backlog:
            return frontend.backlog
        if frontend.maxconn:
            return frontend.maxconn
    return config.global_.maxconn or DEFAULT_BACKLOG


def shortest_timeout(config: Config) -> Optional[int]:
    """The shortest idle timeout any proxy uses: it sets the sweeper's tick."""
    values: List[int] = []
    for p in config.proxies:
        t = p.timeouts
        for value in (
            t.client,
            t.server,
            t.tunnel,
            t.client_fin,
            t.server_fin,
            t.http_request,
            t.http_keep_alive,
        ):
            if value:
                values.append(value)
    for be in config.backends:
        values.extend(s.pool_purge_delay for s in be.servers if s.pool_purge_delay)
    return min(values) if values else None


class ListenerSpec:
    """One address to listen on, the factory that serves it, and the limits over it.

    ``key`` names the process listener it wants (equal configs give equal keys);
    ``listener`` is that listener once the generation is attached.
    """

    def __init__(
        self, bind: Bind, factory: Any, backlog: int, label: str, key: ListenerKey
    ) -> None:
        self.bind = bind
        self.factory = factory
        self.backlog = backlog
        self.label = label
        self.key = key
        self.limits: List[AcceptLimit] = []
        self.listener: Optional[Listener] = None


class Generation:
    """The runtime state, contexts and listener specs of one config."""

    def __init__(self, config: Config, process: Process, number: int = 1) -> None:
        self.config = config
        self.number = number
        self.runtime = Runtime(config, process.reactor)
        self.backends: Dict[str, Backend] = build_backends(self.runtime)
        self.health = HealthChecks(
            self.runtime,
            process.reactor,
            lambda text, level, proxy: process.event(text, level, proxy.logs),
            on_probe=lambda srv: process.check_socket_perms(srv.config),
        )
        self.specs: List[ListenerSpec] = []
        self._seen: dict[Address, int] = {}
        self.streams = Streams()  # every context's live streams, for the stats socket
        self._build(process)
        self.admin = AdminContext(
            runtime=self.runtime,
            backends=self.backends,
            clock=process.reactor,
            process=process_info(config, process, len(self.specs)),
            streams=self.streams,
            health=self.health,
        )

    def has_connections(self) -> bool:
        """Whether a client connection accepted by this generation is still open."""
        return any(ctx.clients for ctx in self.streams.http) or any(
            ctx.sessions for ctx in self.streams.tcp
        )

    def shortest_timeout(self) -> Optional[int]:
        """The shortest idle timeout of this config (ms): the sweeper's precision."""
        return shortest_timeout(self.config)

    def dispatch(self, words: List[str], session: Any) -> str:
        """Run one stats socket command on this generation."""
        return dispatch(self.admin, words, session)

    def frontend_maxconns(self) -> List[Tuple[str, int]]:
        """(frontend name, maxconn) for each frontend: the ceilings set on attach."""
        return [(fe.name, fe.maxconn or 0) for fe in self.config.frontends]

    def reserved_fds(self) -> int:
        """Descriptors held besides two per proxied connection (limits.reserved_fds)."""
        g = self.config.global_
        targets = {t for p in self.config.proxies for t in p.logs} | set(g.logs)
        checks = sum(1 for be in self.config.backends for s in be.servers if s.check.enabled)
        stats = g.stats_maxconn if g.stats_sockets else 0
        return reserved_fds(len(self.specs), len(targets), checks, stats)

    # ----------------------------------------------------------------- building
    def _key(self, address: Address) -> ListenerKey:
        index = self._seen.get(address, 0)
        self._seen[address] = index + 1
        return (address, index)

    def _build(self, process: Process) -> None:
        config = self.config
        global_limit = process.global_limit
        for fe in config.frontends:
            be_config = config.backend_for(fe)
            backend = self.backends.get(be_config.name) if be_config else None
            counters = self.runtime.frontends[fe.name]
            fe_limit = process.frontend_limit(fe.name)
            limits = [global_limit, fe_limit]

            def on_open(fe_limit: AcceptLimit = fe_limit) -> None:
                fe_limit.opened()
                global_limit.opened()

            def on_close(fe_limit: AcceptLimit = fe_limit) -> None:
                fe_limit.closed()
                global_limit.closed()

            for index, bind in enumerate(fe.binds, start=1):
                factory: Any
                # What a listener's context needs in either mode.
                common: Dict[str, Any] = dict(
                    frontend=fe,
                    frontend_counters=counters,
                    backend=backend,
                    reactor=process.reactor,
                    sweeper=process.sweeper,
                    sink=process.sink_for(fe.logs),
                    listener_id=index,
                    on_open=on_open,
                    on_close=on_close,
                    connector=process.connect,
                    backends=self.backends,
                )
                if fe.proxy_mode == "http":
                    hctx = HTTPContext(global_=config.global_, pools=process.pools, **common)
                    self.streams.http.append(hctx)
                    factory = HTTPFactory(hctx)
                else:
                    tctx = TCPContext(**common)
                    self.streams.tcp.append(tctx)
                    factory = TCPFactory(tctx)
                spec = ListenerSpec(
                    bind,
                    factory,
                    backlog_for(fe, config),
                    f"frontend {fe.name}",
                    self._key(bind.address),
                )
                spec.limits = limits
                self.specs.append(spec)
        stats_limit = process.stats_limit
        for stats in config.global_.stats_sockets:
            stats_factory = StatsFactory(
                stats.level,
                self.dispatch,
                clock=process.reactor,
                timeout_ms=config.global_.stats_timeout,
                on_open=stats_limit.opened,
                on_close=stats_limit.closed,
            )
            spec = ListenerSpec(
                stats.bind,
                stats_factory,
                backlog_for(None, config),
                "stats socket",
                self._key(stats.bind.address),
            )
            spec.limits = [stats_limit]
            self.specs.append(spec)


def process_info(config: Config, process: Process, listeners: int) -> ProcessInfo:
    """What ``show info`` says of the process (read once per generation)."""
    import os
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    g = config.global_
    limit = process.global_limit.maxconn
    return ProcessInfo(
        name="udsproxy",
        version=__version__,
        release_date="",
        pid=os.getpid(),
        node=getattr(g, "node", "") or os.uname().nodename,
        ulimit_n=soft if soft != resource.RLIM_INFINITY else 0,
        maxconn=limit or g.maxconn or 0,
        listeners=listeners,
    )
