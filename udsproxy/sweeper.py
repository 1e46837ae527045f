"""Idle timeouts for many connections at a low, constant cost, fired on time.

Resetting a timer on every read (``IDelayedCall.reset``) costs a heap operation per chunk;
instead a connection writes ``sweeper.now`` (an attribute read) into its last-activity
field, and the sweeper calls ``check_idle(now)`` on it when it may have expired. Each
check returns the time its earliest timeout would fire if nothing happens meanwhile (or
None when it cannot tell); the member is checked again then, or after ``period`` (about
a tenth of the shortest timeout) if that comes first, so a deadline that moves earlier
(a half-close, a new phase) is still seen within one period.

Members wait in buckets of :data:`GRAIN` seconds, found through a heap of bucket
numbers. One :class:`LoopingCall` ticks every GRAIN while there are members: it
refreshes ``now`` (so activity stamps are at most GRAIN stale) and checks the members
whose bucket is due. A timeout therefore fires within about two GRAINs of its value,
whatever ``period`` is, and a member costs one check per period or per deadline, not
one per tick. With no member the loop stops, so an idle proxy (and a test with
``task.Clock``) has no pending call; ``now`` is then stale until the next ``add()``
refreshes it, so a new member stamps its activity after adding itself.
"""

from __future__ import annotations

import heapq
import math
from typing import Any, Dict, List, Optional, Protocol

from twisted.internet.task import LoopingCall

GRAIN = 0.02  # seconds: the precision of every idle timeout
BEING_CHECKED = -1  # the bucket of a member whose check_idle is running


class Expirable(Protocol):
    """Something with idle deadlines."""

    def check_idle(self, now: float) -> Optional[float]:
        """Expire what is due at ``now``; the time of the next deadline, or None."""


class IdleSweeper:
    """Checks each member at its next deadline (or every ``period``), to within GRAIN."""

    MIN_PERIOD = 0.05
    MAX_PERIOD = 1.0

    def __init__(self, clock: Any, shortest_timeout_ms: Optional[int] = None) -> None:
        self.clock = clock
        self.now: float = clock.seconds()
        self.period = self.period_for(shortest_timeout_ms)
        self._where: Dict[Expirable, int] = {}  # member -> its bucket number
        self._buckets: Dict[int, Dict[Expirable, None]] = {}
        self._heap: List[int] = []  # bucket numbers, some possibly emptied since
        self._loop: Optional[LoopingCall] = None

    @classmethod
    def period_for(cls, shortest_timeout_ms: Optional[int]) -> float:
        """How often a member with no known deadline is checked: a tenth of the shortest
        timeout, within [50 ms, 1 s]."""
        if not shortest_timeout_ms:
            return cls.MAX_PERIOD
        return min(cls.MAX_PERIOD, max(cls.MIN_PERIOD, shortest_timeout_ms / 10000.0))

    def retune(self, shortest_timeout_ms: Optional[int]) -> None:
        """A new config (a reload): the period follows its shortest timeout.

        Members keep the check time they have; each is placed with the new period from its
        next check on (and a member re-added now is checked within the new period).
        """
        self.period = self.period_for(shortest_timeout_ms)

    def add(self, member: Expirable) -> None:
        """Watch ``member`` (again): it is checked within one period."""
        self.now = self.clock.seconds()
        self._place(member, self.now + self.period)
        if self._loop is None:
            self._loop = LoopingCall(self._tick)
            self._loop.clock = self.clock
            self._loop.start(GRAIN, now=False)

    def discard(self, member: Expirable) -> None:
        key = self._where.pop(member, None)
        if key is not None and key != BEING_CHECKED:
            bucket = self._buckets[key]
            del bucket[member]
            if not bucket:
                del self._buckets[key]
        if not self._where and self._loop is not None:
            loop, self._loop = self._loop, None
            if loop.running:
                loop.stop()
            self._heap.clear()
            self._buckets.clear()

    def __contains__(self, member: object) -> bool:
        return member in self._where

    def __len__(self) -> int:
        return len(self._where)

    def _place(self, member: Expirable, when: float) -> None:
        old = self._where.get(member)
        if old is not None and old != BEING_CHECKED:
            bucket = self._buckets[old]
            del bucket[member]
            if not bucket:
                del self._buckets[old]
        key = math.ceil(when / GRAIN)
        target = self._buckets.get(key)
        if target is None:
            target = self._buckets[key] = {}
            heapq.heappush(self._heap, key)
        target[member] = None
        self._where[member] = key

    def _tick(self) -> None:
        now = self.now = self.clock.seconds()
        due = math.floor(now / GRAIN)
        heap, buckets, where = self._heap, self._buckets, self._where
        while heap and heap[0] <= due:
            key = heapq.heappop(heap)
            bucket = buckets.pop(key, None)
            if not bucket:
                continue
            for member in bucket:
                where[member] = BEING_CHECKED
            for member in list(bucket):
                if where.get(member) != BEING_CHECKED:
                    continue  # discarded (or re-added) by an earlier member's check
                deadline = member.check_idle(now)
                if where.get(member) == BEING_CHECKED:
                    recheck = now + self.period
                    if deadline is not None and deadline < recheck:
                        # At least half a grain on: a later bucket than the one due now.
                        recheck = max(deadline, now + GRAIN / 2)
                    self._place(member, recheck)
