"""The fd budget: global maxconn derived from the open-file limit, warnings, rlimit raising."""

from __future__ import annotations

import resource
from typing import List, Tuple

import pytest

from udsproxy.limits import (
    BASE_FDS,
    DEFAULT_MAXCONN,
    DEFAULT_MAXFD,
    AcceptLimit,
    NofileLimit,
    apply_fd_budget,
    derive_maxconn,
    fd_budget,
    fds_needed,
    reserved_fds,
)


class FakeRlimit:
    """RLIMIT_NOFILE in memory; raising the hard limit needs ``root``."""

    def __init__(self, soft: int, hard: int, root: bool = False) -> None:
        self.limit = (soft, hard)
        self.root = root
        self.sets: List[Tuple[int, int]] = []

    def get(self) -> Tuple[int, int]:
        return self.limit

    def set(self, lim: Tuple[int, int]) -> None:
        self.sets.append(lim)
        if lim[1] > self.limit[1] and not self.root:
            raise ValueError("not allowed to raise maximum limit")
        self.limit = lim

    def nofile(self) -> NofileLimit:
        return NofileLimit(self.get, self.set)


def test_reserved_counts_listeners_logs_checks_and_stats_clients() -> None:
    """Everything the process holds besides the two fds per connection is reserved."""
    assert reserved_fds(listeners=3, log_targets=2, checks=4, stats_maxconn=10) == BASE_FDS + 19


@pytest.mark.parametrize(
    "fd_limit, reserved, expected",
    [
        (1024, 26, (1024 - 26) // 2),  # 499
        (20000, 30, 9985),
        (65536, 26, 32755),
        (200, 26, DEFAULT_MAXCONN),  # too few fds: HAProxy's floor of 100
        (10**9, 26, (DEFAULT_MAXFD - 26) // 2),  # a huge hard limit is capped
    ],
)
def test_derive_maxconn(fd_limit: int, reserved: int, expected: int) -> None:
    """maxconn = max(100, (min(limit, 1048576) - reserved) // 2)."""
    assert derive_maxconn(fd_limit, reserved) == expected


def test_derived_budget_fits_the_limit_and_says_how() -> None:
    """Unset global maxconn: derived, within the fd limit, and the log line shows the rule."""
    budget = fd_budget(None, 1024, 26)
    assert budget.derived and budget.maxconn == 499 and budget.warning is None
    assert fds_needed(budget.maxconn, 26) <= 1024
    assert "derived from the open-file limit 1024" in budget.describe()


def test_configured_maxconn_beyond_the_limit_is_an_error_naming_the_fix() -> None:
    """As HAProxy ("Cannot raise FD limit"): a configured maxconn the fd limit cannot back
    stops the start, with the numbers and the fix."""
    budget = fd_budget(5000, 1024, 26)
    assert budget.maxconn == 5000 and not budget.derived
    assert budget.error is not None and budget.warning is None
    assert "needs about 10026 file descriptors" in budget.error
    assert "lower maxconn to at most 499" in budget.error
    assert "ulimit -n" in budget.error and "LimitNOFILE=" in budget.error


def test_frontends_maxconn_sum_beyond_the_limit_is_an_error_without_a_global_one() -> None:
    """No global maxconn, but frontends whose maxconn add up beyond the fds: refused too."""
    budget = fd_budget(None, 1024, 26, frontends_sum=600)
    assert budget.derived and budget.error is not None
    assert "frontends' maxconn add up to 600" in budget.error
    assert fd_budget(None, 1024, 26, frontends_sum=400).error is None


def test_configured_maxconn_within_the_limit_is_quiet() -> None:
    """A configured maxconn that fits gets no warning and no error."""
    budget = fd_budget(400, 1024, 26)
    assert budget.warning is None and budget.error is None


def test_soft_limit_is_raised_to_the_hard_limit_before_deriving() -> None:
    """ulimit -n 1024 with a hard limit of 4096: the budget uses 4096."""
    fake = FakeRlimit(1024, 4096)
    budget, notes = apply_fd_budget(None, 26, fake.nofile())
    assert fake.sets == [(4096, 4096)]
    assert budget.fd_limit == 4096 and budget.maxconn == (4096 - 26) // 2
    assert notes == []


def test_unlimited_hard_limit_raises_to_the_cap() -> None:
    """An infinite hard limit raises the soft one to DEFAULT_MAXFD only."""
    fake = FakeRlimit(1024, resource.RLIM_INFINITY)
    budget, _ = apply_fd_budget(None, 26, fake.nofile())
    assert fake.sets == [(DEFAULT_MAXFD, resource.RLIM_INFINITY)]
    assert budget.fd_limit == DEFAULT_MAXFD


def test_configured_maxconn_raises_the_hard_limit_as_root() -> None:
    """As root, a configured maxconn above the hard limit raises both limits (HAProxy too)."""
    fake = FakeRlimit(1024, 4096, root=True)
    budget, notes = apply_fd_budget(5000, 26, fake.nofile())
    assert fake.limit == (10026, 10026)
    assert budget.error is None and notes == []


def test_configured_maxconn_beyond_hard_limit_unprivileged_is_refused() -> None:
    """Unprivileged, the hard limit stays: a note about the failed raise and the error."""
    fake = FakeRlimit(1024, 4096)
    budget, notes = apply_fd_budget(5000, 26, fake.nofile())
    assert fake.limit == (4096, 4096)
    assert len(notes) == 1 and "cannot raise the open-file limit from 4096 to 10026" in notes[0]
    assert budget.error is not None and budget.fd_limit == 4096


def test_derived_maxconn_is_what_pauses_accepting() -> None:
    """An AcceptLimit given the derived maxconn pauses its listener at exactly that count."""

    class Listener:
        paused = False

        def pause(self) -> None:
            self.paused = True

        def resume(self) -> None:
            self.paused = False

    budget = fd_budget(None, 256 + 26, 26)  # 128 connections
    limit = AcceptLimit("global", budget.maxconn)
    listener = Listener()
    limit.attach(listener, [limit])
    for _ in range(budget.maxconn - 1):
        limit.opened()
    assert not listener.paused
    limit.opened()
    assert listener.paused
    limit.closed()
    assert not listener.paused


CONFIG = """
global
    stats socket /tmp/udsproxy-test-never-bound.sock
    stats maxconn 4
defaults
    mode tcp
    timeout connect 1s
    timeout client 1s
    timeout server 1s
frontend fe
    bind /tmp/udsproxy-test-never-bound-fe.sock
    default_backend be
backend be
    server s1 /tmp/udsproxy-test-never-bound-s1.sock
"""


def test_service_applies_the_derived_maxconn_to_the_global_limit() -> None:
    """Unset global maxconn: the service's global AcceptLimit gets the fd-derived value."""
    import textwrap

    from twisted.internet.task import Clock

    from udsproxy.config.parser import parse_text
    from udsproxy.service import ProxyService

    config = parse_text(textwrap.dedent(CONFIG), "t.cfg", {})
    assert config.global_.stats_maxconn == 4
    fake = FakeRlimit(1024, 2048)
    svc = ProxyService(config, Clock(), argv=["twistd"], nofile=fake.nofile())
    reserved = svc.generation.reserved_fds()
    assert reserved == BASE_FDS + 2 + 0 + 0 + 4  # two listeners, no logs, no checks, stats 4
    budget = svc.process.apply_fd_budget(svc.generation)
    assert budget.maxconn == (2048 - reserved) // 2
    assert svc.process.global_limit.maxconn == 0  # set on attach, after binding


def test_stats_clients_beyond_stats_maxconn_pause_the_stats_socket() -> None:
    """The stats socket's listener pauses at 'stats maxconn' clients and resumes below it."""
    import textwrap

    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport

    from udsproxy.config.parser import parse_text
    from udsproxy.service import ProxyService

    class Listener:
        paused = False

        def pause(self) -> None:
            self.paused = True

        def resume(self) -> None:
            self.paused = False

    clock = Clock()
    svc = ProxyService(parse_text(textwrap.dedent(CONFIG), "t.cfg", {}), clock, argv=["twistd"])
    stats_spec = next(s for s in svc.specs if s.label == "stats socket")
    stats_limit = svc.process.stats_limit
    assert stats_spec.limits == [stats_limit]
    stats_limit.maxconn = 4  # what attach sets from 'stats maxconn 4'
    listener = Listener()
    stats_limit.attach(listener, stats_spec.limits)
    clients = []
    for _ in range(4):
        proto = stats_spec.factory.buildProtocol(None)
        proto.makeConnection(StringTransport())
        clients.append(proto)
    assert listener.paused and svc.process.global_limit.current == 0
    clients[0].connectionLost(None)
    assert not listener.paused
    for proto in clients[1:]:
        proto.connectionLost(None)
    assert clock.getDelayedCalls() == []
