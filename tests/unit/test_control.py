"""Signals on the reactor thread: graceful stop, hard-stop-after, a second signal, reload."""

from __future__ import annotations

import os
import signal
import textwrap
from typing import Any, List, Optional, Tuple

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock

from udsproxy.config.parser import parse_text
from udsproxy.control import Controller
from udsproxy.generation import Generation
from udsproxy.notify import Notifier
from udsproxy.process import Process


class StoppableClock(Clock):
    def __init__(self) -> None:
        super().__init__()
        self.stops = 0

    def stop(self) -> None:
        self.stops += 1


class FakeConfig:
    def __init__(self, hard_stop_after: Optional[int]) -> None:
        self.global_ = type("G", (), {"hard_stop_after": hard_stop_after})()


class FakeProcess:
    """What the controller uses of a Process: soft_stop, connections, event, generation."""

    def __init__(self, hard_stop_after: Optional[int] = None, open_now: int = 1) -> None:
        self.generation = type("Gen", (), {"config": FakeConfig(hard_stop_after)})()
        self.open_now = open_now
        self.events: List[Tuple[str, str]] = []
        self.drained: Deferred = Deferred()
        self.soft_stops = 0

    def soft_stop(self) -> Deferred:
        self.soft_stops += 1
        return self.drained

    def connections(self) -> int:
        return self.open_now

    def event(self, text: str, level: str = "notice") -> None:
        self.events.append((level, text))


def recording_notifier() -> Notifier:
    notifier = Notifier(None)
    notifier.address = "unused"
    notifier.send = lambda *fields: notifier.sent.append(fields[0])  # type: ignore[method-assign]
    return notifier


def test_sigterm_drains_then_stops_the_reactor() -> None:
    """SIGTERM stops accepting and exits only once the open connections have finished."""
    clock, process = StoppableClock(), FakeProcess()
    notifier = recording_notifier()
    ctl = Controller(clock, process, notifier=notifier)
    ctl.on_signal(signal.SIGTERM)
    assert process.soft_stops == 1 and clock.stops == 0
    assert "received SIGTERM: stopping gracefully" in process.events[0][1]
    assert "no hard-stop-after" in process.events[0][1]
    assert notifier.sent == ["STOPPING=1"]
    process.drained.callback(None)
    assert clock.stops == 1
    assert process.events[-1][1] == "every connection has finished: exiting"
    assert not clock.getDelayedCalls()


def test_hard_stop_after_bounds_the_drain() -> None:
    """hard-stop-after: the reactor stops when it expires even with connections open."""
    clock, process = StoppableClock(), FakeProcess(hard_stop_after=1500, open_now=2)
    ctl = Controller(clock, process)
    ctl.on_signal(signal.SIGINT)
    assert "(hard-stop-after 1.5s)" in process.events[0][1]
    clock.advance(1.4)
    assert clock.stops == 0
    clock.advance(0.1)
    assert clock.stops == 1
    assert "hard-stop-after 1.5s reached: closing 2 connection(s)" in process.events[-1][1]
    process.drained.callback(None)  # the reactor's shutdown closing them: nothing more
    assert clock.stops == 1


def test_a_second_signal_stops_at_once_and_cancels_the_timer() -> None:
    """A second SIGTERM/SIGINT while draining stops hard; no timer is left behind."""
    clock, process = StoppableClock(), FakeProcess(hard_stop_after=60000, open_now=3)
    ctl = Controller(clock, process)
    ctl.on_signal(signal.SIGTERM)
    ctl.on_signal(signal.SIGINT)
    assert clock.stops == 1
    assert process.events[-1] == (
        "warning",
        "received SIGINT again: stopping now, closing 3 connection(s)",
    )
    assert not clock.getDelayedCalls()
    ctl.on_signal(signal.SIGTERM)  # a third one: the reactor is already stopping
    assert clock.stops == 1


def test_sighup_and_sigusr2_reload_unless_stopping() -> None:
    """SIGHUP and SIGUSR2 run a reload; while stopping they are logged and ignored."""
    clock, process = StoppableClock(), FakeProcess()
    reloads: List[int] = []
    ctl = Controller(clock, process, reload=lambda: reloads.append(1) or succeed(None))
    ctl.on_signal(signal.SIGHUP)
    ctl.on_signal(signal.SIGUSR2)
    assert len(reloads) == 2
    assert process.events[0][1] == "received SIGHUP: reloading the configuration"
    ctl.on_signal(signal.SIGUSR1)  # graceful too
    ctl.on_signal(signal.SIGHUP)
    assert len(reloads) == 2
    assert process.events[-1][1] == "received SIGHUP: ignored, the proxy is stopping"


def test_signal_handlers_only_schedule() -> None:
    """The installed handler defers to the reactor thread; SIGUSR1 stays twistd's if set."""
    reactor = MemoryReactorClock()
    scheduled: List[Any] = []
    reactor.callFromThread = lambda f, *a: scheduled.append((f, a))  # type: ignore[method-assign]
    ctl = Controller(reactor, FakeProcess())
    saved = {s: signal.getsignal(s) for s in (1, 2, 10, 12, 15)}
    rotate = lambda *a: None  # noqa: E731 - twistd's log rotation stand-in
    try:
        signal.signal(signal.SIGUSR1, rotate)
        ctl.install()
        assert ctl.usr1_owner is not None and signal.getsignal(signal.SIGUSR1) is rotate
        assert signal.SIGUSR1 not in ctl.installed
        signal.getsignal(signal.SIGHUP)(signal.SIGHUP, None)  # type: ignore[operator, misc]
        assert scheduled == [(ctl.on_signal, (signal.SIGHUP,))]
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def test_process_soft_stop_closes_listeners_and_waits_for_clients(tmp_path: Any) -> None:
    """Process.soft_stop unlinks our socket files at once and fires when the count is 0."""
    directory = str(tmp_path)
    text = f"""
    defaults
        mode http
        timeout connect 1s
        timeout client 1s
        timeout server 1s
    frontend fe
        bind {directory}/fe.sock
        default_backend be
    backend be
        server s1 {directory}/s1.sock
    """
    process = Process(MemoryReactorClock(), argv=["twistd"])
    gen = Generation(parse_text(textwrap.dedent(text), "t.cfg", {}), process, 1)
    process.bind(gen)
    process.attach(gen)
    process.start()
    assert os.path.exists(f"{directory}/fe.sock")
    process.global_limit.opened()  # a client in flight
    drained = process.soft_stop()
    assert not os.path.exists(f"{directory}/fe.sock") and not process.listeners
    assert gen.streams.http[0].stopping
    assert not drained.called
    process.global_limit.closed()
    assert drained.called
    process.close()
