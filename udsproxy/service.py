"""Wiring for twistd: a frozen Config + a reactor -> one MultiService (process + generation 1).

``ProxyService`` ties the two halves together: a ``process.Process`` (listeners, log sinks,
limits, pools: what outlives a config) and a ``generation.Generation`` (the Runtime,
contexts and factories one config builds). Starting is "build generation 1 and attach it
to the process":

- ``privilegedStartService`` binds every listener (frontends and stats sockets; every bind
  error is reported, then start-up aborts), raises the open-file limit and fixes the global
  maxconn (limits.apply_fd_budget: configured, or derived from the limit), attaches the
  generation, then drops privileges to the config's user/group unless twistd's own
  ``-u/-g`` will;
- ``startService`` logs the effective maxconn and what is not active yet, and starts
  accepting; with ``control`` (twistd's run, not tests that embed the service) it installs
  the signal handlers once the reactor runs (:mod:`udsproxy.control`) and tells systemd
  READY=1 (:mod:`udsproxy.notify`);
- ``stopService`` closes the pools and the listeners, unlinking only the socket files that
  are still ours.
"""

from __future__ import annotations

from typing import Any, List, Optional

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred

from .config.model import Config
from .control import Controller
from .errors import UdsProxyError
from .generation import Generation, ListenerSpec
from .limits import NofileLimit
from .net.activation import Activation
from .notify import Notifier
from .process import Process, StartupError
from .reload import Reloader

__all__ = ["ProxyService", "StartupError", "build_service"]


class ProxyService(Service):
    """The twistd service of one process and its current config generation."""

    def __init__(
        self,
        config: Config,
        reactor: Any,
        argv: Optional[List[str]] = None,
        nofile: Optional[NofileLimit] = None,
        control: bool = False,
        notifier: Optional[Notifier] = None,
    ) -> None:
        self.setName("udsproxy")
        self.reactor = reactor
        self.process = Process(reactor, argv, nofile)
        self.generation = Generation(config, self.process, number=1)
        if control:
            self.process.activation = Activation.from_environ()
        self.control = control
        self.notifier = notifier if notifier is not None else Notifier(None)
        self.reloader: Optional[Reloader] = None
        if control and config.filename:
            self.reloader = Reloader(self, config.filename, self.notifier)
        self.controller = Controller(reactor, self.process, self.reloader, self.notifier)

    @property
    def config(self) -> Config:
        return self.generation.config

    @property
    def specs(self) -> List[ListenerSpec]:
        return self.generation.specs

    # ----------------------------------------------------------------- lifecycle
    def privilegedStartService(self) -> None:
        process, generation = self.process, self.generation
        process.bind(generation)
        budget = process.apply_fd_budget(generation)
        if budget.error is not None:
            for note in process.budget_notes:
                process.event(note, "warning")
            process.close()
            raise StartupError(f"cannot start: {budget.error}")
        process.attach(generation)
        try:
            process.drop_privileges(generation.config.global_)
        except UdsProxyError:
            process.close()
            raise
        super().privilegedStartService()

    def startService(self) -> None:
        super().startService()
        process = self.process
        for notice in self.config.notices:
            process.event(str(notice), "warning")
        if process.budget is not None:
            for note in process.budget_notes:
                process.event(note, "warning")
            if process.budget.warning:
                process.event(process.budget.warning, "warning")
            process.event(process.budget.describe(), "notice")
        process.start()
        if self.control:
            self.reactor.callWhenRunning(self.take_control)

    def take_control(self) -> None:
        """The reactor runs: take over the signals and tell systemd we are ready."""
        self.controller.install()
        if self.controller.usr1_owner is not None:
            self.process.event(
                f"SIGUSR1 left to {self.controller.usr1_owner}: stop with SIGTERM", "info"
            )
        self.notifier.ready(f"serving {len(self.process.listeners)} listener(s)")

    def stopService(self) -> Deferred:
        super().stopService()
        if not self.controller.stopping:
            self.notifier.stopping()  # stopped some other way than our signals
        return self.process.close()


def build_service(config: Config, reactor: Any) -> MultiService:
    """The whole process for one config, as one MultiService for twistd."""
    top = MultiService()
    ProxyService(config, reactor, control=True, notifier=Notifier.from_environ()).setServiceParent(
        top
    )
    return top
