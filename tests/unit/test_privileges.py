"""Privilege drop: when udsproxy applies the config's user/group, and what it refuses."""

from __future__ import annotations

import os

import pytest

from udsproxy.privileges import PrivilegeError, drop_privileges, twistd_sets_ids


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["twistd", "-n", "udsproxy", "--config", "x"], False),
        (["twistd", "-n", "-u", "1000", "udsproxy"], True),
        (["twistd", "-nu", "1000", "udsproxy"], True),
        (["twistd", "--uid=1000", "udsproxy"], True),
        (["twistd", "-g", "10", "udsproxy"], True),
        (["twistd", "-n", "udsproxy", "-u", "x"], False),
        (["twistd", "--logfile", "/tmp/gu.log", "udsproxy"], False),
    ],
)
def test_twistd_sets_ids(argv: list[str], expected: bool) -> None:
    """Only twistd's own -u/-g before the plugin name count."""
    assert twistd_sets_ids(argv) is expected


def test_no_user_is_a_no_op() -> None:
    """Without user/group nothing changes and nothing is logged."""
    logged: list[str] = []
    drop_privileges(None, None, None, logged.append)
    assert logged == []


def test_same_ids_are_a_no_op() -> None:
    """Asking for the ids we already have changes nothing."""
    logged: list[str] = []
    drop_privileges(os.getuid(), os.getgid(), None, logged.append)
    assert logged == []


@pytest.mark.skipif(os.getuid() == 0, reason="as root the drop would succeed")
def test_non_root_cannot_become_another_user() -> None:
    """A non-root process asked to become another uid fails loudly instead of running on."""
    with pytest.raises(PrivilegeError, match="cannot drop privileges"):
        drop_privileges(os.getuid() + 1, None, None, lambda _: None)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root")
def test_root_drops_to_nobody_in_a_child() -> None:
    """As root, the drop really changes uid and gid (checked in a forked child)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            drop_privileges(65534, 65534, None, lambda _: None)
            ok = os.getuid() == 65534 and os.getgid() == 65534 and os.getgroups() == [65534]
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
