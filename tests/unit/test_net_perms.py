"""Expected socket owner/mode on server lines: observed, logged once per change, never fatal."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from udsproxy.config.model import UNIX, Address, Server, SocketPerms
from udsproxy.net.perms import SocketPermsWatch, observe


def make_socket(path: Path, mode: int) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    os.chmod(path, mode)
    return sock


def test_matching_socket_is_silent(tmp_path: Path) -> None:
    """A socket file with the expected mode and owner produces no log line."""
    path = tmp_path / "a.sock"
    with make_socket(path, 0o660):
        server = Server(
            "a",
            Address(UNIX, path=str(path)),
            expect_perms=SocketPerms(mode=0o660, uid=os.getuid()),
        )
        lines: list[tuple[str, str]] = []
        watch = SocketPermsWatch([server], lambda text, level: lines.append((text, level)))
        watch.check_all()
        assert lines == []


def test_mismatch_is_logged_once_per_change(tmp_path: Path) -> None:
    """A wrong mode is logged with path, expected and actual; again only when it changes."""
    path = tmp_path / "a.sock"
    with make_socket(path, 0o600):
        server = Server("a", Address(UNIX, path=str(path)), expect_perms=SocketPerms(mode=0o660))
        lines: list[tuple[str, str]] = []
        watch = SocketPermsWatch([server], lambda text, level: lines.append((text, level)))
        watch.check_all()
        watch.check_all()
        assert lines == [
            (f"socket file {path} of server a: expected mode 0660, found mode 0600", "warning")
        ]
        os.chmod(path, 0o660)
        watch.check_all()
        assert lines[-1] == (f"socket file {path} of server a now matches: mode 0660", "notice")
        assert len(lines) == 2


def test_missing_file_is_reported(tmp_path: Path) -> None:
    """A missing socket file is a finding, not an exception."""
    assert observe(str(tmp_path / "none.sock"), SocketPerms(mode=0o660)) == (
        "not accessible (No such file or directory)"
    )


def test_regular_file_is_not_a_socket(tmp_path: Path) -> None:
    """A regular file where a socket is expected says so."""
    path = tmp_path / "f"
    path.write_text("")
    os.chmod(path, 0o660)
    assert observe(str(path), SocketPerms(mode=0o660)) == "not a socket"


def test_servers_added_and_removed_at_run_time_are_watched_and_forgotten(tmp_path: Path) -> None:
    """add() checks a new server at once; remove() stops watching it."""
    path = tmp_path / "a.sock"
    with make_socket(path, 0o600):
        server = Server("a", Address(UNIX, path=str(path)), expect_perms=SocketPerms(mode=0o660))
        lines: list[tuple[str, str]] = []
        watch = SocketPermsWatch([], lambda text, level: lines.append((text, level)))
        watch.add(server)
        assert len(lines) == 1 and "expected mode 0660" in lines[0][0]
        watch.remove(server)
        watch.check_all()
        assert len(lines) == 1 and watch.servers == []
