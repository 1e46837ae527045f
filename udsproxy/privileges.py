"""Dropping root after binding: global ``user``/``group``/``uid``/``gid``, applied by udsproxy.

twistd applies only its own ``-u/-g`` (for a plugin it never sees the config), so when the
config names a user or group and twistd was not given ``-u``/``-g``, the service drops
privileges itself between ``privilegedStartService`` (all binding) and ``startService``.

What a drop changes, in this order (supplementary groups can only be changed while root):

1. supplementary groups: ``initgroups(user, gid)`` when the config names a ``user``
   (the groups /etc/group gives that user), else ``setgroups([])`` — root's own
   supplementary groups (often 0 and others) are never kept;
2. ``setgid(gid)``;
3. ``setuid(uid)``.

A numeric ``uid`` with no passwd entry and no ``gid`` is refused (PrivilegeError). HAProxy
keeps the starting gid in that case — for a process started as root, gid 0 — which leaves
the proxy able to read and write every root-group file; we would rather not start and ask
for an explicit ``gid``.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from typing import Callable, List, NamedTuple, Optional, Sequence

from .errors import UdsProxyError


class PrivilegeError(UdsProxyError):
    """The configured user/group could not be applied; running on as root would be unsafe."""


@dataclass
class OsIds:
    """The process-identity calls, injectable so unit tests never really change ids."""

    getuid: Callable[[], int] = os.getuid
    getgid: Callable[[], int] = os.getgid
    getgroups: Callable[[], List[int]] = os.getgroups
    setuid: Callable[[int], None] = os.setuid
    setgid: Callable[[int], None] = os.setgid
    setgroups: Callable[[List[int]], None] = os.setgroups
    initgroups: Callable[[str, int], None] = os.initgroups
    getpwuid: Callable[[int], pwd.struct_passwd] = pwd.getpwuid


class DropPlan(NamedTuple):
    """What a drop will do: target ids, and whose groups become the supplementary ones."""

    uid: Optional[int]
    gid: Optional[int]
    groups_of: Optional[str]  # initgroups() for this user; None: setgroups([])


def twistd_sets_ids(argv: Sequence[str], plugin: str = "udsproxy") -> bool:
    """True when twistd's own -u/--uid or -g/--gid come before the plugin name in argv."""
    for arg in argv[1:]:
        if arg == plugin:
            return False
        if arg.startswith(("--uid", "--gid")):
            return True
        # short flags, alone or clustered (-nu 1000); values of other flags are separate words
        if arg.startswith("-") and not arg.startswith("--") and arg[1:].isalpha():
            if "u" in arg[1:] or "g" in arg[1:]:
                return True
    return False


def plan_drop(
    uid: Optional[int],
    gid: Optional[int],
    user: Optional[str],
    getpwuid: Callable[[int], pwd.struct_passwd] = pwd.getpwuid,
) -> DropPlan:
    """Resolve the target ids; PrivilegeError for a passwd-less uid without ``gid``."""
    if uid is not None and gid is None:
        try:
            gid = getpwuid(uid).pw_gid
        except KeyError:
            raise PrivilegeError(
                f"uid {uid} has no passwd entry, so its group is unknown; set 'gid <n>' "
                "(or 'group <name>') in the global section: udsproxy will not keep the "
                "group it was started with (root's gid 0)"
            ) from None
    return DropPlan(uid, gid, user if uid is not None else None)


def drop_privileges(
    uid: Optional[int],
    gid: Optional[int],
    user: Optional[str],
    log: Callable[[str], None],
    ids: Optional[OsIds] = None,
) -> None:
    """Supplementary groups, setgid, setuid; PrivilegeError when the target is not reached."""
    if uid is None and gid is None:
        return
    ids = ids or OsIds()
    current_uid, current_gid = ids.getuid(), ids.getgid()
    if (uid is None or uid == current_uid) and (gid is None or gid == current_gid):
        return  # already there: a non-root start as the configured user (or root as uid 0)
    plan = plan_drop(uid, gid, user, ids.getpwuid)
    if (plan.uid is None or plan.uid == current_uid) and plan.gid == current_gid:
        return
    try:
        if plan.groups_of is not None and plan.gid is not None:
            ids.initgroups(plan.groups_of, plan.gid)
        else:
            ids.setgroups([])
        if plan.gid is not None and plan.gid != current_gid:
            ids.setgid(plan.gid)
        if plan.uid is not None and plan.uid != current_uid:
            ids.setuid(plan.uid)
    except OSError as exc:
        raise PrivilegeError(
            f"cannot drop privileges to uid={plan.uid} gid={plan.gid}: {exc.strerror}; "
            "refusing to run with the privileges udsproxy was started with "
            "(start it as root, or remove user/group from the global section)"
        ) from None
    if plan.uid is not None and ids.getuid() != plan.uid:
        raise PrivilegeError(f"uid is still {ids.getuid()} after setuid({plan.uid})")
    if plan.gid is not None and ids.getgid() != plan.gid:
        raise PrivilegeError(f"gid is still {ids.getgid()} after setgid({plan.gid})")
    groups = ids.getgroups()
    if plan.groups_of is None and groups not in ([], [plan.gid]):
        raise PrivilegeError(f"supplementary groups are still {groups} after setgroups([])")
    log(f"dropped privileges to uid={ids.getuid()} gid={ids.getgid()} groups={groups}")
