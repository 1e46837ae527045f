"""The transports build_transport makes: reads into one shared buffer, views for those that ask."""

from __future__ import annotations

import socket
from typing import Any, Iterator, List, Tuple

import pytest
from twisted.internet import main
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock

from udsproxy.net.connect import READ_BUFFER, build_transport


class Recorder(Protocol):
    """Keeps what each dataReceived was given, as given."""

    def __init__(self) -> None:
        self.reads: List[Any] = []

    def dataReceived(self, data: Any) -> None:
        self.reads.append(data)


class ViewTaker(Recorder):
    """Asks for views of the read buffer; keeps a copy of each and what type it came as."""

    transient_reads = True

    def __init__(self) -> None:
        super().__init__()
        self.types: List[type] = []
        self.forward_to: Any = None

    def dataReceived(self, data: Any) -> None:
        self.types.append(type(data))
        self.reads.append(bytes(data))
        if self.forward_to is not None:
            self.forward_to.write(data)


Pair = Tuple[socket.socket, socket.socket]


def socket_pair(family: int) -> Pair:
    if family == socket.AF_UNIX:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        theirs = socket.create_connection(listener.getsockname())
        ours, _ = listener.accept()
        listener.close()
    ours.setblocking(False)
    theirs.setblocking(False)
    return ours, theirs


@pytest.fixture(params=[socket.AF_UNIX, socket.AF_INET], ids=["unix", "tcp"])
def family(request: Any) -> int:
    return int(request.param)


@pytest.fixture
def pairs(family: int) -> Iterator[Any]:
    made: List[Pair] = []

    def make() -> Pair:
        pair = socket_pair(family)
        made.append(pair)
        return pair

    yield make
    for ours, theirs in made:
        ours.close()
        theirs.close()


def connected(pair: Pair, protocol: Protocol) -> Any:
    ours, _ = pair
    peer = ("127.0.0.1", 1) if ours.family == socket.AF_INET else None
    transport = build_transport(MemoryReactorClock(), ours, protocol, peer, 1)
    protocol.makeConnection(transport)
    return transport


def test_a_read_is_a_copy_in_bytes(pairs: Any) -> None:
    """An ordinary protocol gets bytes of its own: the next read into the buffer leaves them be."""
    first, second = pairs(), pairs()
    a, b = Recorder(), Recorder()
    ta, tb = connected(first, a), connected(second, b)
    first[1].send(b"first read")
    second[1].send(b"second, longer read")
    assert ta.doRead() is None and tb.doRead() is None
    assert a.reads == [b"first read"] and type(a.reads[0]) is bytes
    assert b.reads == [b"second, longer read"]


def test_transient_reads_get_a_view_of_the_buffer(pairs: Any) -> None:
    """A protocol with transient_reads is handed a memoryview of what was read, no more."""
    pair = pairs()
    taker = ViewTaker()
    transport = connected(pair, taker)
    pair[1].send(b"GET / HTTP/1.1\r\n\r\n")
    transport.doRead()
    assert taker.types == [memoryview]
    assert taker.reads == [b"GET / HTTP/1.1\r\n\r\n"]


def test_a_view_written_on_outlives_the_read(pairs: Any) -> None:
    """A view written to a peer that cannot take it all is queued as a copy: the next read
    overwrites the buffer, the peer still gets the first read's bytes, in order."""
    source, sink = pairs(), pairs()
    taker = ViewTaker()
    source_t = connected(source, taker)
    sink_t = connected(sink, Recorder())
    taker.forward_to = sink_t
    # Fill the sink's socket buffers so that the next write is queued, whole or in part.
    filler = b"f" * 65536
    filled = 0
    while True:
        try:
            filled += sink[0].send(filler)
        except BlockingIOError:
            break
    first = b"A" * 50000
    second = b"B" * 50000
    source[1].send(first)
    while sum(map(len, taker.reads)) < len(first):
        source_t.doRead()
    assert sink_t._tempDataLen > 0  # queued: Twisted's write buffer holds it
    source[1].send(second)
    while sum(map(len, taker.reads)) < len(first) + len(second):
        source_t.doRead()
    assert bytes(READ_BUFFER[:10]) != first[:10]  # the buffer has moved on
    received = bytearray()
    while len(received) < filled + len(first) + len(second):
        sink_t.doWrite()
        try:
            received += sink[1].recv(1 << 20)
        except BlockingIOError:
            pass
    assert received[filled:] == first + second


def test_end_of_file_and_errors(pairs: Any) -> None:
    """As Twisted's doRead: nothing to read is None, EOF is CONNECTION_DONE, a reset is
    CONNECTION_LOST (the reactor turns each into the same connectionLost)."""
    pair = pairs()
    transport = connected(pair, Recorder())
    assert transport.doRead() is None  # EAGAIN
    pair[1].shutdown(socket.SHUT_WR)
    assert transport.doRead() is main.CONNECTION_DONE
    other = pairs()
    reset = connected(other, Recorder())
    other[1].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    other[0].send(b"unread")  # a close with unread data (or linger 0) resets
    other[1].close()
    assert reset.doRead() is main.CONNECTION_LOST
