"""Idle server connections kept per server: pool-low-conn over the estimated need."""

from __future__ import annotations

import pytest

from tests.unit.http_harness import Harness, answer_all
from udsproxy.config.parser import parse_text
from udsproxy.errors import ConfigErrors

POOL = """
frontend fe
    bind :8080
    default_backend be
backend be
    server a /s/a.sock {options}
"""


@pytest.mark.parametrize(("low", "idle"), [(0, 1), (3, 4), (20, 8)])
def test_pool_low_conn_is_the_idle_allowance_over_the_need_as_in_haproxy(
    low: int, idle: int
) -> None:
    """Eight sequential Connection: close clients (each first request opens its own server
    connection under http-reuse safe) leave min(pool-low-conn + 1, 8) idle connections:
    HAProxy 2.6 with nbthread 1 leaves 1, 4 and 8 (counted with ss on the server socket)."""
    h = Harness(POOL.format(options=f"pool-low-conn {low} pool-purge-delay 30s"))
    for _ in range(8):
        client = h.client()
        client.request(headers=[("Connection", "close")])
        answer_all(h)
        ((status, _, _),) = client.responses()
        assert status == 200
    assert h.pools.idle_count() == idle
    assert len(h.connector.servers) == 8  # none was reused: first requests, reuse safe
    assert sum(not s.transport.disconnecting for s in h.connector.servers) == idle
    h.pools.close_all()


def test_pool_low_conn_is_parsed_and_inherited_from_default_server() -> None:
    """default-server pool-low-conn applies to the servers after it; a server's own wins."""
    config = parse_text(
        """
backend be
    default-server pool-low-conn 2
    server a /s/a.sock
    server b /s/b.sock pool-low-conn 5
""",
        "t.cfg",
    )
    a, b = config.backends[0].servers
    assert (a.pool_low_conn, b.pool_low_conn) == (2, 5)


def test_a_negative_pool_low_conn_is_a_config_error() -> None:
    """pool-low-conn -1: the file, line and the rule."""
    with pytest.raises(ConfigErrors) as info:
        parse_text("backend be\n    server a /s/a.sock pool-low-conn -1\n", "t.cfg")
    text = str(info.value)
    assert "t.cfg:2" in text and "pool-low-conn must be at least 0, got -1" in text
