"""One backend's core: its run-time state, its balancer and its queue (HAProxy's backend.c).

A :class:`Backend` is what the data path talks to: streams ask it for a server slot
(:meth:`Backend.request_slot`), it chooses a server through its balancer
(:meth:`Backend.select`) and makes streams wait in its queue when every server is full.
It also applies the rules that need the algorithm: a static algorithm (``static-rr``,
``hash-type map-based``) only accepts weights of 0% and 100% (:meth:`Backend.set_weight`).

The state (:class:`udsproxy.runtime.BackendState`) stays pure: the balancer and then the
queue learn of server changes by subscribing to it, in that order, before any other
observer, so a queue that grants slots after a change sees the balancer's new view.
"""

from __future__ import annotations

import random
from typing import Collection, Dict, List, Optional, Tuple

from udsproxy.balance import Balancer, Pick, make_balancer
from udsproxy.config.model import Server
from udsproxy.queue import BackendQueue
from udsproxy.runtime import BackendState, Runtime, ServerState

STATIC_WEIGHT_ERROR = (
    "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'."
)


class Backend:
    """A backend's state, balancer and queue, as one object the data path uses."""

    def __init__(self, state: BackendState, rng: Optional[random.Random] = None) -> None:
        self.state = state
        self.name = state.name
        self.proxy = state.proxy
        self.balancer: Balancer = make_balancer(
            state, state.proxy.balance, rng if rng is not None else random.Random()
        )
        self.queue = BackendQueue(state, self.select)
        # Asking for a slot is the queue's request (see BackendQueue.request), bound here:
        # the data path calls it once per stream, with no wrapper in between.
        self.request_slot = self.queue.request
        # Balancer first, queue second: see the module docstring.
        state.add_observer(self.balancer.server_changed)
        state.add_observer(self.queue.server_changed)

    def __repr__(self) -> str:
        return f"<Backend {self.name}>"

    @property
    def servers(self) -> List[ServerState]:
        return self.state.servers

    def server(self, name: str) -> Optional[ServerState]:
        return self.state.server(name)

    def select(
        self, key: Optional[bytes] = None, avoid: Collection[ServerState] = ()
    ) -> Tuple[Optional[ServerState], Pick]:
        """Choose a server with a free slot: ``(server, OK)``, ``(None, FULL)`` or ``(None, NONE)``.

        ``avoid`` is a preference, as HAProxy's: an avoided server is still chosen when it is
        the only one with a free slot (a retry on the only server beats a 503).
        """
        if not self.state.lb_pool():
            return None, Pick.NONE
        srv = self.balancer.pick(key, avoid)
        if srv is None and avoid:
            srv = self.balancer.pick(key)
        return (srv, Pick.OK) if srv is not None else (None, Pick.FULL)

    def set_weight(self, srv: ServerState, weight: int) -> None:
        """``set weight``: 0..256; a static algorithm only takes 0 and the initial weight."""
        if not self.balancer.dynamic and weight not in (0, srv.iweight):
            raise ValueError(STATIC_WEIGHT_ERROR)
        srv.set_weight(weight)

    def add_server(self, config: Server) -> ServerState:
        """A new server, known to the balancer and the queue through the state's observers."""
        return self.state.add_server(config)

    def remove_server(self, srv: ServerState) -> None:
        """Take an idle server out (see :meth:`BackendState.remove_server`)."""
        self.state.remove_server(srv)


def build_backends(runtime: Runtime, rng: Optional[random.Random] = None) -> Dict[str, Backend]:
    """A core for every backend of ``runtime``, sharing one random source."""
    rng = rng if rng is not None else random.Random()
    return {name: Backend(state, rng) for name, state in runtime.backends.items()}
