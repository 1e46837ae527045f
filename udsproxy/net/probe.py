"""Socket state questions the reactor does not answer: has a unix peer really gone away?

A FIN is a half-close: the client may still be waiting for the answer (``echo x | nc``),
so a client that half-closes while queued keeps its place, as in HAProxy. On an AF_UNIX
stream Linux tells the two cases apart: when the peer has closed completely, our socket
polls POLLHUP; after a mere ``shutdown(SHUT_WR)`` it does not. (TCP cannot tell before a
write fails.)
"""

from __future__ import annotations

import select


def peer_closed(fileno: int) -> bool:
    """True when poll() reports POLLHUP/POLLERR on ``fileno``: both directions are gone."""
    poller = select.poll()
    poller.register(fileno, 0)  # POLLHUP and POLLERR are always reported
    try:
        return any(ev & (select.POLLHUP | select.POLLERR) for _, ev in poller.poll(0))
    finally:
        poller.unregister(fileno)
