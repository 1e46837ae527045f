"""Health checks on a Clock: cadence, the state machine, wording, HTTP checks, passive checks."""

from __future__ import annotations

import errno
import random
from typing import Any, Dict, List, Optional, Tuple

from twisted.internet import defer
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from udsproxy.config.parser import parse_text
from udsproxy.health.checker import HealthChecks
from udsproxy.health.httpcheck import Response, build_request, verdict
from udsproxy.net.connect import ConnectError, ConnectKind
from udsproxy.runtime import Outcome, Runtime


class FakeNet:
    """A connector: per path, an errno to fail with, or an HTTP answer (None: accept, L4)."""

    def __init__(self) -> None:
        self.fail: Dict[str, int] = {}
        self.answer: Dict[str, bytes] = {}
        self.silent: set = set()
        self.connects: List[Tuple[float, str]] = []
        self.transports: List[StringTransport] = []

    def __call__(self, clock: Any, address: Any, factory: Any, timeout: Any) -> defer.Deferred:
        self.connects.append((clock.seconds(), address.path))
        err = self.fail.get(address.path)
        if err is not None:
            kind = {errno.ENOENT: ConnectKind.ENOENT, errno.EACCES: ConnectKind.EACCES}.get(
                err, ConnectKind.ECONNREFUSED
            )
            return defer.fail(ConnectError(kind, err, address, f"connect to {address}: no"))
        proto = factory()
        transport = StringTransport()
        self.transports.append(transport)
        proto.makeConnection(transport)
        if address.path not in self.silent and address.path in self.answer:
            proto.dataReceived(self.answer[address.path])
            if not transport.disconnecting:  # the server closes after its answer
                proto.connectionLost(Failure(ConnectionDone()))
        return defer.succeed(proto)


def setup(text: str, net: Optional[FakeNet] = None) -> Tuple[HealthChecks, Clock, FakeNet, list]:
    config = parse_text(text)
    clock = Clock()
    runtime = Runtime(config, clock)
    net = net or FakeNet()
    logs: list = []
    checks = HealthChecks(
        runtime, clock, lambda t, level, p: logs.append((level, t)), net, random.Random(1)
    )
    return checks, clock, net, logs


def finish(checks: HealthChecks, clock: Clock) -> None:
    checks.stop()
    assert clock.getDelayedCalls() == []


BASIC = """
backend app
    server a /run/a.sock check inter 2s fastinter 500 downinter 5s rise 2 fall 3
    server b /run/b.sock check inter 2s
"""


def test_first_checks_are_spread_over_the_first_interval() -> None:
    """Two servers: the first probe at 0, the second at half the longest first interval."""
    checks, clock, net, _ = setup(BASIC)
    checks.start()
    clock.advance(0)
    clock.advance(1.0)
    assert [(t, p) for t, p in net.connects] == [(0, "/run/a.sock"), (1.0, "/run/b.sock")]
    finish(checks, clock)


def test_cadence_fastinter_until_top_then_inter_then_downinter() -> None:
    """Fresh (health == rise): fastinter; at the top: inter; failing: fastinter; DOWN: downinter."""
    checks, clock, net, logs = setup(BASIC)
    srv = checks.runtime.backends["app"].servers[0]
    checks.start()
    clock.advance(0)  # check 1 at 0: health 2 -> 4 (top)
    assert srv.health == 4
    clock.advance(0.5)
    times = [t for t, p in net.connects if p == "/run/a.sock"]
    assert times == [0]  # at the top after check 1: the next one comes after inter (2s)
    clock.advance(1.5)
    assert [t for t, p in net.connects if p == "/run/a.sock"] == [0, 2.0]
    net.fail["/run/a.sock"] = errno.ENOENT
    clock.advance(2.0)  # fail 1: UP 2/3, next at fastinter
    assert srv.status == "UP 2/3"
    clock.advance(0.5)  # fail 2: UP 1/3
    assert srv.status == "UP 1/3"
    clock.advance(0.5)  # fail 3: DOWN, next at downinter
    assert srv.status == "DOWN" and not srv.op_up
    clock.advance(4.9)
    assert [t for t, p in net.connects if p == "/run/a.sock"][-1] == 5.0
    clock.advance(0.1)
    assert [t for t, p in net.connects if p == "/run/a.sock"][-1] == 10.0
    finish(checks, clock)


def test_first_failure_marks_down_with_haproxys_wording() -> None:
    """health starts at rise: one failed check is DOWN; the line names the cause and address."""
    checks, clock, net, logs = setup(
        "backend app\n    server a /run/a.sock check\n    server b /run/b.sock\n"
    )
    net.fail["/run/a.sock"] = errno.ENOENT
    checks.start()
    clock.advance(0)
    srv = checks.runtime.backends["app"].servers[0]
    assert not srv.op_up and srv.check_status == "SOCKERR" and srv.chkdown == 1
    assert logs == [
        (
            "alert",
            'Server app/a is DOWN, reason: Socket error, info: "General socket error (No such '
            'file or directory)", check duration: 0ms, address: unix@/run/a.sock. 1 active and '
            "0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        )
    ]
    finish(checks, clock)


def test_last_server_down_logs_no_server_available_and_comes_back_up() -> None:
    """The backend's last server going DOWN adds the alert; rise successes bring it UP."""
    checks, clock, net, logs = setup("backend app\n    server a /run/a.sock check inter 1s\n")
    net.fail["/run/a.sock"] = errno.ECONNREFUSED
    checks.start()
    clock.advance(0)
    assert logs[-1] == ("emerg", "backend 'app' has no server available!")
    assert "General socket error (Connection refused)" in logs[0][1]
    del net.fail["/run/a.sock"]
    clock.advance(1)
    srv = checks.runtime.backends["app"].servers[0]
    assert srv.status == "DOWN 1/2"
    clock.advance(1)
    assert srv.op_up and srv.check_status == "L4OK"
    assert logs[-1] == (
        "notice",
        "Server app/a is UP, reason: Layer4 check passed, check duration: 0ms, "
        "address: unix@/run/a.sock. 1 active and 0 backup servers online. "
        "0 sessions requeued, 0 total in queue.",
    )
    finish(checks, clock)


def test_eacces_names_the_path_and_the_user() -> None:
    """A permission error's info names what lacks the permission and who we are."""
    checks, clock, net, logs = setup("backend app\n    server a /run/x/a.sock check\n")
    net.fail["/run/x/a.sock"] = errno.EACCES
    checks.start()
    clock.advance(0)
    srv = checks.runtime.backends["app"].servers[0]
    assert srv.check_desc.startswith("General socket error (Permission denied: ")
    assert "(uid " in srv.check_desc
    finish(checks, clock)


def test_log_health_checks_logs_each_change_of_health() -> None:
    """option log-health-checks: one line per health change, HAProxy's 'status: 1/2 DOWN'."""
    checks, clock, net, logs = setup(
        "backend app\n    option log-health-checks\n    server a /run/a.sock check inter 1s\n"
    )
    net.fail["/run/a.sock"] = errno.ENOENT
    checks.start()
    clock.advance(0)
    assert logs[0] == (
        "notice",
        'Health check for server app/a failed, reason: Socket error, info: "General socket '
        'error (No such file or directory)", check duration: 0ms, status: 0/2 DOWN.',
    )
    assert logs[1][1].startswith("Server app/a is DOWN, address: unix@/run/a.sock. 0 active")
    clock.advance(1)  # same failure, health already 0: nothing new
    assert len(logs) == 3  # + "no server available"
    finish(checks, clock)


def test_timeout_check_l4_and_l7() -> None:
    """A silent HTTP server times out as L7TOUT after timeout check."""
    checks, clock, net, logs = setup(
        "backend app\n    mode http\n    timeout check 300ms\n    option httpchk\n"
        "    server a /run/a.sock check inter 1s\n"
    )
    net.silent.add("/run/a.sock")
    checks.start()
    clock.advance(0)
    clock.advance(0.3)
    srv = checks.runtime.backends["app"].servers[0]
    assert srv.check_status == "L7TOUT" and srv.check_duration == 300 and not srv.op_up
    assert net.transports[0].value().startswith(b"OPTIONS / HTTP/1.0\r\n")
    finish(checks, clock)


def test_httpchk_500_marks_down_with_code_and_reason() -> None:
    """An httpchk answered 500: L7STS, code 500, the reason phrase as info."""
    checks, clock, net, logs = setup(
        "backend app\n    mode http\n    option httpchk\n    http-check expect status 200\n"
        "    server a /run/a.sock check\n"
    )
    net.answer["/run/a.sock"] = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
    checks.start()
    clock.advance(0)
    assert logs[0][1].startswith(
        'Server app/a is DOWN, reason: Layer7 wrong status, code: 500, info: "Internal Server '
        'Error", check duration: 0ms'
    )
    finish(checks, clock)


def test_rails_check_request_and_expectations() -> None:
    """http-check send builds the request; expect string/rstatus/negation decide."""
    cfg = parse_text(
        "backend app\n    mode http\n    option httpchk\n"
        "    http-check send meth GET uri /up ver HTTP/1.1 hdr Host localhost\n"
        "    http-check expect status 200-299\n    http-check expect ! string maintenance\n"
        "    server a /run/a.sock check\n"
    )
    hc = cfg.backends[0].http_check
    assert build_request(hc) == (
        b"GET /up HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )

    def judge(raw: bytes) -> Tuple[str, Optional[int]]:
        r = Response()
        r.feed(raw)
        res = verdict(hc, r, True)
        return res.status.value, res.code

    assert judge(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") == ("L7OK", 200)
    assert judge(b"HTTP/1.1 302 Found\r\n\r\n") == ("L7STS", 302)
    assert judge(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nmaintenance") == ("L7RSP", 200)
    assert judge(b"garbage\r\n\r\n")[0] == "L7RSP"


def test_default_httpchk_accepts_2xx_3xx_and_disable_on_404_stops() -> None:
    """No expect: 2xx/3xx pass. disable-on-404: a 404 of an UP server is STOPPING (NOLB)."""
    checks, clock, net, logs = setup(
        "backend app\n    mode http\n    option httpchk GET /up\n    http-check disable-on-404\n"
        "    server a /run/a.sock check inter 1s\n"
    )
    net.answer["/run/a.sock"] = b"HTTP/1.0 404 Not Found\r\n\r\n"
    checks.start()
    clock.advance(0)
    srv = checks.runtime.backends["app"].servers[0]
    assert srv.op_up and srv.status == "NOLB" and not srv.usable
    net.answer["/run/a.sock"] = b"HTTP/1.0 301 Moved\r\n\r\n"
    clock.advance(1)
    assert srv.status == "UP" and srv.usable
    finish(checks, clock)


def test_slowstart_ramps_the_weight_after_coming_back() -> None:
    """Back UP with slowstart 10s: STARTING at HAProxy's first sixteenth (weight 20 -> 2, as
    20 * 1/16 rounded up), 12 halfway (20 * 9/16), full weight after 10s (never at start)."""
    checks, clock, net, logs = setup(
        "backend app\n    server a /run/a.sock check inter 1s rise 1 fall 1 weight 20 slowstart 10s\n"
    )
    srv = checks.runtime.backends["app"].servers[0]
    checks.start()
    clock.advance(0)
    assert srv.op_state.name == "RUNNING" and srv.eweight == 20
    net.fail["/run/a.sock"] = errno.ENOENT
    clock.advance(1)
    assert not srv.op_up
    del net.fail["/run/a.sock"]
    clock.advance(1)
    assert srv.op_state.name == "STARTING" and srv.eweight == 2
    clock.advance(5)
    assert srv.eweight == 12
    clock.advance(5)
    assert srv.op_state.name == "RUNNING" and srv.eweight == 20
    finish(checks, clock)


def test_passive_layer4_errors_fail_a_check_and_force_fastinter() -> None:
    """observe layer4, error-limit 2, on-error mark-down: two connect errors -> DOWN at once."""
    checks, clock, net, logs = setup(
        "backend app\n    server a /run/a.sock check inter 10s fastinter 1s observe layer4 "
        "error-limit 2 on-error mark-down\n"
    )
    srv = checks.runtime.backends["app"].servers[0]
    checks.start()
    clock.advance(0)
    srv.report(Outcome.CONNECT_ERROR, "ECONNREFUSED")
    srv.report(Outcome.CONNECT_OK)  # a success resets the count
    srv.report(Outcome.CONNECT_ERROR, "ECONNREFUSED")
    assert srv.op_up
    srv.report(Outcome.CONNECT_ERROR, "ECONNREFUSED")
    assert not srv.op_up and srv.check_status == "HANA" and srv.hanafail == 1
    assert (
        'reason: Health analyze, info: "Detected 2 consecutive errors, last one was: '
        'L4 unsuccessful connection", address' in logs[0][1]
    )
    clock.advance(1)  # fastinter, not inter: the next probe comes soon
    assert len(net.connects) == 2
    finish(checks, clock)


def test_passive_layer7_sudden_death_and_fail_check() -> None:
    """sudden-death leaves one failure to DOWN; a 503 response counts as a layer7 error."""
    checks, clock, net, logs = setup(
        "backend app\n    mode http\n    server a /run/a.sock check inter 10s fall 3 observe layer7 "
        "error-limit 1 on-error sudden-death\n"
    )
    srv = checks.runtime.backends["app"].servers[0]
    checks.start()
    clock.advance(0)
    srv.report(Outcome.RESPONSE_OK, "404")  # a valid status: not an error
    assert srv.health == 4
    srv.report(Outcome.RESPONSE_OK, "503")
    assert srv.op_up and srv.health == 2  # rise + 1, then one failed check
    srv.report(Outcome.RESPONSE_ABORTED)
    assert not srv.op_up
    finish(checks, clock)


def test_on_marked_down_shuts_sessions_and_on_marked_up_shuts_backup_sessions() -> None:
    """The registered streams of a server going DOWN end with DD; backups' with UD on UP."""
    checks, clock, net, logs = setup(
        "backend app\n    server a /run/a.sock check inter 1s rise 1 fall 1 on-marked-down "
        "shutdown-sessions on-marked-up shutdown-backup-sessions\n"
        "    server z /run/z.sock backup\n"
    )
    a, z = checks.runtime.backends["app"].servers
    ended: List[Tuple[str, str]] = []

    class S:
        def __init__(self, name: str, srv: Any) -> None:
            self.name, self.srv = name, srv
            srv.streams.add(self)

        def shutdown(self, flags: str) -> None:
            ended.append((self.name, flags))
            self.srv.streams.discard(self)

    checks.start()
    clock.advance(0)
    S("on-a", a)
    net.fail["/run/a.sock"] = errno.ENOENT
    clock.advance(1)
    assert ended == [("on-a", "DD")]
    S("on-z", z)
    del net.fail["/run/a.sock"]
    clock.advance(1)
    assert ended[-1] == ("on-z", "UD")
    finish(checks, clock)


def test_spread_checks_varies_each_interval_within_bounds() -> None:
    """spread-checks 50: each interval within +-50% of inter."""
    checks, clock, net, logs = setup(
        "global\n    spread-checks 50\nbackend app\n    server a /run/a.sock check inter 1s\n"
    )
    checks.start()
    for _ in range(100):
        clock.advance(0.1)
    times = [t for t, _ in net.connects]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps and all(0.5 <= g <= 1.5 for g in gaps) and len(set(gaps)) > 1
    finish(checks, clock)


def test_servers_added_and_removed_at_run_time_are_checked_and_forgotten() -> None:
    """add server with check starts probing at once; del server stops its timers."""
    checks, clock, net, logs = setup("backend app\n    server a /run/a.sock\n")
    checks.start()
    be = checks.runtime.backends["app"]
    extra = parse_text("backend x\n    server n /run/n.sock check\n").backends[0].servers[0]
    srv = be.add_server(extra)
    clock.advance(0)
    assert net.connects == [(0, "/run/n.sock")]
    be.remove_server(srv)
    assert clock.getDelayedCalls() == []
    finish(checks, clock)


def test_a_restart_gap_shorter_than_fall_checks_never_goes_down() -> None:
    """A thin restart (socket gone for two checks, fall 3) leaves the server UP; a gap of
    three checks takes it DOWN, and it is UP again one inter plus rise-1 fastinters after
    the socket is back."""
    checks, clock, net, logs = setup(
        "backend app\n    server a /run/a.sock check inter 2s fastinter 200 rise 2 fall 3\n"
    )
    srv = checks.runtime.backends["app"].servers[0]
    checks.start()
    clock.advance(0)
    for _ in range(10):
        clock.advance(2)  # health climbs to the top
    assert srv.status == "UP"

    def failing_checks(count: int) -> None:
        net.fail["/run/a.sock"] = errno.ENOENT
        seen = len(net.connects)
        while len(net.connects) - seen < count:
            clock.advance(0.1)
        del net.fail["/run/a.sock"]

    failing_checks(2)
    for _ in range(10):
        clock.advance(0.2)
    assert srv.op_up and srv.status == "UP" and not any("is DOWN" in t for _, t in logs)
    failing_checks(3)
    assert not srv.op_up and any("is DOWN" in t for _, t in logs)
    back = clock.seconds()
    while not srv.op_up:
        clock.advance(0.05)
    assert clock.seconds() - back <= 2 + 1 * 0.2 + 0.1
    finish(checks, clock)
