"""``balance source`` (and the other key hashes): a key always lands on the same server.

The caller supplies the key bytes (the client address for ``source``; the HTTP layer
computes them for ``uri``, ``url_param``, ``hdr`` and ``hash``). A missing key (a
unix-socket client has no address) falls back to round robin, as HAProxy does.

- ``hash-type map-based`` (static): one smooth cycle of the pool's weights is a table;
  the key's hash modulo the total weight indexes it. Any change in the pool moves most
  keys, hence static weights (0 or 100%).
- ``hash-type consistent`` (dynamic): a ring of 16 points per unit of weight per server
  (HAProxy's BE_WEIGHT_SCALE), each at ``full_hash(id * 4096 + n)``; a key goes to the
  first point at or after its (mixed) hash. Removing a server moves only its keys;
  changing a weight moves only keys of the points added or removed.

A full or excluded server passes its key on to the next server of the table or ring
instead of queueing for it (like HAProxy's ``hash-balance-factor``): with ``maxconn 1``
unix backends waiting for one busy server while others idle helps nobody.
The key's hash is always mixed with ``full_hash`` (HAProxy's ``avalanche``) because
sdbm of short, similar keys (addresses) clusters on the ring.
"""

from __future__ import annotations

import bisect
import random
from typing import TYPE_CHECKING, Collection, List, Optional, Sequence, Tuple

from udsproxy.balance.base import Balancer, ServerSet
from udsproxy.balance.hashing import HASH_FUNCTIONS, full_hash
from udsproxy.balance.roundrobin import RoundRobin, smooth_sequence
from udsproxy.config.model import HashType

if TYPE_CHECKING:
    from udsproxy.config.model import Balance
    from udsproxy.runtime import ServerChange, ServerState

POINTS_PER_WEIGHT = 16  # HAProxy's BE_WEIGHT_SCALE
ID_STRIDE = 16 * 256  # room for every point of a server of weight 256


class _KeyHash(Balancer):
    """Shared part: the hash function, the round-robin fallback, the lazy rebuild."""

    def __init__(self, pool: ServerSet, params: Balance, rng: random.Random) -> None:
        super().__init__(pool, params, rng)
        name = params.hash_function
        if name not in HASH_FUNCTIONS:
            raise ValueError(f"unknown hash function {name!r}")
        self._hash = HASH_FUNCTIONS[name]
        self._fallback = RoundRobin(pool, params, rng)
        self._built_for: Tuple[Tuple[ServerState, int], ...] = ()
        self._slots: List[ServerState] = []  # the table, or the ring's servers in order

    def pick(
        self, key: Optional[bytes] = None, exclude: Collection[ServerState] = ()
    ) -> Optional[ServerState]:
        if key is None:
            return self._fallback.pick(None, exclude)
        # Rebuilding when the pool or a weight differs keeps us right whatever changed.
        pool = tuple((s, s.eweight) for s in self.pool.lb_pool())
        if pool != self._built_for:
            self._build(pool)
            self._built_for = pool
        if not self._slots:
            return None
        start = self._locate(full_hash(self._hash(key)))
        size = len(self._slots)
        for step in range(size):
            srv = self._slots[(start + step) % size]
            if srv.has_free_slot and srv not in exclude:
                return srv
        return None

    def server_changed(self, change: ServerChange) -> None:
        self._fallback.server_changed(change)

    def _build(self, pool: Sequence[Tuple[ServerState, int]]) -> None:
        raise NotImplementedError

    def _locate(self, h: int) -> int:
        raise NotImplementedError


class MapHash(_KeyHash):
    """``hash-type map-based``: hash modulo the total weight."""

    dynamic = False

    def _build(self, pool: Sequence[Tuple[ServerState, int]]) -> None:
        self._slots = smooth_sequence(pool)

    def _locate(self, h: int) -> int:
        return h % len(self._slots)


class ConsistentHash(_KeyHash):
    """``hash-type consistent``: a weighted hash ring."""

    def __init__(self, pool: ServerSet, params: Balance, rng: random.Random) -> None:
        super().__init__(pool, params, rng)
        self._points: List[int] = []

    def _build(self, pool: Sequence[Tuple[ServerState, int]]) -> None:
        ring = sorted(
            (full_hash(srv.id * ID_STRIDE + n), srv.id, srv)
            for srv, weight in pool
            for n in range(weight * POINTS_PER_WEIGHT)
        )
        self._points = [point for point, _, _ in ring]
        self._slots = [srv for _, _, srv in ring]

    def _locate(self, h: int) -> int:
        return bisect.bisect_left(self._points, h) % len(self._points)


def make_hash_balancer(pool: ServerSet, params: Balance, rng: random.Random) -> Balancer:
    """The hash balancer ``hash-type`` asks for."""
    if params.hash_type == HashType.CONSISTENT:
        return ConsistentHash(pool, params, rng)
    return MapHash(pool, params, rng)
