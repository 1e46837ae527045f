"""Flow control: one reader pause with several reasons, usable as the other side's producer.

Twisted's ``pauseProducing``/``resumeProducing`` on a transport are not counted: a resume
for one reason would undo a pause for another. A :class:`ReadGate` keeps the set of
reasons a connection must not be read (the peer's write buffer is full, a pipelined
request waits its turn, bytes are held before a server is connected) and reads again only
when none is left. Registered as the *other* transport's producer, the gate is how a slow
reader on one side stops the fast writer on the other: memory stays bounded.
"""

from __future__ import annotations

from typing import Any, Dict, List, Set

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

PEER = "peer"  # the other side's write buffer is full
PIPELINE = "pipeline"  # a next request waits while the current one is answered
OUTPUT = "output"  # the client has not read what was written to it
NONE: Set[str] = set()  # shared by every gate never held: never added to


@implementer(IPushProducer)
class ReadGate:
    """Pauses reading ``transport`` while any reason holds."""

    __slots__ = ("transport", "reasons")

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        # NONE until a first hold (most connections never are): one set less each.
        self.reasons: Set[str] = NONE

    @property
    def paused(self) -> bool:
        return bool(self.reasons)

    def hold(self, reason: str) -> None:
        if not self.reasons:
            self.transport.pauseProducing()
            if self.reasons is NONE:
                self.reasons = set()
        self.reasons.add(reason)

    def release(self, reason: str) -> None:
        if reason in self.reasons:
            self.reasons.discard(reason)
            if not self.reasons:
                self.transport.resumeProducing()

    # IPushProducer, called by the other side's transport
    def pauseProducing(self) -> None:
        self.hold(PEER)

    def resumeProducing(self) -> None:
        self.release(PEER)

    def stopProducing(self) -> None:
        pass  # the other side is gone: its owner ends the exchange


# Bytes of a transport's held writes beyond which they are written at once (HAProxy's
# 16 KiB buffer): a hold never keeps more than this back.
HOLD_LIMIT = 16384


class WriteBatch:
    """Writes made while a read is handled, coalesced into one write per transport.

    One server read often yields a response head, a body chunk and the end of the
    message: three h11 events, three writes. Sent at once one by one (see
    ``net.connect._WriteNow``) they would be three packets, and on a TCP client with
    Nagle's algorithm the second waits for a delayed ACK (40 ms). Inside a batch
    (``with BATCH:`` around ``dataReceived``) writes are held per transport, in order, and
    written together when the outermost batch ends; outside one they go straight through,
    so a write from a timer or a callback is never held.

    A transport may also be *held* across batches (:meth:`hold`, :meth:`release`): the
    responses to a client's pipelined requests, each answered in its own reactor turn,
    leave in one write when the last one is answered instead of one small write each.
    What is held is a copy (a view of the read buffer would not outlive its read), never
    more than :data:`HOLD_LIMIT` bytes, and in order with everything else written to the
    transport: all of HTTP mode's writes to a client come through here.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.pending: Dict[Any, List[bytes]] = {}
        self.held: Dict[Any, bytearray] = {}

    def write(self, transport: Any, data: bytes) -> None:
        if self.held:
            held = self.held.get(transport)
            if held is not None:
                held += data
                if len(held) >= HOLD_LIMIT:
                    self.held[transport] = bytearray()
                    self._write(transport, bytes(held))
                return
        self._write(transport, data)

    def _write(self, transport: Any, data: bytes) -> None:
        if not self.depth:
            transport.write(data)
            return
        held = self.pending.get(transport)
        if held is None:
            self.pending[transport] = [data]
        else:
            held.append(data)

    def hold(self, transport: Any) -> None:
        """Keep what is written to ``transport`` from now on (and what this batch holds
        for it already) until :meth:`release`, :meth:`flush` or :meth:`discard`."""
        if transport not in self.held:
            buf = bytearray()
            for data in self.pending.pop(transport, ()):
                buf += data
            self.held[transport] = buf

    def release(self, transport: Any) -> None:
        """Stop holding ``transport``: what was held is written (in this batch, if any)."""
        held = self.held.pop(transport, None)
        if held:
            self._write(transport, bytes(held))

    def flush(self, transport: Any) -> None:
        """Write what is held for ``transport`` now (before closing it)."""
        self.release(transport)
        held = self.pending.pop(transport, None)
        if held:
            transport.write(b"".join(held))

    def discard(self, transport: Any) -> None:
        """Drop what is held for ``transport`` (it is aborted or gone)."""
        self.pending.pop(transport, None)
        self.held.pop(transport, None)

    def __enter__(self) -> WriteBatch:
        self.depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        if not self.depth and self.pending:
            pending, self.pending = self.pending, {}
            for transport, held in pending.items():
                transport.write(held[0] if len(held) == 1 else b"".join(held))


# The reactor runs on one thread: one batch serves every connection of the process.
BATCH = WriteBatch()
