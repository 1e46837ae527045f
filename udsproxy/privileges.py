"""Dropping root after binding: global ``user``/``group``/``uid``/``gid``, applied by udsproxy.

twistd applies only its own ``-u/-g`` (for a plugin it never sees the config), so when the
config names a user or group and twistd was not given ``-u``/``-g``, the service drops
privileges itself between ``privilegedStartService`` (all binding) and ``startService``.
"""

from __future__ import annotations

import os
import pwd
from typing import Callable, Optional, Sequence

from .errors import UdsProxyError


class PrivilegeError(UdsProxyError):
    """The configured user/group could not be applied; running on as root would be unsafe."""


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


def drop_privileges(
    uid: Optional[int],
    gid: Optional[int],
    user: Optional[str],
    log: Callable[[str], None],
) -> None:
    """setgid, initgroups, setuid; raise PrivilegeError when root cannot become the target."""
    if uid is None and gid is None:
        return
    if gid is None and uid is not None:
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            gid = None
    current_uid, current_gid = os.getuid(), os.getgid()
    if (uid is None or uid == current_uid) and (gid is None or gid == current_gid):
        return
    try:
        if gid is not None and gid != current_gid:
            if user is not None:
                os.initgroups(user, gid)
            else:
                os.setgroups([gid])
            os.setgid(gid)
        if uid is not None and uid != current_uid:
            os.setuid(uid)
    except OSError as exc:
        raise PrivilegeError(
            f"cannot drop privileges to uid={uid} gid={gid}: {exc.strerror}; "
            "refusing to run with the privileges udsproxy was started with "
            "(start it as root, or remove user/group from the global section)"
        ) from None
    if uid is not None and os.getuid() != uid:
        raise PrivilegeError(f"uid is still {os.getuid()} after setuid({uid})")
    log(f"dropped privileges to uid={os.getuid()} gid={os.getgid()}")
