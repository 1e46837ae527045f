"""``balance first``: the server with the lowest id that has a free slot.

Weights are ignored (a weight of 0 or drain still removes a server), so servers fill up
one after the other; it only makes sense with ``maxconn``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Collection, Optional

from udsproxy.balance.base import Balancer

if TYPE_CHECKING:
    from udsproxy.runtime import ServerState


class First(Balancer):
    """Fill servers in id order."""

    def pick(
        self, key: Optional[bytes] = None, exclude: Collection[ServerState] = ()
    ) -> Optional[ServerState]:
        candidates = self.eligible(exclude)
        return min(candidates, key=lambda s: s.id) if candidates else None
