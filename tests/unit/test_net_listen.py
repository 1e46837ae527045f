"""The Listener's accept loop and state on a memory reactor, and path-limit errors."""

from __future__ import annotations

import errno
import socket
from typing import Any, List

import pytest
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock

from udsproxy.config.model import SUN_PATH_MAX, UNIX, Address, Bind
from udsproxy.errors import BindError
from udsproxy.net.listen import (
    RESOURCE_RETRY_S,
    BoundSocket,
    Listener,
    bind_socket,
    max_unix_path_len,
)

ADDRESS = Address(UNIX, path="/run/test.sock")


class FakeListeningSocket:
    """Stands in for a listening socket: accept() pops scripted results."""

    family = socket.AF_UNIX

    def __init__(self) -> None:
        self.script: List[Any] = []
        self.closed = False
        self.listens: List[int] = []

    def fileno(self) -> int:
        return 99

    def accept(self) -> Any:
        if not self.script:
            raise BlockingIOError(errno.EAGAIN, "again")
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self.closed = True

    def listen(self, backlog: int) -> None:
        self.listens.append(backlog)

    def getsockname(self) -> str:
        return "/run/test.sock.1.tmp"


class CountingFactory(Factory):
    protocol = Protocol

    def __init__(self) -> None:
        self.starts = 0
        self.stops = 0
        self.built = 0

    def startFactory(self) -> None:
        self.starts += 1

    def stopFactory(self) -> None:
        self.stops += 1

    def buildProtocol(self, addr: Any) -> Any:
        self.built += 1
        return None  # refuse: the accepted socket must be closed


def make(fake: FakeListeningSocket, factory: Factory) -> tuple:
    reactor = MemoryReactorClock()
    listener = Listener(reactor, ADDRESS, BoundSocket(fake, None, False), factory)  # type: ignore[arg-type]
    listener.start()
    return reactor, listener


def accepted_pair() -> tuple:
    a, b = socket.socketpair()
    return a, b


def test_max_path_length_counts_the_suffix():
    """The limit is 107 bytes minus ``.PID.tmp``."""
    assert max_unix_path_len(1) == SUN_PATH_MAX - 1 - len(".1.tmp")
    assert max_unix_path_len(4194304) == 107 - len(".4194304.tmp")


def test_too_long_path_error_names_limit():
    """The error names the path, the limit and ENAMETOOLONG without touching the disk."""
    path = "/nonexistent/" + "x" * 100
    with pytest.raises(BindError) as info:
        bind_socket(Bind(Address(UNIX, path=path)), backlog=5, pid=77)
    text = str(info.value)
    assert path in text and f"the limit is {max_unix_path_len(77)}" in text
    assert "'.77.tmp'" in text and "ENAMETOOLONG" in text
    assert info.value.errno == errno.ENAMETOOLONG


def test_pause_resume_stop_register_reader():
    """Reading follows start/pause/resume/stop; the factory is started and stopped once."""
    factory = CountingFactory()
    reactor, listener = make(FakeListeningSocket(), factory)
    assert reactor.getReaders() == [listener] and factory.starts == 1
    listener.pause()
    assert reactor.getReaders() == []
    listener.resume()
    assert reactor.getReaders() == [listener]
    d = listener.stop()
    assert d.called and reactor.getReaders() == [] and factory.stops == 1
    assert listener.fileno() == -1 and listener.closed


def test_factory_swap_starts_new_and_stops_old():
    """Replacing the factory of a running listener calls doStart/doStop."""
    old, new = CountingFactory(), CountingFactory()
    _, listener = make(FakeListeningSocket(), old)
    listener.factory = new
    assert (old.starts, old.stops, new.starts, new.stops) == (1, 1, 1, 0)
    assert listener.factory is new


def test_refused_and_aborted_connections_are_skipped():
    """A factory returning None closes the socket; ECONNABORTED is skipped, not fatal."""
    fake = FakeListeningSocket()
    a, b = accepted_pair()
    fake.script = [ConnectionAbortedError(errno.ECONNABORTED, "aborted"), (a, "")]
    factory = CountingFactory()
    _, listener = make(fake, factory)
    listener.doRead()
    assert factory.built == 1
    assert a.fileno() == -1  # closed
    b.close()


def test_emfile_pauses_accepting_then_retries():
    """EMFILE stops reading for a moment instead of spinning, then reading resumes."""
    fake = FakeListeningSocket()
    fake.script = [OSError(errno.EMFILE, "Too many open files")]
    reactor, listener = make(fake, CountingFactory())
    listener.doRead()
    assert reactor.getReaders() == []
    assert len(reactor.getDelayedCalls()) == 1
    listener.pause()
    listener.resume()  # a user resume does not cut the back-off short
    assert reactor.getReaders() == []
    reactor.advance(RESOURCE_RETRY_S)
    assert reactor.getReaders() == [listener]
    listener.stop()
    assert reactor.getDelayedCalls() == []


def test_stop_during_backoff_cancels_timer():
    """Stopping while backing off from EMFILE leaves no timer behind."""
    fake = FakeListeningSocket()
    fake.script = [OSError(errno.ENFILE, "File table overflow")]
    reactor, listener = make(fake, CountingFactory())
    listener.doRead()
    listener.stop()
    assert reactor.getDelayedCalls() == [] and fake.closed


def test_relisten_sets_a_new_backlog_once_and_never_on_an_inherited_socket():
    """relisten(9) calls listen(9) on the socket in place; the same backlog or an
    inherited socket (its parent chose the backlog) calls nothing."""
    own, inherited = FakeListeningSocket(), FakeListeningSocket()
    reactor = MemoryReactorClock()
    mine = Listener(reactor, ADDRESS, BoundSocket(own, None, False), Factory(), backlog=7)  # type: ignore[arg-type]
    theirs = Listener(reactor, ADDRESS, BoundSocket(inherited, None, True), Factory())  # type: ignore[arg-type]
    mine.relisten(9)
    mine.relisten(9)
    theirs.relisten(9)
    assert (own.listens, inherited.listens, mine.backlog) == ([9], [], 9)


def test_drain_accepts_everything_queued_then_closes():
    """drain(): each connection still queued is served (none is reset), then the socket
    closes; ECONNABORTED on the way is skipped."""
    fake = FakeListeningSocket()
    factory = CountingFactory()
    reactor, listener = make(fake, factory)
    pairs = [accepted_pair() for _ in range(3)]
    aborted = ConnectionAbortedError(errno.ECONNABORTED, "aborted")
    fake.script = [(pairs[0][0], ""), aborted, (pairs[1][0], ""), (pairs[2][0], "")]
    listener.drain()
    assert factory.built == 3 and fake.closed and listener.closed
    assert reactor.getReaders() == []
    for _, peer in pairs:
        peer.close()
