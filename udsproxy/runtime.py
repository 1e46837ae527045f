"""The one mutable state: servers' health, admin state, weights, slots and every counter.

The frozen :mod:`udsproxy.config.model` says what the config file means; :class:`Runtime`
is what it has become since start: which servers are up, drained or in maintenance, their
run-time weight and maxconn, and the counters ``show stat`` reports. Health checks and
stats commands change it through the ``set_*`` methods of :class:`ServerState`; each
change is passed to the backend's balancer, wakes the backend's queue, then reaches the
observers (logging, stats), in that order.

Nothing here does I/O: time comes from an injected ``IReactorTime``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Collection, Dict, List, Optional, Tuple

from udsproxy.balance import FULL, NONE, OK, Balancer, make_balancer
from udsproxy.config.model import Config, Proxy, Server
from udsproxy.queue import BackendQueue, Ticket

# An IReactorTime (the reactor, or task.Clock in tests), typed as Any: zope interfaces do
# not type-check as protocols without the mypy-zope plugin.
Clock = Any

READY = "ready"
DRAIN = "drain"
MAINT = "maint"
ADMIN_STATES = (READY, DRAIN, MAINT)

MAX_WEIGHT = 256  # HAProxy's limit for ``weight`` and ``set weight``


@dataclass(frozen=True)
class CapturedError:
    """The last invalid request or response of a proxy, for the stats socket's ``show errors``."""

    when: float
    peer: str
    reason: str
    data: bytes  # the bytes around the error (at most CAPTURE_BYTES)
    position: int  # offset of the error in ``data``; -1 when unknown


CAPTURE_BYTES = 1024


@dataclass(frozen=True)
class ServerChange:
    """One run-time change of a server, as observers receive it."""

    server: ServerState
    field: str  # "op" | "admin" | "weight" | "maxconn"
    old: object
    new: object


Observer = Callable[[ServerChange], None]


class LoadCounters:
    """Stream counters shared by servers and backends; named as ``show stat`` columns."""

    def __init__(self) -> None:
        self.scur = 0  # streams holding a slot now
        self.smax = 0
        self.stot = 0  # streams ever granted a slot
        self.qcur = 0  # streams waiting now
        self.qmax = 0
        self.lbtot = 0  # times chosen by the load balancer
        self.econ = 0  # failed connection attempts
        self.eresp = 0  # response errors
        self.wretr = 0  # retries
        self.wredis = 0  # redispatches
        self.bin = 0
        self.bout = 0


class ServerState(LoadCounters):
    """Run-time state of one server: health, admin state, weight, slots and counters."""

    def __init__(self, config: Server, backend: BackendState, sid: int) -> None:
        super().__init__()
        self.config = config
        self.name = config.name
        self.id = sid
        self.backend = backend
        self.backup = config.backup
        self.iweight = config.weight  # as configured: 100% for ``set weight x%``
        self.uweight = config.weight  # as set at run time
        self.maxconn = config.maxconn
        self.maxqueue = config.maxqueue
        self.rise = config.check.rise
        self.fall = config.check.fall
        self.checked = config.check.enabled
        # HAProxy starts a checked server UP with health == rise: one failure marks it DOWN.
        self.health = self.rise
        self.admin = MAINT if config.disabled else READY
        self.last_change = backend.clock.seconds()

    def __repr__(self) -> str:
        return f"<ServerState {self.backend.name}/{self.name} id={self.id}>"

    # -- derived state -------------------------------------------------------------------

    @property
    def op_up(self) -> bool:
        """Operationally up: unchecked servers always are, checked ones at health >= rise."""
        return not self.checked or self.health >= self.rise

    @property
    def eweight(self) -> int:
        """The weight the balancer uses: 0 while draining."""
        return 0 if self.admin == DRAIN else self.uweight

    @property
    def available(self) -> bool:
        """May take streams bound to it (persistence): up and not in maintenance."""
        return self.op_up and self.admin != MAINT

    @property
    def usable(self) -> bool:
        """May receive new load-balanced traffic."""
        return self.available and self.admin == READY and self.eweight > 0

    @property
    def has_free_slot(self) -> bool:
        return self.maxconn == 0 or self.scur < self.maxconn

    @property
    def status(self) -> str:
        """The ``show stat`` status column (HAProxy stats.c wording)."""
        if self.admin == MAINT:
            return "MAINT"
        top = self.rise + self.fall - 1
        if self.op_up:
            if self.eweight == 0:
                return "DRAIN"
            if self.checked and self.health < top:
                return f"UP {self.health - self.rise + 1}/{self.fall}"
            return "UP" if self.checked else "no check"
        if self.health > 0:
            return f"DOWN {self.health}/{self.rise}"
        return "DOWN"

    # -- changes -------------------------------------------------------------------------

    def set_check_result(self, ok: bool) -> None:
        """Account one health-check result, HAProxy style: one counter in [0, rise+fall-1].

        A success climbs one step and jumps to the top once it reaches ``rise`` (UP); a
        failure descends one step and drops to 0 once below ``rise`` (DOWN). So a server
        needs ``rise`` successes in a row to come up and ``fall`` failures to go down.
        """
        if not self.checked or self.admin == MAINT:
            return  # checks are paused in maintenance and ignored when disabled
        was_up = self.op_up
        top = self.rise + self.fall - 1
        if ok:
            if self.health < top:
                self.health += 1
                if self.health >= self.rise:
                    self.health = top
        elif self.health > 0:
            self.health -= 1
            if self.health < self.rise:
                self.health = 0
        if self.op_up != was_up:
            self._changed("op", was_up, self.op_up)

    def set_check_enabled(self, enabled: bool) -> None:
        """``enable health`` / ``disable health``: an unchecked server counts as up."""
        if enabled == self.checked:
            return
        was_up = self.op_up
        self.checked = enabled
        if self.op_up != was_up:
            self._changed("op", was_up, self.op_up)

    def set_admin(self, state: str) -> None:
        """``set server state ready|drain|maint``."""
        if state not in ADMIN_STATES:
            raise ValueError(f"admin state must be one of {', '.join(ADMIN_STATES)}")
        old = self.admin
        if state == old:
            return
        was_up = self.op_up
        self.admin = state
        if old == MAINT and self.checked:
            # HAProxy: "start OK but check immediately" when leaving maintenance.
            self.health = self.rise
        self._changed("admin", old, state)
        if self.op_up != was_up:
            self._changed("op", was_up, self.op_up)

    def set_weight(self, weight: int) -> None:
        """``set weight``: 0..256; static algorithms only take 0 and the initial weight."""
        if not 0 <= weight <= MAX_WEIGHT:
            raise ValueError(f"weight must be between 0 and {MAX_WEIGHT}")
        if not self.backend.balancer.dynamic and weight not in (0, self.iweight):
            raise ValueError(
                "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'."
            )
        old = self.uweight
        if weight != old:
            self.uweight = weight
            self._changed("weight", old, weight)

    def set_maxconn(self, maxconn: int) -> None:
        """``set maxconn server``: 0 is unlimited; raising it grants queued streams at once."""
        if maxconn < 0:
            raise ValueError("maxconn must be >= 0")
        old = self.maxconn
        if maxconn != old:
            self.maxconn = maxconn
            self._changed("maxconn", old, maxconn)

    def _changed(self, field: str, old: object, new: object) -> None:
        if field in ("op", "admin"):
            self.last_change = self.backend.clock.seconds()
        self.backend.server_changed(ServerChange(self, field, old, new))

    # -- accounting (server and backend together, so the two never disagree) -------------

    def take_slot(self, balanced: bool) -> None:
        """A stream starts using this server; ``balanced``: the balancer chose it."""
        be = self.backend
        for c in (self, be):
            c.scur += 1
            c.stot += 1
            c.smax = max(c.smax, c.scur)
            if balanced:
                c.lbtot += 1

    def free_slot(self) -> None:
        """A stream stops using this server (the queue hands the slot on)."""
        if self.scur <= 0 or self.backend.scur <= 0:
            raise AssertionError(f"{self!r}: slot freed twice")  # the queue prevents this
        self.scur -= 1
        self.backend.scur -= 1

    def note_retry(self) -> None:
        self.wretr += 1
        self.backend.wretr += 1

    def note_redispatch(self) -> None:
        self.wredis += 1
        self.backend.wredis += 1

    def note_connect_error(self) -> None:
        self.econ += 1
        self.backend.econ += 1

    def note_response_error(self) -> None:
        self.eresp += 1
        self.backend.eresp += 1

    def note_bytes(self, bytes_in: int = 0, bytes_out: int = 0) -> None:
        """Bytes from the client (in) and to the client (out), as HAProxy counts them."""
        for c in (self, self.backend):
            c.bin += bytes_in
            c.bout += bytes_out


def assign_ids(servers: Collection[Server]) -> List[int]:
    """Forced ids as given; the others get the lowest free ids in config order (HAProxy)."""
    taken = {s.id for s in servers if s.id is not None}
    ids: List[int] = []
    nxt = 1
    for s in servers:
        if s.id is not None:
            ids.append(s.id)
            continue
        while nxt in taken:
            nxt += 1
        ids.append(nxt)
        taken.add(nxt)
    return ids


class BackendState(LoadCounters):
    """Run-time state of one backend: its servers, balancer, queue, counters, observers.

    The backend ``scur`` counts granted streams and ``qcur`` every waiting one (bound to a
    server or not); ``beconn`` is both, like HAProxy's backend connection count.
    """

    def __init__(self, proxy: Proxy, clock: Clock, rng: Optional[random.Random] = None) -> None:
        super().__init__()
        self.proxy = proxy
        self.name = proxy.name
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self.last_change = clock.seconds()
        self.servers: List[ServerState] = [
            ServerState(cfg, self, sid)
            for cfg, sid in zip(proxy.servers, assign_ids(proxy.servers))
        ]
        self._observers: List[Observer] = []
        self._pool: Optional[List[ServerState]] = None  # lb_pool(), until a server changes
        self.queue = BackendQueue(self)
        self.balancer: Balancer = make_balancer(self)
        self.last_response_error: Optional[CapturedError] = None

    def __repr__(self) -> str:
        return f"<BackendState {self.name}>"

    @property
    def beconn(self) -> int:
        return self.scur + self.qcur

    def server(self, name: str) -> Optional[ServerState]:
        for srv in self.servers:
            if srv.name == name:
                return srv
        return None

    @property
    def active_count(self) -> int:
        """Usable active servers ("N active and M backup servers left")."""
        return sum(1 for s in self.servers if s.usable and not s.backup)

    @property
    def backup_count(self) -> int:
        return sum(1 for s in self.servers if s.usable and s.backup)

    @property
    def is_up(self) -> bool:
        return any(s.usable for s in self.servers)

    def lb_pool(self) -> List[ServerState]:
        """The servers load balancing may choose from now, full or not.

        Usable active servers; when there are none, the usable backup with the lowest id,
        or every usable backup with ``option allbackups``. Kept until a server changes (every
        change goes through :meth:`server_changed`): it is asked for on every pick. Callers
        must not modify the list.
        """
        pool = self._pool
        if pool is None:
            pool = self._pool = self._compute_pool()
        return pool

    def _compute_pool(self) -> List[ServerState]:
        active = [s for s in self.servers if s.usable and not s.backup]
        if active:
            return active
        backups = [s for s in self.servers if s.usable and s.backup]
        if len(backups) <= 1 or self.proxy.has_option("allbackups"):
            return backups
        return [min(backups, key=lambda s: s.id)]

    def select(
        self, key: Optional[bytes] = None, avoid: Collection[ServerState] = ()
    ) -> Tuple[Optional[ServerState], str]:
        """Choose a server with a free slot: ``(server, OK)``, ``(None, FULL)`` or ``(None, NONE)``.

        ``avoid`` is a preference, as HAProxy's: an avoided server is still chosen when it is
        the only one with a free slot (a retry on the only server beats a 503).
        """
        if not self.lb_pool():
            return None, NONE
        srv = self.balancer.pick(key, avoid)
        if srv is None and avoid:
            srv = self.balancer.pick(key)
        return (srv, OK) if srv is not None else (None, FULL)

    def request_slot(
        self,
        on_granted: Callable[[ServerState], None],
        on_error: Callable[[str], None],
        key: Optional[bytes] = None,
        avoid: Collection[ServerState] = (),
        server: Optional[ServerState] = None,
    ) -> Ticket:
        """Ask for a server slot for one stream; see :meth:`udsproxy.queue.BackendQueue.request`."""
        return self.queue.request(on_granted, on_error, key=key, avoid=avoid, server=server)

    def add_observer(self, callback: Observer) -> None:
        self._observers.append(callback)

    def remove_observer(self, callback: Observer) -> None:
        if callback in self._observers:
            self._observers.remove(callback)

    def server_changed(self, change: ServerChange) -> None:
        """Pass a server change on: balancer, then queue (may grant), then observers."""
        self._pool = None
        if change.field in ("op", "admin"):
            self.last_change = change.server.last_change
        self.balancer.server_changed(change.server)
        self.queue.server_changed(change.server)
        for callback in list(self._observers):
            callback(change)


class ProxyCounters:
    """Counters of one frontend (the FRONTEND row of ``show stat``)."""

    def __init__(self, proxy: Proxy, global_counters: GlobalCounters) -> None:
        self.proxy = proxy
        self.name = proxy.name
        self.global_counters = global_counters
        self.scur = 0
        self.smax = 0
        self.stot = 0
        self.bin = 0
        self.bout = 0
        self.ereq = 0  # request errors (bad requests, client timeouts)
        self.dreq = 0  # denied requests
        self.last_request_error: Optional[CapturedError] = None

    def open(self) -> None:
        """A client connection was accepted."""
        self.scur += 1
        self.stot += 1
        self.smax = max(self.smax, self.scur)
        self.global_counters.open()

    def close(self) -> None:
        """A client connection ended (call once per ``open``)."""
        if self.scur > 0:
            self.scur -= 1
            self.global_counters.close()


class GlobalCounters:
    """Process-wide counters (``show info``: CurrConns, CumConns, MaxConn reached)."""

    def __init__(self) -> None:
        self.curr_conns = 0
        self.cum_conns = 0
        self.max_conns = 0

    def open(self) -> None:
        self.curr_conns += 1
        self.cum_conns += 1
        self.max_conns = max(self.max_conns, self.curr_conns)

    def close(self) -> None:
        if self.curr_conns > 0:
            self.curr_conns -= 1


class Runtime:
    """Everything that changes while the proxy runs, built from one frozen Config."""

    def __init__(self, config: Config, clock: Clock, rng: Optional[random.Random] = None) -> None:
        self.config = config
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self.started = clock.seconds()
        self.counters = GlobalCounters()
        self.backends: Dict[str, BackendState] = {
            p.name: BackendState(p, clock, self.rng) for p in config.backends
        }
        self.frontends: Dict[str, ProxyCounters] = {
            p.name: ProxyCounters(p, self.counters) for p in config.frontends
        }

    def find_server(self, spec: str) -> Optional[ServerState]:
        """``backend/server`` as the stats commands spell it; None if unknown."""
        be_name, sep, srv_name = spec.partition("/")
        backend = self.backends.get(be_name)
        if not sep or backend is None:
            return None
        return backend.server(srv_name)
