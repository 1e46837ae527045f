"""The balancer interface: how an algorithm is asked for a server and told of changes.

An algorithm never probes servers: it reads the backend's pool (``lb_pool``: usable
active servers, else the backup(s)) and the servers' slots and weights, and learns of
run-time changes through :meth:`Balancer.server_changed` (HAProxy's ``lbprm`` hooks).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Collection, List, Optional

if TYPE_CHECKING:
    from udsproxy.runtime import BackendState, ServerState

# What ``BackendState.select`` reports along with the server it chose.
OK = "ok"  # a server with a free slot was chosen
FULL = "full"  # servers are usable but all are at maxconn: the stream may queue
NONE = "none"  # no usable server at all: 503 at once (HAProxy <NOSRV>, flags SC)


class Balancer(ABC):
    """One load-balancing algorithm bound to one backend."""

    #: False for algorithms whose weights are fixed at start (``set weight`` then only
    #: accepts 0 and 100%, as in HAProxy).
    dynamic = True

    def __init__(self, backend: BackendState) -> None:
        self.backend = backend

    def eligible(self, exclude: Collection[ServerState] = ()) -> List[ServerState]:
        """Servers of the current pool with a free slot, minus ``exclude``, in config order."""
        return [s for s in self.backend.lb_pool() if s.has_free_slot and s not in exclude]

    @abstractmethod
    def pick(
        self, key: Optional[bytes] = None, exclude: Collection[ServerState] = ()
    ) -> Optional[ServerState]:
        """Choose a usable server with a free slot, not in ``exclude``; None if there is none.

        Choosing is committing: round-robin positions advance. ``key`` feeds hashing
        algorithms; the others ignore it.
        """

    def server_changed(self, srv: ServerState) -> None:  # noqa: B027 (optional hook)
        """``srv`` changed state, admin state, weight or maxconn."""


def load_below(a: ServerState, b: ServerState) -> bool:
    """Whether ``a`` is less loaded than ``b``: (streams + waiting) / weight, compared exactly."""
    return (a.scur + a.qcur) * b.eweight < (b.scur + b.qcur) * a.eweight
