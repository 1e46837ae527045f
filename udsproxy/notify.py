"""sd_notify: telling systemd (``Type=notify``) when the proxy is ready, reloading, stopping.

When ``NOTIFY_SOCKET`` is set, each state change is one datagram of ``KEY=value`` lines to
that unix datagram socket (``sd_notify(3)``):

- ``READY=1`` once every listener accepts (and again after each reload, failed or not);
- ``RELOADING=1`` with ``MONOTONIC_USEC=`` (CLOCK_MONOTONIC in microseconds, which
  ``Type=notify-reload`` requires) when a reload starts;
- ``STOPPING=1`` when a graceful stop starts;
- ``STATUS=`` a line ``systemctl status`` shows (``reload failed: …`` after a failed one).

A ``NOTIFY_SOCKET`` starting with ``@`` names an abstract socket, addressed with its exact
length (systemd's form, not HAProxy's padded ``abns@``). Without ``NOTIFY_SOCKET`` nothing
is sent. A send that fails is logged once and never stops the proxy.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Callable, List, Mapping, Optional, Union

from twisted.logger import Logger

log = Logger(namespace="udsproxy.notify")

NotifyAddress = Union[str, bytes]


def notify_address(value: Optional[str]) -> Optional[NotifyAddress]:
    """``NOTIFY_SOCKET`` as a socket address: a path, or ``@name`` -> abstract ``\\0name``."""
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # vsock: and other forms systemd may pass to VMs: not ours


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, as ``MONOTONIC_USEC=`` wants it."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def one_line(text: str) -> str:
    """A STATUS= value: one line (a newline would start another field)."""
    return " ".join(text.split())


class Notifier:
    """Sends sd_notify messages to one address (None: sends nothing)."""

    def __init__(
        self, address: Optional[NotifyAddress], clock: Callable[[], int] = monotonic_usec
    ) -> None:
        self.address = address
        self.clock = clock
        self.sent: List[str] = []  # every message, for tests and for ``show info`` later
        self._sock: Optional[socket.socket] = None
        self._warned = False

    @classmethod
    def from_environ(cls, environ: Optional[Mapping[str, str]] = None) -> Notifier:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET")
        address = notify_address(raw)
        if raw and address is None:
            log.warn("NOTIFY_SOCKET={raw!r} is not a unix socket: not notifying", raw=raw)
        return cls(address)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> None:
        """One datagram of ``KEY=value`` lines."""
        if self.address is None:
            return
        message = "\n".join(fields)
        self.sent.append(message)
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(message.encode(), self.address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warn(
                    "sd_notify to NOTIFY_SOCKET failed: {error}; the process manager may "
                    "not see this state change",
                    error=exc,
                )

    def ready(self, status: str = "") -> None:
        self.send("READY=1", *((f"STATUS={one_line(status)}",) if status else ()))

    def reloading(self) -> None:
        self.send("RELOADING=1", f"MONOTONIC_USEC={self.clock()}", "STATUS=reloading")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping gracefully")

    def status(self, text: str) -> None:
        self.send(f"STATUS={one_line(text)}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
