"""Server slots and the backend queue: who may talk to a server now, and who waits.

A stream (a connection in TCP mode, a request in HTTP mode) asks its backend for a slot
with :meth:`BackendQueue.request` and gets a :class:`Ticket`. The answer comes through one
of two callbacks, possibly before ``request`` returns:

- ``on_granted(server)``: a server with a free slot was chosen (synchronously when one
  is free, else later, when a slot frees up);
- ``on_error(reason)``, a :class:`QueueError`: ``NO_SERVER`` (no usable server, at once:
  HAProxy 503 ``SC`` with ``<NOSRV>``), ``QUEUE_TIMEOUT`` (``timeout queue`` expired: 503
  ``sQ``) or ``QUEUE_FULL`` (503).

The queue belongs to a backend core (:mod:`udsproxy.backend`), which gives it the
backend's state (counters, pool, clock, timeouts) and its ``select`` function, and
subscribes :meth:`BackendQueue.server_changed` to server changes after the balancer.

A freed slot is handed to the queue's head in the same call that frees it: there is no
polling and no timer besides ``timeout queue``. A server coming up, leaving drain or
maintenance, getting a weight or a higher maxconn wakes the queue the same way.

``maxqueue`` (HAProxy: a limit on a server's own queue) means two things here:

- a stream bound to one server (``server=``, persistence) is refused once that server
  has ``maxqueue`` streams waiting for it;
- the backend queue is refused once it holds as many streams as the ``maxqueue`` of the
  servers load balancing may choose from, added up; if any of them has ``maxqueue 0``
  (unlimited) the backend queue is unlimited, as HAProxy's always is.

``timeout queue`` is ``Timeouts.effective_queue`` (falls back to ``timeout connect``);
unset or 0 waits forever, as HAProxy's infinite timeouts do.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Callable, Collection, Dict, FrozenSet, Optional, Tuple

from udsproxy.balance.base import Pick
from udsproxy.strenum import StrEnum

if TYPE_CHECKING:
    from udsproxy.runtime import BackendState, LoadCounters, ServerChange, ServerState

# select(key, avoid) -> (server, what was found): the backend core's server selection.
Select = Callable[
    [Optional[bytes], Collection["ServerState"]], Tuple[Optional["ServerState"], Pick]
]


class QueueError(StrEnum):
    """Why a stream got no slot; its termination flags are HAProxy's."""

    NO_SERVER = "no-server"
    QUEUE_TIMEOUT = "queue-timeout"
    QUEUE_FULL = "queue-full"

    @property
    def flags(self) -> str:
        return _QUEUE_FLAGS[self]


_QUEUE_FLAGS = {
    QueueError.NO_SERVER: "SC",
    QueueError.QUEUE_TIMEOUT: "sQ",
    QueueError.QUEUE_FULL: "SQ",
}
NO_SERVER, QUEUE_TIMEOUT, QUEUE_FULL = (
    QueueError.NO_SERVER,
    QueueError.QUEUE_TIMEOUT,
    QueueError.QUEUE_FULL,
)


class TicketState(enum.Enum):
    """WAITING -> GRANTED -> CLOSED, or WAITING -> CLOSED; CLOSED is final."""

    WAITING = "waiting"
    GRANTED = "granted"
    CLOSED = "closed"


NO_SERVERS: FrozenSet[ServerState] = frozenset()  # shared by every ticket that avoids none


def _closed(_: object) -> None:
    """The callbacks of a closed ticket (never called: nothing grants or fails it)."""


class Ticket:
    """One stream's claim on a server slot: waiting, holding a slot, or done.

    ``release`` and ``cancel`` are idempotent, so a stream may call them from every
    path that ends it without corrupting counters.
    """

    def __init__(
        self,
        queue: BackendQueue,
        on_granted: Callable[[ServerState], None],
        on_error: Callable[[QueueError], None],
        key: Optional[bytes],
        avoid: Collection[ServerState],
        server: Optional[ServerState],
    ) -> None:
        self._queue = queue
        self._on_granted = on_granted
        self._on_error = on_error
        self.key = key
        self.avoid: FrozenSet[ServerState] = frozenset(avoid) if avoid else NO_SERVERS
        self.bound = server  # a server this stream must go to (persistence), if any
        self.state = TicketState.WAITING
        self.server: Optional[ServerState] = None  # the server holding our slot
        self.error: Optional[QueueError] = None
        self.created = queue.backend.clock.seconds()
        self.granted_at: Optional[float] = None
        self.timer: Optional[Any] = None  # the IDelayedCall of ``timeout queue``

    def __repr__(self) -> str:
        return f"<Ticket {self.state.value} server={self.server!r}>"

    @property
    def wait_time(self) -> Optional[float]:
        """Seconds spent waiting for the slot (HAProxy's Tw); None until granted."""
        return None if self.granted_at is None else self.granted_at - self.created

    def release(self) -> None:
        """The stream ended or its client left: free the slot (the queue's head gets it now)
        or leave the queue. Idempotent."""
        self._queue.close(self)

    def note_retry(self) -> None:
        """Count a retry against the current server (``wretr``)."""
        if self.server is not None:
            self.server.note_retry()

    def redispatch(self) -> None:
        """Give up the current server and ask for another one, avoiding it if possible.

        Counts ``wredis``. The freed slot goes to the queue first; this stream then gets a
        new server (``on_granted`` again), waits at the tail, or gets ``on_error``.
        """
        self._queue.redispatch(self)


class BackendQueue:
    """The waiting streams of one backend, in arrival order, and the slot hand-over."""

    def __init__(self, backend: BackendState, select: Select) -> None:
        self.backend = backend
        self._select = select
        self._waiting: Dict[Ticket, None] = {}  # an ordered set: FIFO with O(1) removal
        self._draining = False
        self._again = False

    def __len__(self) -> int:
        return len(self._waiting)

    def waiting(self) -> list[Ticket]:
        """The waiting tickets, oldest first (for ``show sess`` and tests)."""
        return list(self._waiting)

    def capacity(self) -> Optional[int]:
        """How many streams may wait for any server; None: no limit (see module doc)."""
        pool = self.backend.lb_pool()
        if not pool or any(s.maxqueue == 0 for s in pool):
            return None
        return sum(s.maxqueue for s in pool)

    def request(
        self,
        on_granted: Callable[[ServerState], None],
        on_error: Callable[[QueueError], None],
        key: Optional[bytes] = None,
        avoid: Collection[ServerState] = (),
        server: Optional[ServerState] = None,
    ) -> Ticket:
        """Ask for a slot; the callbacks may run before this returns (see module doc).

        ``key`` feeds hashing balancers, ``avoid`` holds servers to skip if possible (a
        retry), ``server`` binds the stream to one server (persistence): it waits for that
        server only, unless the server is down or in maintenance, when it is load balanced.
        """
        ticket = Ticket(self, on_granted, on_error, key, avoid, server)
        self._admit(ticket)
        return ticket

    def _admit(self, ticket: Ticket) -> None:
        srv = ticket.bound
        if srv is not None and not srv.available:
            ticket.bound = srv = None  # HAProxy ignores persistence to a down server
        if srv is not None:
            if srv.has_free_slot:
                self._grant(ticket, srv, balanced=False)
            elif srv.maxqueue and srv.qcur >= srv.maxqueue:
                self._fail(ticket, QUEUE_FULL)
            else:
                self._enqueue(ticket)
            return
        chosen, found = self._select(ticket.key, ticket.avoid)
        if chosen is not None:
            self._grant(ticket, chosen, balanced=True)
        elif found is Pick.NONE:
            self._fail(ticket, NO_SERVER)
        else:
            cap = self.capacity()
            if cap is not None and len(self._waiting) >= cap:
                self._fail(ticket, QUEUE_FULL)
            else:
                self._enqueue(ticket)

    def _enqueue(self, ticket: Ticket) -> None:
        self._waiting[ticket] = None
        for c in self._counters(ticket):
            c.qcur += 1
            c.qmax = max(c.qmax, c.qcur)
        timeout = self.backend.proxy.timeouts.effective_queue
        if timeout:
            ticket.timer = self.backend.clock.callLater(timeout / 1000.0, self._expire, ticket)

    def _dequeue(self, ticket: Ticket) -> None:
        if ticket not in self._waiting:
            return  # a redispatched ticket between two servers is in no queue
        del self._waiting[ticket]
        for c in self._counters(ticket):
            c.qcur -= 1
        if ticket.timer is not None:
            if ticket.timer.active():
                ticket.timer.cancel()
            ticket.timer = None

    def _counters(self, ticket: Ticket) -> tuple[LoadCounters, ...]:
        # Waiting streams count on the backend, and on their server when bound to one.
        if ticket.bound is None:
            return (self.backend,)
        return (self.backend, ticket.bound)

    def _grant(self, ticket: Ticket, srv: ServerState, balanced: bool) -> None:
        if ticket in self._waiting:  # (most tickets are granted as they arrive: not queued)
            self._dequeue(ticket)
        ticket.state = TicketState.GRANTED
        ticket.server = srv
        ticket.granted_at = now = self.backend.clock.seconds()
        srv.take_slot(balanced, now)
        ticket._on_granted(srv)

    def _fail(self, ticket: Ticket, reason: QueueError) -> None:
        self._dequeue(ticket)
        ticket.state = TicketState.CLOSED
        ticket.error = reason
        ticket._on_error(reason)

    def _expire(self, ticket: Ticket) -> None:
        ticket.timer = None  # it has fired: nothing to cancel
        if ticket.state is TicketState.WAITING:
            self._fail(ticket, QUEUE_TIMEOUT)

    def fail_all(self, reason: QueueError = NO_SERVER) -> int:
        """Fail every waiting stream (its backend was removed by a reload: 503)."""
        waiting = list(self._waiting)
        for ticket in waiting:
            self._fail(ticket, reason)
        return len(waiting)

    def close(self, ticket: Ticket) -> None:
        """End a ticket whatever its state; a second call does nothing."""
        state = ticket.state
        ticket.state = TicketState.CLOSED
        # A closed ticket calls no one back: dropping the stream's callbacks leaves no
        # reference cycle (stream -> ticket -> stream) for the garbage collector to find.
        ticket._on_granted = ticket._on_error = _closed
        if state is TicketState.WAITING:
            self._dequeue(ticket)
        elif state is TicketState.GRANTED and ticket.server is not None:
            ticket.server.free_slot()
            if self._waiting:  # the freed slot goes to the oldest stream that waits
                self.drain()

    def redispatch(self, ticket: Ticket) -> None:
        """See :meth:`Ticket.redispatch`."""
        failed = ticket.server
        if ticket.state is not TicketState.GRANTED or failed is None:
            return
        failed.note_redispatch()
        ticket.state = TicketState.WAITING  # in flight again, not in the queue yet
        ticket.server = None
        ticket.granted_at = None
        ticket.bound = None  # a redispatch breaks persistence, as in HAProxy
        ticket.avoid = ticket.avoid | {failed}
        failed.free_slot()
        self.drain()
        if ticket.state is TicketState.WAITING:  # a callback above may have cancelled it
            self._admit(ticket)

    def server_changed(self, change: ServerChange) -> None:
        """A server changed: streams bound to a lost server are load balanced, then drain."""
        srv = change.server
        if srv.removed or not srv.available:
            for ticket in self._waiting:
                if ticket.bound is srv:
                    ticket.bound = None
                    srv.qcur -= 1
        self.drain()

    def drain(self) -> None:
        """Grant slots to waiting streams, oldest first, while servers have free slots.

        Re-entrant: a callback that frees a slot or changes a server while we grant makes
        the outer call loop once more instead of nesting.
        """
        if self._draining:
            self._again = True
            return
        self._draining = True
        try:
            self._again = True
            while self._again:
                self._again = False
                while self._grant_next():
                    pass
        finally:
            self._draining = False

    def _grant_next(self) -> bool:
        """Grant the oldest stream that can be served now; False if none can."""
        unbound_blocked = False  # select() failing once means it fails for every key
        for ticket in self._waiting:
            srv = ticket.bound
            if srv is not None:
                if srv.available and srv.has_free_slot:
                    found, balanced = srv, False
                    break
            elif not unbound_blocked:
                chosen, _ = self._select(ticket.key, ticket.avoid)
                if chosen is not None:
                    found, balanced = chosen, True
                    break
                unbound_blocked = True
        else:
            return False
        # Outside the loop: granting mutates the dict and runs the stream's callback.
        self._grant(ticket, found, balanced)
        return True
