"""Wiring: a frozen Config + a reactor -> one twistd MultiService (listeners, stats socket).

``privilegedStartService`` binds every listener (frontends and stats sockets; every bind
error is reported, then start-up aborts), raises the open-file limit and fixes the global
maxconn (limits.apply_fd_budget: configured, or derived from the limit), then drops privileges to the config's
user/group unless twistd's own ``-u/-g`` will; ``startService`` starts accepting and logs
the effective maxconn and what is not active yet; ``stopService`` closes the listeners, unlinking only the socket
files that are still ours.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional, Tuple

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger

from .admin.protocol import StatsFactory
from .config.model import Bind, Config, LogTarget, Proxy
from .errors import BindError, UdsProxyError
from .http.frontend import HTTPContext, HTTPFactory
from .http.upstream import Pools
from .limits import AcceptLimit, FdBudget, NofileLimit, apply_fd_budget, reserved_fds
from .log.targets import LogSink, log_event
from .net.listen import Listener, bind_socket
from .net.perms import SocketPermsWatch
from .privileges import drop_privileges, twistd_sets_ids
from .runtime import Runtime
from .sweeper import IdleSweeper
from .tcp import TCPContext, TCPFactory

log = Logger()

# Backlog when neither the frontend nor the global section sets maxconn: a unix backlog
# that is too short makes clients fail with EAGAIN instead of waiting (puma #1449).
DEFAULT_BACKLOG = 4096


class StartupError(UdsProxyError):
    """The process cannot start: every listener error, each naming its address and fix."""


def backlog_for(frontend: Optional[Proxy], config: Config) -> int:
    """HAProxy: ``backlog`` defaults to the frontend's maxconn (then the global one)."""
    if frontend is not None:
        if frontend.backlog:
            return frontend.backlog
        if frontend.maxconn:
            return frontend.maxconn
    return config.global_.maxconn or DEFAULT_BACKLOG


class ListenerSpec:
    """One address to bind, the factory that will serve it, and the limits over it."""

    def __init__(self, bind: Bind, factory: Any, backlog: int, label: str) -> None:
        self.bind = bind
        self.factory = factory
        self.backlog = backlog
        self.label = label
        self.limits: List[AcceptLimit] = []
        self.listener: Optional[Listener] = None


class ProxyService(Service):
    """Owns the runtime state and the listeners of one config."""

    def __init__(
        self,
        config: Config,
        reactor: Any,
        argv: Optional[List[str]] = None,
        nofile: Optional[NofileLimit] = None,
    ) -> None:
        self.setName("udsproxy")
        self.config = config
        self.reactor = reactor
        self.argv = list(sys.argv if argv is None else argv)
        self.nofile = nofile
        self.budget: Optional[FdBudget] = None
        self.budget_notes: List[str] = []
        self.runtime = Runtime(config, reactor)
        self.sinks: Dict[Tuple[LogTarget, ...], LogSink] = {}
        self.sweeper = IdleSweeper(reactor, shortest_timeout(config))
        self.global_limit = AcceptLimit("global", config.global_.maxconn)
        # Stats clients are not subject to the global maxconn (HAProxy's CLI listeners are
        # "unlimited"), so an operator can still connect when the proxy is full.
        self.stats_limit = AcceptLimit("stats", config.global_.stats_maxconn)
        self.pools = Pools(self.sweeper)
        self.specs: List[ListenerSpec] = []
        self.perms_watch = SocketPermsWatch(
            [s for be in config.backends for s in be.servers], self.event
        )
        self._build_specs()

    # ----------------------------------------------------------------- building
    def sink_for(self, targets: Tuple[LogTarget, ...]) -> Optional[LogSink]:
        if not targets:
            return None
        sink = self.sinks.get(targets)
        if sink is None:
            sink = self.sinks[targets] = LogSink(targets)
        return sink

    def event(self, text: str, level: str = "notice") -> None:
        """A start-up, admin or health event: twistd's log and the global log targets."""
        log_event(text, level, self.sink_for(self.config.global_.logs))

    def _build_specs(self) -> None:
        config = self.config
        for fe in config.frontends:
            be_config = config.backend_for(fe)
            backend = self.runtime.backends.get(be_config.name) if be_config else None
            counters = self.runtime.frontends[fe.name]
            fe_limit = AcceptLimit(fe.name, fe.maxconn)
            limits = [self.global_limit, fe_limit]

            def on_open(fe_limit: AcceptLimit = fe_limit) -> None:
                fe_limit.opened()
                self.global_limit.opened()

            def on_close(fe_limit: AcceptLimit = fe_limit) -> None:
                fe_limit.closed()
                self.global_limit.closed()

            for index, bind in enumerate(fe.binds, start=1):
                factory: Any
                if fe.proxy_mode == "http":
                    factory = HTTPFactory(
                        HTTPContext(
                            frontend=fe,
                            frontend_counters=counters,
                            backend=backend,
                            global_=config.global_,
                            reactor=self.reactor,
                            sweeper=self.sweeper,
                            pools=self.pools,
                            sink=self.sink_for(fe.logs),
                            listener_id=index,
                            on_open=on_open,
                            on_close=on_close,
                        )
                    )
                else:
                    factory = TCPFactory(
                        TCPContext(
                            frontend=fe,
                            frontend_counters=counters,
                            backend=backend,
                            reactor=self.reactor,
                            sweeper=self.sweeper,
                            sink=self.sink_for(fe.logs),
                            listener_id=index,
                            on_open=on_open,
                            on_close=on_close,
                        )
                    )
                spec = ListenerSpec(bind, factory, backlog_for(fe, config), f"frontend {fe.name}")
                spec.limits = limits
                self.specs.append(spec)
        for stats in config.global_.stats_sockets:
            factory = StatsFactory(
                stats.level,
                clock=self.reactor,
                timeout_ms=config.global_.stats_timeout,
                on_open=self.stats_limit.opened,
                on_close=self.stats_limit.closed,
            )
            spec = ListenerSpec(stats.bind, factory, backlog_for(None, config), "stats socket")
            spec.limits = [self.stats_limit]
            self.specs.append(spec)

    def reserved_fds(self) -> int:
        """Descriptors held besides two per proxied connection (limits.reserved_fds)."""
        g = self.config.global_
        targets = {t for p in self.config.proxies for t in p.logs} | set(g.logs)
        checks = sum(1 for be in self.config.backends for s in be.servers if s.check.enabled)
        stats = g.stats_maxconn if g.stats_sockets else 0
        return reserved_fds(len(self.specs), len(targets), checks, stats)

    def apply_fd_budget(self) -> None:
        """Raise RLIMIT_NOFILE (while still privileged) and fix the global maxconn."""
        self.budget, self.budget_notes = apply_fd_budget(
            self.config.global_.maxconn, self.reserved_fds(), self.nofile
        )
        self.global_limit.maxconn = self.budget.maxconn

    # ----------------------------------------------------------------- lifecycle
    def privilegedStartService(self) -> None:
        errors: List[str] = []
        for spec in self.specs:
            try:
                bound = bind_socket(spec.bind, spec.backlog)
            except BindError as exc:
                errors.append(f"{spec.label}: {exc}")
                continue
            spec.listener = Listener(self.reactor, spec.bind.address, bound, spec.factory)
            for limit in spec.limits:
                limit.attach(spec.listener, spec.limits)
        if errors:
            self._close_listeners()
            raise StartupError("cannot bind:\n  " + "\n  ".join(errors))
        self.apply_fd_budget()
        g = self.config.global_
        if (g.uid is not None or g.gid is not None) and not twistd_sets_ids(self.argv):
            try:
                drop_privileges(g.uid, g.gid, g.user, lambda text: self.event(text, "info"))
            except UdsProxyError:
                self._close_listeners()
                raise
        super().privilegedStartService()

    def startService(self) -> None:
        super().startService()
        for notice in self.config.notices:
            self.event(str(notice), "warning")
        if self.budget is not None:
            for note in self.budget_notes:
                self.event(note, "warning")
            if self.budget.warning:
                self.event(self.budget.warning, "warning")
            self.event(self.budget.describe(), "notice")
        for spec in self.specs:
            if spec.listener is not None:
                spec.listener.start()
                self.event(f"{spec.label}: listening on {spec.bind.address}", "info")
        self.perms_watch.check_all()

    def stopService(self) -> Deferred:
        super().stopService()
        self.pools.close_all()
        return self._close_listeners()

    def _close_listeners(self) -> Deferred:
        stops = []
        for spec in self.specs:
            if spec.listener is not None:
                stops.append(spec.listener.stop(unlink=True))
                spec.listener = None
        for sink in self.sinks.values():
            sink.close()
        return DeferredList(stops)


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


def build_service(config: Config, reactor: Any) -> MultiService:
    """The whole process for one config, as one MultiService for twistd."""
    top = MultiService()
    ProxyService(config, reactor).setServiceParent(top)
    return top
