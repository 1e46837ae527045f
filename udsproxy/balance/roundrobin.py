"""``balance roundrobin``: smooth weighted round robin with run-time weights.

The algorithm is nginx's smooth weighted round robin: at each pick every candidate's
``current`` grows by its weight, the largest wins and loses the candidates' total. Over
a cycle of ``sum(weights)`` picks with no change, each server gets exactly its weight,
and picks are interleaved (1:2 gives b,a,b,b,a,b; HAProxy's fwrr gives a,b,b,a,b,b, the
same cycle rotated). A weight change applies from the next pick and keeps every other
server's position, so nothing bursts and nothing resets; a server that leaves the pool
(down, drain, maint, weight 0) forgets its position and comes back at 0, in the middle
of the pack. Full or excluded servers sit a pick out without gaining credit.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Collection, Dict, List, Optional, Sequence, Tuple, TypeVar

from udsproxy.balance.base import Balancer, ServerSet

if TYPE_CHECKING:
    from udsproxy.config.model import Balance
    from udsproxy.runtime import ServerChange, ServerState

T = TypeVar("T")


def smooth_sequence(weighted: Sequence[Tuple[T, int]]) -> List[T]:
    """One full smooth-round-robin cycle over ``(item, weight)`` pairs (len == total weight)."""
    current = [0] * len(weighted)
    total = sum(w for _, w in weighted)
    out: List[T] = []
    for _ in range(total):
        best = -1
        for i, (_, w) in enumerate(weighted):
            current[i] += w
            if w > 0 and (best < 0 or current[i] > current[best]):
                best = i
        current[best] -= total
        out.append(weighted[best][0])
    return out


class RoundRobin(Balancer):
    """Weighted, dynamic, smooth round robin (``roundrobin``, the default)."""

    def __init__(self, pool: ServerSet, params: Balance, rng: random.Random) -> None:
        super().__init__(pool, params, rng)
        self._current: Dict[ServerState, int] = {}

    def pick(
        self, key: Optional[bytes] = None, exclude: Collection[ServerState] = ()
    ) -> Optional[ServerState]:
        best: Optional[ServerState] = None
        best_current = 0
        total = 0
        current = self._current
        # eligible() inlined: this runs once per request. eweight is a plain attribute
        # (the runtime keeps it: drain, slowstart), as cheap to read as uweight.
        for srv in self.pool.lb_pool():
            if (srv.maxconn and srv.scur >= srv.maxconn) or (exclude and srv in exclude):
                continue
            weight = srv.eweight
            value = current.get(srv, 0) + weight
            current[srv] = value
            total += weight
            if best is None or value > best_current:
                best, best_current = srv, value
        if best is not None:
            current[best] = best_current - total
        return best

    def server_changed(self, change: ServerChange) -> None:
        srv = change.server
        if srv.removed or not srv.usable:
            self._current.pop(srv, None)
