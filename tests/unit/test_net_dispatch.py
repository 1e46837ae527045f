"""The lean event dispatch: an epoll reactor instance (never run) polled by hand."""

from __future__ import annotations

import socket
from typing import Any, Iterator, List, Tuple

import pytest
from twisted.internet.epollreactor import EPollReactor
from twisted.internet.main import CONNECTION_DONE
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.failure import Failure

from udsproxy.net.dispatch import lean_dispatch


class Descriptor:
    """A readable/writable end of a socketpair, recording what the reactor asks of it."""

    def __init__(self, sock: socket.socket, fail: bool = False) -> None:
        self.sock = sock
        self.fail = fail
        self.calls: List[str] = []
        self.lost: List[Failure] = []

    def fileno(self) -> int:
        return self.sock.fileno()

    def logPrefix(self) -> str:
        return "Descriptor"

    def doRead(self) -> Any:
        data = self.sock.recv(100)
        self.calls.append("read:" + data.decode())
        if self.fail:
            raise ValueError("broken protocol")
        return None if data else CONNECTION_DONE

    def doWrite(self) -> None:
        self.calls.append("write")

    def connectionLost(self, reason: Failure) -> None:
        self.lost.append(reason)


@pytest.fixture
def reactor() -> Iterator[EPollReactor]:
    r = EPollReactor()
    yield r
    r.waker.connectionLost(None)  # its pipe
    r._poller.close()


def pair() -> Tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    return a, b


def test_reads_and_writes_are_dispatched_as_doPoll_does(reactor: EPollReactor) -> None:
    """Ready descriptors get doRead/doWrite; an EOF read disconnects, as Twisted's loop."""
    assert lean_dispatch(reactor)
    a, b = pair()
    c, d = pair()
    reader, writer = Descriptor(a), Descriptor(c)
    reactor.addReader(reader)
    reactor.addWriter(writer)
    b.send(b"hi")
    reactor.doIteration(0)
    assert reader.calls == ["read:hi"] and writer.calls == ["write"]
    b.close()
    reactor.doIteration(0)
    assert reader.calls[-1] == "read:" and len(reader.lost) == 1
    assert reader not in reactor._selectables.values()  # the reactor dropped it
    for s in (a, c, d):
        s.close()


def test_a_handler_error_disconnects_and_is_logged(reactor: EPollReactor) -> None:
    """An exception in doRead: the descriptor is disconnected and the failure logged."""
    lean_dispatch(reactor)
    a, b = pair()
    broken = Descriptor(a, fail=True)
    reactor.addReader(broken)
    events: List[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        b.send(b"x")
        reactor.doIteration(0)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert broken.lost and broken.lost[0].check(ValueError)
    assert any(e.get("log_level") is LogLevel.critical for e in events)
    a.close()
    b.close()


def test_an_idle_poll_returns_after_its_timeout(reactor: EPollReactor) -> None:
    """Nothing ready: the poll waits its timeout and returns."""
    lean_dispatch(reactor)
    reactor.doIteration(0.01)


def test_other_reactors_are_left_alone() -> None:
    """Not an epoll reactor: nothing is replaced."""
    clock = MemoryReactorClock()
    assert not lean_dispatch(clock)
    assert "doIteration" not in vars(clock)


def test_an_error_escaping_the_reactor_handler_is_logged_with_the_prefix(
    reactor: EPollReactor,
) -> None:
    """connectionLost raising (outside _doReadOrWrite's own guard): logged, not raised,
    under the descriptor's log prefix, and the loop goes on."""

    class Raising(Descriptor):
        def connectionLost(self, reason: Failure) -> None:
            raise RuntimeError("cleanup failed")

    lean_dispatch(reactor)
    a, b = pair()
    c, d = pair()
    raising, other = Raising(a), Descriptor(c)
    reactor.addReader(raising)
    reactor.addReader(other)
    events: List[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        b.close()  # EOF: the reactor disconnects it, and its connectionLost raises
        d.send(b"ok")
        reactor.doIteration(0)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert other.calls == ["read:ok"]
    logged = [e for e in events if e.get("log_system") == "Descriptor"]
    assert logged and logged[0]["failure"].check(RuntimeError)
    for s in (a, c, d):
        s.close()
