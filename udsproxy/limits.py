"""Accept limits: global and frontend ``maxconn`` pause listeners beyond the limit, resume below.

HAProxy stops accepting when a frontend (or the process) holds ``maxconn`` connections;
waiting clients stay in the kernel's backlog until a connection closes. Here each limit
owns the listeners it may pause; a listener accepts only while every limit over it has
room, so a frontend under its own limit stays paused while the global one is reached.
"""

from __future__ import annotations

from typing import Any, List, Optional


class AcceptLimit:
    """A connection count with an optional ceiling that pauses its listeners when reached."""

    def __init__(self, name: str, maxconn: Optional[int]) -> None:
        self.name = name
        self.maxconn = maxconn or 0  # 0: no limit
        self.current = 0
        self.listeners: List[Any] = []  # objects with pause()/resume()
        self.limits_of: dict[int, List[AcceptLimit]] = {}

    @property
    def full(self) -> bool:
        return bool(self.maxconn) and self.current >= self.maxconn

    def attach(self, listener: Any, limits: List[AcceptLimit]) -> None:
        """Put a listener under this limit; ``limits`` are all the limits over that listener."""
        self.listeners.append(listener)
        self.limits_of[id(listener)] = limits

    def opened(self) -> None:
        self.current += 1
        if self.full:
            for listener in self.listeners:
                listener.pause()

    def closed(self) -> None:
        was_full = self.full
        if self.current > 0:
            self.current -= 1
        if was_full and not self.full:
            for listener in self.listeners:
                if not any(limit.full for limit in self.limits_of[id(listener)]):
                    listener.resume()
