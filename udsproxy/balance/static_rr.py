"""``balance static-rr``: weighted round robin over a schedule fixed at start.

The schedule is one smooth cycle of the configured weights, built once per group
(active, backup). A pick walks it from the last position and takes the first server
that is eligible now, so a server that goes down is skipped and one that comes back is
used again at its next turn ("always immediately reintroduced"). Weights can only be
switched off and on (0 or 100%), as in HAProxy.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Collection, Dict, List, Optional

from udsproxy.balance.base import Balancer, ServerSet
from udsproxy.balance.roundrobin import smooth_sequence
from udsproxy.runtime import Change

if TYPE_CHECKING:
    from udsproxy.config.model import Balance
    from udsproxy.runtime import ServerChange, ServerState


class StaticRoundRobin(Balancer):
    """Weighted round robin whose weights are read once, at start."""

    dynamic = False

    def __init__(self, pool: ServerSet, params: Balance, rng: random.Random) -> None:
        super().__init__(pool, params, rng)
        self._schedule: Dict[bool, List[ServerState]] = {}
        self._position = {False: 0, True: 0}
        self._build()

    def _build(self) -> None:
        servers = self.pool.servers
        self._schedule = {
            backup: smooth_sequence([(s, s.iweight) for s in servers if s.backup == backup])
            for backup in (False, True)
        }

    def server_changed(self, change: ServerChange) -> None:
        """A server added or removed: a new schedule, each group resuming where it was."""
        if change.field is Change.ADDED or change.field is Change.REMOVED:
            group = change.server.backup
            at = self._position[group]
            old = self._schedule[group]
            self._build()
            # Resume after the server whose turn came last, if it is still scheduled.
            last = old[at - 1] if old and at else None
            new = self._schedule[group]
            self._position[group] = new.index(last) + 1 if last in new else 0

    def pick(
        self, key: Optional[bytes] = None, exclude: Collection[ServerState] = ()
    ) -> Optional[ServerState]:
        candidates = self.eligible(exclude)
        if not candidates:
            return None
        wanted = set(candidates)
        group = candidates[0].backup  # the pool is all active or all backup
        schedule = self._schedule[group]
        start = self._position[group]
        for step in range(len(schedule)):
            index = (start + step) % len(schedule)
            if schedule[index] in wanted:
                self._position[group] = index + 1
                return schedule[index]
        return candidates[0]  # unreachable: every usable server has an initial weight
