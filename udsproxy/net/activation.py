"""Socket activation: listening sockets inherited from systemd (``LISTEN_FDS``) or a parent.

systemd passes ``LISTEN_FDS`` descriptors from fd 3 on, ``LISTEN_PID`` (they are ours only
when it is our pid) and ``LISTEN_FDNAMES`` (``FileDescriptorName=`` of the socket unit,
colon-separated). A ``bind`` line adopts one of them when it says ``systemd@<name>``, or
when its address equals an inherited socket's address (``bind /run/udsproxy/web.sock``
under a ``.socket`` unit with ``ListenStream=/run/udsproxy/web.sock``). ``bind fd@N``
adopts any inherited descriptor by number (net.listen). Inherited sockets are never
chmod-ed, chowned, re-listened or unlinked: their owner is the process manager.
"""

from __future__ import annotations

import os
import socket
from typing import Dict, List, Mapping, NamedTuple, Optional

from ..config.model import Address
from ..errors import BindError
from .listen import BoundSocket

SD_LISTEN_FDS_START = 3


class Inherited(NamedTuple):
    """One descriptor passed by systemd, and its name."""

    fd: int
    name: str


def listen_fds(environ: Mapping[str, str], pid: int) -> List[Inherited]:
    """The descriptors ``environ`` says we inherited (none if LISTEN_PID is not ``pid``)."""
    try:
        if int(environ.get("LISTEN_PID", "")) != pid:
            return []
        count = int(environ.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    names = environ.get("LISTEN_FDNAMES", "").split(":") if environ.get("LISTEN_FDNAMES") else []
    out: List[Inherited] = []
    for i in range(max(0, count)):
        name = names[i] if i < len(names) and names[i] else "unknown"
        out.append(Inherited(SD_LISTEN_FDS_START + i, name))
    return out


def same_address(address: Address, sockname: object) -> bool:
    """Whether a bind ``address`` names the socket bound at ``sockname``."""
    if not isinstance(address, Address) or address.family in ("fd", "systemd"):
        return False
    want = address.sockaddr()
    if isinstance(want, tuple) and isinstance(sockname, tuple):
        return tuple(want[:2]) == tuple(sockname[:2])
    if isinstance(want, str) and isinstance(sockname, str):
        return os.path.abspath(want) == os.path.abspath(sockname)
    return want == sockname


class Activation:
    """The inherited listening sockets not adopted yet, by name and by address."""

    def __init__(self, inherited: List[Inherited]) -> None:
        self.sockets: Dict[int, socket.socket] = {}
        self.names: Dict[int, str] = {}
        for item in inherited:
            try:
                sock = socket.socket(fileno=item.fd)
            except OSError:
                continue  # not open or not a socket: the manager's mistake, not fatal here
            self.sockets[item.fd] = sock
            self.names[item.fd] = item.name

    @classmethod
    def from_environ(cls, environ: Optional[Mapping[str, str]] = None) -> Activation:
        env = os.environ if environ is None else environ
        return cls(listen_fds(env, os.getpid()))

    def take(self, address: Address) -> Optional[BoundSocket]:
        """The inherited socket ``address`` names (``systemd@name`` or an equal address),
        removed from the pool; None if there is none. BindError: a name not passed."""
        if address.family == "systemd":
            for fd, name in self.names.items():
                if name == address.path:
                    return self._adopt(fd)
            passed = ", ".join(sorted(set(self.names.values()))) or "none"
            raise BindError(
                f"cannot bind {address}: no inherited socket named '{address.path}' "
                f"(LISTEN_FDNAMES: {passed}); set FileDescriptorName={address.path} in the "
                ".socket unit",
                None,
            )
        for fd, sock in self.sockets.items():
            try:
                name = sock.getsockname()
            except OSError:
                continue
            if same_address(address, name):
                return self._adopt(fd)
        return None

    def _adopt(self, fd: int) -> BoundSocket:
        sock = self.sockets.pop(fd)
        del self.names[fd]
        sock.setblocking(False)
        return BoundSocket(sock, None, True)
