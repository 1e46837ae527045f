"""The process: what outlives a config generation — listeners, log sinks, limits, pools.

One ``Process`` lives from start to exit. It holds:

- the listeners, keyed by (address, occurrence): a later generation that binds the same
  address reuses the same listening socket (no rebind, no lost backlog) and only swaps
  its factory; a new backlog is set on it in place; a unix socket file whose owner,
  group or mode changed gets a new socket, staged at ``<path>.<pid>.tmp`` by ``bind``
  and renamed over the path by ``attach``, while the old one drains (``_replace``);
- the log sinks, keyed by their targets, shared by every generation that logs there;
- the IdleSweeper and the HTTP server connection Pools;
- the accept limits (global, stats, one per frontend name) with their current counts,
  so connections of an older generation still count against the new ceilings;
- the fd budget (RLIMIT_NOFILE raised, global maxconn fixed) and the socket-permission
  watch.

A start is ``bind(gen1)``, ``apply_fd_budget(gen1)``, ``attach(gen1)``, ``start()``. A reload
is: build generation 2, ``bind(gen2)`` (new addresses and changed socket files only,
all or nothing), ``attach(gen2)``: each
listener gets generation 2's factory and limits, listeners generation 2 no longer names
are closed, and connections already accepted stay on the generation that built them.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from .config.model import Global, LogTarget, Server
from .errors import BindError, UdsProxyError
from .http.upstream import Pools
from .limits import FDS_PER_CONN, AcceptLimit, FdBudget, NofileLimit, apply_fd_budget
from .log.targets import LogSink, log_event
from .net.activation import Activation
from .net.connect import (
    ConnectError,
    ConnectKind,
    connect,
    current_identity,
    effective_access,
)
from .net.listen import Listener, bind_socket, needs_rebind
from .net.perms import SocketPermsWatch, describe
from .privileges import drop_privileges, twistd_sets_ids
from .runtime import Change, ServerChange
from .sweeper import IdleSweeper

if TYPE_CHECKING:
    from .generation import Generation, ListenerKey, ListenerSpec


# A listener replaced by a new socket at its path (a reload changed its owner or mode) keeps
# accepting this long (seconds) before it drains what is queued on it and closes: a client
# whose connect() found the old file just before the rename is queued on the old socket.
DRAIN_AFTER_S = 0.5

# A server connect that meets EMFILE with no idle connection to close waits this long
# (seconds) for descriptors to be freed, this many times, before it fails.
EMFILE_WAIT = 0.02
EMFILE_WAITS = 50


class StartupError(UdsProxyError):
    """The process cannot start: every listener error, each naming its address and fix."""


class Process:
    """Listeners, log sinks, sweeper, pools, accept limits: what a reload keeps."""

    def __init__(
        self,
        reactor: Any,
        argv: Optional[List[str]] = None,
        nofile: Optional[NofileLimit] = None,
    ) -> None:
        self.reactor = reactor
        self.argv = list(sys.argv if argv is None else argv)
        self.nofile = nofile
        self.sinks: Dict[Tuple[LogTarget, ...], LogSink] = {}
        self.global_logs: Tuple[LogTarget, ...] = ()
        self.sweeper = IdleSweeper(reactor)  # its period is set by each attach
        self.pools = Pools(self.sweeper, self.fd_headroom)
        self.global_limit = AcceptLimit("global", None)
        # Stats clients are not subject to the global maxconn (HAProxy's CLI listeners are
        # "unlimited"), so an operator can still connect when the proxy is full.
        self.stats_limit = AcceptLimit("stats", Global().stats_maxconn)
        self.frontend_limits: Dict[str, AcceptLimit] = {}
        self.listeners: Dict[ListenerKey, Listener] = {}
        # New sockets for listeners whose owner or mode changed: bound by ``bind``, put at
        # their path by ``attach``; and the listeners they replaced, until drained.
        self.staged: Dict[ListenerKey, Listener] = {}
        self.draining: Dict[Listener, Any] = {}
        self.perms_watch = SocketPermsWatch([], self.event)
        self.generation: Optional[Generation] = None
        # Every generation attached so far whose connections may still be open (a
        # graceful stop tells each one); pruned on attach.
        self.generations: List[Generation] = []
        self.stopping = False
        self.budget: Optional[FdBudget] = None
        self.budget_notes: List[str] = []
        self.started = False
        # Sockets inherited from systemd (LISTEN_FDS), adopted by the binds naming them.
        self.activation = Activation([])

    # ----------------------------------------------------------------- shared pieces
    def sink_for(self, targets: Tuple[LogTarget, ...]) -> Optional[LogSink]:
        if not targets:
            return None
        sink = self.sinks.get(targets)
        if sink is None:
            sink = self.sinks[targets] = LogSink(targets)
        return sink

    def event(
        self, text: str, level: str = "notice", targets: Optional[Tuple[LogTarget, ...]] = None
    ) -> None:
        """A start-up, admin or health event: twistd's log and the global log targets
        (``targets``: a proxy's own log targets instead, as HAProxy logs health events)."""
        log_event(text, level, self.sink_for(targets or self.global_logs))

    def check_socket_perms(self, server: Server) -> None:
        """A health check of ``server``: verify its socket file's expected owner and mode."""
        if server in self.perms_watch.servers:
            self.perms_watch.check(server)

    def frontend_limit(self, name: str) -> AcceptLimit:
        """The accept limit of frontend ``name`` (its ceiling is set when attached)."""
        limit = self.frontend_limits.get(name)
        if limit is None:
            limit = self.frontend_limits[name] = AcceptLimit(name, None)
        return limit

    def all_limits(self) -> List[AcceptLimit]:
        return [self.global_limit, self.stats_limit, *self.frontend_limits.values()]

    # ----------------------------------------------------------------- a generation
    def bind(self, generation: Generation) -> None:
        """Bind every address of ``generation`` not listened on yet, and stage a new socket
        for each unix socket file whose owner or mode changed (``attach`` swaps it in).

        All or nothing: on any failure what this call bound is closed (staged temporary
        files removed) and StartupError lists every failure, each naming its listener.
        """
        errors: List[str] = []
        new: Dict[ListenerKey, Listener] = {}
        staged: Dict[ListenerKey, Listener] = {}
        for spec in generation.specs:
            current = self.listeners.get(spec.key)
            if current is not None and not needs_rebind(current, spec.bind):
                continue
            try:
                if current is None:
                    bound = self.activation.take(spec.bind.address)
                    if bound is None:
                        bound = bind_socket(spec.bind, spec.backlog)
                else:
                    bound = bind_socket(spec.bind, spec.backlog, replacing=current.identity)
            except BindError as exc:
                errors.append(f"{spec.label}: {exc}")
                continue
            listener = Listener(
                self.reactor, spec.bind.address, bound, spec.factory, spec.bind.perms, spec.backlog
            )
            (new if current is None else staged)[spec.key] = listener
        if errors:
            for listener in [*new.values(), *staged.values()]:
                listener.stop(unlink=True)
            raise StartupError("cannot bind:\n  " + "\n  ".join(errors))
        self.listeners.update(new)
        self.staged = staged

    def fd_headroom(self) -> int:
        """Descriptors free beyond those the connected clients may need (idle pooled
        connections included in what is free): an idle connection is kept only below it."""
        budget = self.budget
        if budget is None:
            return 1 << 30
        return budget.fd_limit - budget.reserved - FDS_PER_CONN * self.global_limit.current

    def connect(
        self,
        reactor: Any,
        address: Any,
        factory: Any,
        timeout: Optional[int],
        waits: int = EMFILE_WAITS,
    ) -> Any:
        """net.connect, except that EMFILE is not a failure while it can pass: idle pooled
        connections are closed first and the connect tried again; with none to close, it
        is tried again a little later (descriptors of connections closing this turn are
        freed on the next one), for up to EMFILE_WAITS x EMFILE_WAIT seconds. An accepted
        client is not refused because a descriptor was momentarily taken."""
        attempt = connect(reactor, address, factory, timeout)

        def again(failure: Failure) -> Any:
            error = failure.value
            if not (isinstance(error, ConnectError) and error.kind is ConnectKind.EMFILE):
                return failure
            if self.pools.reclaim(2):  # finite: each round closes idle connections
                return self.connect(reactor, address, factory, timeout, waits)
            if waits <= 0:
                return failure
            return deferLater(
                reactor, EMFILE_WAIT, self.connect, reactor, address, factory, timeout, waits - 1
            )

        attempt.addErrback(again)
        return attempt

    def apply_fd_budget(self, generation: Generation) -> FdBudget:
        """Raise RLIMIT_NOFILE (while still privileged) and compute the global maxconn."""
        frontends = [fe.maxconn for fe in generation.config.frontends]
        frontends_sum = sum(frontends) if frontends and all(frontends) else None  # type: ignore[arg-type]
        self.budget, self.budget_notes = apply_fd_budget(
            generation.config.global_.maxconn,
            generation.reserved_fds(),
            self.nofile,
            frontends_sum,
        )
        return self.budget

    def attach(self, generation: Generation) -> None:
        """Make ``generation`` serve new connections on the listeners it names.

        Every address must be bound (``bind``). Listeners it does not name are closed.
        """
        g = generation.config.global_
        self.global_logs = g.logs
        self.global_limit.maxconn = self.budget.maxconn if self.budget else (g.maxconn or 0)
        self.stats_limit.maxconn = g.stats_maxconn
        for name, maxconn in generation.frontend_maxconns():
            self.frontend_limit(name).maxconn = maxconn
        limits = self.all_limits()
        wanted: Dict[ListenerKey, Listener] = {}
        staged, self.staged = self.staged, {}
        for spec in generation.specs:
            replacement = staged.pop(spec.key, None)
            if replacement is not None:
                self._replace(spec, replacement)
            listener = self.listeners[spec.key]
            try:
                listener.relisten(spec.backlog)
            except OSError as exc:
                self.event(f"{spec.label}: cannot set backlog {spec.backlog}: {exc}", "warning")
            for limit in limits:
                limit.detach(listener)
            for limit in spec.limits:
                limit.attach(listener, spec.limits)
            listener.factory = spec.factory
            spec.listener = listener
            wanted[spec.key] = listener
            # Ceilings may have changed: pause or resume to match the counts now.
            if any(limit.full for limit in spec.limits):
                listener.pause()
            elif listener.paused:
                listener.resume()
        for key, listener in list(self.listeners.items()):
            if key not in wanted:
                del self.listeners[key]
                listener.stop(unlink=True)
        watch = SocketPermsWatch(
            [s for be in generation.config.backends for s in be.servers], self.event
        )
        watch.last = self.perms_watch.last
        self.perms_watch = watch
        for state in generation.runtime.backends.values():
            state.add_observer(self._server_changed)
        if self.generation is not None and self.generation is not generation:
            self.generation.health.stop()
        self.generation = generation
        self.generations = [g for g in self.generations if g.has_connections()]
        if generation not in self.generations:
            self.generations.append(generation)
        # The sweeper's precision follows the shortest timeout of every generation whose
        # connections it may still watch: a reload to a shorter timeout is as precise as
        # a fresh start, and one to longer timeouts does not slow the older connections.
        shortest = [t for t in (g.shortest_timeout() for g in self.generations) if t]
        self.sweeper.retune(min(shortest) if shortest else None)
        if self.started:
            generation.health.start()

    def _replace(self, spec: ListenerSpec, new: Listener) -> None:
        """Swap a staged socket in at its path; the one it replaces drains, then closes.

        The rename is one step: a client finds the old socket or the new one, never no
        socket. The old one keeps accepting (for the new generation) for DRAIN_AFTER_S,
        then accepts what is still queued on it and closes.
        """
        old = self.listeners[spec.key]
        try:
            new.install()
        except BindError as exc:  # checked when staged: only a race can get here
            new.stop(unlink=True)
            self.event(
                f"{spec.label}: {exc}; it keeps its socket with the previous owner and mode",
                "alert",
            )
            return
        self.listeners[spec.key] = new
        for limit in self.all_limits():
            limit.detach(old)
        old.factory = spec.factory
        self.draining[old] = self.reactor.callLater(
            DRAIN_AFTER_S, self._drained, old, f"{spec.label}: {spec.bind.address}"
        )
        self.event(
            f"{spec.label}: {spec.bind.address} replaced by a new socket "
            f"({describe(spec.bind.perms) or 'default owner and mode'})",
            "info",
        )

    def _drained(self, listener: Listener, label: str) -> None:
        self.draining.pop(listener, None)
        accepted = listener.drain()
        self.event(
            f"{label}: the replaced socket is closed ({accepted} connection(s) still "
            "queued on it were accepted)",
            "info",
        )

    def _stop_draining(self) -> None:
        for listener, timer in list(self.draining.items()):
            if timer.active():
                timer.cancel()
            listener.stop(unlink=True)  # its path names the new socket: left alone
        self.draining.clear()

    def start_listeners(self, generation: Generation) -> None:
        """After a reload's attach: start the listeners bound for ``generation``."""
        if not self.started:
            return
        for spec in generation.specs:
            if spec.listener is not None and not spec.listener.accepting:
                spec.listener.start()
                self.event(f"{spec.label}: listening on {spec.bind.address}", "info")

    def _server_changed(self, change: ServerChange) -> None:
        """Servers added or removed at run time: the pools and the permission watch follow."""
        if change.field is Change.ADDED:
            self.perms_watch.add(change.server.config)
        elif change.field is Change.REMOVED:
            self.pools.forget_server(change.server)
            self.perms_watch.remove(change.server.config)

    def drop_privileges(self, g: Global) -> None:
        """Apply global user/group unless twistd's own -u/-g will (privileges.py)."""
        if (g.uid is not None or g.gid is not None) and not twistd_sets_ids(self.argv):
            drop_privileges(g.uid, g.gid, g.user, lambda text: self.event(text, "info"))
            self.note_socket_files_that_stay()

    def note_socket_files_that_stay(self) -> None:
        """After the drop: our socket files in a directory the new user may not write to will
        stay after stop (as HAProxy's stats socket does; the next start replaces a stale
        one). Said once now, rather than failing silently at stop."""
        stay = sorted(
            listener.address.path
            for listener in self.listeners.values()
            if listener.identity is not None
            and not listener.inherited
            and not effective_access(os.path.dirname(listener.address.path), os.W_OK | os.X_OK)
        )
        if stay:
            self.event(
                f"socket file{'s' if len(stay) > 1 else ''} {', '.join(stay)} will stay after "
                f"stop: {current_identity().describe()} may not write to "
                f"{', '.join(sorted({os.path.dirname(path) for path in stay}))} (the next "
                "start replaces a stale socket file)",
                "info",
            )

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start accepting on every listener of the attached generation; log each."""
        self.started = True
        if self.generation is None:
            return
        self.generation.health.start()
        for spec in self.generation.specs:
            if spec.listener is not None:
                spec.listener.start()
                self.event(f"{spec.label}: listening on {spec.bind.address}", "info")
        self.perms_watch.check_all()

    def soft_stop(self) -> Deferred:
        """A graceful stop: stop accepting (closing every listener, unlinking only our own
        socket files), stop the health checks, close idle pooled connections, and have every
        generation's HTTP clients close after their current response (idle ones now).
        Fires once no client connection is left (stats socket clients do not count)."""
        self.stopping = True
        if self.generation is not None:
            self.generation.health.stop()
        for listener in self.listeners.values():
            listener.stop(unlink=True)
        self.listeners.clear()
        self._stop_draining()
        for generation in self.generations:
            for spec in generation.specs:
                spec.listener = None
            for ctx in generation.streams.http:
                ctx.soft_stop()
        self.pools.close_all()
        drained: Deferred = Deferred()
        limit = self.global_limit

        def empty() -> None:
            limit.on_empty = None
            if not drained.called:
                drained.callback(None)

        if limit.current == 0:
            empty()
        else:
            limit.on_empty = empty
        return drained

    def connections(self) -> int:
        """Client connections open now, every generation's (stats clients aside)."""
        return self.global_limit.current

    def close(self) -> Deferred:
        """Stop health checks; close pools, listeners (unlinking only our socket files), sinks."""
        if self.generation is not None:
            self.generation.health.stop()
        self.pools.close_all()
        stops = [listener.stop(unlink=True) for listener in self.listeners.values()]
        self.listeners.clear()
        for listener in self.staged.values():
            listener.stop(unlink=True)
        self.staged.clear()
        self._stop_draining()
        if self.generation is not None:
            for spec in self.generation.specs:
                spec.listener = None
        for sink in self.sinks.values():
            sink.close()
        return DeferredList(stops)
