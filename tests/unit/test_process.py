"""Process vs generation: attaching a new config generation keeps listeners, swaps factories."""

from __future__ import annotations

import os
import textwrap
from typing import Any, List

import pytest
from twisted.internet.testing import MemoryReactorClock

import udsproxy.process
from udsproxy.config.model import UNIX, Address, Config, Server, SocketPerms
from udsproxy.config.parser import parse_text
from udsproxy.generation import Generation
from udsproxy.process import Process

CONFIG = """
global
    stats socket {dir}/admin.sock
defaults
    mode tcp
    timeout connect 1s
    timeout client 1s
    timeout server 1s
frontend fe
    bind {dir}/fe.sock
    {maxconn}
    default_backend be
backend be
    server s1 {dir}/s1.sock
"""


def config(directory: str, maxconn: str = "", stats: bool = True) -> Config:
    text = CONFIG.format(dir=directory, maxconn=maxconn)
    if not stats:
        text = text.replace(f"    stats socket {directory}/admin.sock\n", "")
    return parse_text(textwrap.dedent(text), "t.cfg", {})


@pytest.fixture
def binds(monkeypatch: pytest.MonkeyPatch) -> List[Any]:
    """Every bind_socket call the process makes."""
    calls: List[Any] = []
    real = udsproxy.process.bind_socket

    def counting(bind: Any, backlog: int, pid: Any = None) -> Any:
        calls.append(bind.address)
        return real(bind, backlog, pid)

    monkeypatch.setattr(udsproxy.process, "bind_socket", counting)
    return calls


def started(directory: str) -> tuple:  # type: ignore[type-arg]
    process = Process(MemoryReactorClock(), argv=["twistd"])
    gen1 = Generation(config(directory), process, 1)
    process.bind(gen1)
    process.attach(gen1)
    process.start()
    return process, gen1


def test_equal_config_generation_keeps_the_same_listeners(tmp_path: Any, binds: List[Any]) -> None:
    """Generation 2 of an equal config reuses every listener object: no rebind, new factories."""
    process, gen1 = started(str(tmp_path))
    before = dict(process.listeners)
    assert len(binds) == 2
    gen2 = Generation(config(str(tmp_path)), process, 2)
    process.bind(gen2)
    process.attach(gen2)
    assert len(binds) == 2  # nothing bound again
    assert process.listeners.keys() == before.keys()
    for key, listener in process.listeners.items():
        assert listener is before[key]
    for old, new in zip(gen1.specs, gen2.specs):
        assert new.listener is old.listener
        assert new.listener is not None and new.listener.factory is new.factory
        assert old.factory is not new.factory  # connections built by gen 1 keep gen 1's
    assert process.generation is gen2
    process.close()


def test_new_generation_closes_the_listeners_it_no_longer_names(tmp_path: Any) -> None:
    """A stats socket gone from the config is closed and its file removed; the rest stay."""
    process, gen1 = started(str(tmp_path))
    stats_listener = gen1.specs[1].listener
    assert os.path.exists(tmp_path / "admin.sock")
    gen2 = Generation(config(str(tmp_path), stats=False), process, 2)
    process.bind(gen2)
    process.attach(gen2)
    assert stats_listener is not None and stats_listener.closed
    assert not os.path.exists(tmp_path / "admin.sock")
    assert gen2.specs[0].listener is gen1.specs[0].listener
    process.close()


def test_limit_counts_outlive_the_generation(tmp_path: Any) -> None:
    """Connections of generation 1 count against generation 2's lower frontend maxconn."""
    process, gen1 = started(str(tmp_path))
    limit = process.frontend_limit("fe")
    limit.opened()
    limit.opened()
    gen2 = Generation(config(str(tmp_path), maxconn="maxconn 2"), process, 2)
    process.bind(gen2)
    process.attach(gen2)
    listener = gen2.specs[0].listener
    assert listener is not None and listener.paused
    assert process.frontend_limit("fe") is limit and limit.maxconn == 2
    limit.closed()
    assert not listener.paused
    process.close()


def test_servers_added_and_removed_reach_the_pools_and_the_permission_watch(
    tmp_path: Any, binds: List[Any]
) -> None:
    """A server added at run time is watched; removed, its pool goes and the watch forgets it."""
    process, gen1 = started(str(tmp_path))
    be = gen1.backends["be"]
    srv = Server(
        "s2",
        Address(UNIX, path=str(tmp_path / "s2.sock")),
        expect_perms=SocketPerms(mode=0o660),
    )
    state = be.add_server(srv)
    assert srv in process.perms_watch.servers
    process.pools.pool(state)  # as if a connection had been pooled
    be.remove_server(state)
    assert srv not in process.perms_watch.servers and state not in process.pools.by_server
    process.close()


def test_emfile_on_a_server_connect_closes_idle_connections_then_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """EMFILE: idle pooled connections are closed and the connect tried again; with none
    left it is tried again later, and fails only after EMFILE_WAITS waits."""
    import errno

    from twisted.internet.defer import fail, succeed
    from twisted.internet.task import Clock

    from udsproxy.net.connect import ConnectError, ConnectKind, connect_error

    address = Address(UNIX, path="/run/a.sock")
    outcomes: List[Any] = [errno.EMFILE, errno.EMFILE, errno.EMFILE, "ok"]
    calls: List[int] = []

    def fake_connect(reactor: Any, addr: Any, factory: Any, timeout: Any) -> Any:
        calls.append(1)
        outcome = outcomes.pop(0)
        return succeed("conn") if outcome == "ok" else fail(connect_error(addr, outcome))

    monkeypatch.setattr(udsproxy.process, "connect", fake_connect)
    clock = Clock()
    process = Process(clock, argv=["twistd"])
    reclaimed: List[int] = []
    monkeypatch.setattr(
        process.pools, "reclaim", lambda n: reclaimed.append(n) or (1 if len(reclaimed) == 1 else 0)
    )
    results: List[Any] = []
    process.connect(clock, address, None, 1000).addBoth(results.append)
    assert len(calls) == 2 and results == []  # reclaimed once, then EMFILE with none idle
    clock.advance(udsproxy.process.EMFILE_WAIT)
    assert len(calls) == 3 and results == []
    clock.advance(udsproxy.process.EMFILE_WAIT)
    assert results == ["conn"] and len(calls) == 4
    outcomes[:] = [errno.EMFILE] * (udsproxy.process.EMFILE_WAITS + 1)
    results.clear()
    process.connect(clock, address, None, 1000).addBoth(results.append)
    for _ in range(udsproxy.process.EMFILE_WAITS):
        clock.advance(udsproxy.process.EMFILE_WAIT)
    (failure,) = results
    assert isinstance(failure.value, ConnectError) and failure.value.kind is ConnectKind.EMFILE
    assert clock.getDelayedCalls() == []


def test_idle_connections_are_kept_only_within_the_fd_headroom() -> None:
    """Pools keep an idle connection only while descriptors are free beyond what the
    connected clients may need."""
    from twisted.internet.task import Clock

    from udsproxy.http.upstream import Pools
    from udsproxy.sweeper import IdleSweeper

    room = [0]
    pools = Pools(IdleSweeper(Clock(), 1000), headroom=lambda: room[0])

    class Conn:
        server: Any = None

    assert pools.put(Conn()) is False  # type: ignore[arg-type]
