"""Flow control: one reader pause with several reasons, usable as the other side's producer.

Twisted's ``pauseProducing``/``resumeProducing`` on a transport are not counted: a resume
for one reason would undo a pause for another. A :class:`ReadGate` keeps the set of
reasons a connection must not be read (the peer's write buffer is full, a pipelined
request waits its turn, bytes are held before a server is connected) and reads again only
when none is left. Registered as the *other* transport's producer, the gate is how a slow
reader on one side stops the fast writer on the other: memory stays bounded.
"""

from __future__ import annotations

from typing import Any, Set

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

PEER = "peer"  # the other side's write buffer is full


@implementer(IPushProducer)
class ReadGate:
    """Pauses reading ``transport`` while any reason holds."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.reasons: Set[str] = set()

    @property
    def paused(self) -> bool:
        return bool(self.reasons)

    def hold(self, reason: str) -> None:
        if not self.reasons:
            self.transport.pauseProducing()
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
