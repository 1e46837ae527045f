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

    def counting(bind: Any, backlog: int, pid: Any = None, replacing: Any = None) -> Any:
        calls.append(bind.address)
        return real(bind, backlog, pid, replacing)

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


def bind_options(directory: str, options: str, extra_bind: str = "") -> Config:
    """The test config with ``options`` on the frontend's bind line (and one more bind)."""
    text = textwrap.dedent(CONFIG.format(dir=directory, maxconn=""))
    line = f"bind {directory}/fe.sock"
    text = text.replace(line, f"{line} {options}" + (f"\n    {extra_bind}" if extra_bind else ""))
    return parse_text(text, "t.cfg", {})


def file_id(path: Any) -> tuple:  # type: ignore[type-arg]
    st = os.lstat(path)
    return (st.st_ino, st.st_mode & 0o777, st.st_uid, st.st_gid)


def test_a_changed_mode_is_staged_then_swapped_in_and_the_old_socket_drains(
    tmp_path: Any,
) -> None:
    """mode 600 -> 666: bind stages <path>.<pid>.tmp with the new mode while the old file
    serves; attach renames it over the path in one step; the old socket still accepts
    what was queued on it (for the new generation), then closes without unlinking."""
    import socket

    reactor = MemoryReactorClock()
    process = Process(reactor, argv=["twistd"])
    gen1 = Generation(bind_options(str(tmp_path), "mode 600"), process, 1)
    process.bind(gen1)
    process.attach(gen1)
    process.start()
    path, tmp = tmp_path / "fe.sock", tmp_path / f"fe.sock.{os.getpid()}.tmp"
    before = file_id(path)
    assert before[1] == 0o600
    old = process.listeners[gen1.specs[0].key]
    gen2 = Generation(bind_options(str(tmp_path), "mode 666 uid 65534 gid 65534"), process, 2)
    process.bind(gen2)
    assert file_id(path) == before and file_id(tmp)[1:] == (0o666, 65534, 65534)
    queued = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    queued.connect(str(path))  # waits in the old socket's backlog
    built: List[Any] = []
    gen2.specs[0].factory.buildProtocol = lambda addr: built.append(addr)  # type: ignore[method-assign]
    process.attach(gen2)
    process.start_listeners(gen2)
    new = process.listeners[gen2.specs[0].key]
    assert new is not old and gen2.specs[0].listener is new and new.accepting
    after = file_id(path)
    assert after[0] != before[0] and after[1:] == (0o666, 65534, 65534)
    assert not tmp.exists() and old.accepting and old.factory is gen2.specs[0].factory
    reactor.advance(udsproxy.process.DRAIN_AFTER_S)
    assert old.closed and len(built) == 1  # accepted by the drain, not reset
    assert queued.recv(1) == b""  # (the stand-in factory refused it: closed, not reset)
    assert file_id(path) == after  # the new socket's file stays
    assert reactor.getDelayedCalls() == []
    queued.close()
    process.close()
    assert not path.exists()


def test_a_failed_reload_removes_the_staged_socket_and_keeps_the_old_one(tmp_path: Any) -> None:
    """A mode change staged, then another bind fails: the temporary file is removed, the
    live socket file is untouched and nothing stays staged."""
    process, gen1 = started(str(tmp_path))
    path = tmp_path / "fe.sock"
    before = file_id(path)
    gen2 = Generation(
        bind_options(str(tmp_path), "mode 600", f"bind {tmp_path}/missing/x.sock"), process, 2
    )
    with pytest.raises(udsproxy.process.StartupError, match="missing"):
        process.bind(gen2)
    assert file_id(path) == before and process.staged == {}
    assert sorted(os.listdir(tmp_path)) == ["admin.sock", "fe.sock"]
    assert process.listeners[gen1.specs[0].key].accepting
    process.close()


def test_a_changed_backlog_is_set_in_place(tmp_path: Any, binds: List[Any]) -> None:
    """frontend backlog 7 -> 9: the same socket, listen() again (ss shows 9), no rebind."""
    import subprocess

    def backlog_of(listener: Any) -> str:
        ino = str(os.fstat(listener.fileno()).st_ino)
        out = subprocess.run(["ss", "-xlnH"], capture_output=True, text=True, check=True).stdout
        return next(r.split()[3] for r in out.splitlines() if r.split()[5:6] == [ino])

    process = Process(MemoryReactorClock(), argv=["twistd"])
    gen1 = Generation(config(str(tmp_path), maxconn="backlog 7"), process, 1)
    process.bind(gen1)
    process.attach(gen1)
    listener = gen1.specs[0].listener
    assert listener is not None and backlog_of(listener) == "7"
    gen2 = Generation(config(str(tmp_path), maxconn="backlog 9"), process, 2)
    process.bind(gen2)
    process.attach(gen2)
    assert gen2.specs[0].listener is listener and len(binds) == 2
    assert listener.backlog == 9 and backlog_of(listener) == "9"
    process.close()


def test_inherited_sockets_are_never_rebound(tmp_path: Any) -> None:
    """A socket adopted from the parent keeps its file whatever owner or mode a reload names."""
    import socket

    from udsproxy.net.listen import BoundSocket, Listener, needs_rebind

    bind = bind_options(str(tmp_path), "mode 600").frontends[0].binds[0]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        own = Listener(MemoryReactorClock(), bind.address, BoundSocket(sock, (1, 2), False), None)  # type: ignore[arg-type]
        inherited = Listener(
            MemoryReactorClock(),
            bind.address,
            BoundSocket(sock, None, True),
            None,  # type: ignore[arg-type]
        )
        assert needs_rebind(own, bind) and not needs_rebind(inherited, bind)
        own.perms = bind.perms
        assert not needs_rebind(own, bind)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the socket file to uid 65534")
def test_a_replacement_the_swap_could_not_rename_is_refused_when_staged(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a sticky directory, replacing a file of another user needs root: once privileges
    are gone that is found while staging (the reload fails, naming the listener), not
    after the swap has started."""
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    process = Process(MemoryReactorClock(), argv=["twistd"])
    gen1 = Generation(bind_options(str(sticky), "uid 65534 mode 600"), process, 1)
    process.bind(gen1)
    process.attach(gen1)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # as if dropped to uid 1000
    gen2 = Generation(bind_options(str(sticky), "uid 65534 mode 660"), process, 2)
    with pytest.raises(udsproxy.process.StartupError) as info:
        process.bind(gen2)
    assert f"frontend fe: cannot bind unix@{sticky}/fe.sock: cannot replace" in str(info.value)
    assert "belongs to uid 65534 in sticky directory" in str(info.value)
    assert sorted(os.listdir(sticky)) == ["admin.sock", "fe.sock"]
    monkeypatch.undo()
    process.close()
