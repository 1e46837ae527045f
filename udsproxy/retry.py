"""What to do after a failed connect: retry the same server, redispatch, or give up (HAProxy).

Shared by TCP mode (per connection) and HTTP mode (per request). ``retries`` counts the
attempts after the first; with ``option redispatch`` (interval -1, the default) the last
retry goes to another server, with interval N every Nth one does. A retry to the same
server after an asynchronous failure waits HAProxy's turn-around of
``min(timeout connect, 1s)``; a synchronous one (AF_UNIX: ENOENT, ECONNREFUSED, EAGAIN are
known at once) is retried at once, as HAProxy does.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from .config.model import Proxy
from .strenum import StrEnum

TURNAROUND_MAX = 1.0  # seconds


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
    proxy: Proxy, retries_done: int, synchronous: bool, connect_timeout: Optional[int]
) -> Decision:
    """The step after attempt number ``retries_done + 1`` failed (call before counting it)."""
    if retries_done >= proxy.retries:
        return Decision(GIVE_UP)
    attempt = retries_done + 1
    rd = proxy.redispatch
    last = attempt == proxy.retries
    if rd.enabled and (
        (rd.interval < 0 and last) or (rd.interval > 0 and attempt % rd.interval == 0)
    ):
        return Decision(REDISPATCH)
    if synchronous:
        return Decision(RETRY)
    delay = min(connect_timeout / 1000.0, TURNAROUND_MAX) if connect_timeout else TURNAROUND_MAX
    return Decision(RETRY, delay)
