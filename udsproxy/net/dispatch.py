"""The reactor's I/O dispatch without a log context per event (Twisted's epoll reactor).

For each ready descriptor Twisted's epoll reactor calls ``_doReadOrWrite`` through
``log.callWithLogger``, which pushes and pops a legacy log context (a dict copied, thread
locals and interface hashes: about 16,000 instructions, more than a small read's whole
protocol work) so that legacy ``log.msg`` calls made inside know their "system". A proxy
pays it twice per proxied request (the client's read, the server's read).

:func:`lean_dispatch` replaces that loop on one reactor instance with the same loop
without the context: the same poll, the same ``_doReadOrWrite`` (reads, writes,
disconnects, its own error logging) in the same order. An error that escapes it is logged
with the descriptor's log prefix, as ``callWithLogger`` does. What changes is only the
"system" of legacy messages Twisted logs while handling an event (``-`` instead of the
connection's prefix); udsproxy's own events never carried it. Any other reactor is left
as it is.
"""

from __future__ import annotations

import errno
from typing import Any, Optional

from twisted.internet.epollreactor import EPollReactor
from twisted.python import log


def lean_dispatch(reactor: Any) -> bool:
    """Dispatch ``reactor``'s I/O events without a log context each; False if it is not
    an epoll reactor (then nothing changes)."""
    if not isinstance(reactor, EPollReactor):
        return False
    selectables = reactor._selectables  # made once by the reactor, changed in place
    handle = reactor._doReadOrWrite

    def do_poll(timeout: Optional[float]) -> None:
        """EPollReactor.doPoll, each event handled without callWithLogger."""
        try:
            events = reactor._poller.poll(-1 if timeout is None else timeout, len(selectables))
        except OSError as err:
            if err.errno == errno.EINTR:
                return
            raise
        for fd, event in events:
            selectable = selectables.get(fd)
            if selectable is None:
                continue  # removed by an earlier event of this round
            try:
                handle(selectable, fd, event)
            except KeyboardInterrupt:
                raise
            except BaseException:  # what callWithLogger catches, logged as it logs it
                log.err(system=_prefix(selectable))

    reactor.doIteration = do_poll  # type: ignore[method-assign]
    return True


def _prefix(selectable: Any) -> str:
    try:
        return str(selectable.logPrefix())
    except Exception:  # noqa: BLE001 - as callWithLogger words it
        return "(buggy logPrefix method)"
