"""``balance random`` / ``random(<draws>)``: the least loaded of N weighted random draws.

Each draw picks a server with probability proportional to its weight; of the draws,
the one with the fewest streams per unit of weight wins (power of N choices; HAProxy's
default is 2 draws). The random source is the backend's injected ``random.Random``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Collection, Optional

from udsproxy.balance.base import Balancer, load_below

if TYPE_CHECKING:
    from udsproxy.runtime import ServerState


class RandomDraws(Balancer):
    """Weighted random with N draws, least loaded wins."""

    def pick(
        self, key: Optional[bytes] = None, exclude: Collection[ServerState] = ()
    ) -> Optional[ServerState]:
        candidates = self.eligible(exclude)
        if not candidates:
            return None
        weights = [s.eweight for s in candidates]
        draws = max(1, self.params.draws)
        best: Optional[ServerState] = None
        for srv in self.rng.choices(candidates, weights, k=draws):
            if best is None or load_below(srv, best):
                best = srv
        return best
