"""The clock-driven checkers: one active prober per checked server, the passive checks,
slowstart and the transition logs of one config generation.

:class:`HealthChecks` belongs to a generation (started when it is attached, stopped with
it). For each server with ``check`` it runs a :class:`ServerCheck`: connect through the
shared :func:`udsproxy.net.connect.connect` (what TCP mode and the HTTP pool use), for an
HTTP check send the request and judge the answer (:mod:`.httpcheck`), account the result
on the server's counter and schedule the next probe at HAProxy's cadence:

- ``inter`` while fully UP; ``fastinter`` (default ``inter``) while going up or down and
  until the first checks brought the counter to the top; ``downinter`` (default ``inter``)
  while fully DOWN; ``spread-checks`` adds a random +-N% to each interval;
- the first checks of all servers are spread evenly over the largest first interval;
- a probe gives up after ``inter``; with ``timeout check``, the connect gets
  ``min(timeout connect, inter)`` and the answer ``timeout check``.

Checks do not take a server slot: they bypass ``maxconn`` (a busy ``maxconn 1`` app can
make a check time out; ``timeout check`` bounds the wait for the answer only).

Passive checks (``observe layer4|layer7``) read the outcomes the data path reports
(:meth:`udsproxy.runtime.BackendState.add_report_observer`); ``error-limit`` consecutive
errors trigger ``on-error``.
"""

from __future__ import annotations

import errno
import random
from dataclasses import replace
from typing import Any, Callable, Dict, Optional

from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from udsproxy.config.model import UNIX, Address, Observe, OnError, Proxy
from udsproxy.net.connect import ConnectError, ConnectKind, access_advice, connect
from udsproxy.runtime import (
    DRAIN,
    MAINT,
    Change,
    Outcome,
    Report,
    Runtime,
    ServerChange,
    ServerState,
)

from . import status as wording
from .httpcheck import Response, build_request, verdict
from .status import CheckResult, Status

Log = Callable[[str, str, Proxy], None]  # (text, level, backend) -> None
Connector = Callable[..., Any]

SHUTDOWN_DOWN = "DD"  # HAProxy's SF_ERR_DOWN: killed because the server went down
SHUTDOWN_UP = "UD"  # SF_ERR_UP: a backup's stream ended because an active server came up


# ---------------------------------------------------------------------------- one probe
class _Probe(Protocol):
    """One check connection: L4 passes once connected; HTTP sends, reads, judges."""

    def __init__(self, check: ServerCheck, request: Optional[bytes]) -> None:
        self.check = check
        self.request = request
        self.response = Response()

    def connectionMade(self) -> None:
        if self.request is None:
            self.check.finish(CheckResult(Status.L4OK))
            self.transport.loseConnection()  # type: ignore[union-attr]
        else:
            self.transport.write(self.request)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        if self.check.probe is not self:
            return
        self.response.feed(data)
        if self.response.complete(closed=False):
            self._judge()
            self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self.check.probe is self:
            self._judge()

    def _judge(self) -> None:
        srv = self.check.server
        self.check.finish(verdict(self.check.owner.http_check(srv), self.response, srv.op_up))


# ---------------------------------------------------------------------------- one server
class ServerCheck:
    """The active check of one server: probe, account, schedule the next one."""

    def __init__(self, owner: HealthChecks, server: ServerState) -> None:
        self.owner = owner
        self.server = server
        self.clock = owner.clock
        self.call: Any = None  # the next probe's timer
        self.timer: Any = None  # the running probe's timeout
        self.pending: Any = None  # the connect Deferred in progress
        self.probe: Optional[_Probe] = None  # the running probe's protocol
        self.started_at = 0.0
        self.fast = False  # passive checks asked for fastinter once
        self.stopped = False

    # -- cadence ---------------------------------------------------------------------
    def interval_ms(self) -> int:
        """HAProxy's srv_getinter: inter at the top, downinter at 0, fastinter between."""
        srv, cfg = self.server, self.server.config.check
        top = srv.rise + srv.fall - 1
        if srv.health >= top and not self.fast:
            return cfg.inter
        if srv.health == 0 and not self.fast:
            return cfg.downinter or cfg.inter
        return cfg.fastinter or cfg.inter

    def schedule(self, delay_ms: float) -> None:
        if self.stopped:
            return
        if self.call is not None and self.call.active():
            self.call.cancel()
        self.call = self.clock.callLater(max(0.0, delay_ms) / 1000.0, self.run)

    def hurry(self) -> None:
        """Passive checks force fastinter: the next probe comes no later than fastinter."""
        self.fast = True
        if self.probe is not None or self.pending is not None:
            return
        if self.call is not None and self.call.active():
            due = self.call.getTime() - self.clock.seconds()
            fastinter = self.interval_ms() / 1000.0
            if fastinter < due:
                self.call.reset(fastinter)

    def stop(self) -> None:
        self.stopped = True
        for name in ("call", "timer"):
            call = getattr(self, name)
            if call is not None and call.active():
                call.cancel()
            setattr(self, name, None)
        pending, self.pending = self.pending, None
        probe, self.probe = self.probe, None
        self.server.check_in_progress = False
        if pending is not None:
            pending.cancel()
        if probe is not None and probe.transport is not None:
            probe.transport.abortConnection()  # type: ignore[attr-defined]

    # -- one probe ---------------------------------------------------------------------
    def address(self) -> Address:
        address, cfg = self.server.config.address, self.server.config.check
        if address.is_unix:
            return address
        return replace(address, host=cfg.addr or address.host, port=cfg.port or address.port)

    def run(self) -> None:
        """Probe the server now (the timer fired)."""
        self.call = None
        if self.stopped:
            return
        srv = self.server
        if not srv.checked or srv.admin == MAINT:
            # HAProxy: a disabled check (``disable health``, a dynamic server before
            # ``enable health``) or one paused by maintenance keeps its timer, not its probe.
            self.schedule(self.interval_ms())
            return
        self.owner.on_probe(srv)
        srv.check_in_progress = True
        self.started_at = self.clock.seconds()
        cfg = srv.config.check
        timeouts = srv.backend.proxy.timeouts
        if timeouts.check:
            connect_ms = min(timeouts.connect or cfg.inter, cfg.inter)
            read_ms = timeouts.check
        else:
            connect_ms = read_ms = cfg.inter
        request = self.owner.http_request(srv)
        probe = _Probe(self, request)
        self.probe = probe
        self.timer = self.clock.callLater(read_ms / 1000.0, self.expired)
        if connect_ms < read_ms:
            self.timer.reset(connect_ms / 1000.0)  # the connect comes first
        self.read_ms = read_ms
        d = self.owner.connector(self.clock, self.address(), lambda: probe, connect_ms)
        self.pending = d
        d.addCallbacks(self._connected, self._failed)

    def _connected(self, _: Any) -> None:
        self.pending = None
        if self.probe is not None and self.timer is not None and self.timer.active():
            # connect_ms may differ from read_ms: the answer gets its own budget now
            self.timer.reset(self.read_ms / 1000.0)

    def _failed(self, failure: Failure) -> None:
        self.pending = None
        if self.probe is None or self.stopped:
            return
        self.finish(connect_result(self.server.config.address, failure.value))

    def expired(self) -> None:
        self.timer = None
        if self.probe is None:
            return
        connected = self.pending is None
        pending, self.pending = self.pending, None
        probe = self.probe
        self.finish(CheckResult(Status.L7TOUT if connected and probe.request else Status.L4TOUT))
        if pending is not None:
            pending.cancel()
        elif probe.transport is not None:
            probe.transport.abortConnection()  # type: ignore[attr-defined]

    def finish(self, result: CheckResult) -> None:
        """The probe's result: account it, then schedule the next probe."""
        if self.probe is None:
            return
        self.probe = None
        self.server.check_in_progress = False
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        duration = int((self.clock.seconds() - self.started_at) * 1000)
        self.owner.account(self.server, replace(result, duration=duration))
        self.fast = False
        if self.stopped:
            return
        self.schedule(self.owner.spread(self.interval_ms()) - duration)


def connect_result(address: Address, error: object) -> CheckResult:
    """A failed connect as HAProxy reports it: SOCKERR for unix sockets, L4CON/L4TOUT else."""
    if not isinstance(error, ConnectError):
        return CheckResult(Status.SOCKERR, f"General socket error ({error!r})")
    if error.kind is ConnectKind.ETIMEDOUT:
        return CheckResult(Status.L4TOUT)
    explanation = ""
    if error.kind is ConnectKind.EACCES and address.family == UNIX:
        # The same text as a connect error's: who we are, the socket's owner and mode, the fix.
        explanation = access_advice(address.path)
    elif error.kind is ConnectKind.ENOTSOCK and address.family == UNIX:
        explanation = f"{address.path} is not a socket"
    if address.is_unix:
        return CheckResult(
            Status.SOCKERR, wording.socket_error_desc(error.errno or errno.EIO, explanation)
        )
    import os

    return CheckResult(Status.L4CON, os.strerror(error.errno) if error.errno else error.message)


# ---------------------------------------------------------------------------- passive
_ANALYZE = {
    # outcome -> (description, layer4 verdict, layer7 verdict): True ok, False error, None ignore
    Outcome.CONNECT_OK: ("L4 successful connection", True, None),
    Outcome.CONNECT_ERROR: ("L4 unsuccessful connection", False, False),
    Outcome.CONNECT_TIMEOUT: ("L4 unsuccessful connection", False, False),
    Outcome.RESPONSE_INVALID: ("Invalid http response", None, False),
    Outcome.RESPONSE_ABORTED: ("Read error (http)", None, False),
    Outcome.RESPONSE_TIMEOUT: ("Read timeout (http)", None, False),
}


def analyze(report: Report, mode: Observe) -> Optional[tuple]:
    """(description, ok) of a reported outcome for ``observe`` ``mode``; None: ignored."""
    if report.outcome is Outcome.RESPONSE_OK:
        if mode != Observe.LAYER7:
            return None
        code = int(report.cause) if report.cause.isdigit() else 200
        # HAProxy: "Valid status codes include 100 to 499, 501 and 505".
        if code < 500 or code in (501, 505):
            return ("Correct http response", True)
        return ("Wrong http response", False)
    entry = _ANALYZE.get(report.outcome)
    if entry is None:
        return None
    desc, l4, l7 = entry
    verdict_ = l4 if mode == Observe.LAYER4 else l7
    return None if verdict_ is None else (desc, verdict_)


# ---------------------------------------------------------------------------- all of them
class HealthChecks:
    """Every check of one generation: probers, passive observers, slowstart, logs."""

    def __init__(
        self,
        runtime: Runtime,
        clock: Any,
        log: Log,
        connector: Connector = connect,
        rng: Optional[random.Random] = None,
        on_probe: Optional[Callable[[ServerState], None]] = None,
    ) -> None:
        self.runtime = runtime
        self.clock = clock
        self.log = log
        self.connector = connector
        self.rng = rng if rng is not None else random.Random()
        self.spread_pct = runtime.config.global_.spread_checks
        self._on_probe = on_probe
        self.checks: Dict[ServerState, ServerCheck] = {}
        self.errors: Dict[ServerState, int] = {}  # consecutive passive errors
        self.ramps: Dict[ServerState, Any] = {}  # slowstart timers
        self.requests: Dict[str, Optional[bytes]] = {}
        self.started = False

    # -- configuration ------------------------------------------------------------------
    def http_check(self, srv: ServerState) -> Any:
        return srv.backend.proxy.http_check

    def http_request(self, srv: ServerState) -> Optional[bytes]:
        proxy = srv.backend.proxy
        if not proxy.http_check.enabled:
            return None
        request = self.requests.get(proxy.name)
        if request is None:
            request = self.requests[proxy.name] = build_request(proxy.http_check)
        return request

    def spread(self, interval_ms: int) -> float:
        """``spread-checks``: +-N% of random spread on each interval."""
        if not self.spread_pct:
            return interval_ms
        rv = interval_ms * self.spread_pct / 100.0
        return interval_ms + rv - 2 * rv * self.rng.random()

    def on_probe(self, srv: ServerState) -> None:
        if self._on_probe is not None:
            self._on_probe(srv)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start every check; first probes spread evenly over the largest first interval."""
        if self.started:
            return
        self.started = True
        for state in self.runtime.backends.values():
            state.add_observer(self._server_changed)
            if any(s.config.check.observe != Observe.NONE for s in state.servers):
                state.add_report_observer(self._reported)
        # Every server with ``check`` gets its prober, enabled or not (``enable health``).
        servers = [
            s for be in self.runtime.backends.values() for s in be.servers if s.config.check.enabled
        ]
        checks = [ServerCheck(self, s) for s in servers]
        longest = max((c.interval_ms() for c in checks), default=0)
        for index, check in enumerate(checks):
            self.checks[check.server] = check
            check.schedule(longest * index / len(checks))

    def stop(self) -> None:
        """Stop every probe and timer (the generation is going away)."""
        self.started = False
        for check in self.checks.values():
            check.stop()
        self.checks.clear()
        for call in self.ramps.values():
            if call.active():
                call.cancel()
        self.ramps.clear()
        for state in self.runtime.backends.values():
            state.remove_observer(self._server_changed)
            state.remove_report_observer(self._reported)

    def _server_changed(self, change: ServerChange) -> None:
        srv = change.server
        if change.field is Change.ADDED and srv.config.check.enabled and srv not in self.checks:
            check = self.checks[srv] = ServerCheck(self, srv)
            check.schedule(0)
            if srv.config.check.observe != Observe.NONE:
                be = srv.backend
                if self._reported not in be.report_observers:
                    be.add_report_observer(self._reported)
        elif change.field is Change.REMOVED:
            gone = self.checks.pop(srv, None)
            if gone is not None:
                gone.stop()
            ramp = self.ramps.pop(srv, None)
            if ramp is not None and ramp.active():
                ramp.cancel()
            self.errors.pop(srv, None)

    # -- accounting -----------------------------------------------------------------------
    def account(self, srv: ServerState, result: CheckResult) -> None:
        """One check result: the counter, the check fields, logs and transitions."""
        if srv.removed:
            return
        before = (srv.health, srv.check_status)
        was_backend_up = srv.backend.is_up
        queued = srv.qcur
        srv.record_check(result.status.value, result.code, result.duration, result.desc)
        changed = srv.set_check_result(result.passed, result.status is Status.L7OKC)
        if result.passed:
            self.errors.pop(srv, None)  # HAProxy clears consecutive_errors on a pass
        proxy = srv.backend.proxy
        log_checks = proxy.has_option("log-health-checks")
        if log_checks and (srv.health, srv.check_status) != before:
            self.log(wording.check_line(srv, result), "notice", proxy)
        if changed:
            self.transition(srv, queued, was_backend_up, with_cause=not log_checks)

    def transition(
        self,
        srv: ServerState,
        queued: int,
        was_backend_up: bool,
        with_cause: bool = True,
        cause: Optional[str] = None,
    ) -> None:
        """A server went UP or DOWN: its actions (shutdowns, slowstart) and its log lines."""
        proxy = srv.backend.proxy
        if not srv.op_up:
            self._went_down(srv)
            requeued = max(0, queued - srv.qcur)
            self.log(wording.down_line(srv, with_cause, requeued, cause), "alert", proxy)
            self._backend_lost(srv, was_backend_up)
            return
        self._went_up(srv)
        self.log(wording.up_line(srv, with_cause, 0, cause), "notice", proxy)

    def _went_down(self, srv: ServerState) -> None:
        if marked_actions(srv)[0] == "shutdown-sessions":
            srv.shutdown_streams(SHUTDOWN_DOWN)

    def _went_up(self, srv: ServerState) -> None:
        if srv.config.check.slowstart:
            self._ramp(srv)
        if marked_actions(srv)[1] == "shutdown-backup-sessions" and not srv.backup and srv.eweight:
            for other in srv.backend.servers:
                if other.backup:
                    other.shutdown_streams(SHUTDOWN_UP)

    def _backend_lost(self, srv: ServerState, was_backend_up: bool) -> None:
        if was_backend_up and not srv.backend.is_up:
            self.log(wording.no_server_line(srv.backend.name), "emerg", srv.backend.proxy)

    # -- the stats socket's changes (logged as HAProxy logs them) ------------------------
    def force_health(self, srv: ServerState, value: str) -> None:
        """``set server health up|stopping|down``: the state HAProxy sets, its log line."""
        queued, was_backend_up, was_up = srv.qcur, srv.backend.is_up, srv.op_up
        if not srv.force_health(value):
            return
        cause = wording.CLI_CAUSE
        if value == "stopping":
            if not was_up:
                self._went_up(srv)
            self.log(wording.stopping_line(srv, cause, 0), "notice", srv.backend.proxy)
            self._backend_lost(srv, was_backend_up)
            return
        self.transition(srv, queued, was_backend_up, cause=cause)

    def set_admin(self, srv: ServerState, state: str) -> None:
        """``set server state ready|drain|maint`` (and ``enable/disable server``), with
        HAProxy's lines: going DOWN for maintenance, leaving forced maintenance, drain."""
        old, was_up, was_stopping = srv.admin, srv.op_up, srv.stopping
        queued, was_backend_up = srv.qcur, srv.backend.is_up
        srv.set_admin(state)
        new = srv.admin
        if new == old:
            return
        proxy = srv.backend.proxy
        requeued = max(0, queued - srv.qcur)
        if new == MAINT:
            if was_up:
                self._went_down(srv)
            level = "notice" if not was_up or was_stopping else "alert"
            self.log(wording.maint_line(srv, was_up, requeued), level, proxy)
            self._backend_lost(srv, was_backend_up)
            return
        if old == MAINT:
            if srv.op_up:
                self._went_up(srv)
            self.log(wording.leave_maint_line(srv), "notice", proxy)
            if new == DRAIN:
                self.log(wording.remains_drain_line(srv), "notice", proxy)
            return
        if new == DRAIN:
            self.log(wording.drain_line(srv, requeued), "notice", proxy)
            self._backend_lost(srv, was_backend_up)
        else:
            self.log(wording.leave_drain_line(srv), "notice", proxy)

    def set_enabled(self, srv: ServerState, enabled: bool) -> None:
        """``enable health`` / ``disable health``: the prober keeps its timer and probes
        only while enabled; the server keeps its state (HAProxy 2.6)."""
        srv.set_check_enabled(enabled)
        if enabled and self.started and srv not in self.checks and not srv.removed:
            check = self.checks[srv] = ServerCheck(self, srv)
            check.schedule(0)

    def _ramp(self, srv: ServerState) -> None:
        """slowstart: weight from 1 to full over ``slowstart``, a step every max(1s, 1/20)."""
        slowstart = srv.config.check.slowstart
        elapsed = (self.clock.seconds() - srv.last_change) * 1000
        if not srv.op_up or elapsed >= slowstart:
            srv.set_ramp(None)
            self.ramps.pop(srv, None)
            return
        srv.set_ramp(elapsed / slowstart)
        step = max(1000, slowstart / 20) / 1000.0
        self.ramps[srv] = self.clock.callLater(step, self._ramp, srv)

    # -- passive --------------------------------------------------------------------------
    def _reported(self, report: Report) -> None:
        srv = report.server
        mode = srv.config.check.observe
        if mode == Observe.NONE or not srv.checked:
            return
        found = analyze(report, mode)
        if found is None:
            return
        desc, ok = found
        if ok:
            self.errors.pop(srv, None)
            return
        count = self.errors.get(srv, 0) + 1
        cfg = srv.config.check
        if count < cfg.error_limit:
            self.errors[srv] = count
            return
        self.errors.pop(srv, None)
        srv.hanafail += 1
        text = f"Detected {count} consecutive errors, last one was: {desc}"
        check = self.checks.get(srv)
        if cfg.on_error != OnError.FASTINTER:
            if cfg.on_error == OnError.SUDDEN_DEATH and srv.health > srv.rise:
                srv.set_health(srv.rise + 1)
            elif cfg.on_error == OnError.MARK_DOWN:
                srv.set_health(srv.rise)
            self.account(srv, CheckResult(Status.HANA, text))  # no duration, as HAProxy
        if check is not None:
            check.hurry()


def marked_actions(srv: ServerState) -> tuple:
    """(on-marked-down, on-marked-up) of a server ('' when unset)."""
    return (srv.config.on_marked_down, srv.config.on_marked_up)
