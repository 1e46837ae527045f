"""Expected owner, group and mode of backend socket files (udsproxy's server-line extension).

``server app /run/app.sock uid 1000 gid 1000 mode 660`` states what the backend's socket
file should look like. It is checked at start and with every health
check; each change of what is observed is logged once — path, expected, actual — and
never changes the server's state: a wrong owner is a warning, a failing connect is what
takes a server out.
"""

from __future__ import annotations

import os
import stat
from typing import Callable, Dict, Iterable, Optional

from ..config.model import UNIX, Server, SocketPerms


def describe(perms: SocketPerms) -> str:
    """'owner 1000 group 1000 mode 0660' for the fields that are set."""
    parts = []
    if perms.uid is not None:
        parts.append(f"owner {perms.uid}")
    if perms.gid is not None:
        parts.append(f"group {perms.gid}")
    if perms.mode is not None:
        parts.append(f"mode {perms.mode:04o}")
    return " ".join(parts)


def observe(path: str, expected: SocketPerms) -> Optional[str]:
    """None when the file matches; otherwise what was found, for the fields expected."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"not accessible ({os.strerror(exc.errno or 0)})"
    found = []
    if not stat.S_ISSOCK(st.st_mode):
        found.append("not a socket")
    actual = SocketPerms(
        mode=stat.S_IMODE(st.st_mode) if expected.mode is not None else None,
        uid=st.st_uid if expected.uid is not None else None,
        gid=st.st_gid if expected.gid is not None else None,
    )
    if actual != expected:
        found.append(describe(actual))
    return ", ".join(found) or None


class SocketPermsWatch:
    """Checks every server that states expected socket permissions; logs each change once."""

    def __init__(self, servers: Iterable[Server], log: Callable[[str, str], None]) -> None:
        self.servers = [
            s for s in servers if s.address.family == UNIX and not s.expect_perms.is_empty()
        ]
        self.log = log
        self.last: Dict[str, Optional[str]] = {}

    def add(self, server: Server) -> None:
        """Watch a server added at run time (when it states expected permissions)."""
        if server.address.family == UNIX and not server.expect_perms.is_empty():
            self.servers.append(server)
            self.check(server)

    def remove(self, server: Server) -> None:
        """Stop watching a removed server."""
        if server in self.servers:
            self.servers.remove(server)
            self.last.pop(f"{server.name}:{server.address.path}", None)

    def check(self, server: Server) -> Optional[str]:
        """Check one server's socket file; returns the mismatch (None when it matches)."""
        path = server.address.path
        finding = observe(path, server.expect_perms)
        key = f"{server.name}:{path}"
        if key not in self.last and finding is None:
            self.last[key] = None
            return None
        if self.last.get(key, "") != finding:
            self.last[key] = finding
            expected = describe(server.expect_perms)
            if finding is None:
                self.log(
                    f"socket file {path} of server {server.name} now matches: {expected}", "notice"
                )
            else:
                self.log(
                    f"socket file {path} of server {server.name}: expected {expected}, found {finding}",
                    "warning",
                )
        return finding

    def check_all(self) -> None:
        for server in self.servers:
            self.check(server)
