"""The stats socket over the health checks: show stat's check columns, show servers state's
check fields, and the admin commands' transitions with HAProxy 2.6's log lines.

Expected values come from a real HAProxy 2.6.12 run (unix servers with ``check inter 500
rise 2 fall 3``, a stats socket and socat): a stopped server's columns going
``UP 2/3`` -> ``UP 1/3`` -> ``DOWN`` with SOCKERR and ``General socket error (No such file or
directory)``, ``set server ... state/health`` and their log lines.
"""

from __future__ import annotations

import errno
import random
from typing import Dict, List, Tuple

from twisted.internet.task import Clock

from tests.unit.test_health import FakeNet, setup
from udsproxy.admin import stat
from udsproxy.admin.commands import REGISTRY, AdminContext
from udsproxy.admin.registry import CliSession, Level
from udsproxy.backend import build_backends
from udsproxy.health.checker import HealthChecks

CONFIG = """
backend be
    server a /run/a.sock check inter 1s rise 2 fall 3
    server b /run/b.sock
    server c /run/c.sock check inter 1s
"""


def tick(clock: Clock, seconds: int) -> None:
    """One second at a time, so each probe runs at its own time."""
    for _ in range(seconds):
        clock.advance(1)


def admin(text: str = CONFIG) -> Tuple[AdminContext, HealthChecks, Clock, FakeNet, list]:
    checks, clock, net, logs = setup(text)
    proc = stat.ProcessInfo("udsproxy", "0.1.0", "", 42, "node1", 1024, 500, 1)
    backends = build_backends(checks.runtime, random.Random(0))
    ctx = AdminContext(checks.runtime, backends, clock, proc, health=checks)
    return ctx, checks, clock, net, logs


def run(ctx: AdminContext, line: str) -> str:
    return REGISTRY.dispatch(ctx, line.split(), CliSession(Level.ADMIN))


def rows(ctx: AdminContext) -> Dict[str, Dict[str, str]]:
    lines = run(ctx, "show stat").splitlines()
    names = lines[0][2:-1].split(",")
    out = {}
    for line in lines[1:]:
        row = dict(zip(names, line[:-1].split(",")))
        out[row["svname"]] = row
    return out


HEALTH = (
    "status",
    "weight",
    "chkfail",
    "chkdown",
    "lastchg",
    "downtime",
    "check_status",
    "check_code",
    "check_duration",
    "last_chk",
    "check_desc",
    "check_rise",
    "check_fall",
    "check_health",
)


def health(ctx: AdminContext, name: str) -> List[str]:
    row = rows(ctx)[name]
    return [row[c] for c in HEALTH]


def servers_state(ctx: AdminContext, name: str) -> List[str]:
    for line in run(ctx, "show servers state be").splitlines()[2:]:
        fields = line.split()
        if fields[3] == name:
            # srv_op_state srv_admin_state ... srv_check_status srv_check_result
            # srv_check_health srv_check_state
            return [fields[5], fields[6], *fields[10:14]]
    raise AssertionError(name)


def test_show_stat_follows_a_checked_server_down_and_up() -> None:
    """The columns HAProxy 2.6 showed for a server whose socket file went away, then back."""
    ctx, checks, clock, net, _ = admin()
    checks.start()
    clock.advance(0)
    clock.advance(1)
    # fmt: off
    assert health(ctx, "a") == [
        "UP", "1", "0", "0", "1", "0", "L4OK", "", "0", "", "Layer4 check passed", "2", "3", "4",
    ]
    assert health(ctx, "b") == ["no check", "1", "", "", "1"] + [""] * 9
    assert servers_state(ctx, "a") == ["2", "0", "6", "3", "4", "6"]
    assert servers_state(ctx, "b") == ["2", "0", "1", "0", "2", "0"]
    net.fail["/run/a.sock"] = errno.ENOENT
    clock.advance(1)
    sockerr = ["SOCKERR", "", "0", "General socket error (No such file or directory)",
               "Socket error", "2", "3"]
    assert health(ctx, "a") == ["UP 2/3", "1", "1", "0", "2", "0"] + sockerr + ["3"]
    clock.advance(1)
    assert health(ctx, "a") == ["UP 1/3", "1", "2", "0", "3", "0"] + sockerr + ["2"]
    clock.advance(1)
    assert health(ctx, "a") == ["DOWN", "1", "3", "1", "0", "0"] + sockerr + ["0"]
    assert servers_state(ctx, "a") == ["0", "0", "5", "2", "0", "6"]
    clock.advance(1)
    assert health(ctx, "a")[:6] == ["DOWN", "1", "3", "1", "1", "1"]  # downtime counts now
    del net.fail["/run/a.sock"]
    clock.advance(1)
    assert health(ctx, "a")[:6] == ["DOWN 1/2", "1", "3", "1", "2", "2"]
    clock.advance(1)
    assert health(ctx, "a") == [
        "UP", "1", "3", "1", "0", "3", "L4OK", "", "0", "", "Layer4 check passed", "2", "3", "4",
    ]
    # fmt: on
    backend = rows(ctx)["BACKEND"]
    assert (backend["status"], backend["chkdown"], backend["downtime"]) == ("UP", "0", "0")


def test_backend_chkdown_and_downtime_when_its_last_server_goes() -> None:
    """The BACKEND row counts the times it lost its last server and the time without one."""
    ctx, checks, clock, net, _ = admin("backend be\n    server a /run/a.sock check inter 1s\n")
    checks.start()
    clock.advance(0)
    net.fail["/run/a.sock"] = errno.ECONNREFUSED
    tick(clock, 3)
    tick(clock, 5)
    backend = rows(ctx)["BACKEND"]
    assert (backend["status"], backend["chkdown"], backend["downtime"]) == ("DOWN", "1", "5")
    assert backend["lastchg"] == "5"


def test_check_in_progress_is_shown_with_a_star() -> None:
    """HAProxy prefixes check_status with "* " while a probe runs."""
    text = "backend be\n    option httpchk\n    server a /run/a.sock check inter 1s\n"
    ctx, checks, clock, net, _ = admin(text)
    net.silent.add("/run/a.sock")
    net.answer["/run/a.sock"] = b""
    checks.start()
    clock.advance(0)
    assert rows(ctx)["a"]["check_status"] == "* INI"
    clock.advance(1)  # no answer within inter: L7 timeout
    assert rows(ctx)["a"]["check_status"].endswith("L7TOUT")


def test_http_check_code_is_shown_for_layer7_statuses() -> None:
    """check_code: only for L7OK/L7OKC/L7STS, as HAProxy (status >= L57DATA)."""
    text = "backend be\n    option httpchk\n    server a /run/a.sock check inter 1s\n"
    ctx, checks, clock, net, _ = admin(text)
    net.answer["/run/a.sock"] = b"HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\n\r\n"
    checks.start()
    clock.advance(0)
    row = rows(ctx)["a"]
    assert (row["check_status"], row["check_code"], row["check_desc"]) == (
        "L7STS",
        "503",
        "Layer7 wrong status",
    )
    assert row["last_chk"] == "Unavailable"
    assert servers_state(ctx, "a")[2:4] == ["17", "2"]


def test_maintenance_hides_the_check_columns_and_logs_as_haproxy() -> None:
    """set server state maint / drain / ready: HAProxy's lines, paused check columns."""
    ctx, checks, clock, net, logs = admin()
    checks.start()
    clock.advance(0)
    clock.advance(1)
    assert run(ctx, "set server be/a state maint") == ""
    row = rows(ctx)["a"]
    assert row["status"] == "MAINT" and row["chkdown"] == "1" and row["check_status"] == ""
    assert row["check_health"] == "" and row["last_chk"] == ""
    assert servers_state(ctx, "a") == ["0", "1", "6", "3", "0", "14"]
    clock.advance(3)
    assert rows(ctx)["a"]["chkfail"] == "0"  # no probe in maintenance
    run(ctx, "set server be/a state drain")
    assert rows(ctx)["a"]["status"] == "DRAIN 1/3"
    run(ctx, "set server be/a state ready")
    run(ctx, "set server be/a state drain")
    run(ctx, "set server be/a state ready")
    assert [line for _, line in logs] == [
        "Server be/a is going DOWN for maintenance. 2 active and 0 backup servers left. "
        "0 sessions active, 0 requeued, 0 remaining in queue.",
        "Server be/a is UP/DRAIN (leaving forced maintenance).",
        "Server be/a remains in forced drain mode.",
        "Server be/a is UP (leaving forced drain).",
        "Server be/a enters drain state. 2 active and 0 backup servers online. "
        "0 sessions requeued, 0 total in queue.",
        "Server be/a is UP (leaving forced drain).",
    ]
    assert logs[0][0] == "alert" and {level for level, _ in logs[1:]} == {"notice"}


def test_a_down_server_enters_maintenance_quietly() -> None:
    """'was DOWN and now enters maintenance', then UP/READY on leaving (checks resume)."""
    ctx, checks, clock, net, logs = admin()
    checks.start()
    clock.advance(0)
    run(ctx, "set server be/a health down")
    logs.clear()
    run(ctx, "disable server be/a")
    run(ctx, "enable server be/a")
    assert [line for _, line in logs] == [
        "Server be/a was DOWN and now enters maintenance.",
        "Server be/a is UP/READY (leaving forced maintenance).",
    ]
    assert rows(ctx)["a"]["status"] == "UP 1/3"


def test_set_server_health_logs_changed_from_cli() -> None:
    """set server health down/stopping/up, checked or not, as HAProxy logs them."""
    ctx, checks, clock, net, logs = admin()
    checks.start()
    clock.advance(0)
    run(ctx, "set server be/b health down")
    assert rows(ctx)["b"]["status"] == "DOWN"
    assert servers_state(ctx, "b") == ["0", "0", "1", "0", "0", "0"]
    run(ctx, "set server be/b health stopping")
    assert rows(ctx)["b"]["status"] == "NOLB" and rows(ctx)["b"]["weight"] == "0"
    run(ctx, "set server be/b health up")
    run(ctx, "set server be/b health up")  # no change: no line
    assert rows(ctx)["b"]["status"] == "no check"
    assert [line for _, line in logs] == [
        "Server be/b is DOWN, changed from CLI, address: unix@/run/b.sock. 2 active and "
        "0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "Server be/b is stopping, changed from CLI, address: unix@/run/b.sock. 2 active and "
        "0 backup servers online. 0 sessions requeued, 0 total in queue.",
        "Server be/b is UP, changed from CLI, address: unix@/run/b.sock. 3 active and "
        "0 backup servers online. 0 sessions requeued, 0 total in queue.",
    ]
    assert [level for level, _ in logs] == ["alert", "notice", "notice"]


def test_forced_down_checked_server_climbs_back_with_its_checks() -> None:
    """health 0 after 'health down': the next passing checks take it to DOWN 1/2 then UP."""
    ctx, checks, clock, net, logs = admin()
    checks.start()
    clock.advance(0)
    run(ctx, "set server be/a health down")
    assert rows(ctx)["a"]["status"] == "DOWN" and rows(ctx)["a"]["check_health"] == "0"
    clock.advance(1)
    assert rows(ctx)["a"]["status"] == "DOWN 1/2"
    clock.advance(1)
    assert rows(ctx)["a"]["status"] == "UP"
    assert logs[-1][1].startswith("Server be/a is UP, reason: Layer4 check passed")


def test_disable_health_stops_probes_and_keeps_the_state() -> None:
    """disable health: no probe, no check columns, a DOWN server stays DOWN (HAProxy 2.6)."""
    ctx, checks, clock, net, _ = admin()
    checks.start()
    clock.advance(0)
    net.fail["/run/a.sock"] = errno.ENOENT
    tick(clock, 3)
    assert rows(ctx)["a"]["status"] == "DOWN"
    run(ctx, "disable health be/a")
    del net.fail["/run/a.sock"]
    tick(clock, 5)
    assert all(path != "/run/a.sock" for when, path in net.connects if when > 3)
    row = rows(ctx)["a"]
    assert (row["status"], row["check_status"], row["chkfail"]) == ("DOWN", "", "")
    run(ctx, "enable health be/a")
    tick(clock, 2)
    assert rows(ctx)["a"]["status"] == "UP"


def test_added_server_is_checked_only_after_enable_health_and_deleted_stops() -> None:
    """add server ... check: no probe until 'enable health'; del server stops its prober."""
    ctx, checks, clock, net, _ = admin()
    checks.start()
    clock.advance(0)
    assert run(ctx, "add server be/d /run/d.sock check inter 1s") == "New server registered."
    run(ctx, "enable server be/d")
    clock.advance(3)
    assert all(path != "/run/d.sock" for _, path in net.connects)
    assert rows(ctx)["d"]["status"] == "no check"
    run(ctx, "enable health be/d")
    clock.advance(1)
    assert any(path == "/run/d.sock" for _, path in net.connects)
    assert rows(ctx)["d"]["check_status"] == "L4OK"
    run(ctx, "disable server be/d")
    assert run(ctx, "del server be/d") == "Server deleted."
    seen = len([p for _, p in net.connects if p == "/run/d.sock"])
    clock.advance(5)
    assert len([p for _, p in net.connects if p == "/run/d.sock"]) == seen
    assert checks.runtime.backends["be"].server("d") is None


def test_slowstart_weight_and_throttle_while_starting() -> None:
    """weight shows the ramped eweight and throttle its percentage (HAProxy's sixteenths)."""
    text = "backend be\n    server a /run/a.sock check inter 1s weight 20 slowstart 10s\n"
    ctx, checks, clock, net, _ = admin(text)
    checks.start()
    clock.advance(0)
    run(ctx, "set server be/a health down")
    run(ctx, "set server be/a health up")
    row = rows(ctx)["a"]
    assert (row["weight"], row["throttle"], row["uweight"]) == ("2", "7", "20")
    clock.advance(5)
    row = rows(ctx)["a"]
    assert (row["weight"], row["throttle"]) == ("12", "57")
    clock.advance(5)
    row = rows(ctx)["a"]
    assert (row["weight"], row["throttle"]) == ("20", "")


def test_a_passing_check_after_forced_stopping_logs_up() -> None:
    """HAProxy (run against it): 'health stopping' on a checked server, then its next L4OK
    sets it running again and logs 'Server be/a is UP, reason: Layer4 check passed'."""
    ctx, checks, clock, net, logs = admin()
    checks.start()
    clock.advance(0)
    run(ctx, "set server be/a health stopping")
    assert rows(ctx)["a"]["status"] == "NOLB"
    clock.advance(1)
    assert rows(ctx)["a"]["status"] == "UP"
    assert logs[-1][1].startswith("Server be/a is UP, reason: Layer4 check passed")
