"""Load-balancing algorithms, one module each, registered by their ``balance`` keyword.

:func:`make_balancer` builds the one a backend's ``balance`` line names; every algorithm
implements :class:`Balancer`.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Callable, Dict

from udsproxy.balance.base import FULL, NONE, OK, Balancer, Pick, ServerSet
from udsproxy.balance.first import First
from udsproxy.balance.leastconn import LeastConn
from udsproxy.balance.randomdraw import RandomDraws
from udsproxy.balance.roundrobin import RoundRobin
from udsproxy.balance.source import make_hash_balancer
from udsproxy.balance.static_rr import StaticRoundRobin

if TYPE_CHECKING:
    from udsproxy.config.model import Balance

ALGORITHMS: Dict[str, Callable[[ServerSet, Balance, random.Random], Balancer]] = {
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


def make_balancer(pool: ServerSet, params: Balance, rng: random.Random) -> Balancer:
    """The balancer for a ``balance`` line, picking from ``pool``."""
    name = params.algorithm
    factory = ALGORITHMS.get(name)
    if factory is None:
        raise ValueError(f"unknown balance algorithm {name!r}")
    return factory(pool, params, rng)


__all__ = ["ALGORITHMS", "FULL", "NONE", "OK", "Balancer", "Pick", "ServerSet", "make_balancer"]
