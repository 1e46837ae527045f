"""The one mutable state: servers' health, admin state, weights, slots and every counter.

The frozen :mod:`udsproxy.config.model` says what the config file means; :class:`Runtime`
is what it has become since start: which servers are up, drained or in maintenance, their
run-time weight and maxconn, which servers were added or removed, what connecting to and
talking to each server taught us, and the counters ``show stat`` reports.

This module is pure state. It imports neither the balancers nor the queue: those belong
to a backend's core (:mod:`udsproxy.backend`) and learn of changes by subscribing to
:meth:`BackendState.add_observer`, like logging and stats do. Health checks and stats
commands change a server through the ``set_*`` methods of :class:`ServerState`; the data
path reports what it saw through :meth:`ServerState.report`.

Nothing here does I/O: time comes from an injected ``IReactorTime``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Collection, Dict, Iterable, List, Optional, Set, Tuple

from udsproxy.config.model import Config, Proxy, Server
from udsproxy.strenum import StrEnum

# An IReactorTime (the reactor, or task.Clock in tests), typed as Any: zope interfaces do
# not type-check as protocols without the mypy-zope plugin.
Clock = Any


class AdminState(StrEnum):
    """``set server state``: what an operator allows a server to do."""

    READY = "ready"
    DRAIN = "drain"  # no new load-balanced streams; bound ones still come
    MAINT = "maint"  # nothing at all


READY, DRAIN, MAINT = AdminState.READY, AdminState.DRAIN, AdminState.MAINT

MAX_WEIGHT = 256  # HAProxy's limit for ``weight`` and ``set weight``
WEIGHT_SCALE = 16  # HAProxy's BE_WEIGHT_SCALE: slowstart ramps in sixteenths


class OpState(enum.IntEnum):
    """Operational state, numbered as HAProxy's ``srv_op_state`` (``show servers state``)."""

    STOPPED = 0  # DOWN
    STARTING = 1  # up again, weight ramping up during ``slowstart``
    RUNNING = 2  # UP
    STOPPING = 3  # up but taking no new load-balanced streams (``disable-on-404``: NOLB)


class Change(StrEnum):
    """What changed about a server, as observers receive it."""

    OP = "op"  # operationally up/down (health)
    ADMIN = "admin"
    WEIGHT = "weight"
    MAXCONN = "maxconn"
    ADDED = "added"  # ``add server`` or a reload: ``old`` is None, ``new`` the server
    REMOVED = "removed"  # ``del server`` or a reload: ``old`` the server, ``new`` None


class Outcome(StrEnum):
    """What one stream learned about its server: what passive health checks read."""

    CONNECT_OK = "connect-ok"
    CONNECT_ERROR = "connect-error"  # refused, no such file, backlog full, permission ...
    CONNECT_TIMEOUT = "connect-timeout"
    RESPONSE_OK = "response-ok"
    RESPONSE_INVALID = "response-invalid"  # not HTTP, or framing we cannot forward
    RESPONSE_ABORTED = "response-aborted"  # closed before or during its response
    RESPONSE_TIMEOUT = "response-timeout"


CONNECT_FAILURES = frozenset({Outcome.CONNECT_ERROR, Outcome.CONNECT_TIMEOUT})
RESPONSE_FAILURES = frozenset(
    {Outcome.RESPONSE_INVALID, Outcome.RESPONSE_ABORTED, Outcome.RESPONSE_TIMEOUT}
)


@dataclass(frozen=True)
class Report:
    """One outcome of one server, with its cause (``ConnectError.kind`` for connects)."""

    server: ServerState
    outcome: Outcome
    cause: str = ""  # e.g. "ENOENT", "ECONNREFUSED"; empty when there is none
    detail: str = ""  # the readable message, e.g. "connect to /run/a.sock: no such file"


@dataclass(frozen=True)
class CapturedError:
    """The last invalid request or response of a proxy, for the stats socket's ``show errors``."""

    when: float
    peer: str
    reason: str
    data: bytes  # the bytes around the error (at most CAPTURE_BYTES)
    position: int  # offset of the error in ``data``; -1 when unknown
    other: str = ""  # the frontend of a response error, the backend of a request error
    server: str = ""  # the server of a response error
    length: int = -1  # how many bytes the message had when it was refused; -1: len(data)


CAPTURE_BYTES = 1024


@dataclass(frozen=True)
class ServerChange:
    """One run-time change of a server, as observers receive it."""

    server: ServerState
    field: Change
    old: object
    new: object


Observer = Callable[[ServerChange], None]
ReportObserver = Callable[[Report], None]

TIME_SAMPLES = 1024  # qtime/ctime/rtime/ttime: averages over the last 1024 streams (HAProxy)


def swrate_add(total: int, n: int, value: int) -> int:
    """HAProxy's sliding-window average (freq_ctr.h ``swrate_add_dynamic``): ``total`` holds
    about ``n`` times the average of the last ``n`` samples; constant cost per sample. With
    ``n`` 0 (fewer samples than the window yet) it is a plain sum, so the first averages
    are exact, as HAProxy's stream_update_time_stats does."""
    return total - ((total + n - 1) // n if n else 0) + value


def swrate_avg(total: int, n: int) -> int:
    """The average a ``swrate_add`` total stands for (0 before the first sample)."""
    return (total + n - 1) // n if n else 0


class FreqCtr:
    """Events per second over the last second, as HAProxy's freq_ctr: this second's count
    plus the previous second's weighted by what is left of it; ``max`` is the highest
    count reached within one second (HAProxy's ``*_max`` columns)."""

    __slots__ = ("sec", "curr", "prev", "max")

    def __init__(self) -> None:
        self.sec = 0
        self.curr = 0
        self.prev = 0
        self.max = 0

    def add(self, now: float) -> None:
        sec = int(now)
        if sec != self.sec:
            self.prev = self.curr if sec == self.sec + 1 else 0
            self.curr = 0
            self.sec = sec
        self.curr += 1
        if self.curr > self.max:
            self.max = self.curr

    def read(self, now: float) -> int:
        sec = int(now)
        if sec == self.sec:
            return self.curr + int(self.prev * (1.0 - (now - sec)))
        if sec == self.sec + 1:
            return int(self.curr * (1.0 - (now - sec)))
        return 0

    def clear(self) -> None:
        self.sec = self.curr = self.prev = self.max = 0


HRSP_OTHER = 5  # index of hrsp_other in ``hrsp``: 1xx..5xx are 0..4


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
        self.dreq = 0  # requests denied by the backend's http-request rules
        self.dresp = 0  # responses denied by http-response rules
        self.wrew = 0  # failed header rewrites
        self.bin = 0
        self.bout = 0
        self.init_stream_counters()

    def init_stream_counters(self) -> None:
        """The counters of ended streams (``show stat``: req_tot, hrsp_*, aborts, times)."""
        self.req_tot = 0  # HTTP requests (server: sent to it)
        self.hrsp = [0, 0, 0, 0, 0, 0]  # hrsp_1xx .. hrsp_5xx, hrsp_other
        self.cli_abrt = 0  # data transfers aborted by the client
        self.srv_abrt = 0  # ... by the server
        self.connects = 0  # new connections to servers (``connect``)
        self.reuses = 0  # pooled connections used (``reuse``)
        self.rate = FreqCtr()  # streams granted a slot per second
        self.last_sess = -1.0  # when a stream last got a slot; -1: never
        self.t_samples = 0
        self.q_time = self.c_time = self.r_time = self.t_time = 0  # swrate totals
        self.qtime_max = self.ctime_max = self.rtime_max = self.ttime_max = 0

    def clear_max(self) -> None:
        """``clear counters``: the maximum values."""
        self.smax = self.scur
        self.qmax = self.qcur
        self.rate.max = 0
        self.qtime_max = self.ctime_max = self.rtime_max = self.ttime_max = 0

    def clear_all(self) -> None:
        """``clear counters all``: every counter, as a restart would (current values stay)."""
        for name in (
            "stot", "lbtot", "econ", "eresp", "wretr", "wredis", "dreq", "dresp", "wrew", "bin", "bout"
        ):  # fmt: skip
            setattr(self, name, 0)
        scur, qcur = self.scur, self.qcur
        self.init_stream_counters()
        self.smax, self.qmax = scur, qcur

    def note_times(self, t_queue: int, t_connect: int, t_response: int, t_total: int) -> None:
        """One stream's times in ms (HAProxy's stream_update_time_stats)."""
        count = self.t_samples = self.t_samples + 1
        # swrate_add inlined (once per request, four times): the same arithmetic.
        if count > TIME_SAMPLES:
            n, m = TIME_SAMPLES, TIME_SAMPLES - 1
            q, c, r, t = self.q_time, self.c_time, self.r_time, self.t_time
            self.q_time = q - (q + m) // n + t_queue
            self.c_time = c - (c + m) // n + t_connect
            self.r_time = r - (r + m) // n + t_response
            self.t_time = t - (t + m) // n + t_total
        else:
            self.q_time += t_queue
            self.c_time += t_connect
            self.r_time += t_response
            self.t_time += t_total
        if t_queue > self.qtime_max:
            self.qtime_max = t_queue
        if t_connect > self.ctime_max:
            self.ctime_max = t_connect
        if t_response > self.rtime_max:
            self.rtime_max = t_response
        if t_total > self.ttime_max:
            self.ttime_max = t_total


def status_index(status: int) -> int:
    """The ``hrsp`` slot of an HTTP status."""
    i = status // 100 - 1
    return i if 0 <= i < HRSP_OTHER else HRSP_OTHER


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
        # Operationally up (HAProxy's cur_state != STOPPED). Checks move it only at the ends
        # of the counter; ``set server health``, maintenance and an operator's ``disable
        # health`` leave it where HAProxy leaves it (a DOWN server whose checks are disabled
        # stays DOWN until ``set server health up`` or leaving maintenance).
        self.op_up = True
        self.check_in_progress = False  # a probe is running (show stat's "* " prefix)
        self.admin = MAINT if config.disabled else READY
        self.last_change = backend.clock.seconds()
        # Maintenance from the config (``disabled``: HAProxy's CMAINT) and by a command
        # (FMAINT) are distinct: ``show servers state`` and a reload tell them apart.
        self.config_maint = config.disabled
        self.forced_admin = False  # the admin state was last set by a command
        self.dynamic = False  # added by ``add server``
        # slowstart: the share of uweight in force while STARTING (None: not starting);
        # STOPPING: the last HTTP check asked for no new traffic (disable-on-404).
        self.ramp: Optional[float] = None
        self.stopping = False
        self.eweight = 0  # kept by _update_eweight(): read on every pick
        self._update_eweight()
        # What the last check found (``show stat``: check_status, check_code, ...).
        self.check_status = "INI" if self.checked else ""
        self.check_code: Optional[int] = None  # the HTTP status of an HTTP check
        self.check_duration: Optional[int] = None  # ms
        self.check_desc = ""  # the description shown as the transition line's "info"
        self.last_chk = ""  # the check's detail text (HAProxy's last_chk column)
        self.chkfail = 0  # failed checks while the server was not already DOWN
        self.chkdown = 0  # UP -> DOWN transitions
        self.hanafail = 0  # times passive checks triggered ``on-error``
        self.downtime = 0.0  # seconds spent DOWN before the current DOWN period
        # The streams using this server now (each registers while connected), so that
        # ``on-marked-down shutdown-sessions`` can end them. Anything with shutdown(flags).
        self.streams: Set[Any] = set()
        self.removed = False  # set once ``del server`` (or a reload) took it out
        # The message of the last failed connect while connects keep failing; None once one
        # succeeds. The data path logs a cause once per change, not once per client.
        self.connect_error: Optional[str] = None

    def __repr__(self) -> str:
        return f"<ServerState {self.backend.name}/{self.name} id={self.id}>"

    # -- derived state -------------------------------------------------------------------

    def _update_eweight(self) -> None:
        """The weight the balancer uses: 0 while draining or stopping, ramped in slowstart.

        The ramp climbs in HAProxy's sixteenths (server_recalc_eweight with BE_WEIGHT_SCALE):
        ``uweight * (16 * elapsed / slowstart + 1) / 16`` rounded up, so ``show stat`` shows
        the weight HAProxy shows at the same point of the ramp.
        """
        if self.admin == DRAIN or self.stopping:
            self.eweight = 0
        elif self.ramp is not None and self.uweight:
            steps = min(WEIGHT_SCALE, int(WEIGHT_SCALE * self.ramp) + 1)
            self.eweight = max(1, -(-self.uweight * steps // WEIGHT_SCALE))
        else:
            self.eweight = self.uweight

    @property
    def op_state(self) -> OpState:
        """HAProxy's operational state: STOPPED, STARTING, RUNNING or STOPPING."""
        if not self.op_up:
            return OpState.STOPPED
        if self.stopping:
            return OpState.STOPPING
        if self.ramp is not None:
            return OpState.STARTING
        return OpState.RUNNING

    @property
    def health_text(self) -> str:
        """``status: 2/3 UP`` as the log-health-checks line says it (HAProxy check.c)."""
        if self.health >= self.rise:
            word = "UP" if self.uweight else "DRAIN"
            return f"{self.health - self.rise + 1}/{self.fall} {word}"
        return f"{self.health}/{self.rise} DOWN"

    def downtime_at(self, now: float) -> float:
        """Seconds spent DOWN in all, counting the current DOWN period (``downtime``)."""
        if self.op_up:
            return self.downtime
        return self.downtime + now - self.last_change

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
        """The ``show stat`` status column, as HAProxy 2.6's stats.c computes it
        (stats_fill_sv_stats_computestate and srv_hlt_st).

        A server set to weight 0 is not DRAIN there (only the drain admin state is): it
        stays UP with weight 0.
        """
        if self.admin == MAINT:
            return "MAINT"
        top = self.rise + self.fall - 1
        if self.op_up:
            going = f" {self.health - self.rise + 1}/{self.fall}"
            if self.stopping:
                return "NOLB" if not self.checked or self.health == top else "NOLB" + going
            down_going = self.checked and self.health < top
            if self.admin == DRAIN:
                return "DRAIN" + going if down_going else "DRAIN"
            if down_going:
                return "UP" + going
            return "UP" if self.checked else "no check"
        if self.checked and self.health:
            return f"DOWN {self.health}/{self.rise}"
        return "DOWN"

    # -- changes -------------------------------------------------------------------------

    def set_check_result(self, ok: bool, conditional: bool = False) -> bool:
        """Account one health-check result, HAProxy style: one counter in [0, rise+fall-1].

        A success climbs one step and jumps to the top once it reaches ``rise`` (UP); a
        failure descends one step and drops to 0 once below ``rise`` (DOWN). So a server
        needs ``rise`` successes in a row to come up and ``fall`` failures to go down.
        Returns whether the server went UP or DOWN (or from STOPPING back to RUNNING, which
        HAProxy logs as UP). A failure while health > 0 counts ``chkfail`` (HAProxy's
        failed_checks). ``conditional``: the pass asks for no new traffic (an HTTP check's
        404 with ``disable-on-404``): STOPPING instead of RUNNING.
        """
        if not self.checked or self.admin == MAINT:
            return False  # checks are paused in maintenance and ignored when disabled
        top = self.rise + self.fall - 1
        if not ok and self.health > 0:
            self.chkfail += 1
        if ok:
            if self.health < top:
                self.health += 1
                if self.health >= self.rise:
                    self.health = top
        elif self.health > 0:
            self.health -= 1
            if self.health < self.rise:
                self.health = 0
        # HAProxy's check_notify_success / check_notify_failure: a pass at or above rise
        # sets the server running (also out of a forced STOPPING), a failure at 0 stops it.
        if ok and self.health >= self.rise:
            if not self.op_up:
                if conditional:
                    self.stopping = True
                    self._update_eweight()
                self._set_op(True)
                return True
            if self.stopping != conditional:
                self.set_stopping(conditional)
                return not conditional
        elif not ok and self.health == 0 and self.op_up:
            self._set_op(False)
            return True
        return False

    def _set_op(self, up: bool, accumulate: bool = True) -> None:
        """The operational state moves: STOPPED <-> RUNNING (STARTING is the ramp)."""
        self.op_up = up
        if not up and self.stopping:
            self.stopping = False
            self._update_eweight()
        self._changed(Change.OP, not up, up, accumulate)

    def force_health(self, value: str) -> bool:
        """``set server health up|stopping|down`` (HAProxy's cli_parse_set_server).

        The counter goes to the top (``up``, ``stopping``) or to 0 (``down``) and the server
        is set RUNNING, STOPPING or STOPPED whether or not it is checked; in maintenance
        only the counter moves. Returns whether the operational state changed (a log line).
        """
        if value not in ("up", "stopping", "down"):
            raise ValueError("health must be up, stopping or down")
        self.health = 0 if value == "down" else self.rise + self.fall - 1
        if self.admin == MAINT:
            return False
        if value == "down":
            if not self.op_up:
                return False
            self._set_op(False)
            return True
        stopping = value == "stopping"
        if self.op_up and self.stopping == stopping:
            return False
        if not self.op_up:
            self.stopping = stopping
            self._update_eweight()
            self._set_op(True)
        else:
            self.set_stopping(stopping)
        return True

    def set_health(self, health: int) -> None:
        """Move the counter without a check (passive checks' ``sudden-death``, ``mark-down``)."""
        self.health = max(0, min(health, self.rise + self.fall - 1))

    def set_ramp(self, ramp: Optional[float]) -> None:
        """``slowstart``: the share of the weight in force (None: full weight, RUNNING)."""
        if ramp is not None and ramp >= 1.0:
            ramp = None
        if ramp == self.ramp:
            return
        old = self.eweight
        self.ramp = ramp
        self._update_eweight()
        self._changed(Change.WEIGHT, old, self.eweight)

    def set_stopping(self, stopping: bool) -> None:
        """``http-check disable-on-404``: up, but no new load-balanced streams (STOPPING)."""
        if stopping == self.stopping:
            return
        self.stopping = stopping
        old = self.eweight
        self._update_eweight()
        self._changed(Change.WEIGHT, old, self.eweight)

    def record_check(
        self, status: str, code: Optional[int], duration: Optional[int], desc: str
    ) -> None:
        """What the last check found: HAProxy's status code (L4OK, SOCKERR ...) and its info."""
        self.check_status = status
        self.check_code = code
        self.check_duration = duration
        self.check_desc = desc
        self.last_chk = desc

    def shutdown_streams(self, flags: str) -> int:
        """End every stream using this server now (``on-marked-down shutdown-sessions``)."""
        streams = list(self.streams)
        for stream in streams:
            stream.shutdown(flags)
        return len(streams)

    def set_check_enabled(self, enabled: bool) -> None:
        """``enable health`` / ``disable health``: the check runs or not; as in HAProxy 2.6
        (which only flips CHK_ST_ENABLED) the server keeps its state: a DOWN server whose
        checks are disabled stays DOWN (``show stat``: ``DOWN``, no check columns)."""
        self.checked = enabled

    def set_admin(self, state: AdminState | str) -> None:
        """``set server state ready|drain|maint``."""
        try:
            state = AdminState(state)
        except ValueError:
            names = ", ".join(a.value for a in AdminState)
            raise ValueError(f"admin state must be one of {names}") from None
        old = self.admin
        self.forced_admin = True
        if state != MAINT:
            self.config_maint = False
        if state == old:
            return
        was_up = self.op_up
        now = self.backend.clock.seconds()
        if old == DRAIN and state == READY:
            # HAProxy counts a drain period as down time when it ends (srv_update_status).
            self.downtime += now - self.last_change
        last_change = self.last_change
        self.admin = state
        up = was_up
        if state == MAINT:
            # HAProxy: maintenance stops the server and zeroes the check counter.
            self.health = 0
            up = False
            self.stopping = False
        elif old == MAINT:
            if self.checked:
                self.health = self.rise  # "start OK but check immediately"
            up = True
        self.op_up = up
        self._update_eweight()
        self._changed(Change.ADMIN, old, state)
        if state == MAINT and not was_up:
            self.last_change = last_change  # "was DOWN and now enters maintenance"
        if up != was_up:
            # Leaving maintenance restarts the clock without counting it as down time.
            self._changed(Change.OP, was_up, up, accumulate=old != MAINT)

    def set_weight(self, weight: int) -> None:
        """``set weight``: 0..256 (a static algorithm's 0%/100% rule is the backend core's)."""
        if not 0 <= weight <= MAX_WEIGHT:
            raise ValueError(f"weight must be between 0 and {MAX_WEIGHT}")
        old = self.uweight
        if weight != old:
            self.uweight = weight
            self._update_eweight()
            self._changed(Change.WEIGHT, old, weight)

    def set_maxconn(self, maxconn: int) -> None:
        """``set maxconn server``: 0 is unlimited; raising it grants queued streams at once."""
        if maxconn < 0:
            raise ValueError("maxconn must be >= 0")
        old = self.maxconn
        if maxconn != old:
            self.maxconn = maxconn
            self._changed(Change.MAXCONN, old, maxconn)

    def _changed(self, field: Change, old: object, new: object, accumulate: bool = True) -> None:
        if field is Change.OP or field is Change.ADMIN:
            now = self.backend.clock.seconds()
            if field is Change.OP:
                if new:  # back UP: the DOWN period ends
                    if accumulate:
                        self.downtime += now - self.last_change
                else:
                    self.chkdown += 1
                    self.ramp = None  # a slowstart in progress ends with it
                    self._update_eweight()
            self.last_change = now
        self.backend.server_changed(ServerChange(self, field, old, new))

    # -- what the data path learned (the passive health checks' input) ------------------

    def report(self, outcome: Outcome, cause: str = "", detail: str = "") -> None:
        """Account one outcome of a stream on this server and pass it to report observers.

        Failed connects count ``econ``, failed responses ``eresp`` (server and backend);
        ``connect_error`` keeps the last connect failure's message until a connect works.
        """
        if outcome in CONNECT_FAILURES:
            self.econ += 1
            self.backend.econ += 1
            self.connect_error = detail or cause or outcome.value
        elif outcome is Outcome.CONNECT_OK:
            self.connect_error = None
        elif outcome in RESPONSE_FAILURES:
            self.eresp += 1
            self.backend.eresp += 1
        if self.backend.report_observers:  # built only when someone listens: hot path
            self.backend.reported(Report(self, outcome, cause, detail))

    # -- accounting (server and backend together, so the two never disagree) -------------

    def take_slot(self, balanced: bool, now: float) -> None:
        """A stream starts using this server at ``now``; ``balanced``: the balancer chose it."""
        # Once per stream: written out for the server and its backend.
        be = self.backend
        scur = self.scur = self.scur + 1
        if scur > self.smax:
            self.smax = scur
        scur = be.scur = be.scur + 1
        if scur > be.smax:
            be.smax = scur
        self.stot += 1
        be.stot += 1
        if balanced:
            self.lbtot += 1
            be.lbtot += 1
        self.rate.add(now)
        be.rate.add(now)
        self.last_sess = be.last_sess = now

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

    def note_stream(
        self,
        status: Optional[int],
        answered: bool,
        flags: str,
        times: Optional[Tuple[int, int, int, int]] = None,
        reused: Optional[bool] = None,
    ) -> None:
        """One stream on this server ended: HTTP ``status`` (None in TCP mode; ``answered``:
        by the server, else by the proxy), its termination ``flags``, its (queue, connect,
        response, total) times in ms when the server answered, and whether its connection
        was ``reused`` from a pool (None: it had none). Server and backend together."""
        # Once per request: written out for the server and its backend, no loops or helpers.
        be = self.backend
        if reused is not None:
            if reused:
                self.reuses += 1
                be.reuses += 1
            else:
                self.connects += 1
                be.connects += 1
        if status is not None:
            i = status // 100 - 1
            if not 0 <= i < HRSP_OTHER:
                i = HRSP_OTHER
            be.hrsp[i] += 1
            if answered:
                self.hrsp[i] += 1
        if flags[1] == "D":  # a data transfer aborted by the client or the server
            side = flags[0]
            if side in "Cc":
                self.cli_abrt += 1
                be.cli_abrt += 1
            elif side in "Ss":
                self.srv_abrt += 1
                be.srv_abrt += 1
        if times is not None:
            self.note_times(*times)
            be.note_times(*times)

    def note_bytes(self, bytes_in: int = 0, bytes_out: int = 0) -> None:
        """Bytes from the client (in) and to the client (out), as HAProxy counts them."""
        be = self.backend  # (once per request: written out, no loop)
        self.bin += bytes_in
        self.bout += bytes_out
        be.bin += bytes_in
        be.bout += bytes_out


def assign_ids(servers: Collection[Server], taken: Iterable[int] = ()) -> List[int]:
    """Forced ids as given; the others get the lowest free ids in config order (HAProxy).

    ``taken``: ids already in use (servers that stay when others are added).
    """
    used = set(taken) | {s.id for s in servers if s.id is not None}
    ids: List[int] = []
    nxt = 1
    for s in servers:
        if s.id is not None:
            ids.append(s.id)
            continue
        while nxt in used:
            nxt += 1
        ids.append(nxt)
        used.add(nxt)
    return ids


class ServerSetError(ValueError):
    """A server cannot be added or removed now (the message says why)."""


class BackendState(LoadCounters):
    """Run-time state of one backend: its servers, counters and observers.

    The backend ``scur`` counts granted streams and ``qcur`` every waiting one (bound to a
    server or not); ``beconn`` is both, like HAProxy's backend connection count.
    """

    def __init__(self, proxy: Proxy, clock: Clock) -> None:
        super().__init__()
        self.proxy = proxy
        self.name = proxy.name
        self.clock = clock
        self.allbackups = proxy.has_option("allbackups")
        self.last_change = clock.seconds()  # when the backend last went UP or DOWN
        self.chkdown = 0  # times the backend lost its last usable server
        self.downtime = 0.0  # seconds spent without a usable server, before the current period
        self.servers: List[ServerState] = [
            ServerState(cfg, self, sid)
            for cfg, sid in zip(proxy.servers, assign_ids(proxy.servers))
        ]
        self._observers: List[Observer] = []
        self.report_observers: List[ReportObserver] = []
        self._pool: Optional[List[ServerState]] = None  # lb_pool(), until a server changes
        self.was_up = self.is_up
        self.last_response_error: Optional[CapturedError] = None
        self.response_errors = 0  # captured so far (``show errors``: event #)

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

    def downtime_at(self, now: float) -> float:
        """Seconds spent with no usable server in all, counting the current period."""
        if self.was_up:
            return self.downtime
        return self.downtime + now - self.last_change

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
        if len(backups) <= 1 or self.allbackups:
            return backups
        return [min(backups, key=lambda s: s.id)]

    # -- servers coming and going ----------------------------------------------------------

    def add_server(self, config: Server) -> ServerState:
        """A new server (``add server``, reload): a unique name, a forced or the lowest free id.

        Observers get :attr:`Change.ADDED`; the server starts as its config says
        (``disabled``: in maintenance).
        """
        if self.server(config.name) is not None:
            raise ServerSetError(
                f"Already exists a server with the same name in backend {self.name}."
            )
        taken = [s.id for s in self.servers]
        if config.id is not None and config.id in taken:
            raise ServerSetError(f"Server id {config.id} is already used in backend {self.name}.")
        (sid,) = assign_ids([config], taken)
        srv = ServerState(config, self, sid)
        self.servers.append(srv)
        self.server_changed(ServerChange(srv, Change.ADDED, None, srv))
        return srv

    def remove_server(self, srv: ServerState) -> None:
        """Take a server out for good; refused while a stream holds or waits for it.

        Observers get :attr:`Change.REMOVED` (balancers forget it, pools close its idle
        connections, the permission watch stops looking at its socket).
        """
        if srv not in self.servers:
            raise ServerSetError(f"No such server {srv.name} in backend {self.name}.")
        if srv.scur or srv.qcur:
            raise ServerSetError(
                f"Server {self.name}/{srv.name} still has {srv.scur} active and "
                f"{srv.qcur} queued streams."
            )
        self.servers.remove(srv)
        srv.removed = True
        self.server_changed(ServerChange(srv, Change.REMOVED, srv, None))

    # -- observers ---------------------------------------------------------------------------

    def add_observer(self, callback: Observer) -> None:
        """Be told of every server change, after those who subscribed earlier.

        The backend core subscribes its balancer first and its queue second (a queue that
        grants must see the balancer's new state), then come logging, stats, health.
        """
        self._observers.append(callback)

    def remove_observer(self, callback: Observer) -> None:
        if callback in self._observers:
            self._observers.remove(callback)

    def server_changed(self, change: ServerChange) -> None:
        """Pass a server change on to the observers, in the order they subscribed."""
        self._pool = None
        up = self.is_up
        if up != self.was_up:
            now = self.clock.seconds()
            if up:
                self.downtime += now - self.last_change
            else:
                self.chkdown += 1
            self.was_up = up
            self.last_change = now
        for callback in list(self._observers):
            callback(change)

    def add_report_observer(self, callback: ReportObserver) -> None:
        """Be told of every :class:`Report` of this backend's servers (passive health)."""
        self.report_observers.append(callback)

    def remove_report_observer(self, callback: ReportObserver) -> None:
        if callback in self.report_observers:
            self.report_observers.remove(callback)

    def reported(self, report: Report) -> None:
        for callback in self.report_observers:
            callback(report)


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
        self.dreq = 0  # requests denied by http-request rules
        self.dresp = 0  # responses denied by http-response rules
        self.wrew = 0  # failed header rewrites
        self.dcon = 0  # connections refused by tcp-request connection rules
        self.last_request_error: Optional[CapturedError] = None
        self.request_errors = 0  # captured so far (``show errors``: event #)
        self.log_count = 0  # session lines logged (``%lc``)
        self.init_stream_counters()

    def init_stream_counters(self) -> None:
        """HTTP requests and responses, and the rates (``show stat``'s FRONTEND row)."""
        self.req_tot = 0
        self.hrsp = [0, 0, 0, 0, 0, 0]  # hrsp_1xx .. hrsp_5xx, hrsp_other
        self.conn_rate = FreqCtr()  # connections accepted per second (rate, conn_rate)
        self.req_rate = FreqCtr()  # HTTP requests per second

    def note_request(self, now: float) -> None:
        """An HTTP request was received (valid or not)."""
        self.req_tot += 1
        self.req_rate.add(now)

    def note_response(self, status: int) -> None:
        """An HTTP response was sent to a client (the server's or the proxy's own)."""
        self.hrsp[status_index(status)] += 1

    def clear_max(self) -> None:
        self.smax = self.scur
        self.conn_rate.max = 0
        self.req_rate.max = 0

    def clear_all(self) -> None:
        for name in ("stot", "bin", "bout", "ereq", "dreq", "dresp", "wrew", "dcon"):
            setattr(self, name, 0)
        self.smax = self.scur
        self.init_stream_counters()

    def open(self, now: Optional[float] = None) -> None:
        """A client connection was accepted (``now``: counted in the connection rate)."""
        if now is not None:
            self.conn_rate.add(now)
            self.global_counters.conn_rate.add(now)
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
        self.conn_rate = FreqCtr()  # connections accepted per second, every frontend
        self.streams = 0  # HTTP requests and TCP sessions started (HAProxy's req_count)

    def next_stream(self) -> int:
        """The number of a new stream (``%rt``: 0 for the process's first)."""
        number = self.streams
        self.streams = number + 1
        return number

    def open(self) -> None:
        self.curr_conns += 1
        self.cum_conns += 1
        self.max_conns = max(self.max_conns, self.curr_conns)

    def close(self) -> None:
        if self.curr_conns > 0:
            self.curr_conns -= 1


def proxy_ids(config: Config) -> Dict[str, int]:
    """HAProxy's proxy ids (``iid``): config order, from 2 (1 is the stats socket's own
    GLOBAL frontend); a ``listen`` is one proxy with one id."""
    used = {1} | {p.id for p in config.proxies if p.id is not None}
    ids: Dict[str, int] = {}
    nxt = 2
    for p in config.proxies:
        if p.name in ids or p.kind == "defaults":
            continue
        if p.id is not None:
            ids[p.name] = p.id
            continue
        while nxt in used:
            nxt += 1
        ids[p.name] = nxt
        used.add(nxt)
    return ids


class Runtime:
    """Everything that changes while the proxy runs, built from one frozen Config."""

    def __init__(self, config: Config, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.started = clock.seconds()
        self.counters = GlobalCounters()
        self.iids = proxy_ids(config)
        self.backends: Dict[str, BackendState] = {
            p.name: BackendState(p, clock) for p in config.backends
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
