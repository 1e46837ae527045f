"""What an idle client connection holds: its fields and nothing built ahead of its bytes.

10,000 idle connections are a memory budget (#16: at most 1.5 KB of RSS each, measured by
``tools/idle_rss.py``). Two things keep it: ClientConnection's fields live in slots (a
class with more than 30 attributes gets an unshared ~1.6 KB instance dict per object in
CPython), and the parser, raw head and backlog are made with the first byte.
"""

from __future__ import annotations

import pytest

from tests.unit.http_harness import ONE_SERVER, TCP_PEER, UNIX_PEER, Harness, answer_all
from udsproxy.http.frontend import NO_BACKLOG, NO_HEAD_YET


@pytest.mark.parametrize("peer", [UNIX_PEER, TCP_PEER], ids=["unix", "tcp"])
def test_an_idle_connection_has_no_instance_dict_entries(peer: object) -> None:
    """Every field ClientConnection sets, Twisted's transport/connected included, is a
    slot: an attribute added without one shows up here (and in every connection's RSS)."""
    h = Harness(ONE_SERVER)
    client = h.client(peer)
    assert vars(client.protocol) == {}
    client.request()
    answer_all(h)
    assert [status for status, _, _ in client.responses()] == [200]
    assert vars(client.protocol) == {}


def test_nothing_is_built_before_the_first_byte() -> None:
    h = Harness(ONE_SERVER)
    protocol = h.client(UNIX_PEER).protocol
    assert protocol.h11 is None
    assert protocol.raw_head is NO_HEAD_YET
    assert protocol.backlog is NO_BACKLOG
    assert protocol.private is None
    assert protocol.exchange is None
