"""Reloading the config in place (SIGHUP, SIGUSR2): a new generation on the same listeners.

One reload, in order; any failure before the swap leaves the running generation exactly
as it was (and never affects the next reload):

1. read and parse the file off the reactor thread (host names resolve there); every error
   is logged;
2. refuse what a running process cannot take: another ``user``/``group`` (privileges are
   dropped), or a new socket owner while not root;
3. build the new generation and carry the server states over (:func:`carry_servers`);
4. bind every new listener (``Process.bind``), and for a unix socket file whose owner or
   mode changed, a new socket at ``<path>.<pid>.tmp`` with its owner and mode; if one
   fails, those just made are closed (temporary files removed) and each failure is
   logged, naming the listener — a port below 1024 or a directory we may not write once
   privileges are dropped fail here;
5. swap (``Process.attach``): unchanged listeners keep their sockets (no refused
   connection), their factory becomes the new generation's, a changed backlog is set in
   place (listen() again); each staged socket is renamed over its path in one step and
   the socket it replaces keeps accepting a moment, then accepts what is queued on it and
   closes (no refused connection either); listeners the file no longer names are closed;
   the old generation's checks stop and the new one's start;
6. idle pooled connections follow unchanged servers and are closed for removed or changed
   ones; streams queued in a backend the file no longer has get a 503.

Connections keep the generation they started with while a request or a tunnel is in
flight: in-flight requests finish where they are. Between two requests a keep-alive HTTP
client moves to the new generation's context on the same listener
(``HTTPContext.successor``), so its next request follows the new routing.

Identity of a server is (backend, name, address). An unchanged server keeps its health,
its check results, an admin state set by a command (maint, drain) and its runtime weight
unless the configured weight changed; servers added with ``add server`` are dropped
unless the file has them.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure

from .config.model import Config
from .config.parser import parse_file
from .errors import ConfigErrors, UdsProxyError
from .generation import Generation
from .http.frontend import HTTPContext
from .notify import Notifier
from .queue import NO_SERVER
from .runtime import MAINT, Change, Runtime, ServerChange, ServerState

Moves = Dict[ServerState, Optional[ServerState]]


class ReloadRefused(UdsProxyError):
    """A valid config the running process cannot take; ``errors`` lists each reason."""

    def __init__(self, errors: List[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


# ---------------------------------------------------------------------------------------
# Pure parts


def carry_health(old: ServerState, new: ServerState) -> None:
    """The check counter and results, mapped onto the new rise/fall."""
    new.op_up = old.op_up
    if old.health >= old.rise:
        new.health = new.rise + min(old.health - old.rise, new.fall - 1)
    else:
        new.health = min(old.health, new.rise - 1)
    new.stopping = old.stopping
    new.ramp = old.ramp
    new.check_status = old.check_status
    new.check_code = old.check_code
    new.check_duration = old.check_duration
    new.check_desc = old.check_desc
    new.last_chk = old.last_chk


def carry_server(old: ServerState, new: ServerState) -> None:
    """What an unchanged server keeps across a reload (see the module docstring)."""
    if new.checked and old.checked:
        carry_health(old, new)
    elif not new.checked and new.config.check.enabled and old.config.check.enabled:
        # Checks disabled by a command stay disabled, in the state they left the server.
        new.checked = False
        new.op_up = old.op_up
        new.health = old.health
    new.last_change = old.last_change
    new.downtime = old.downtime
    new.chkfail, new.chkdown, new.hanafail = old.chkfail, old.chkdown, old.hanafail
    if old.forced_admin:
        new.admin = old.admin
        new.forced_admin = True
        new.config_maint = False
        if new.admin == MAINT:
            new.op_up = False
            new.health = 0
    if old.uweight != old.iweight and new.iweight == old.iweight:
        new.uweight = old.uweight
    if old.maxconn != old.config.maxconn and new.config.maxconn == old.config.maxconn:
        new.maxconn = old.maxconn
    new._update_eweight()
    new.backend.server_changed(ServerChange(new, Change.WEIGHT, None, new.eweight))


def carry_servers(old: Runtime, new: Runtime) -> Moves:
    """Carry every unchanged server's state from ``old`` to ``new``; for each old server,
    its successor (None: removed or changed)."""
    moves: Moves = {}
    for name, old_be in old.backends.items():
        new_be = new.backends.get(name)
        for srv in old_be.servers:
            twin = new_be.server(srv.name) if new_be is not None else None
            if twin is None or twin.config.address != srv.config.address:
                moves[srv] = None
                continue
            carry_server(srv, twin)
            moves[srv] = twin
    return moves


def refusals(old: Config, new: Config, euid: int) -> List[str]:
    """What the running process cannot apply from ``new`` (empty: nothing)."""
    errors: List[str] = []
    og, ng = old.global_, new.global_
    if (og.uid, og.gid) != (ng.uid, ng.gid):
        errors.append("global user/group changed: privileges are already dropped, restart instead")
    if euid != 0:
        known = {(b.address, b.perms) for fe in old.frontends for b in fe.binds}
        known |= {(s.bind.address, s.bind.perms) for s in og.stats_sockets}
        binds = [(f"frontend {fe.name}", b) for fe in new.frontends for b in fe.binds]
        binds += [("stats socket", s.bind) for s in ng.stats_sockets]
        for label, bind in binds:
            perms = bind.perms
            if (perms.uid is not None or perms.gid is not None) and (
                bind.address,
                perms,
            ) not in known:
                if perms.uid is not None and perms.uid != euid:
                    errors.append(
                        f"{label}: cannot bind {bind.address}: a new owner (uid {perms.uid}) "
                        "needs root, which the process no longer has; restart instead"
                    )
    return errors


# ---------------------------------------------------------------------------------------
# The shell


def parse_off_reactor(path: str) -> Deferred:
    """Parse ``path`` in the reactor's thread pool (host names may need DNS)."""
    return deferToThread(parse_file, path)


class Reloader:
    """Runs reloads of one service, one at a time (a signal during one runs another after)."""

    def __init__(
        self,
        service: Any,
        path: str,
        notifier: Optional[Notifier] = None,
        parse: Callable[[str], Deferred] = parse_off_reactor,
        euid: Optional[Callable[[], int]] = None,
    ) -> None:
        import os

        self.service = service
        self.process = service.process
        self.path = path
        self.notifier = notifier if notifier is not None else Notifier(None)
        self.parse = parse
        self.euid = euid if euid is not None else os.geteuid
        self.running: Optional[Deferred] = None
        self.again = False
        self.failures = 0

    def __call__(self) -> Deferred:
        """Reload now, or once the reload in progress has finished."""
        if self.running is not None:
            self.again = True
            return self.running
        self.notifier.reloading()
        try:
            parsing = self.parse(self.path)
        except Exception:
            parsing = Deferred()
            parsing.errback(Failure())
        parsing.addCallback(self.apply)
        parsing.addErrback(self.failed)
        self.running = parsing
        parsing.addBoth(self._finished)
        return parsing

    def _finished(self, result: object) -> object:
        self.running = None
        if self.again and not self.process.stopping:
            self.again = False
            self()
        return result

    def failed(self, failure: Failure) -> None:
        """Log every reason; the running generation stays as it was."""
        self.failures += 1
        current = self.service.generation
        error = failure.value
        if isinstance(error, ConfigErrors):
            reasons = [str(e) for e in error.errors]
        elif isinstance(error, ReloadRefused):
            reasons = error.errors
        elif isinstance(error, UdsProxyError):  # StartupError: "cannot bind:" + one a line
            lines = [line.strip() for line in str(error).split("\n")]
            reasons = [line for line in lines if line and not line.endswith(":")]
        else:
            reasons = [f"internal error: {failure.getErrorMessage()}"]
            self.process.event(failure.getTraceback(), "err")
        for reason in reasons:
            self.process.event(f"reload failed: {reason.strip()}", "alert")
        summary = (
            f"reload failed ({len(reasons)} error{'s' if len(reasons) != 1 else ''}); "
            f"still serving generation {current.number}"
        )
        self.process.event(summary, "alert")
        self.notifier.status(f"{summary}: {reasons[0].strip()}")
        self.notifier.ready()

    def apply(self, config: Config) -> Generation:
        """Validate, build, bind, swap; raises (before the swap) if the reload cannot be."""
        process, old = self.process, self.service.generation
        if process.stopping:
            raise ReloadRefused(["the proxy is stopping"])
        errors = refusals(old.config, config, self.euid())
        if errors:
            raise ReloadRefused(errors)
        new = Generation(config, process, number=old.number + 1)
        old_budget, old_notes = process.budget, process.budget_notes
        budget = process.apply_fd_budget(new)
        if budget.error is not None:
            process.budget, process.budget_notes = old_budget, old_notes
            raise ReloadRefused([budget.error])
        try:
            process.bind(new)  # StartupError: what it bound is closed again
        except UdsProxyError:
            process.budget, process.budget_notes = old_budget, old_notes
            raise
        # Nothing can fail from here on: the swap.
        moves = carry_servers(old.runtime, new.runtime)
        before = set(process.listeners)
        rebinding = len(process.staged)
        process.attach(new)
        self.service.generation = new
        process.start_listeners(new)
        link_contexts(old, new)
        for srv, twin in moves.items():
            process.pools.retire(srv, twin)
        queued = sum(
            backend.queue.fail_all(NO_SERVER)
            for name, backend in old.backends.items()
            if name not in new.backends
        )
        for notice in config.notices:
            process.event(str(notice), "warning")
        kept = sum(1 for twin in moves.values() if twin is not None)
        added = sum(len(be.servers) for be in new.runtime.backends.values()) - kept
        closed = len(before - set(process.listeners))
        opened = len({spec.key for spec in new.specs} - {spec.key for spec in old.specs})
        summary = (
            f"reloaded {self.path}: generation {new.number}; listeners: {opened} new, "
            f"{rebinding} rebound, {closed} closed; servers: {kept} kept, {added} new, "
            f"{len(moves) - kept} removed or changed"
            + (f"; {queued} queued request(s) of removed backends answered 503" if queued else "")
        )
        process.event(summary)
        self.notifier.ready(f"generation {new.number} serving")
        return new


def link_contexts(old: Generation, new: Generation) -> None:
    """Each old HTTP context's successor: the new one serving the same listener."""
    by_key = {spec.key: spec.factory for spec in new.specs}
    for spec in old.specs:
        factory = by_key.get(spec.key)
        old_ctx = getattr(spec.factory, "ctx", None)
        new_ctx = getattr(factory, "ctx", None)
        if isinstance(old_ctx, HTTPContext) and isinstance(new_ctx, HTTPContext):
            old_ctx.successor = new_ctx
