"""Idle timeouts fire on time (within a few hundredths of a second) at a constant cost."""

from __future__ import annotations

from typing import List, Optional

from twisted.internet.task import Clock

from tests.unit.http_harness import Harness
from udsproxy.sweeper import GRAIN, IdleSweeper


class Member:
    """Expires at a fixed deadline; counts its checks."""

    def __init__(self, sweeper: IdleSweeper, deadline: float) -> None:
        self.sweeper = sweeper
        self.deadline = deadline
        self.checks = 0
        self.expired_at: Optional[float] = None

    def check_idle(self, now: float) -> Optional[float]:
        self.checks += 1
        if now >= self.deadline:
            self.expired_at = now
            self.sweeper.discard(self)
            return None
        return self.deadline


def run(clock: Clock, seconds: float, step: float = 0.001) -> None:
    for _ in range(int(round(seconds / step))):
        clock.advance(step)


def test_a_deadline_fires_within_two_grains_whatever_the_period() -> None:
    """A 10 s deadline with a 1 s period expires between 10.00 and 10.04 s, not a period late."""
    clock = Clock()
    sweeper = IdleSweeper(clock, 10000)
    member = Member(sweeper, 10.0)
    sweeper.add(member)
    run(clock, 10.1)
    assert member.expired_at is not None and 10.0 <= member.expired_at <= 10.0 + 2 * GRAIN
    assert clock.getDelayedCalls() == []  # no member left: no timer


def test_members_are_checked_per_deadline_or_period_not_per_tick() -> None:
    """1,000 members with a 10 s deadline cost about one check each per period, not one per
    tick (the tick runs 50 times a second)."""
    clock = Clock()
    sweeper = IdleSweeper(clock, 10000)
    members: List[Member] = [Member(sweeper, 10.0) for _ in range(1000)]
    for member in members:
        sweeper.add(member)
    run(clock, 10.1, step=0.01)
    assert all(m.expired_at is not None for m in members)
    assert max(m.checks for m in members) <= 2 * 10 / sweeper.period + 2
    assert len(sweeper) == 0 and clock.getDelayedCalls() == []


def test_http_request_timeout_is_408_at_its_value() -> None:
    """timeout http-request 10s against a slow drip: 408 between 10.00 and 10.05 s."""
    h = Harness(
        """
        defaults
            mode http
            timeout http-request 10s
            timeout client 30s
            timeout server 30s
            timeout connect 1s
        frontend fe
            bind :8080
            default_backend be
        backend be
            server a /s/a.sock
        """,
        base="",
    )
    client = h.client()
    client.send(b"GET / HTTP/1.1\r\n")
    started = h.clock.seconds()
    client.send(b"X-Drip: ")
    for tick in range(10100):
        h.clock.advance(0.001)
        if client.transport.value():
            break
        if tick % 100 == 0:
            client.send(b"y")  # a slow drip: activity, but the head never completes
    elapsed = h.clock.seconds() - started
    assert client.raw().startswith(b"HTTP/1.1 408 ")
    assert 10.0 <= elapsed <= 10.05
