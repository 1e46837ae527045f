"""Privilege drop: when udsproxy applies the config's user/group, and what it refuses."""

from __future__ import annotations

import os
import pwd
from typing import Any, List, Optional

import pytest

from udsproxy.privileges import OsIds, PrivilegeError, drop_privileges, twistd_sets_ids


class FakeIds:
    """A process identity in memory: starts as root with root's groups; records each call."""

    def __init__(self, passwd: Optional[dict[int, int]] = None, fail: str = "") -> None:
        self.uid, self.gid, self.groups = 0, 0, [0, 1, 4]
        self.passwd = passwd or {}
        self.fail = fail
        self.calls: List[Any] = []

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if name == self.fail:
            raise PermissionError(1, "Operation not permitted")

    def setgroups(self, groups: List[int]) -> None:
        self._call("setgroups", groups)
        self.groups = list(groups)

    def initgroups(self, user: str, gid: int) -> None:
        self._call("initgroups", user, gid)
        self.groups = [gid, 100]

    def setgid(self, gid: int) -> None:
        self._call("setgid", gid)
        self.gid = gid

    def setuid(self, uid: int) -> None:
        self._call("setuid", uid)
        self.uid = uid

    def getpwuid(self, uid: int) -> pwd.struct_passwd:
        if uid not in self.passwd:
            raise KeyError(uid)
        return pwd.struct_passwd(("u", "x", uid, self.passwd[uid], "", "/", "/bin/sh"))

    def os_ids(self) -> OsIds:
        return OsIds(
            getuid=lambda: self.uid,
            getgid=lambda: self.gid,
            getgroups=lambda: list(self.groups),
            setuid=self.setuid,
            setgid=self.setgid,
            setgroups=self.setgroups,
            initgroups=self.initgroups,
            getpwuid=self.getpwuid,
        )


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
            ok = os.getuid() == 65534 and os.getgid() == 65534 and os.getgroups() == []
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_uid_without_passwd_entry_and_no_gid_is_refused() -> None:
    """A passwd-less uid without gid stops start-up instead of keeping gid 0 and root's groups."""
    fake = FakeIds()
    with pytest.raises(PrivilegeError, match="set 'gid <n>'"):
        drop_privileges(4242, None, None, lambda _: None, fake.os_ids())
    assert fake.calls == []


def test_uid_without_passwd_entry_with_gid_clears_groups() -> None:
    """With a gid, a passwd-less uid drops every supplementary group, then gid, then uid."""
    fake = FakeIds()
    logged: list[str] = []
    drop_privileges(4242, 4343, None, logged.append, fake.os_ids())
    assert fake.calls == [("setgroups", []), ("setgid", 4343), ("setuid", 4242)]
    assert (fake.uid, fake.gid, fake.groups) == (4242, 4343, [])
    assert logged == ["dropped privileges to uid=4242 gid=4343 groups=[]"]


def test_numeric_uid_takes_its_passwd_group_and_no_supplementary_groups() -> None:
    """A numeric uid without gid gets its passwd primary group; root's groups are dropped."""
    fake = FakeIds(passwd={1000: 1001})
    drop_privileges(1000, None, None, lambda _: None, fake.os_ids())
    assert fake.calls == [("setgroups", []), ("setgid", 1001), ("setuid", 1000)]


def test_named_user_gets_its_groups_through_initgroups() -> None:
    """'user name' takes that user's supplementary groups (initgroups), never root's."""
    fake = FakeIds(passwd={1000: 1001})
    drop_privileges(1000, None, "www", lambda _: None, fake.os_ids())
    assert fake.calls == [("initgroups", "www", 1001), ("setgid", 1001), ("setuid", 1000)]
    assert 0 not in fake.groups


def test_gid_only_still_clears_supplementary_groups() -> None:
    """'group' alone changes the gid and drops root's supplementary groups (uid stays)."""
    fake = FakeIds()
    drop_privileges(None, 50, None, lambda _: None, fake.os_ids())
    assert fake.calls == [("setgroups", []), ("setgid", 50)]
    assert fake.groups == []


def test_current_uid_without_passwd_entry_is_a_no_op() -> None:
    """Started as the configured passwd-less uid (a container's random uid): nothing to do."""
    fake = FakeIds()
    fake.uid, fake.gid = 4242, 4242
    drop_privileges(4242, None, None, lambda _: None, fake.os_ids())
    assert fake.calls == []


def test_failing_setgroups_is_a_privilege_error() -> None:
    """A refused setgroups stops the drop before any id changes."""
    fake = FakeIds(fail="setgroups")
    with pytest.raises(PrivilegeError, match="cannot drop privileges to uid=4242 gid=7"):
        drop_privileges(4242, 7, None, lambda _: None, fake.os_ids())
    assert (fake.uid, fake.gid) == (0, 0)
