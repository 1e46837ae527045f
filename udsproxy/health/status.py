"""Check statuses and the log lines of state transitions, worded as HAProxy 2.6 words them.

Pure: given a server's state and what its last check found, these functions return the
text. The wording was compared with a real HAProxy 2.6 run on unix-socket servers
(socket file removed, connection refused, ``http-check expect status 200`` against a 500).
udsproxy adds the server's address (``address: unix@/run/app1.sock``) to each transition line,
and, for a permission error, the path and the user that lacks the permission.
"""

from __future__ import annotations

import errno as errno_mod
import os
from dataclasses import dataclass
from typing import Optional

from udsproxy.runtime import ServerState
from udsproxy.strenum import StrEnum


class Status(StrEnum):
    """HAProxy's check status codes (``check_status`` in ``show stat``)."""

    INI = "INI"
    SOCKERR = "SOCKERR"
    L4OK = "L4OK"
    L4TOUT = "L4TOUT"
    L4CON = "L4CON"
    L6OK = "L6OK"
    L6TOUT = "L6TOUT"
    L6RSP = "L6RSP"
    L7TOUT = "L7TOUT"
    L7RSP = "L7RSP"
    L7OK = "L7OK"
    L7OKC = "L7OKC"
    L7STS = "L7STS"
    HANA = "HANA"  # a passive check triggered on-error


DESCRIPTIONS = {
    Status.INI: "Initializing",
    Status.SOCKERR: "Socket error",
    Status.L4OK: "Layer4 check passed",
    Status.L4TOUT: "Layer4 timeout",
    Status.L4CON: "Layer4 connection problem",
    Status.L6OK: "Layer6 check passed",
    Status.L6TOUT: "Layer6 timeout",
    Status.L6RSP: "Layer6 invalid response",
    Status.L7TOUT: "Layer7 timeout",
    Status.L7RSP: "Layer7 invalid response",
    Status.L7OK: "Layer7 check passed",
    Status.L7OKC: "Layer7 check conditionally passed",
    Status.L7STS: "Layer7 wrong status",
    Status.HANA: "Health analyze",
}
PASSED = frozenset({Status.L4OK, Status.L6OK, Status.L7OK, Status.L7OKC})
WITH_CODE = frozenset({Status.L7OK, Status.L7OKC, Status.L7STS, Status.L7RSP})


@dataclass(frozen=True)
class CheckResult:
    """What one check found: its status, HTTP code, info text and duration in ms."""

    status: Status
    desc: str = ""
    code: Optional[int] = None
    duration: Optional[int] = None

    @property
    def passed(self) -> bool:
        return self.status in PASSED


def socket_error_desc(err: int, explanation: str = "") -> str:
    """``General socket error (No such file or directory)``, HAProxy's info for a unix connect.

    ``explanation`` (our diagnosis, e.g. which directory lacks search permission for which
    user) follows the errno text for permission errors.
    """
    text = os.strerror(err)
    if explanation:
        text = f"{text}: {explanation}"
    return f"General socket error ({text})"


EACCES = errno_mod.EACCES


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def check_info(status: str, code: Optional[int], desc: str, duration: Optional[int]) -> str:
    """``, reason: Socket error, info: "...", check duration: 0ms`` (HAProxy's check_append_info)."""
    try:
        reason = DESCRIPTIONS[Status(status)]
    except ValueError:
        reason = "Unknown"
    out = f", reason: {reason}"
    if status in WITH_CODE and code is not None:
        out += f", code: {code}"
    if desc:
        out += f', info: "{_quote(desc)}"'
    if duration is not None:
        out += f", check duration: {duration}ms"
    return out


def server_info(srv: ServerState) -> str:
    return check_info(srv.check_status, srv.check_code, srv.check_desc, srv.check_duration)


def _label(srv: ServerState) -> str:
    prefix = "Backup Server" if srv.backup else "Server"
    return f"{prefix} {srv.backend.name}/{srv.name}"


def _left(srv: ServerState, requeued: int) -> str:
    """HAProxy's srv_append_status tail for a server that is down now."""
    be = srv.backend
    backup_note = " Running on backup." if be.backup_count and not be.active_count else ""
    return (
        f"{be.active_count} active and {be.backup_count} backup servers left.{backup_note} "
        f"{srv.scur} sessions active, {requeued} requeued, {srv.qcur} remaining in queue."
    )


def _online(srv: ServerState, requeued: int) -> str:
    """HAProxy's srv_append_status tail for a server that is up now."""
    be = srv.backend
    backup_note = " Running on backup." if be.backup_count and not be.active_count else ""
    return (
        f"{be.active_count} active and {be.backup_count} backup servers online.{backup_note} "
        f"{requeued} sessions requeued, {srv.qcur} total in queue."
    )


CLI_CAUSE = ", changed from CLI"  # set server health: HAProxy's reason "changed from CLI"


def down_line(
    srv: ServerState, with_cause: bool, requeued: int, cause: Optional[str] = None
) -> str:
    """``Server app/app1 is DOWN, reason: ... 0 remaining in queue.``

    ``cause`` replaces the check's reason (``, changed from CLI`` for ``set server health``).
    """
    if cause is None:
        cause = server_info(srv) if with_cause else ""
    return f"{_label(srv)} is DOWN{cause}, address: {srv.config.address}. {_left(srv, requeued)}"


def up_line(srv: ServerState, with_cause: bool, requeued: int, cause: Optional[str] = None) -> str:
    """``Server app/app1 is UP, reason: ... 0 total in queue.``"""
    if cause is None:
        cause = server_info(srv) if with_cause else ""
    return f"{_label(srv)} is UP{cause}, address: {srv.config.address}. {_online(srv, requeued)}"


def check_line(srv: ServerState, result: CheckResult) -> str:
    """``option log-health-checks``: ``Health check for server b/s failed, reason: ..., status: 1/2 UP.``"""
    who = "backup server" if srv.backup else "server"
    verdict = (
        "conditionally succeeded"
        if result.status is Status.L7OKC
        else "succeeded"
        if result.passed
        else "failed"
    )
    info = check_info(result.status, result.code, result.desc, result.duration)
    return (
        f"Health check for {who} {srv.backend.name}/{srv.name} {verdict}{info}, "
        f"status: {srv.health_text}."
    )


def no_server_line(backend_name: str) -> str:
    """HAProxy's alert when a backend loses its last usable server."""
    return f"backend '{backend_name}' has no server available!"


def stopping_line(srv: ServerState, cause: str, requeued: int) -> str:
    """``Server app/a is stopping, changed from CLI. 2 active and 0 backup servers online. ...``
    (with the address, as the DOWN and UP lines)."""
    return (
        f"{_label(srv)} is stopping{cause}, address: {srv.config.address}. {_online(srv, requeued)}"
    )


# -- admin transitions (set server state, enable/disable server), HAProxy 2.6's
# srv_update_status wording, compared with a real run through the stats socket. The
# address is not added: these lines say what an operator did, not what a check found.


def maint_line(srv: ServerState, was_up: bool, requeued: int) -> str:
    """Entering maintenance: ``is going DOWN for maintenance. ...`` or ``was DOWN and now
    enters maintenance.``"""
    if not was_up:
        return f"{_label(srv)} was DOWN and now enters maintenance."
    return f"{_label(srv)} is going DOWN for maintenance. {_left(srv, requeued)}"


def leave_maint_line(srv: ServerState) -> str:
    """``Server app/a is UP/READY (leaving forced maintenance).`` (UP/DRAIN into drain)."""
    op = "UP" if srv.op_up else "DOWN"
    admin = "DRAIN" if srv.admin == "drain" else "READY"
    return f"{_label(srv)} is {op}/{admin} (leaving forced maintenance)."


def remains_drain_line(srv: ServerState) -> str:
    """After leaving maintenance into drain: ``Server app/a remains in forced drain mode.``"""
    return f"{_label(srv)} remains in forced drain mode."


def drain_line(srv: ServerState, requeued: int) -> str:
    """``Server app/a enters drain state. 2 active and 0 backup servers online. ...``"""
    tail = _online(srv, requeued) if srv.op_up else _left(srv, requeued)
    return f"{_label(srv)} enters drain state. {tail}"


def leave_drain_line(srv: ServerState) -> str:
    """``Server app/a is UP (leaving forced drain).``"""
    return f"{_label(srv)} is {'UP' if srv.op_up else 'DOWN'} (leaving forced drain)."
