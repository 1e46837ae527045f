"""What signals ask of the process: a graceful stop, a hard stop, a reload in place.

| signal          | action                                                              |
|-----------------|---------------------------------------------------------------------|
| SIGTERM, SIGINT | graceful stop: no new connections, in-flight ones finish within     |
|                 | ``hard-stop-after``, then exit 0; a second one stops at once        |
| SIGUSR1         | the same graceful stop, unless twistd owns it (logging to a file:   |
|                 | it rotates the log then) — HAProxy's soft-stop signal               |
| SIGHUP, SIGUSR2 | reload the config file in place (SIGUSR2: what haproxy.service's    |
|                 | ExecReload sends)                                                   |

Unlike HAProxy, whose SIGTERM stops at once, SIGTERM drains: systemd and supervisord stop
services with SIGTERM. Signal handlers only schedule work on the reactor
(``callFromThread``); everything else runs there. Each signal logs one line.

The :class:`Controller` is the shell's side; what a stop does to listeners and
connections is :meth:`udsproxy.process.Process.soft_stop`, what a reload does is
:mod:`udsproxy.reload`, and what a process manager is told is :mod:`udsproxy.notify`.
"""

from __future__ import annotations

import signal
from typing import Any, Callable, Dict, List, Optional

from twisted.internet.error import ReactorNotRunning

from .notify import Notifier

GRACEFUL, RELOAD = "graceful stop", "reload"

# The signals we handle and what they ask for; SIGUSR1 only when twistd does not use it.
ACTIONS: Dict[int, str] = {
    signal.SIGTERM: GRACEFUL,
    signal.SIGINT: GRACEFUL,
    signal.SIGUSR1: GRACEFUL,
    signal.SIGHUP: RELOAD,
    signal.SIGUSR2: RELOAD,
}


def seconds(ms: int) -> str:
    """A duration as the log says it: ``1.5s``, ``30s``."""
    return f"{ms / 1000:g}s"


class Controller:
    """Turns signals into a graceful stop, a hard stop or a reload, on the reactor thread.

    ``process`` is a :class:`udsproxy.process.Process` (``soft_stop``, ``connections``,
    ``event``, ``generation``); ``reload`` runs one reload and returns a Deferred (None: no
    reload support, e.g. the demo).
    """

    def __init__(
        self,
        reactor: Any,
        process: Any,
        reload: Optional[Callable[[], Any]] = None,
        notifier: Optional[Notifier] = None,
    ) -> None:
        self.reactor = reactor
        self.process = process
        self.reload = reload
        self.notifier = notifier if notifier is not None else Notifier(None)
        self.stopping = False
        self.stopped = False
        self.hard_timer: Any = None
        self.installed: List[int] = []
        self.usr1_owner: Optional[str] = None  # twistd's log rotation holds SIGUSR1

    # ----------------------------------------------------------------- the shell
    def install(self) -> None:
        """Install the signal handlers (once the reactor runs: it installs its own first)."""
        for signum in ACTIONS:
            if signum == signal.SIGUSR1 and signal.getsignal(signum) not in (
                signal.SIG_DFL,
                signal.SIG_IGN,
                None,
            ):
                self.usr1_owner = "twistd (log rotation)"
                continue
            signal.signal(signum, self._handler)
            self.installed.append(signum)

    def _handler(self, signum: int, frame: Any) -> None:
        # In a signal handler: only schedule (callFromThread is signal-safe, Twisted's own
        # handlers use it) and return.
        self.reactor.callFromThread(self.on_signal, signum)

    # ----------------------------------------------------------------- the logic
    def on_signal(self, signum: int) -> None:
        """One signal, on the reactor thread: log it, then act."""
        name = signal.Signals(signum).name
        action = ACTIONS.get(signum)
        if action == RELOAD:
            if self.stopping:
                self.process.event(f"received {name}: ignored, the proxy is stopping")
                return
            if self.reload is None:
                self.process.event(f"received {name}: ignored, nothing to reload")
                return
            self.process.event(f"received {name}: reloading the configuration")
            self.reload()
        elif action == GRACEFUL:
            if self.stopping:
                open_now = self.process.connections()
                self.process.event(
                    f"received {name} again: stopping now, closing {open_now} connection(s)",
                    "warning",
                )
                self.hard_stop()
            else:
                self.graceful_stop(name)

    def graceful_stop(self, name: str) -> None:
        """Stop accepting; exit once the open connections have finished, or at
        ``hard-stop-after``."""
        self.stopping = True
        generation = self.process.generation
        limit = generation.config.global_.hard_stop_after if generation is not None else None
        bound = (
            f"hard-stop-after {seconds(limit)}"
            if limit
            else "no hard-stop-after: waiting for them, a second signal stops at once"
        )
        self.process.event(
            f"received {name}: stopping gracefully, no new connections, "
            f"{self.process.connections()} open ({bound})"
        )
        self.notifier.stopping()
        if limit:
            self.hard_timer = self.reactor.callLater(limit / 1000.0, self._hard_stop_after, limit)
        drained = self.process.soft_stop()
        drained.addCallback(self._drained)

    def _drained(self, _: object) -> None:
        if self.stopped:
            return
        self.process.event("every connection has finished: exiting")
        self._stop_reactor()

    def _hard_stop_after(self, limit: int) -> None:
        self.hard_timer = None
        open_now = self.process.connections()
        self.process.event(
            f"hard-stop-after {seconds(limit)} reached: closing {open_now} connection(s) "
            "and exiting",
            "warning",
        )
        self.hard_stop()

    def hard_stop(self) -> None:
        """Exit now: the reactor's shutdown closes whatever is still open."""
        self.stopping = True
        self._stop_reactor()

    def _stop_reactor(self) -> None:
        if self.hard_timer is not None:
            if self.hard_timer.active():
                self.hard_timer.cancel()
            self.hard_timer = None
        if self.stopped:
            return
        self.stopped = True
        try:
            self.reactor.stop()
        except ReactorNotRunning:
            pass
