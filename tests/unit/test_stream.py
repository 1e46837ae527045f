"""What TCP and HTTP mode share: effective timeouts and the tunnel's idle verdict."""

from __future__ import annotations

from udsproxy.config.model import Proxy, Timeouts
from udsproxy.stream import StreamTimeouts, resolve_timeouts, tunnel_idle


def proxies(fe: Timeouts, be: Timeouts) -> StreamTimeouts:
    return resolve_timeouts(
        Proxy(name="fe", kind="frontend", timeouts=fe),
        Proxy(name="be", kind="backend", timeouts=be),
    )


def test_client_side_from_the_frontend_server_side_from_the_backend() -> None:
    """client/http-request/keep-alive/client-fin come from the frontend; server/connect from the backend."""
    t = proxies(
        Timeouts(client=30000, server=1, connect=1, http_request=5000, client_fin=1000),
        Timeouts(client=1, server=20000, connect=4000, server_fin=2000),
    )
    assert (t.client, t.server, t.connect) == (30.0, 20.0, 4000)
    assert (t.http_request, t.keep_alive) == (5.0, 5.0)
    assert (t.client_fin, t.server_fin) == (1.0, 2.0)
    assert (t.tunnel_client, t.tunnel_server) == (30.0, 20.0)


def test_tunnel_timeout_covers_both_sides_backend_first() -> None:
    """timeout tunnel (the backend's, else the frontend's) replaces client and server in a tunnel."""
    t = proxies(Timeouts(client=1000, tunnel=9000), Timeouts(server=1000, tunnel=60000))
    assert (t.tunnel_client, t.tunnel_server) == (60.0, 60.0)
    assert (t.client_fin, t.server_fin) == (60.0, 60.0)  # unset -fin: the tunnel's
    t = proxies(Timeouts(client=1000, tunnel=9000), Timeouts(server=1000))
    assert (t.tunnel_client, t.tunnel_server) == (9.0, 9.0)


def test_without_a_backend_the_frontend_is_both_sides() -> None:
    """A frontend with no backend resolves server-side values from itself."""
    t = resolve_timeouts(Proxy(name="fe", kind="frontend", timeouts=Timeouts(server=7000)), None)
    assert t.server == 7.0 and t.client is None and t.http_request is None


def test_tunnel_idle_smaller_timeout_decides_and_fin_wait_uses_fin_timeouts() -> None:
    """cD when the client's limit is the smaller one reached, sD for the server's, -fin after FIN."""
    t = proxies(Timeouts(client=10000, client_fin=1000), Timeouts(server=5000, server_fin=2000))
    assert tunnel_idle(t, 4.9, False, False) is None
    assert tunnel_idle(t, 5.0, False, False) == "sD"
    assert tunnel_idle(t, 1.0, True, False) == "cD"  # the client's write half is shut
    assert tunnel_idle(t, 2.0, False, True) == "sD"
    unlimited = proxies(Timeouts(), Timeouts())
    assert tunnel_idle(unlimited, 1e9, True, True) is None
