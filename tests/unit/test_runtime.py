"""Run-time state: ids, health counter, admin state, weights, observers, pools, counters."""

from __future__ import annotations

import random
from typing import Any, List

import pytest
from twisted.internet.task import Clock

from udsproxy.backend import Backend
from udsproxy.config.model import (
    UNIX,
    Address,
    Balance,
    Check,
    Config,
    Proxy,
    Server,
)
from udsproxy.runtime import (
    BackendState,
    Outcome,
    Runtime,
    ServerChange,
    ServerState,
    assign_ids,
)


def server(name: str, **kw: Any) -> Server:
    return Server(name=name, address=Address(UNIX, path=f"/run/{name}.sock"), **kw)


def backend(*servers: Server, algorithm: str = "roundrobin", **kw: Any) -> Backend:
    proxy = Proxy(
        name="be", kind="backend", servers=servers, balance=Balance(algorithm=algorithm), **kw
    )
    return Backend(BackendState(proxy, Clock()), random.Random(0))


def checked(name: str = "a", rise: int = 2, fall: int = 3, **kw: Any) -> ServerState:
    return backend(server(name, check=Check(enabled=True, rise=rise, fall=fall), **kw)).servers[0]


# -- identity ------------------------------------------------------------------------------


def test_ids_forced_then_lowest_free_in_order() -> None:
    """Forced ids are kept; the others get the lowest unused ids in config order."""
    servers = [server("a"), server("b", id=2), server("c"), server("d", id=1), server("e")]
    assert assign_ids(servers) == [3, 2, 4, 1, 5]
    be = backend(*servers)
    assert [(s.name, s.id) for s in be.servers] == [
        ("a", 3),
        ("b", 2),
        ("c", 4),
        ("d", 1),
        ("e", 5),
    ]
    assert be.server("c") is be.servers[2] and be.server("zz") is None


def test_runtime_builds_backends_and_frontends_by_name() -> None:
    """A listen section is both a backend and a frontend; find_server takes 'be/srv'."""
    config = Config(
        proxies=(
            Proxy(name="fe", kind="frontend", default_backend="app"),
            Proxy(name="app", kind="backend", servers=(server("s1"),)),
            Proxy(name="both", kind="listen", servers=(server("s2"),)),
        )
    )
    rt = Runtime(config, Clock())
    assert set(rt.backends) == {"app", "both"}
    assert set(rt.frontends) == {"fe", "both"}
    assert rt.find_server("app/s1") is rt.backends["app"].servers[0]
    assert rt.find_server("app/nope") is None
    assert rt.find_server("nope/s1") is None
    assert rt.find_server("app") is None


# -- health --------------------------------------------------------------------------------


def test_unchecked_server_is_always_up() -> None:
    """Without ``check`` a server is up and check results are ignored."""
    srv = backend(server("a")).servers[0]
    srv.set_check_result(False)
    assert srv.op_up and srv.usable
    assert srv.status == "no check"


def test_checked_server_starts_up_and_first_failure_marks_it_down() -> None:
    """A checked server starts at health == rise, so one failure takes it down (HAProxy)."""
    srv = checked()
    assert srv.op_up and srv.health == 2 and srv.status == "UP 1/3"
    srv.set_check_result(False)
    assert not srv.op_up and srv.health == 0 and srv.status == "DOWN"


def test_health_counter_rise_and_fall_thresholds() -> None:
    """rise successes in a row bring a server up, fall failures take it down."""
    srv = checked(rise=2, fall=3)
    srv.set_check_result(False)
    srv.set_check_result(True)
    assert not srv.op_up and srv.status == "DOWN 1/2"
    srv.set_check_result(True)
    assert srv.op_up and srv.health == 4 and srv.status == "UP"
    srv.set_check_result(True)
    assert srv.health == 4  # capped at rise + fall - 1
    srv.set_check_result(False)
    assert srv.op_up and srv.status == "UP 2/3"
    srv.set_check_result(False)
    assert srv.op_up and srv.status == "UP 1/3"
    srv.set_check_result(False)
    assert not srv.op_up and srv.health == 0
    srv.set_check_result(False)
    assert srv.health == 0  # floor


def test_a_success_while_going_down_restores_full_health() -> None:
    """Going down, one success climbs back to the top (the counter jumps at rise)."""
    srv = checked(rise=2, fall=3)
    srv.set_check_result(False)  # 2 -> 0: down
    srv.set_check_result(True)
    srv.set_check_result(True)  # up, 4
    srv.set_check_result(False)  # 3
    srv.set_check_result(True)
    assert srv.health == 4


def test_disable_health_keeps_the_state() -> None:
    """HAProxy 2.6 (checked against it): ``disable health`` only stops the checks; a DOWN
    server stays DOWN (unchecked: plain ``DOWN``) and an UP one shows ``no check``."""
    srv = checked()
    srv.set_check_result(False)
    srv.set_check_enabled(False)
    assert not srv.op_up and srv.status == "DOWN"
    srv.set_check_enabled(True)
    assert not srv.op_up and srv.status == "DOWN"
    srv.force_health("up")
    srv.set_check_enabled(False)
    assert srv.op_up and srv.status == "no check"


# -- admin state ---------------------------------------------------------------------------


def test_disabled_in_config_starts_in_maint() -> None:
    """``disabled`` on the server line is admin state maint."""
    srv = backend(server("a", disabled=True)).servers[0]
    assert srv.admin == "maint" and not srv.usable and not srv.available
    assert srv.status == "MAINT"


def test_drain_stops_new_traffic_but_stays_available() -> None:
    """Drain: effective weight 0, not usable for balancing, still takes bound streams."""
    srv = backend(server("a", weight=5)).servers[0]
    srv.set_admin("drain")
    assert (srv.uweight, srv.eweight) == (5, 0)
    assert not srv.usable and srv.available and srv.status == "DRAIN"
    srv.set_admin("ready")
    assert srv.usable and srv.eweight == 5


def test_maint_pauses_checks_and_leaving_it_starts_at_rise() -> None:
    """In maint check results are ignored; leaving it sets health to rise (up, checked soon)."""
    srv = checked()
    srv.set_check_result(False)
    srv.set_admin("maint")
    srv.set_check_result(True)
    srv.set_check_result(True)
    assert srv.health == 0
    srv.set_admin("ready")
    assert srv.op_up and srv.health == srv.rise


def test_unknown_admin_state_is_refused() -> None:
    """Only ready, drain and maint exist."""
    with pytest.raises(ValueError):
        backend(server("a")).servers[0].set_admin("up")


def test_weight_limits_and_zero_means_drain_status() -> None:
    """Weights are 0..256; weight 0 is not usable but, as in HAProxy 2.6 (checked against
    it: ``set weight be/b 0`` shows ``no check``), not DRAIN: only the drain state is."""
    srv = backend(server("a")).servers[0]
    with pytest.raises(ValueError):
        srv.set_weight(257)
    with pytest.raises(ValueError):
        srv.set_weight(-1)
    srv.set_weight(0)
    assert not srv.usable and srv.status == "no check"
    srv.set_weight(256)
    assert srv.usable and srv.eweight == 256


def test_negative_maxconn_is_refused() -> None:
    """maxconn is 0 (unlimited) or positive."""
    with pytest.raises(ValueError):
        backend(server("a")).servers[0].set_maxconn(-1)


def test_has_free_slot() -> None:
    """maxconn 0 is unlimited; otherwise a slot is free below maxconn."""
    srv = backend(server("a", maxconn=2)).servers[0]
    assert srv.has_free_slot
    srv.scur = 2
    assert not srv.has_free_slot
    srv.set_maxconn(0)
    assert srv.has_free_slot


# -- observers -----------------------------------------------------------------------------


def test_observers_see_each_change_once_with_old_and_new() -> None:
    """Every run-time change reaches observers as (server, field, old, new)."""
    be = backend(server("a", check=Check(enabled=True)))
    seen: List[ServerChange] = []
    be.state.add_observer(seen.append)
    (a,) = be.servers
    a.set_weight(3)
    a.set_weight(3)  # no change, no event
    a.set_maxconn(5)
    a.set_admin("drain")
    a.set_check_result(False)
    a.set_admin("maint")
    a.set_admin("ready")  # leaving maint comes back up: admin then op
    assert [(c.field, c.old, c.new) for c in seen] == [
        ("weight", 1, 3),
        ("maxconn", 0, 5),
        ("admin", "ready", "drain"),
        ("op", True, False),
        ("admin", "drain", "maint"),
        ("admin", "maint", "ready"),
        ("op", False, True),
    ]
    assert all(c.server is a for c in seen)
    be.state.remove_observer(seen.append)
    a.set_weight(1)
    assert len(seen) == 7


def test_state_changes_stamp_last_change() -> None:
    """Op and admin changes record the clock time on the server and backend."""
    be = backend(server("a"))
    clock = be.state.clock
    clock.advance(42)
    be.servers[0].set_admin("drain")
    assert be.servers[0].last_change == 42 and be.state.last_change == 42
    clock.advance(1)
    be.servers[0].set_weight(2)  # weight is not a state change
    assert be.servers[0].last_change == 42


def test_observer_sees_the_queue_already_drained() -> None:
    """Observers run after the queue took the new slots, so they can log the queue size."""
    be = backend(server("a", maxconn=1))
    granted: List[ServerState] = []
    be.request_slot(granted.append, pytest.fail)
    be.request_slot(granted.append, pytest.fail)
    queue_at_event: List[int] = []
    be.state.add_observer(lambda change: queue_at_event.append(be.state.qcur))
    be.servers[0].set_maxconn(2)
    assert queue_at_event == [0] and len(granted) == 2


# -- pool and select -----------------------------------------------------------------------


def test_select_reports_ok_full_none() -> None:
    """select() says which: a server, all full (queue), or none usable (503)."""
    be = backend(server("a", maxconn=1))
    (a,) = be.servers
    assert be.select() == (a, "ok")
    a.scur = 1
    assert be.select() == (None, "full")
    a.set_admin("maint")
    assert be.select() == (None, "none")


def test_select_avoid_is_a_preference() -> None:
    """An avoided server is skipped when another has a slot, chosen when it is the only one."""
    be = backend(server("a"), server("b"))
    a, b = be.servers
    assert {be.select(avoid=[a])[0] for _ in range(4)} == {b}
    b.set_admin("maint")
    assert be.select(avoid=[a]) == (a, "ok")


def test_lb_pool_actives_then_first_backup_or_all() -> None:
    """The pool is the usable actives, else the lowest-id backup, or all with allbackups."""
    be = backend(server("x"), server("b2", backup=True, id=9), server("b1", backup=True, id=5))
    x, b2, b1 = be.servers
    assert be.state.lb_pool() == [x]
    assert (be.state.active_count, be.state.backup_count, be.state.is_up) == (1, 2, True)
    x.set_admin("maint")
    assert be.state.lb_pool() == [b1]
    be2 = backend(
        server("x", disabled=True),
        server("b2", backup=True),
        server("b1", backup=True),
        options=("allbackups",),
    )
    assert be2.state.lb_pool() == be2.servers[1:]
    for s in be2.servers[1:]:
        s.set_admin("maint")
    assert be2.state.lb_pool() == [] and not be2.state.is_up


# -- counters ------------------------------------------------------------------------------


def test_server_notes_count_on_server_and_backend() -> None:
    """Error, retry, redispatch and byte counters add up on the server and its backend."""
    be = backend(server("a"))
    (a,) = be.servers
    a.report(Outcome.CONNECT_ERROR, "ECONNREFUSED", "connect to /run/a.sock: refused")
    a.report(Outcome.RESPONSE_INVALID)
    a.note_retry()
    a.note_redispatch()
    a.note_bytes(10, 20)
    a.note_bytes(bytes_out=5)
    for c in (a, be.state):
        assert (c.econ, c.eresp, c.wretr, c.wredis, c.bin, c.bout) == (1, 1, 1, 1, 10, 25)


def test_free_slot_twice_is_a_bug_caught_loudly() -> None:
    """Freeing a slot nobody holds raises instead of driving counters negative."""
    (a,) = backend(server("a")).servers
    with pytest.raises(AssertionError):
        a.free_slot()
    assert a.scur == 0


def test_frontend_and_global_counters() -> None:
    """Frontend open/close keeps scur, smax, stot and the global connection counts."""
    config = Config(proxies=(Proxy(name="f1", kind="frontend"), Proxy(name="f2", kind="frontend")))
    rt = Runtime(config, Clock())
    f1, f2 = rt.frontends["f1"], rt.frontends["f2"]
    f1.open()
    f1.open()
    f2.open()
    f1.close()
    assert (f1.scur, f1.smax, f1.stot) == (1, 2, 2)
    assert (rt.counters.curr_conns, rt.counters.cum_conns, rt.counters.max_conns) == (2, 3, 3)
    f1.close()
    f1.close()  # one close too many: ignored
    assert f1.scur == 0 and rt.counters.curr_conns == 1
    assert (f1.ereq, f1.dreq, f1.bin, f1.bout) == (0, 0, 0, 0)


# -- health accounting (issue 10) ----------------------------------------------------------


def test_chkfail_chkdown_and_downtime_follow_the_counter() -> None:
    """Failed checks count chkfail until DOWN; each UP->DOWN counts chkdown; downtime adds up."""
    srv = checked(rise=2, fall=2)
    clock = srv.backend.clock
    assert srv.set_check_result(False) is True  # starts at health == rise: one failure
    assert (srv.op_up, srv.chkfail, srv.chkdown) == (False, 1, 1)
    assert srv.set_check_result(False) is False
    assert srv.chkfail == 1  # already at 0: not counted again (HAProxy's failed_checks)
    clock.advance(5)
    assert srv.downtime_at(clock.seconds()) == 5
    assert srv.backend.downtime_at(clock.seconds()) == 5 and srv.backend.chkdown == 1
    srv.set_check_result(True)
    assert srv.status == "DOWN 1/2"
    srv.set_check_result(True)
    assert srv.op_up and srv.downtime == 5 and srv.backend.downtime == 5
    clock.advance(3)
    assert srv.downtime_at(clock.seconds()) == 5
    assert srv.backend.last_change == 5


def test_health_text_as_log_health_checks_prints_it() -> None:
    """``status: 2/3 UP`` while up, ``1/2 DOWN`` while down."""
    srv = checked(rise=2, fall=3)
    srv.set_check_result(True)
    assert srv.health_text == "3/3 UP"
    srv.set_check_result(False)
    assert srv.health_text == "2/3 UP" and srv.status == "UP 2/3"
    srv.set_check_result(False)
    srv.set_check_result(False)
    assert srv.health_text == "0/2 DOWN"


def test_slowstart_ramp_sets_eweight_and_starting_state() -> None:
    """While ramping the server is STARTING with HAProxy's share of its weight: sixteenths,
    ``ceil(uweight * (int(16 * ramp) + 1) / 16)`` (10 at 25%: 10 * 5/16 -> 4)."""
    srv = checked(weight=10)
    seen: List[ServerChange] = []
    srv.backend.add_observer(seen.append)
    srv.set_ramp(0.25)
    assert srv.eweight == 4 and srv.op_state.name == "STARTING"
    assert seen[-1].field == "weight" and (seen[-1].old, seen[-1].new) == (10, 4)
    srv.set_ramp(0.01)
    assert srv.eweight == 1
    srv.set_ramp(1.0)
    assert srv.ramp is None and srv.eweight == 10 and srv.op_state.name == "RUNNING"


def test_stopping_takes_no_new_traffic_and_shows_nolb() -> None:
    """disable-on-404: STOPPING, eweight 0 (not usable), status NOLB."""
    srv = checked()
    srv.set_check_result(True)
    srv.set_stopping(True)
    assert srv.op_state.name == "STOPPING" and srv.status == "NOLB" and not srv.usable
    assert srv.available  # bound streams still come
    srv.set_stopping(False)
    assert srv.usable and srv.status == "UP"


def test_shutdown_streams_ends_each_registered_stream() -> None:
    """on-marked-down shutdown-sessions: every registered stream gets shutdown(flags)."""
    srv = checked()
    ended: List[str] = []

    class S:
        def shutdown(self, flags: str) -> None:
            ended.append(flags)
            srv.streams.discard(self)

    srv.streams.update({S(), S()})
    assert srv.shutdown_streams("DD") == 2
    assert ended == ["DD", "DD"] and not srv.streams


# -- forced health and maintenance, as HAProxy 2.6 (compared with a real run) ---------------


def test_force_health_on_an_unchecked_server() -> None:
    """``set server health`` works on unchecked servers too: DOWN, NOLB, then ``no check``."""
    srv = backend(server("b")).servers[0]
    assert srv.force_health("down") and not srv.op_up and srv.status == "DOWN"
    assert srv.health == 0 and not srv.usable
    assert srv.force_health("stopping") and srv.op_up and srv.status == "NOLB"
    assert srv.eweight == 0 and srv.op_state.name == "STOPPING"
    assert srv.force_health("up") and srv.status == "no check" and srv.usable
    assert not srv.force_health("up")  # no change, no log line


def test_force_health_on_a_checked_server_moves_the_counter() -> None:
    """down: health 0 and DOWN (checks must climb back to rise); up: the top of the counter."""
    srv = checked()
    srv.force_health("down")
    assert (srv.health, srv.status, srv.chkdown) == (0, "DOWN", 1)
    srv.set_check_result(True)
    assert not srv.op_up and srv.status == "DOWN 1/2"
    srv.force_health("up")
    assert (srv.health, srv.status) == (4, "UP")


def test_a_passing_check_ends_a_forced_stopping() -> None:
    """HAProxy's check_notify_success: a pass sets a STOPPING server running again."""
    srv = checked()
    srv.force_health("stopping")
    assert srv.status == "NOLB"
    srv.set_check_result(True)
    assert srv.status == "UP" and srv.eweight == 1


def test_maint_zeroes_health_and_counts_a_down_transition() -> None:
    """Entering maint stops a running server (chkdown + 1, health 0); leaving it starts UP at
    rise ("UP 1/3") without counting the maintenance as down time."""
    srv = checked()
    clock = srv.backend.clock
    clock.advance(5)
    srv.set_admin("maint")
    assert (srv.health, srv.chkdown, srv.op_up, srv.status) == (0, 1, False, "MAINT")
    clock.advance(7)
    srv.set_admin("ready")
    assert srv.status == "UP 1/3" and srv.downtime == 0 and srv.last_change == clock.seconds()


def test_entering_maint_while_down_keeps_the_last_change() -> None:
    """ "was DOWN and now enters maintenance": no new transition, no new last change."""
    srv = checked()
    srv.set_check_result(False)
    srv.set_check_result(False)
    srv.set_check_result(False)
    down_since = srv.last_change
    srv.backend.clock.advance(3)
    srv.set_admin("maint")
    assert srv.chkdown == 1 and srv.last_change == down_since


def test_leaving_drain_counts_the_drain_as_down_time() -> None:
    """HAProxy adds a drain period to the server's downtime when the drain ends."""
    srv = checked()
    srv.force_health("up")
    clock = srv.backend.clock
    srv.set_admin("drain")
    assert srv.status == "DRAIN"
    clock.advance(4)
    srv.set_admin("ready")
    assert srv.downtime == 4 and srv.status == "UP"


def test_drain_while_going_down_shows_the_counter() -> None:
    """``DRAIN 2/3`` as HAProxy shows a drained server whose checks are failing."""
    srv = checked()
    srv.force_health("up")
    srv.set_admin("drain")
    srv.set_check_result(False)
    assert srv.status == "DRAIN 2/3"
