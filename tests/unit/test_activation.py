"""Socket activation: LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES, adoption by name and by address."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest

from udsproxy.config.address import parse_address
from udsproxy.config.model import SYSTEMD, Address
from udsproxy.errors import BindError, ConfigError
from udsproxy.net.activation import Activation, Inherited, listen_fds


def test_listen_fds_are_ours_only_for_our_pid() -> None:
    """fd 3 on, named from LISTEN_FDNAMES; another LISTEN_PID or garbage: nothing."""
    env = {"LISTEN_PID": "42", "LISTEN_FDS": "3", "LISTEN_FDNAMES": "web::admin"}
    assert listen_fds(env, 42) == [
        Inherited(3, "web"),
        Inherited(4, "unknown"),
        Inherited(5, "admin"),
    ]
    assert listen_fds(env, 43) == []
    assert listen_fds({"LISTEN_PID": "42", "LISTEN_FDS": "x"}, 42) == []
    assert listen_fds({}, 42) == []


def test_systemd_at_parses_on_bind_lines_only() -> None:
    """bind systemd@name names an inherited socket; a server line cannot use it."""
    assert parse_address("systemd@web", for_bind=True) == [Address(SYSTEMD, path="web")]
    with pytest.raises(ConfigError):
        parse_address("systemd@web", for_bind=False)
    with pytest.raises(ConfigError):
        parse_address("systemd@", for_bind=True)


def listening(path: str) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(8)
    return sock.detach()


def test_adopt_by_name_and_by_address_without_touching_the_file(tmp_path: Any) -> None:
    """Adopted sockets are marked inherited (never unlinked) and keep their file mode."""
    web, other = str(tmp_path / "web.sock"), str(tmp_path / "other.sock")
    fds = [listening(web), listening(other)]
    os.chmod(other, 0o600)
    activation = Activation([Inherited(fds[0], "web"), Inherited(fds[1], "x")])
    by_name = activation.take(Address(SYSTEMD, path="web"))
    assert by_name is not None and by_name.inherited and by_name.identity is None
    assert activation.take(Address("unix", path=str(tmp_path / "nope.sock"))) is None
    by_address = activation.take(Address("unix", path=other))
    assert by_address is not None and by_address.inherited
    assert os.stat(other).st_mode & 0o777 == 0o600
    with pytest.raises(BindError, match="no inherited socket named 'web'"):
        activation.take(Address(SYSTEMD, path="web"))  # already adopted
    by_name.sock.close()
    by_address.sock.close()
