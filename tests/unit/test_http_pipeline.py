"""Pipelined input in memory: bounded parser feed, reading paused, a client that does not read."""

from __future__ import annotations

import socket

from tests.unit.http_harness import ONE_SERVER, Harness, answer_all
from udsproxy.http import frontend
from udsproxy.http.flow import OUTPUT, PIPELINE

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


class Handle:
    """A socket handle that records TCP_CORK settings."""

    def __init__(self) -> None:
        self.cork: list = []

    def setsockopt(self, level: int, option: int, value: int) -> None:
        assert (level, option) == (socket.IPPROTO_TCP, socket.TCP_CORK)
        self.cork.append(value)


def test_pipelined_responses_to_a_tcp_client_are_corked_until_the_pipeline_drains() -> None:
    """Requests waiting behind the current one: TCP_CORK holds the responses so they leave
    together; once no request is left waiting, the cork comes off (everything flushed)."""
    h = Harness(ONE)
    client = h.client()
    handle = Handle()
    client.transport.getHandle = lambda: handle  # type: ignore[method-assign]
    client.send(b"".join(GET % i for i in range(3)))
    answered = 0
    while answered < 3:
        answer_all(h)
        answered += client.raw().count(b"HTTP/1.1 200 ")
    assert handle.cork == [1, 0] and not client.protocol.corked
    client.send(GET % 9)  # a lone request: nothing waits behind it, no cork
    answer_all(h)
    assert client.raw().count(b"HTTP/1.1 200 ") == 1 and handle.cork == [1, 0]
