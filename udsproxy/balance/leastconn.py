"""``balance leastconn``: the server with the fewest streams per unit of weight.

Load is (granted + waiting-for-this-server) / weight, compared by cross-multiplication
so weights stay exact. "Round-robin is performed within groups of servers of the same
load": among equals the one picked longest ago wins (never picked: config order).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Collection, Dict, Optional

from udsproxy.balance.base import Balancer, ServerSet

if TYPE_CHECKING:
    from udsproxy.config.model import Balance
    from udsproxy.runtime import ServerChange, ServerState


class LeastConn(Balancer):
    """Weighted least connections, round robin among ties."""

    def __init__(self, pool: ServerSet, params: Balance, rng: random.Random) -> None:
        super().__init__(pool, params, rng)
        self._picks = 0
        self._last: Dict[ServerState, int] = {}  # pick number of each server's last pick

    def pick(
        self, key: Optional[bytes] = None, exclude: Collection[ServerState] = ()
    ) -> Optional[ServerState]:
        best: Optional[ServerState] = None
        for srv in self.eligible(exclude):
            if best is None or self._before(srv, best):
                best = srv
        if best is not None:
            self._picks += 1
            self._last[best] = self._picks
        return best

    def _before(self, a: ServerState, b: ServerState) -> bool:
        load_a = (a.scur + a.qcur) * b.eweight
        load_b = (b.scur + b.qcur) * a.eweight
        if load_a != load_b:
            return load_a < load_b
        return self._last.get(a, 0) < self._last.get(b, 0)

    def server_changed(self, change: ServerChange) -> None:
        if change.server.removed:
            self._last.pop(change.server, None)
