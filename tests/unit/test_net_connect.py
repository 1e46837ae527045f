"""connect() error classification and wording, and its timer/cancel handling on a fake clock."""

from __future__ import annotations

import errno
import os
import socket
from typing import Callable

import pytest
from twisted.internet.defer import CancelledError
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock

from udsproxy.config.model import ABNS, ABNSZ, IPV4, UNIX, Address
from udsproxy.errors import UdsProxyError
from udsproxy.net.connect import (
    ConnectError,
    ConnectKind,
    Identity,
    access_advice,
    access_as,
    classify_errno,
    connect,
    diagnose,
    explain_access_denied,
    first_missing_directory,
    format_connect_message,
    future_identity,
    missing_permission,
)

APP = Address(UNIX, path="/run/x/app.sock")


def test_classify_errno():
    """Each errno maps to its kind; anything else is OTHER."""
    assert classify_errno(errno.ENOENT) == "ENOENT"
    assert classify_errno(errno.ECONNREFUSED) == "ECONNREFUSED"
    assert classify_errno(errno.EAGAIN) == "EAGAIN"
    assert classify_errno(errno.EWOULDBLOCK) == "EAGAIN"
    assert classify_errno(errno.EACCES) == "EACCES"
    assert classify_errno(errno.ENOTSOCK) == "ENOTSOCK"
    assert classify_errno(errno.ETIMEDOUT) == "ETIMEDOUT"
    assert classify_errno(errno.EHOSTUNREACH) == "OTHER"
    assert set(map(classify_errno, range(1, 140))) <= set(ConnectKind)


def test_message_wording():
    """Messages name the address, the reason and the detail in parentheses."""
    assert (
        format_connect_message(
            APP, "EACCES", errno.EACCES, "search permission missing on directory /run/x"
        )
        == "connect to unix@/run/x/app.sock: permission denied [EACCES] "
        "(search permission missing on directory /run/x)"
    )
    assert format_connect_message(APP, "EAGAIN", errno.EAGAIN) == (
        "connect to unix@/run/x/app.sock: resource temporarily unavailable "
        "(the server's listen backlog is full)"
    )
    assert "no process is listening" in format_connect_message(
        APP, "ECONNREFUSED", errno.ECONNREFUSED
    )
    tcp = Address(IPV4, host="10.0.0.1", port=80)
    assert format_connect_message(tcp, "ECONNREFUSED", errno.ECONNREFUSED) == (
        "connect to 10.0.0.1:80: connection refused"
    )
    assert format_connect_message(tcp, "OTHER", errno.EHOSTUNREACH) == (
        "connect to 10.0.0.1:80: no route to host [EHOSTUNREACH]"
    )


def test_connect_error_fields():
    """ConnectError is a UdsProxyError carrying kind, errno, address and message."""
    err = ConnectError("ENOENT", errno.ENOENT, APP, "the text")
    assert isinstance(err, UdsProxyError)
    assert (err.kind, err.errno, err.address, str(err)) == ("ENOENT", 2, APP, "the text")


def test_access_explanation_directory_search():
    """The outermost directory without search permission is named."""
    denied = {"/run/x"}

    def access(path: str, mode: int) -> bool:
        return not (path in denied and mode == os.X_OK)

    assert explain_access_denied("/run/x/app.sock", creating=False, access=access) == (
        "search permission missing on directory /run/x"
    )


def test_access_explanation_file_and_directory_write():
    """connect needs write on the socket file; bind needs write on its directory."""

    def no_write(path: str, mode: int) -> bool:
        return mode != os.W_OK

    assert explain_access_denied("/run/x/app.sock", creating=False, access=no_write) == (
        "no write permission on socket file /run/x/app.sock"
    )
    assert explain_access_denied("/run/x/app.sock", creating=True, access=no_write) == (
        "no write permission on directory /run/x"
    )
    assert "ACL or LSM" in explain_access_denied(
        "/run/x/app.sock", creating=False, access=lambda p, m: True
    )


def test_first_missing_directory(tmp_path):
    """The outermost missing ancestor is found; None when all exist."""
    assert first_missing_directory(str(tmp_path / "a" / "b" / "c.sock")) == str(tmp_path / "a")
    assert first_missing_directory(str(tmp_path / "c.sock")) is None


def test_diagnose_regular_file_is_enotsock(tmp_path):
    """Linux's ECONNREFUSED on a non-socket file becomes ENOTSOCK with the file's type."""
    path = tmp_path / "plain"
    path.write_text("")
    kind, code, detail = diagnose(Address(UNIX, path=str(path)), errno.ECONNREFUSED)
    assert (kind, code) == ("ENOTSOCK", errno.ENOTSOCK)
    assert detail == f"{path} is a regular file"
    kind, _, detail = diagnose(Address(UNIX, path=str(tmp_path)), errno.ECONNREFUSED)
    assert kind == "ENOTSOCK" and detail.endswith("is a directory")


def test_diagnose_abstract_mismatch_hint():
    """A refused abstract name hints at the padded/tight mismatch."""
    assert "abnsz@" in diagnose(Address(ABNS, path="n"), errno.ECONNREFUSED)[2]
    assert "abns@" in diagnose(Address(ABNSZ, path="n"), errno.ECONNREFUSED)[2]


@pytest.fixture
def tcp_server():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    yield Address(IPV4, host="127.0.0.1", port=server.getsockname()[1])
    server.close()


def test_timeout_fires_on_the_clock(tcp_server):
    """With the writer never reported, the timer fails the connect with ETIMEDOUT."""
    clock = MemoryReactorClock()
    d = connect(clock, tcp_server, Protocol, 150)
    assert len(clock.getWriters()) == 1
    errors: list = []
    d.addErrback(errors.append)
    clock.advance(0.149)
    assert errors == []
    clock.advance(0.002)
    assert errors[0].value.kind == "ETIMEDOUT"
    assert str(errors[0].value) == (
        f"connect to {tcp_server}: connection timed out (no answer within 150 ms)"
    )
    assert clock.getWriters() == [] and clock.getDelayedCalls() == []


def test_cancel_leaves_no_writer_or_timer(tcp_server):
    """Cancelling removes the writer and the timer and fails with CancelledError."""
    clock = MemoryReactorClock()
    d = connect(clock, tcp_server, Protocol, 1000)
    d.cancel()
    errors: list = []
    d.addErrback(errors.append)
    assert errors[0].check(CancelledError)
    assert clock.getWriters() == [] and clock.getDelayedCalls() == []


def test_no_timeout_means_no_timer(tcp_server):
    """timeout_ms None (or 0) schedules nothing."""
    for timeout in (None, 0):
        clock = MemoryReactorClock()
        d = connect(clock, tcp_server, Protocol, timeout)
        assert clock.getDelayedCalls() == []
        d.cancel()
        d.addErrback(lambda f: None)


APPUSER = Identity(999, "udsproxy", (999,), ("udsproxy",))


def fake_stat(uid: int, gid: int, mode: int) -> Callable[[str], os.stat_result]:
    return lambda path: os.stat_result((mode, 0, 0, 1, uid, gid, 0, 0, 0, 0))


def no_write(path: str, mode: int) -> bool:
    return mode != os.W_OK


def test_eacces_advice_names_user_owner_mode_and_fix() -> None:
    """A socket of root:root 0644: the user and groups we run as, its owner and mode, the fix."""
    text = access_advice(
        "/run/x/app.sock", access=no_write, stat_path=fake_stat(0, 0, 0o140644), who=APPUSER
    )
    assert text == (
        "no write permission on socket file /run/x/app.sock (owner root, group root, mode 0644)"
        " for user udsproxy (uid 999, groups udsproxy); fix: add user udsproxy to group root"
        " and set the server's socket mode to 0660"
    )


def test_eacces_advice_group_writable_socket_needs_only_the_group() -> None:
    """A group-writable socket of another group: joining the group is the whole fix."""
    text = access_advice(
        "/run/x/app.sock", access=no_write, stat_path=fake_stat(0, 0, 0o140660), who=APPUSER
    )
    assert text.endswith("fix: add user udsproxy to group root, then restart udsproxy")


def test_eacces_advice_member_of_the_group_needs_the_mode() -> None:
    """Already in the socket's group, which lacks write: the mode is the fix."""
    text = access_advice(
        "/run/x/app.sock", access=no_write, stat_path=fake_stat(0, 999, 0o140644), who=APPUSER
    )
    assert text.endswith(
        "fix: set the server's socket mode to 0660 (group udsproxy lacks write permission)"
    )


def test_eacces_advice_for_a_directory_without_search_permission() -> None:
    """The directory lacking search permission is named with its owner and mode and its fix."""

    def access(path: str, mode: int) -> bool:
        return not (path == "/run/x" and mode == os.X_OK)

    text = access_advice(
        "/run/x/app.sock", access=access, stat_path=fake_stat(0, 0, 0o40750), who=APPUSER
    )
    assert text.startswith(
        "search permission missing on directory /run/x (owner root, group root, mode 0750)"
    )
    assert text.endswith("fix: add user udsproxy to group root, then restart udsproxy")


@pytest.mark.parametrize(
    ("uid", "gid", "mode", "wanted", "allowed"),
    [
        (999, 0, 0o140600, os.W_OK, True),  # owner: the owner class, even if others could not
        (999, 0, 0o140066, os.W_OK, False),  # owner without the bit: the group's does not count
        (0, 999, 0o140620, os.W_OK, True),  # a group of ours
        (0, 5, 0o140662, os.W_OK, True),  # others
        (0, 5, 0o140664, os.W_OK, False),
        (0, 0, 0o40751, os.X_OK, True),  # a directory others may search
        (0, 0, 0o40750, os.X_OK, False),
        (0, 0, 0o40753, os.W_OK | os.X_OK, True),
    ],
)
def test_access_as_another_user_follows_the_kernels_class(
    uid: int, gid: int, mode: int, wanted: int, allowed: bool
) -> None:
    """access_as picks the owner, group or others bits as the kernel does for that user."""
    access = access_as(APPUSER, stat_path=fake_stat(uid, gid, mode))
    assert access("/run/x/app.sock", wanted) is allowed


def test_access_as_root_and_a_missing_path() -> None:
    """Root passes the mode checks; a path that cannot be stat-ed is not accessible."""
    root = Identity(0, "root", (0,), ("root",))
    assert access_as(root, stat_path=fake_stat(5, 5, 0o140000))("/run/x/app.sock", os.W_OK)

    def missing(path: str) -> os.stat_result:
        raise FileNotFoundError(path)

    assert not access_as(APPUSER, stat_path=missing)("/run/x/app.sock", os.W_OK)


def test_missing_permission_names_what_lacks_it() -> None:
    """The text and the path lacking the permission; None when the modes allow it."""
    assert missing_permission("/run/x/app.sock", False, no_write) == (
        "no write permission on socket file /run/x/app.sock",
        "/run/x/app.sock",
    )
    assert missing_permission("/run/x/app.sock", True, no_write) == (
        "no write permission on directory /run/x",
        "/run/x",
    )
    assert missing_permission("/run/x/app.sock", False, lambda p, m: True) is None


def test_future_identity_without_a_user_has_no_supplementary_group() -> None:
    """A numeric uid (no user name) gets its gid only, as privileges.drop_privileges does."""
    who = future_identity(65534, 65534, None)
    assert (who.uid, who.gids) == (65534, (65534,))
