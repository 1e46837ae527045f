"""Load-balancing algorithms: shares, smoothness, ties, dynamic changes, hashing, backups."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, Dict, List, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock

from udsproxy.backend import Backend
from udsproxy.balance import ALGORITHMS, make_balancer
from udsproxy.balance.hashing import HASH_FUNCTIONS, full_hash, sdbm
from udsproxy.balance.roundrobin import smooth_sequence
from udsproxy.config.model import UNIX, Address, Balance, Proxy, Server
from udsproxy.runtime import BackendState, ServerState


def server(name: str, **kw: Any) -> Server:
    return Server(name=name, address=Address(UNIX, path=f"/run/{name}.sock"), **kw)


def backend(
    *servers: Server,
    algorithm: str = "roundrobin",
    hash_type: str = "map-based",
    draws: int = 2,
    options: Sequence[str] = (),
    seed: int = 1,
) -> Backend:
    proxy = Proxy(
        name="be",
        kind="backend",
        servers=tuple(servers),
        balance=Balance(algorithm=algorithm, hash_type=hash_type, draws=draws),
        options=tuple(options),
    )
    return Backend(BackendState(proxy, Clock()), random.Random(seed))


def weighted(*weights: int, **kw: Any) -> Backend:
    names = "abcdefghijklmnopqrstuvwxyz"
    return backend(*(server(names[i], weight=w) for i, w in enumerate(weights)), **kw)


def picks(be: Backend, n: int, key: bytes | None = None) -> List[str]:
    out = []
    for _ in range(n):
        srv = be.balancer.pick(key)
        assert srv is not None
        out.append(srv.name)
    return out


def gaps(seq: Sequence[str], name: str) -> List[int]:
    """Distances between consecutive picks of ``name`` in a cyclic sequence."""
    pos = [i for i, s in enumerate(list(seq) * 2) if s == name]
    return [b - a for a, b in zip(pos, pos[1:])]


def by_name(be: Backend) -> Dict[str, ServerState]:
    return {s.name: s for s in be.servers}


# -- registry ----------------------------------------------------------------------------


def test_every_keyword_builds_a_balancer() -> None:
    """Each registered ``balance`` keyword builds a balancer that can pick."""
    for name in ALGORITHMS:
        be = weighted(1, 1, algorithm=name)
        assert be.balancer.pick(b"k") is not None


def test_hdr_with_its_argument_is_the_hdr_hash() -> None:
    """``hdr(host)`` (the parser keeps the name apart: algorithm hdr) maps to the hash balancer."""
    be = weighted(1, 1, algorithm="hdr")
    assert be.balancer.pick(b"example.org") is be.balancer.pick(b"example.org")


def test_unknown_algorithm_is_refused() -> None:
    """An unknown algorithm name raises ValueError naming it."""
    with pytest.raises(ValueError, match="nope"):
        make_balancer(weighted(1, algorithm="nope"))


# -- roundrobin ----------------------------------------------------------------------------


def test_roundrobin_exact_per_cycle_counts() -> None:
    """Weights 3:1 over 40 picks give exactly 30/10, and 10 per 4-pick cycle."""
    seq = picks(weighted(3, 1), 40)
    assert Counter(seq) == {"a": 30, "b": 10}
    for start in range(0, 40, 4):
        assert Counter(seq[start : start + 4]) == {"a": 3, "b": 1}


def test_roundrobin_one_two_is_interleaved() -> None:
    """Weights a=1, b=2 interleave as HAProxy's a,b,b cycle (rotated), never a burst."""
    seq = picks(weighted(1, 2), 6)
    assert "".join(seq) in ("abbabb", "babbab", "bbabba")
    assert max(gaps(seq, "a")) == 3


def test_roundrobin_equal_weights_rotate() -> None:
    """Equal weights give a strict rotation in config order."""
    assert picks(weighted(1, 1, 1), 6) == ["a", "b", "c", "a", "b", "c"]
    assert picks(weighted(5, 5), 4) == ["a", "b", "a", "b"]


def test_roundrobin_drain_sends_everything_to_the_others() -> None:
    """After ``set server b state drain`` every pick goes to a (REFERENCE §2.4)."""
    be = weighted(1, 2)
    picks(be, 2)
    by_name(be)["b"].set_admin("drain")
    assert picks(be, 5) == ["a"] * 5


def test_roundrobin_weight_change_applies_within_a_cycle_without_burst() -> None:
    """Raising b from 1 to 3 gives 1:3 per cycle from the next cycle, with no burst to b."""
    be = weighted(1, 1)
    picks(be, 3)
    by_name(be)["b"].set_weight(3)
    seq = picks(be, 4 * 10)
    # The first 4 picks may still carry old credit; every later cycle is exact.
    assert abs(Counter(seq[:4])["b"] - 3) <= 1
    for start in range(4, 40, 4):
        assert Counter(seq[start : start + 4]) == {"a": 1, "b": 3}
    assert max(gaps(seq, "a")) <= 5


def test_roundrobin_server_back_does_not_burst() -> None:
    """A server coming back up gets its share, not a run of picks catching up."""
    be = weighted(1, 1, 1)
    c = by_name(be)["c"]
    c.set_admin("maint")
    picks(be, 7)
    c.set_admin("ready")
    seq = picks(be, 30)
    assert Counter(seq) == {"a": 10, "b": 10, "c": 10}
    assert max(run_length(seq)) == 1


def run_length(seq: Sequence[str]) -> List[int]:
    runs, n = [], 1
    for prev, cur in zip(seq, seq[1:]):
        if cur == prev:
            n += 1
        else:
            runs.append(n)
            n = 1
    return runs + [n]


def test_roundrobin_skips_full_and_excluded_servers() -> None:
    """A full server and an excluded one are passed over; none left gives None."""
    be = backend(server("a", maxconn=1), server("b"))
    a, b = be.servers
    a.scur = 1
    assert picks(be, 3) == ["b", "b", "b"]
    assert be.balancer.pick(None, exclude=[b]) is None


weights_st = st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=8)


@given(weights_st)
def test_roundrobin_cycle_shares_and_smoothness(weights: List[int]) -> None:
    """Any weights: each cycle gives exact shares; lag stays under 2 picks; gaps bounded."""
    be = weighted(*weights)
    total = sum(weights)
    seq = picks(be, 2 * total)
    names = [s.name for s in be.servers]
    for start in (0, total):
        assert Counter(seq[start : start + total]) == dict(zip(names, weights))
    counts: Counter[str] = Counter()
    for t, name in enumerate(seq[:total], 1):
        counts[name] += 1
        for n, w in zip(names, weights):
            assert abs(counts[n] * total - t * w) < 2 * total
    for n, w in zip(names, weights):
        assert max(gaps(seq[:total], n)) <= 2 * total / w + 1


@given(weights_st)
def test_roundrobin_repeats_only_the_strictly_heaviest(weights: List[int]) -> None:
    """Two picks in a row only go to a server heavier than every other one."""
    be = weighted(*weights)
    weight = {s.name: s.uweight for s in be.servers}
    seq = picks(be, 2 * sum(weights))
    for prev, cur in zip(seq, seq[1:]):
        if prev == cur:
            assert all(w < weight[cur] for n, w in weight.items() if n != cur)


@given(weights_st, st.data())
def test_roundrobin_change_converges_within_one_cycle(weights: List[int], data: Any) -> None:
    """After any weight change, shares are exact from the second new cycle on."""
    be = weighted(*weights)
    picks(be, data.draw(st.integers(0, 50)))
    target = be.servers[data.draw(st.integers(0, len(weights) - 1))]
    target.set_weight(data.draw(st.integers(1, 40)))
    new = [s.uweight for s in be.servers]
    total = sum(new)
    seq = picks(be, 3 * total)
    shares = {s.name: s.uweight for s in be.servers}
    # One cycle of slack for old credit; the counts over any later cycle are near exact.
    for start in (total, 2 * total):
        got = Counter(seq[start : start + total])
        for name, w in shares.items():
            assert abs(got[name] - w) <= 1


def test_smooth_sequence_skips_zero_weights() -> None:
    """A zero weight never appears in a cycle and the cycle is the total length."""
    assert smooth_sequence([("a", 0), ("b", 2), ("c", 1)]) == ["b", "c", "b"]


# -- static-rr -----------------------------------------------------------------------------


def test_static_rr_cycle_and_fixed_weights() -> None:
    """static-rr gives weight shares per cycle and refuses weights other than 0 and 100%."""
    be = weighted(3, 1, algorithm="static-rr")
    seq = picks(be, 8)
    assert Counter(seq[:4]) == {"a": 3, "b": 1}
    assert Counter(seq[4:]) == {"a": 3, "b": 1}
    with pytest.raises(ValueError, match="static"):
        be.set_weight(be.servers[0], 2)
    be.set_weight(be.servers[0], 0)
    assert picks(be, 3) == ["b", "b", "b"]
    be.set_weight(be.servers[0], 3)
    assert Counter(picks(be, 8)) == {"a": 6, "b": 2}


def test_static_rr_reintroduces_a_server_at_once() -> None:
    """A server back from maintenance is used at its next turn in the fixed schedule."""
    be = weighted(1, 1, 1, algorithm="static-rr")
    b = by_name(be)["b"]
    b.set_admin("maint")
    assert picks(be, 4) == ["a", "c", "a", "c"]
    b.set_admin("ready")
    assert picks(be, 3) == ["a", "b", "c"]


# -- leastconn -----------------------------------------------------------------------------


def test_leastconn_lowest_load_per_weight() -> None:
    """The server with the fewest streams per unit of weight wins."""
    be = weighted(1, 2, algorithm="leastconn")
    a, b = be.servers
    a.scur, b.scur = 1, 1  # a: 1/1, b: 1/2
    assert be.balancer.pick() is b
    b.scur = 3  # b: 3/2 > 1
    assert be.balancer.pick() is a


def test_leastconn_round_robin_among_equal_loads() -> None:
    """Equal loads rotate: each tie goes to the server picked longest ago."""
    be = weighted(1, 1, 1, algorithm="leastconn")
    assert picks(be, 6) == ["a", "b", "c", "a", "b", "c"]


def test_leastconn_counts_streams_waiting_for_a_server() -> None:
    """Streams queued on a server (persistence) count as load."""
    be = backend(server("a", maxconn=1), server("b", maxconn=2), algorithm="leastconn")
    a, b = be.servers
    held = [be.request_slot(lambda s: None, lambda r: None, server=a) for _ in range(3)]
    assert (a.scur, a.qcur) == (1, 2)
    b.scur = 1  # a's load 3 vs b's 1: b is less loaded although a is not "connected" more
    b.maxconn = 3
    assert be.balancer.pick() is b
    for t in held:
        t.release()


def test_leastconn_through_slots_balances_live_load() -> None:
    """Granting and releasing slots keeps leastconn choosing the least busy server."""
    be = weighted(1, 1, algorithm="leastconn")
    got: List[ServerState] = []
    tickets = [be.request_slot(got.append, pytest.fail) for _ in range(4)]
    assert [s.name for s in got] == ["a", "b", "a", "b"]
    tickets[0].release()
    tickets[2].release()  # a now idle, b holds 2
    be.request_slot(got.append, pytest.fail)
    assert got[-1].name == "a"


# -- first ---------------------------------------------------------------------------------


def test_first_fills_servers_in_id_order() -> None:
    """``first`` takes the lowest id with a free slot, ignoring config order and weight."""
    be = backend(
        server("a", id=3, maxconn=1),
        server("b", id=1, maxconn=2, weight=1),
        server("c", id=2, maxconn=1, weight=100),
        algorithm="first",
    )
    got: List[str] = []
    for _ in range(4):
        be.request_slot(lambda s: got.append(s.name), pytest.fail)
    assert got == ["b", "b", "c", "a"]


# -- source / hashing -----------------------------------------------------------------------


def keys(n: int) -> List[bytes]:
    return [f"10.0.{i // 256}.{i % 256}".encode() for i in range(n)]


@pytest.mark.parametrize("hash_type", ["map-based", "consistent"])
def test_source_is_sticky_and_spreads(hash_type: str) -> None:
    """A key always maps to the same server; many keys spread over all servers."""
    be = weighted(1, 1, 1, algorithm="source", hash_type=hash_type)
    first = {k: be.balancer.pick(k) for k in keys(300)}
    again = {k: be.balancer.pick(k) for k in keys(300)}
    assert first == again
    spread = Counter(s.name for s in first.values() if s is not None)
    assert set(spread) == {"a", "b", "c"}
    assert min(spread.values()) > 50


def test_consistent_hash_moves_only_the_removed_servers_keys() -> None:
    """Removing one server moves exactly the keys it had; adding it back restores them."""
    be = weighted(1, 2, 1, 1, algorithm="source", hash_type="consistent")
    before = {k: be.balancer.pick(k) for k in keys(500)}
    c = by_name(be)["c"]
    c.set_admin("maint")
    after = {k: be.balancer.pick(k) for k in keys(500)}
    moved = {k for k in before if before[k] is not after[k]}
    assert moved == {k for k in before if before[k] is c}
    c.set_admin("ready")
    assert {k: be.balancer.pick(k) for k in keys(500)} == before


def test_consistent_hash_shares_follow_weights() -> None:
    """Ring points are weight-proportional: a weight-3 server takes about 3/4 of keys."""
    be = weighted(3, 1, algorithm="source", hash_type="consistent")
    spread = Counter(s.name for s in (be.balancer.pick(k) for k in keys(2000)) if s)
    assert 0.65 < spread["a"] / 2000 < 0.85


def test_consistent_hash_is_dynamic_map_based_is_static() -> None:
    """Only the consistent ring accepts arbitrary run-time weights."""
    assert weighted(1, algorithm="source", hash_type="consistent").balancer.dynamic
    assert not weighted(1, algorithm="source").balancer.dynamic


def test_source_full_server_passes_key_to_the_next() -> None:
    """A full server's keys go to another server instead of waiting."""
    be = backend(server("a", maxconn=1), server("b", maxconn=1), algorithm="source")
    k = b"10.1.1.1"
    home = be.balancer.pick(k)
    assert home is not None
    home.scur = 1
    other = be.balancer.pick(k)
    assert other is not None and other is not home
    other.scur = 1
    assert be.balancer.pick(k) is None


def test_source_without_key_falls_back_to_round_robin() -> None:
    """A unix-socket client (no address) is balanced round robin."""
    be = weighted(1, 1, algorithm="source", hash_type="consistent")
    assert picks(be, 4) == ["a", "b", "a", "b"]


def test_hash_functions_known_values() -> None:
    """The hash functions are deterministic 32-bit values; sdbm matches its definition."""
    assert sdbm(b"") == 0
    assert sdbm(b"a") == 97
    assert sdbm(b"ab") == (98 + (97 << 6) + (97 << 16) - 97)
    for fn in HASH_FUNCTIONS.values():
        assert 0 <= fn(b"10.0.0.1") < 2**32
    assert full_hash(0) != full_hash(1)
    assert HASH_FUNCTIONS["none"](b"1234") == 1234


# -- random --------------------------------------------------------------------------------


def test_random_is_deterministic_with_a_seed() -> None:
    """The injected Random makes the sequence reproducible."""
    seq1 = picks(weighted(1, 1, 1, algorithm="random", seed=7), 20)
    seq2 = picks(weighted(1, 1, 1, algorithm="random", seed=7), 20)
    assert seq1 == seq2
    assert set(seq1) == {"a", "b", "c"}


def test_random_draws_prefer_the_less_loaded() -> None:
    """With many draws, the least loaded server (per weight) almost always wins."""
    be = weighted(1, 1, algorithm="random", draws=10)
    a, b = be.servers
    a.scur = 5
    assert Counter(picks(be, 50))["b"] >= 49


def test_random_single_draw_follows_weights() -> None:
    """random(1) is weighted random: a weight-3 server gets about 3/4 of picks."""
    be = weighted(3, 1, algorithm="random", draws=1)
    share = Counter(picks(be, 2000))["a"] / 2000
    assert 0.7 < share < 0.8


# -- backups -------------------------------------------------------------------------------


def backups_backend(*options: str) -> Backend:
    return backend(
        server("act"),
        server("bk2", backup=True, id=12),
        server("bk1", backup=True, id=11),
        options=options,
    )


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_backups_only_when_no_active_server(algorithm: str) -> None:
    """Backups get nothing while an active server is usable, whatever the algorithm."""
    be = backend(server("act"), server("bk", backup=True), algorithm=algorithm)
    assert {s.name for s in (be.balancer.pick(k) for k in keys(20)) if s} == {"act"}
    be.servers[0].set_check_enabled(True)
    be.servers[0].set_check_result(False)
    assert {s.name for s in (be.balancer.pick(k) for k in keys(20)) if s} == {"bk"}


def test_first_usable_backup_is_the_lowest_id() -> None:
    """Without allbackups only the usable backup with the lowest id is used."""
    be = backups_backend()
    act, bk2, bk1 = be.servers
    act.set_admin("maint")
    assert set(picks(be, 4)) == {"bk1"}
    bk1.set_admin("maint")
    assert set(picks(be, 4)) == {"bk2"}


def test_allbackups_balances_every_backup() -> None:
    """With ``option allbackups`` all usable backups share the load."""
    be = backups_backend("allbackups")
    be.servers[0].set_admin("drain")
    assert Counter(picks(be, 4)) == {"bk1": 2, "bk2": 2}


def test_full_active_servers_do_not_spill_to_backups() -> None:
    """Backups are for unusable actives, not full ones: full actives mean 'queue'."""
    be = backend(server("act", maxconn=1), server("bk", backup=True))
    be.servers[0].scur = 1
    assert be.select() == (None, "full")
