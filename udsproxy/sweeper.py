"""A coarse clock for idle timeouts: one repeating timer checks every session, no per-read reset.

Resetting a timer on every read (``IDelayedCall.reset``) costs a heap operation per chunk;
instead a session writes ``sweeper.now`` (an attribute read) into its last-activity field
and the sweeper, ticking a few times per shortest timeout, expires the sessions that have
been idle too long. Precision is one tick. The timer runs only while sessions exist, so an
idle proxy (and a test with ``task.Clock``) has no pending call.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Protocol

from twisted.internet.task import LoopingCall


class Expirable(Protocol):
    """Something with idle deadlines, checked on every tick."""

    def check_idle(self, now: float) -> None: ...


class IdleSweeper:
    """Ticks while it has members; each tick calls ``check_idle(now)`` on every member."""

    MIN_TICK = 0.01
    MAX_TICK = 1.0

    def __init__(self, clock: Any, shortest_timeout_ms: Optional[int] = None) -> None:
        self.clock = clock
        self.now: float = clock.seconds()
        self.tick = self.tick_for(shortest_timeout_ms)
        self._members: Dict[Expirable, None] = {}
        self._loop: Optional[LoopingCall] = None

    @classmethod
    def tick_for(cls, shortest_timeout_ms: Optional[int]) -> float:
        """About a tenth of the shortest timeout, within [10 ms, 1 s]."""
        if not shortest_timeout_ms:
            return cls.MAX_TICK
        return min(cls.MAX_TICK, max(cls.MIN_TICK, shortest_timeout_ms / 10000.0))

    def add(self, member: Expirable) -> None:
        self.now = self.clock.seconds()
        self._members[member] = None
        if self._loop is None:
            self._loop = LoopingCall(self._sweep)
            self._loop.clock = self.clock
            self._loop.start(self.tick, now=False)

    def discard(self, member: Expirable) -> None:
        self._members.pop(member, None)
        if not self._members and self._loop is not None:
            loop, self._loop = self._loop, None
            if loop.running:
                loop.stop()

    def __contains__(self, member: object) -> bool:
        return member in self._members

    def __len__(self) -> int:
        return len(self._members)

    def _sweep(self) -> None:
        self.now = self.clock.seconds()
        for member in list(self._members):
            member.check_idle(self.now)
