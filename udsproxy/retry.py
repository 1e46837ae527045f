"""What to do after a failed connect: retry the same server, redispatch, or give up (HAProxy).

Shared by TCP mode (per connection) and HTTP mode (per request). ``retries`` counts the
attempts after the first, and the log's retries field is that count (``+N`` once a
redispatch happened), as HAProxy's. With ``option redispatch`` a failed attempt goes back to
load balancing (HAProxy 2.6's ``back_handle_st_cer``):

- at once when the server is not running, or when the algorithm is not a hash and more than
  one active server is usable ("we don't care about this particular server"): one of two
  servers without its socket file costs one retry, logged ``+1``;
- else on the retries ``option redispatch <interval>`` names (-1, the default: the last);
- and, beyond HAProxy, at once after an error a retry cannot cure: no socket file (ENOENT)
  or nobody listening on a unix socket (ECONNREFUSED), known the moment connect() returns.
  This only changes hash algorithms, which HAProxy keeps on the dead server until the last
  retry.

A retry to the same server after an asynchronous failure waits HAProxy's turn-around of
``min(timeout connect, 1s)``; a synchronous one (AF_UNIX: ENOENT, ECONNREFUSED, EAGAIN are
known at once) is retried at once, as HAProxy does.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from .config.model import Algorithm, Proxy
from .strenum import StrEnum

TURNAROUND_MAX = 1.0  # seconds

# HAProxy's BE_LB_KIND_HI: a request goes to the server its key names, so a retry stays there.
HASH_ALGORITHMS = frozenset({Algorithm.SOURCE, Algorithm.URI, Algorithm.URL_PARAM, Algorithm.HDR})


class Action(StrEnum):
    """The step after a failed connect."""

    GIVE_UP = "give-up"
    REDISPATCH = "redispatch"
    RETRY = "retry"


GIVE_UP, REDISPATCH, RETRY = Action.GIVE_UP, Action.REDISPATCH, Action.RETRY


class Decision(NamedTuple):
    """The next step and, for RETRY, the delay in seconds before it."""

    action: Action
    delay: float = 0.0


def after_connect_failure(
    proxy: Proxy,
    retries_done: int,
    synchronous: bool,
    connect_timeout: Optional[int],
    *,
    server_running: bool = True,
    active_servers: int = 1,
    permanent: bool = False,
) -> Decision:
    """The step after attempt number ``retries_done + 1`` failed (call before counting it).

    ``server_running``: the failed server is up (not DOWN or STARTING); ``active_servers``:
    usable active servers of the backend now; ``permanent``: the error cannot go away on a
    retry (no socket file, nobody listening on a unix socket)."""
    if retries_done >= proxy.retries:
        return Decision(GIVE_UP)
    attempt = retries_done + 1
    rd = proxy.redispatch
    if rd.enabled and (
        not server_running
        or permanent
        or (active_servers > 1 and proxy.balance.algorithm not in HASH_ALGORITHMS)
        or (rd.interval < 0 and attempt == proxy.retries)
        or (rd.interval > 0 and attempt % rd.interval == 0)
    ):
        return Decision(REDISPATCH)
    if synchronous:
        return Decision(RETRY)
    delay = min(connect_timeout / 1000.0, TURNAROUND_MAX) if connect_timeout else TURNAROUND_MAX
    return Decision(RETRY, delay)
