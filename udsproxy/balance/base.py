"""The balancer interface: how an algorithm is asked for a server and told of changes.

An algorithm never probes servers and never sees the backend core: it gets what it
picks from (a :class:`ServerSet`: the servers and the current pool, ``lb_pool``: usable
active servers, else the backup(s)), its parameters (the config's ``balance`` line) and a
random source, reads the servers' slots and weights, and learns of run-time changes,
servers added and removed included, through :meth:`Balancer.server_changed`, to which the
backend core subscribes it (HAProxy's ``lbprm`` hooks).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Collection, List, Optional, Protocol

from udsproxy.strenum import StrEnum

if TYPE_CHECKING:
    from udsproxy.config.model import Balance
    from udsproxy.runtime import ServerChange, ServerState


class ServerSet(Protocol):
    """What a balancer picks from (a backend's run-time state satisfies it)."""

    servers: List[ServerState]

    def lb_pool(self) -> List[ServerState]: ...


class Pick(StrEnum):
    """What selecting a server found, along with the server chosen."""

    OK = "ok"  # a server with a free slot was chosen
    FULL = "full"  # servers are usable but all are at maxconn: the stream may queue
    NONE = "none"  # no usable server at all: 503 at once (HAProxy <NOSRV>, flags SC)


OK, FULL, NONE = Pick.OK, Pick.FULL, Pick.NONE


class Balancer(ABC):
    """One load-balancing algorithm bound to one backend."""

    #: False for algorithms whose weights are fixed at start (``set weight`` then only
    #: accepts 0 and 100%, as in HAProxy).
    dynamic = True

    def __init__(self, pool: ServerSet, params: Balance, rng: random.Random) -> None:
        self.pool = pool
        self.params = params
        self.rng = rng

    def eligible(self, exclude: Collection[ServerState] = ()) -> List[ServerState]:
        """Servers of the current pool with a free slot, minus ``exclude``, in config order."""
        return [s for s in self.pool.lb_pool() if s.has_free_slot and s not in exclude]

    @abstractmethod
    def pick(
        self, key: Optional[bytes] = None, exclude: Collection[ServerState] = ()
    ) -> Optional[ServerState]:
        """Choose a usable server with a free slot, not in ``exclude``; None if there is none.

        Choosing is committing: round-robin positions advance. ``key`` feeds hashing
        algorithms; the others ignore it.
        """

    def server_changed(self, change: ServerChange) -> None:  # noqa: B027 (optional hook)
        """A server changed state, admin state, weight or maxconn, or was added or removed."""


def load_below(a: ServerState, b: ServerState) -> bool:
    """Whether ``a`` is less loaded than ``b``: (streams + waiting) / weight, compared exactly."""
    return (a.scur + a.qcur) * b.eweight < (b.scur + b.qcur) * a.eweight
