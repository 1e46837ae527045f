"""Pipelined input in memory: bounded parser feed, reading paused, a client that does not read."""

from __future__ import annotations

import pytest

from tests.unit.http_harness import ONE_SERVER, TCP_PEER, UNIX_PEER, Harness, answer_all
from udsproxy.http import frontend
from udsproxy.http.flow import BATCH, HOLD_LIMIT, OUTPUT, PIPELINE

ONE = ONE_SERVER

GET = b"GET /%d HTTP/1.1\r\nHost: app\r\n\r\n"


def test_a_deep_pipeline_gives_the_parser_one_buffer_at_a_time() -> None:
    """3,000 requests in one read: the parser never holds more than FEED bytes of them, and
    reading pauses while more than a buffer's worth waits (constant work per request)."""
    h = Harness(ONE)
    client = h.client()
    wire = b"".join(GET % i for i in range(3000))
    client.send(wire)
    proto = client.protocol
    assert PIPELINE in proto.gate.reasons and len(proto.backlog) > 0
    answered = 0
    biggest = 0
    while answered < 3000:
        biggest = max(biggest, len(proto.raw_head.buf))  # what the parser is given
        answer_all(h)
        answered += client.raw().count(b"HTTP/1.1 200 ")
    assert biggest <= frontend.FEED
    assert not proto.backlog and not proto.gate.reasons
    targets = [r.target for s in h.connector.servers for r in s.requests()]
    assert targets == [b"/%d" % i for i in range(3000)]


def test_pipelined_bytes_after_a_fin_are_all_answered() -> None:
    """Requests pipelined beyond one buffer, then the client's FIN: each is answered, then close."""
    h = Harness(ONE)
    client = h.client()
    client.send(b"".join(GET % i for i in range(1000)))
    client.protocol.readConnectionLost()
    answered = 0
    for _ in range(2000):
        answer_all(h)
        answered += client.raw().count(b"HTTP/1.1 200 ")
        if client.transport.disconnecting:
            break
    assert answered == 1000 and client.transport.disconnecting


def test_no_next_request_starts_while_the_client_does_not_read() -> None:
    """With more than OUTPUT_LIMIT unread in the client's write queue, the next pipelined
    request waits and reading pauses; once the queue empties, it is answered."""
    h = Harness(ONE)
    client = h.client()
    transport = client.transport
    # As a real transport's write queue (see net.connect.pending_output): full.
    transport.dataBuffer = b"x" * (frontend.OUTPUT_LIMIT + 1)  # type: ignore[attr-defined]
    transport.offset = 0  # type: ignore[attr-defined]
    transport._tempDataLen = 0  # type: ignore[attr-defined]
    client.send(GET % 1 + GET % 2)
    answer_all(h)  # the first is answered; the second must wait for the client to read
    assert client.raw().count(b"HTTP/1.1 200 ") == 1
    assert OUTPUT in client.protocol.gate.reasons
    assert [r.target for r in h.connector.servers[0].requests()] == [b"/1"]
    transport.dataBuffer = b""  # type: ignore[attr-defined]
    transport.producer.resumeProducing()  # Twisted: the queue has been written out
    answer_all(h)
    assert client.raw().count(b"HTTP/1.1 200 ") == 1
    assert [r.target for r in h.connector.servers[0].requests()] == [b"/1", b"/2"]
    assert not client.protocol.gate.reasons and transport.producer is None


def count_writes(client: object) -> list:
    """The client transport's writes, as a list that grows."""
    transport = client.transport  # type: ignore[attr-defined]
    writes: list = []
    write = transport.write

    def recording(data: bytes) -> None:
        writes.append(bytes(data))
        write(data)

    transport.write = recording
    return writes


@pytest.mark.parametrize("peer", [TCP_PEER, UNIX_PEER], ids=["tcp", "unix"])
def test_pipelined_responses_leave_together_once_the_pipeline_drains(peer: object) -> None:
    """Requests waiting behind the current one: their responses are held and written in
    one write when no request is left waiting; a lone request is written at once."""
    h = Harness(ONE)
    client = h.client(peer)
    writes = count_writes(client)
    client.send(b"".join(GET % i for i in range(3)))
    for _ in range(3):
        answer_all(h)
    assert len(writes) == 1 and writes[0].count(b"HTTP/1.1 200 ") == 3
    assert client.protocol.held is None and client.transport not in BATCH.held
    assert [r.target for r in h.connector.servers[0].requests()] == [b"/0", b"/1", b"/2"]
    client.send(GET % 9)  # a lone request: nothing waits behind it, nothing held
    answer_all(h)
    assert len(writes) == 2 and writes[1].count(b"HTTP/1.1 200 ") == 1
    assert client.protocol.held is None
    assert not [c for c in h.clock.getDelayedCalls() if c.func == client.protocol.release_output]


def test_a_slow_next_response_does_not_hold_back_the_answered_ones() -> None:
    """The hold lasts PIPELINE_HOLD at most: a server slow to answer the second request
    does not delay the first response beyond it."""
    h = Harness(ONE)
    client = h.client()
    writes = count_writes(client)
    client.send(GET % 1 + GET % 2)
    h.connector.servers[0].read()
    h.connector.servers[0].respond()  # only the first is answered
    assert writes == []
    h.clock.advance(frontend.PIPELINE_HOLD)
    assert len(writes) == 1 and writes[0].count(b"HTTP/1.1 200 ") == 1
    answer_all(h)
    assert client.raw().count(b"HTTP/1.1 200 ") == 2


def test_a_hold_never_keeps_more_than_a_buffer_back() -> None:
    """Responses held for a pipeline are written once they reach HOLD_LIMIT bytes."""
    h = Harness(ONE)
    client = h.client()
    writes = count_writes(client)
    client.send(b"".join(GET % i for i in range(400)))
    answered = 0
    while answered < 400:
        answer_all(h)
        answered = sum(w.count(b"HTTP/1.1 200 ") for w in writes)
        assert len(BATCH.held.get(client.transport, b"")) < HOLD_LIMIT
    assert len(writes) > 1 and all(len(w) <= HOLD_LIMIT + 1024 for w in writes)


def test_a_client_gone_while_held_leaves_nothing_behind() -> None:
    """A client that closes while responses are held: the hold and its timer go with it."""
    h = Harness(ONE)
    client = h.client()
    client.send(GET % 1 + GET % 2)
    h.connector.servers[0].read()
    h.connector.servers[0].respond()
    assert client.transport in BATCH.held and client.protocol.held is not None
    client.transport.loseConnection()
    assert client.transport not in BATCH.held and client.protocol.held is None
    assert not [c for c in h.clock.getDelayedCalls() if c.func == client.protocol.release_output]
