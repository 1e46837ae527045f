"""The backend core: servers added and removed at run time, for every balancer and the queue."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock

from udsproxy.backend import Backend, build_backends
from udsproxy.balance import ALGORITHMS
from udsproxy.config.model import UNIX, Address, Balance, Config, Proxy, Server
from udsproxy.queue import QueueError
from udsproxy.runtime import (
    BackendState,
    Change,
    Outcome,
    Report,
    Runtime,
    ServerChange,
    ServerSetError,
    ServerState,
)


def server(name: str, **kw: Any) -> Server:
    return Server(name=name, address=Address(UNIX, path=f"/run/{name}.sock"), **kw)


def backend(
    *servers: Server, algorithm: str = "roundrobin", hash_type: str = "map-based"
) -> Backend:
    proxy = Proxy(
        name="be",
        kind="backend",
        servers=tuple(servers),
        balance=Balance(algorithm=algorithm, hash_type=hash_type),
    )
    return Backend(BackendState(proxy, Clock()), random.Random(3))


def picks(be: Backend, n: int, key: Any = None) -> List[str]:
    out = []
    for _ in range(n):
        srv = be.balancer.pick(key)
        assert srv is not None
        out.append(srv.name)
    return out


ALGOS = [
    ("roundrobin", "map-based"),
    ("static-rr", "map-based"),
    ("leastconn", "map-based"),
    ("first", "map-based"),
    ("random", "map-based"),
    ("source", "map-based"),
    ("source", "consistent"),
]


# -- add / remove ------------------------------------------------------------------------


def test_added_server_gets_the_lowest_free_id_and_observers_hear_of_it() -> None:
    """An added server takes the lowest free id; observers get ADDED after the balancer."""
    be = backend(server("a", id=1), server("b", id=3))
    seen: List[ServerChange] = []
    be.state.add_observer(seen.append)
    c = be.add_server(server("c"))
    assert c.id == 2 and be.servers[-1] is c
    assert [(ch.field, ch.server) for ch in seen] == [(Change.ADDED, c)]


def test_add_refuses_a_duplicate_name_or_forced_id() -> None:
    """A second server of the same name, or with a used id, is refused with a reason."""
    be = backend(server("a"))
    with pytest.raises(ServerSetError, match="same name"):
        be.add_server(server("a"))
    with pytest.raises(ServerSetError, match="id 1"):
        be.add_server(server("z", id=1))
    assert [s.name for s in be.servers] == ["a"]


def test_remove_refuses_a_busy_server_and_then_forgets_it() -> None:
    """A server holding a slot cannot go; once idle it is removed and never picked again."""
    be = backend(server("a"), server("b"))
    a, b = be.servers
    granted: List[ServerState] = []
    ticket = be.request_slot(granted.append, lambda e: None, server=a)
    with pytest.raises(ServerSetError, match="1 active"):
        be.remove_server(a)
    ticket.release()
    be.remove_server(a)
    assert a.removed and be.servers == [b]
    assert set(picks(be, 4)) == {"b"}
    with pytest.raises(ServerSetError, match="No such server"):
        be.remove_server(a)


def test_removed_id_is_reused_by_the_next_added_server() -> None:
    """Ids stay unique among current servers; a freed id is the lowest free one again."""
    be = backend(server("a"), server("b"), server("c"))
    be.remove_server(be.servers[1])
    assert be.add_server(server("d")).id == 2


def test_an_added_server_takes_a_waiting_stream_at_once() -> None:
    """Adding a server to a full backend grants its queue's head in the same call."""
    be = backend(server("a", maxconn=1))
    got: List[str] = []
    be.request_slot(lambda s: got.append(s.name), lambda e: None)
    be.request_slot(lambda s: got.append(s.name), lambda e: None)
    assert got == ["a"] and len(be.queue) == 1
    be.add_server(server("b"))
    assert got == ["a", "b"] and len(be.queue) == 0


def test_removing_the_last_server_fails_the_queue_only_on_request() -> None:
    """With no server left, a new request gets NO_SERVER at once."""
    be = backend(server("a"))
    be.remove_server(be.servers[0])
    errors: List[QueueError] = []
    be.request_slot(lambda s: None, errors.append)
    assert errors == [QueueError.NO_SERVER] and errors[0].flags == "SC"


@pytest.mark.parametrize("algorithm,hash_type", ALGOS)
def test_every_balancer_picks_only_current_servers_across_add_and_remove(
    algorithm: str, hash_type: str
) -> None:
    """Whatever the algorithm, picks come from the servers present now, all of them used."""
    be = backend(server("a"), server("b"), algorithm=algorithm, hash_type=hash_type)
    keys = [bytes([i, i * 7 % 256, 1, 2]) for i in range(64)]

    def pick_all() -> Counter:  # type: ignore[type-arg]
        out: Counter = Counter()  # type: ignore[type-arg]
        for i in range(64):
            srv = be.balancer.pick(keys[i] if algorithm == "source" else None)
            assert srv is not None
            out[srv.name] += 1
        return out

    assert set(pick_all()) <= {"a", "b"}
    be.add_server(server("c"))
    got = pick_all()
    assert set(got) <= {"a", "b", "c"}
    if algorithm not in ("first",):  # first fills by id: with no load it is always a
        assert set(got) == {"a", "b", "c"}
    be.remove_server(be.server("a"))  # type: ignore[arg-type]
    got = pick_all()
    assert set(got) <= {"b", "c"} and got
    be.remove_server(be.server("b"))  # type: ignore[arg-type]
    be.remove_server(be.server("c"))  # type: ignore[arg-type]
    assert be.balancer.pick(keys[0]) is None
    be.add_server(server("d"))
    assert set(pick_all()) == {"d"}


def test_static_rr_schedule_follows_added_and_removed_servers() -> None:
    """static-rr rebuilds its fixed schedule: an added server gets its weight's share."""
    be = backend(server("a", weight=2), server("b"), algorithm="static-rr")
    assert Counter(picks(be, 6)) == {"a": 4, "b": 2}
    be.add_server(server("c", weight=3))
    assert Counter(picks(be, 12)) == {"a": 4, "b": 2, "c": 6}
    be.remove_server(be.servers[0])
    assert Counter(picks(be, 8)) == {"b": 2, "c": 6}


def test_roundrobin_keeps_exact_shares_after_a_removal() -> None:
    """Smooth round robin forgets a removed server: the rest keep exact weight shares."""
    be = backend(server("a", weight=3), server("b", weight=2), server("c"))
    picks(be, 4)
    be.remove_server(be.servers[2])
    assert Counter(picks(be, 50)) == {"a": 30, "b": 20}


def test_consistent_hash_moves_only_the_removed_servers_keys() -> None:
    """hash-type consistent: removing a server moves only the keys it had."""
    be = backend(server("a"), server("b"), server("c"), algorithm="source", hash_type="consistent")
    keys = [f"10.0.{i // 256}.{i % 256}".encode() for i in range(500)]
    before = {k: be.balancer.pick(k).name for k in keys}  # type: ignore[union-attr]
    be.remove_server(be.server("b"))  # type: ignore[arg-type]
    after = {k: be.balancer.pick(k).name for k in keys}  # type: ignore[union-attr]
    moved = {k for k in keys if before[k] != after[k]}
    assert moved == {k for k in keys if before[k] == "b"}
    be.add_server(server("b"))  # same name, same lowest free id: same ring points
    assert {k: be.balancer.pick(k).name for k in keys} == before  # type: ignore[union-attr]


def test_leastconn_forgets_a_removed_server() -> None:
    """leastconn keeps no memory of a removed server (no leak, no stale tie-break)."""
    be = backend(server("a"), server("b"), algorithm="leastconn")
    picks(be, 4)
    be.remove_server(be.servers[0])
    assert all(s.name != "a" for s in be.balancer._last)  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None)
@given(
    algo=st.sampled_from(ALGOS),
    ops=st.lists(
        st.tuples(st.sampled_from(["add", "remove", "pick"]), st.integers(0, 7)), max_size=40
    ),
)
def test_balancers_survive_any_add_remove_sequence(algo: Any, ops: Any) -> None:
    """Any sequence of adds, removes and picks: a pick is None exactly when no server is left."""
    algorithm, hash_type = algo
    be = backend(server("s0"), algorithm=algorithm, hash_type=hash_type)
    for op, n in ops:
        name = f"s{n}"
        if op == "add" and be.server(name) is None:
            be.add_server(server(name, weight=1 + n % 3))
        elif op == "remove" and be.server(name) is not None:
            be.remove_server(be.server(name))  # type: ignore[arg-type]
        else:
            srv = be.balancer.pick(bytes([n, 1]) if algorithm == "source" else None)
            assert (srv is None) == (not be.servers)
            assert srv is None or srv in be.servers


def test_every_registered_algorithm_is_covered() -> None:
    """The add/remove tests above name every balancer family there is."""
    covered = {a for a, _ in ALGOS}
    hashes = {"uri", "url_param", "hdr", "hash"}  # the same classes as source
    assert set(ALGORITHMS) - hashes == covered


# -- the weight rule and reports ---------------------------------------------------------


def test_static_algorithms_take_only_zero_or_the_initial_weight() -> None:
    """static-rr and map-based hashing refuse weights other than 0% and 100%."""
    for algorithm, hash_type in (("static-rr", "map-based"), ("source", "map-based")):
        be = backend(server("a", weight=4), algorithm=algorithm, hash_type=hash_type)
        with pytest.raises(ValueError, match="static LB algorithm"):
            be.set_weight(be.servers[0], 2)
        be.set_weight(be.servers[0], 0)
        be.set_weight(be.servers[0], 4)
    dynamic = backend(server("a", weight=4), algorithm="source", hash_type="consistent")
    dynamic.set_weight(dynamic.servers[0], 2)
    assert dynamic.servers[0].uweight == 2


def test_reports_count_and_reach_report_observers() -> None:
    """Connect and response outcomes count econ/eresp and reach the passive-health hook."""
    be = backend(server("a"))
    (a,) = be.servers
    seen: List[Report] = []
    be.state.add_report_observer(seen.append)
    a.report(Outcome.CONNECT_ERROR, "ENOENT", "connect to /run/a.sock: no such file")
    assert a.connect_error == "connect to /run/a.sock: no such file"
    a.report(Outcome.CONNECT_OK)
    assert a.connect_error is None
    a.report(Outcome.RESPONSE_TIMEOUT)
    a.report(Outcome.RESPONSE_OK)
    assert [(r.outcome, r.cause) for r in seen] == [
        (Outcome.CONNECT_ERROR, "ENOENT"),
        (Outcome.CONNECT_OK, ""),
        (Outcome.RESPONSE_TIMEOUT, ""),
        (Outcome.RESPONSE_OK, ""),
    ]
    assert (a.econ, a.eresp, be.state.econ, be.state.eresp) == (1, 1, 1, 1)


def test_build_backends_makes_one_core_per_backend_state() -> None:
    """build_backends wraps every backend of a runtime, sharing its states."""
    proxy = Proxy(name="be", kind="backend", servers=(server("a"),))
    runtime = Runtime(Config(proxies=(proxy,)), Clock())
    cores = build_backends(runtime)
    assert cores["be"].state is runtime.backends["be"]


def test_enums_print_as_their_values() -> None:
    """Typed states print as HAProxy's words on every Python (log lines, stats output)."""
    assert f"{Change.ADDED}" == "added" and str(QueueError.QUEUE_FULL) == "queue-full"
    assert Outcome.CONNECT_OK == "connect-ok"
