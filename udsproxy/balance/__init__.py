"""Load-balancing algorithms, one module each, registered by their ``balance`` keyword.

:func:`make_balancer` builds the one a backend's ``balance`` line names; every algorithm
implements :class:`Balancer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict

from udsproxy.balance.base import FULL, NONE, OK, Balancer
from udsproxy.balance.first import First
from udsproxy.balance.leastconn import LeastConn
from udsproxy.balance.randomdraw import RandomDraws
from udsproxy.balance.roundrobin import RoundRobin
from udsproxy.balance.source import make_hash_balancer
from udsproxy.balance.static_rr import StaticRoundRobin

if TYPE_CHECKING:
    from udsproxy.runtime import BackendState

ALGORITHMS: Dict[str, Callable[[BackendState], Balancer]] = {
    "roundrobin": RoundRobin,
    "static-rr": StaticRoundRobin,
    "leastconn": LeastConn,
    "first": First,
    "random": RandomDraws,
    # Key hashes: the key comes from the caller (client address, URI, header...).
    "source": make_hash_balancer,
    "uri": make_hash_balancer,
    "url_param": make_hash_balancer,
    "hdr": make_hash_balancer,
    "hash": make_hash_balancer,
}


def make_balancer(backend: BackendState) -> Balancer:
    """The balancer for ``backend``'s ``balance`` algorithm."""
    name = backend.proxy.balance.algorithm
    factory = ALGORITHMS.get(name)
    if factory is None:
        raise ValueError(f"unknown balance algorithm {name!r}")
    return factory(backend)


__all__ = ["ALGORITHMS", "FULL", "NONE", "OK", "Balancer", "make_balancer"]
