"""Reload in place: validate, bind first, swap, carry server state; failures change nothing."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace
from typing import Any, Callable, List, Optional, Tuple

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.testing import MemoryReactorClock

from tests.unit.http_harness import FakeClient, FakeConnector, Transport
from udsproxy.config.parser import parse_text
from udsproxy.errors import ConfigErrors
from udsproxy.http.upstream import Pools, ServerConnection
from udsproxy.notify import Notifier
from udsproxy.queue import NO_SERVER
from udsproxy.reload import Reloader, carry_servers, refusals
from udsproxy.runtime import DRAIN, MAINT, READY, Runtime
from udsproxy.service import ProxyService
from udsproxy.sweeper import IdleSweeper

BASE = """
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
    timeout queue 5s
frontend fe
    bind {dir}/fe.sock
    default_backend be
backend be
    server s1 {dir}/s1.sock check
    server s2 {dir}/s2.sock weight 10
{extra}
"""


def text(directory: str, extra: str = "") -> str:
    return textwrap.dedent(BASE).format(dir=directory, extra=textwrap.dedent(extra))


class Recorder(Notifier):
    def __init__(self) -> None:
        super().__init__("unused", clock=lambda: 42)

    def send(self, *fields: str) -> None:
        self.sent.append("\n".join(fields))


def running(
    directory: str, first: Optional[str] = None
) -> Tuple[ProxyService, Reloader, List[str], Recorder, List[Any]]:
    """A started service whose reloads read ``files[-1]`` and whose events are recorded."""
    files = [first if first is not None else text(directory)]
    config = parse_text(files[0], "t.cfg", {})
    svc = ProxyService(config, MemoryReactorClock(), argv=["twistd"])
    svc.privilegedStartService()
    svc.startService()
    events: List[str] = []
    svc.process.event = lambda t, level="notice", targets=None: events.append(t)  # type: ignore[method-assign]

    def parse(path: str) -> Deferred:
        try:
            return succeed(parse_text(files[-1], path, {}))
        except ConfigErrors:
            return fail()

    notifier = Recorder()
    reloader = Reloader(svc, "t.cfg", notifier, parse=parse, euid=lambda: 1000)
    return svc, reloader, events, notifier, files  # type: ignore[return-value]


def test_reload_adds_a_server_and_keeps_listeners_and_state(tmp_path: Any) -> None:
    """A new server appears; unchanged listeners and servers keep socket, health and admin."""
    svc, reloader, events, notifier, files = running(str(tmp_path))
    gen1 = svc.generation
    listener = gen1.specs[0].listener
    s1 = gen1.runtime.find_server("be/s1")
    s2 = gen1.runtime.find_server("be/s2")
    assert s1 is not None and s2 is not None
    s1.set_check_result(False)  # starting at rise, one failure marks it DOWN
    s2.set_admin(DRAIN)
    s2.set_weight(3)
    files.append(files[0].replace("weight 10", "weight 10\n    server s3 /tmp/s3.sock"))
    reloader()
    gen2 = svc.generation
    assert gen2.number == 2 and gen2.specs[0].listener is listener
    assert listener is not None and listener.factory is gen2.specs[0].factory
    n1, n2 = gen2.runtime.find_server("be/s1"), gen2.runtime.find_server("be/s2")
    assert n1 is not None and n2 is not None and gen2.runtime.find_server("be/s3") is not None
    assert (n1.health, n1.op_up, n1.check_status) == (0, False, s1.check_status)
    assert not n1.usable  # no traffic to a server known DOWN until its checks pass
    assert n2.admin == DRAIN and n2.uweight == 3
    assert notifier.sent == [
        "RELOADING=1\nMONOTONIC_USEC=42\nSTATUS=reloading",
        "READY=1\nSTATUS=generation 2 serving",
    ]
    assert "servers: 2 kept, 1 new, 0 removed or changed" in events[-1]
    svc.stopService()


def test_invalid_reload_keeps_the_old_config_and_logs_every_error(tmp_path: Any) -> None:
    """Two errors: both logged, generation 1 still attached; the next reload works."""
    svc, reloader, events, notifier, files = running(str(tmp_path))
    gen1 = svc.generation
    files.append(files[0].replace("weight 10", "wieght 10").replace("mode http", "mode htp"))
    reloader()
    assert svc.generation is gen1 and gen1.specs[0].listener is not None
    failed = [e for e in events if e.startswith("reload failed")]
    assert len(failed) == 3 and "reload failed (2 errors); still serving generation 1" in failed
    assert notifier.sent[-2].startswith("STATUS=reload failed (2 errors)")
    assert notifier.sent[-1] == "READY=1"
    files.append(files[0])
    reloader()
    assert svc.generation.number == 2
    svc.stopService()


def test_a_failed_bind_keeps_the_old_config_and_closes_what_it_bound(tmp_path: Any) -> None:
    """One new listener binds, the other cannot: neither stays, the old generation serves."""
    svc, reloader, events, _, files = running(str(tmp_path))
    gen1 = svc.generation
    keys = set(svc.process.listeners)
    files.append(
        files[0].replace(
            f"bind {tmp_path}/fe.sock",
            f"bind {tmp_path}/fe.sock\n    bind {tmp_path}/new.sock\n"
            f"    bind {tmp_path}/missing/x.sock",
        )
    )
    reloader()
    assert svc.generation is gen1 and set(svc.process.listeners) == keys
    assert not (tmp_path / "new.sock").exists()
    assert any("frontend fe: cannot bind" in e and "missing" in e for e in events)
    svc.stopService()


def test_a_new_socket_owner_is_refused_without_root(tmp_path: Any) -> None:
    """A reload that needs root (a new uid on a socket) is refused, naming the listener."""
    old = parse_text(text(str(tmp_path)), "t.cfg", {})
    new = parse_text(text(str(tmp_path)).replace("fe.sock", "fe.sock uid 0"), "t.cfg", {})
    (error,) = refusals(old, new, euid=1000)
    assert error.startswith("frontend fe: cannot bind unix@") and "needs root" in error
    assert refusals(old, new, euid=0) == []


def test_removed_or_moved_servers_lose_state_and_added_ones_are_dropped(tmp_path: Any) -> None:
    """Identity is (backend, name, address); an ``add server`` server not in the file goes."""
    clock = MemoryReactorClock()
    old = Runtime(parse_text(text(str(tmp_path)), "t.cfg", {}), clock)
    s1 = old.find_server("be/s1")
    assert s1 is not None
    s1.set_admin(MAINT)
    moved = text(str(tmp_path)).replace("s1.sock", "s1-new.sock")
    new = Runtime(parse_text(moved, "t.cfg", {}), clock)
    moves = carry_servers(old, new)
    n1 = new.find_server("be/s1")
    assert moves[s1] is None and n1 is not None and n1.admin == READY
    assert [s.name for s in new.backends["be"].servers] == ["s1", "s2"]


def test_pools_follow_unchanged_servers_and_close_the_others() -> None:
    """Idle connections move to the successor or close; one coming back later follows."""
    clock = MemoryReactorClock()
    runtime = Runtime(parse_text(text("/tmp"), "t.cfg", {}), clock)
    a, b = runtime.backends["be"].servers
    successor = Runtime(parse_text(text("/tmp"), "t.cfg", {}), clock).backends["be"].servers[0]
    pools = Pools(IdleSweeper(clock))
    closed: List[Any] = []

    def conn(server: Any) -> ServerConnection:
        c = ServerConnection(server, pools)
        c.close = lambda: closed.append(c)  # type: ignore[method-assign]
        return c

    kept, dropped = conn(a), conn(b)
    pools.pool(a).idle.append(kept)
    pools.pool(b).idle.append(dropped)
    pools.retire(a, successor)
    pools.retire(b, None)
    assert closed == [dropped] and kept.server is successor
    assert pools.take(successor, False, "always") is kept
    late = conn(a)  # an old generation's request finishing after the reload
    a.scur = 1
    assert pools.put(late) and late.server is successor
    assert not pools.put(conn(b))
    pools.close_all()


def test_queued_requests_of_a_removed_backend_fail_with_no_server(tmp_path: Any) -> None:
    """fail_all answers every waiting stream NO_SERVER (503) and empties the queue."""
    svc, reloader, events, _, files = running(str(tmp_path))
    backend = svc.generation.backends["be"]
    for srv in backend.servers:
        srv.maxconn = 1
        srv.scur = 1
    errors: List[Any] = []
    backend.request_slot(lambda s: None, errors.append)
    assert len(backend.queue) == 1
    files.append(
        files[0]
        .replace("backend be", "backend other")
        .replace("default_backend be", "default_backend other")
    )
    reloader()
    assert errors == [NO_SERVER] and len(backend.queue) == 0
    assert "1 queued request(s) of removed backends answered 503" in events[-1]
    for srv in backend.servers:
        srv.scur = 0
    svc.stopService()


LONG = """
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    {extra}
frontend fe
    bind {dir}/fe.sock
    default_backend be
backend be
    server s1 {dir}/s1.sock
"""


def long_timeouts(directory: str, extra: str = "") -> str:
    return textwrap.dedent(LONG).format(dir=directory, extra=extra)


def until(clock: Any, done: Callable[[], bool], limit: float) -> float:
    """Advance ``clock`` by 1 ms steps until ``done()``; the seconds it took."""
    start = clock.seconds()
    while not done():
        assert clock.seconds() - start < limit, "never happened"
        clock.advance(0.001)
    return float(clock.seconds() - start)


def test_a_reload_to_a_shorter_timeout_is_as_precise_as_a_fresh_start(tmp_path: Any) -> None:
    """5 s at the shortest (a 0.5 s sweep period), then a reload adds timeout http-request 200ms: a
    new client's 408 comes at 0.20-0.25 s, not a whole old period late (#16 section 5)."""
    svc, reloader, _, _, files = running(str(tmp_path), long_timeouts(str(tmp_path)))
    assert svc.process.sweeper.period == 0.5  # the pool-purge-delay, 5 s by default
    files.append(long_timeouts(str(tmp_path), "timeout http-request 200ms"))
    reloader()
    assert svc.generation.number == 2 and svc.process.sweeper.period == 0.05
    clock = svc.reactor
    client = Transport()
    proto = svc.generation.specs[0].factory.buildProtocol(None)
    client.protocol = proto
    proto.makeConnection(client)
    proto.dataReceived(b"GET / HTTP/1.1\r\n")  # and never the rest
    took = until(clock, lambda: client.value().startswith(b"HTTP/1.1 408 "), 2.0)
    assert 0.2 <= took <= 0.25
    svc.stopService()


def test_a_keep_alive_client_moving_to_a_shorter_timeout_gets_it_on_time(tmp_path: Any) -> None:
    """A keep-alive client of generation 1 (checked every half second) finishes a request after
    a reload to timeout http-keep-alive 200ms: it is closed 0.20-0.25 s later, not when
    generation 1's period would have checked it."""
    svc, reloader, _, _, files = running(str(tmp_path), long_timeouts(str(tmp_path)))
    clock = svc.reactor
    connector = FakeConnector()
    ctx1 = svc.generation.specs[0].factory.ctx
    ctx1.connector = connector
    client = FakeClient(SimpleNamespace(ctx=ctx1))  # type: ignore[arg-type]
    client.request()
    (server,) = connector.servers
    server.read()
    files.append(long_timeouts(str(tmp_path), "timeout http-keep-alive 200ms"))
    reloader()
    assert ctx1.successor is svc.generation.specs[0].factory.ctx
    server.respond()
    assert [status for status, _, _ in client.responses()] == [200]
    assert client.protocol.ctx is ctx1.successor  # moved to generation 2
    took = until(clock, lambda: bool(client.transport.disconnecting), 2.0)
    assert 0.2 <= took <= 0.25
    svc.stopService()


def test_the_sweep_period_keeps_up_with_older_connections_until_they_are_gone(
    tmp_path: Any,
) -> None:
    """A reload to longer timeouts keeps the short period while a client of the old config
    (timeout http-request 200ms) is connected; the next reload after it left relaxes it."""
    short = long_timeouts(str(tmp_path), "timeout http-request 200ms")
    svc, reloader, _, _, files = running(str(tmp_path), short)
    assert svc.process.sweeper.period == 0.05
    client = FakeClient(SimpleNamespace(ctx=svc.generation.specs[0].factory.ctx))  # type: ignore[arg-type]
    files.append(long_timeouts(str(tmp_path)))
    reloader()
    assert svc.generation.number == 2 and svc.process.sweeper.period == 0.05
    client.close()
    reloader()
    assert svc.generation.number == 3 and svc.process.sweeper.period == 0.5
    svc.stopService()
