"""Stats socket commands, pure: levels, show stat/info/servers state, changes, add/del server."""

from __future__ import annotations

import textwrap
from typing import Any, Dict, List, Optional, Tuple

import pytest

from tests.unit.http_harness import Harness, answer_all
from udsproxy.admin import stat
from udsproxy.admin.commands import REGISTRY, AdminContext, LiveStream
from udsproxy.admin.protocol import split_commands
from udsproxy.admin.registry import CliSession, Level
from udsproxy.runtime import MAINT, READY, FreqCtr, LoadCounters, swrate_add, swrate_avg

# HAProxy 2.6.12's header line, as `echo 'show stat' | socat` printed it.
HAPROXY_26_HEADER = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,"
    "lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,"
    "hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,"
    "cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,"
    "ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,"
    "check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,"
    "conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,"
    "srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,"
    "used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,"
    "agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,"
    "h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,"
    "h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,"
    "h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,"
    "h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,"
    "h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,"
)

CONFIG = """
frontend web
    bind 127.0.0.1:8080
    default_backend app
backend app
    balance roundrobin
    server a /s/a.sock
    server b /s/b.sock weight 4 check
backend fixed
    balance static-rr
    server s /s/s.sock weight 10
    server off /s/off.sock disabled
"""


class FakeStream(LiveStream):
    def __init__(self, server: Any) -> None:
        self.ident = 0x1234
        self.proto = "unix_stream"
        self.source = "unix:1"
        self.frontend = "web"
        self.backend = "app"
        self.server = server
        self.started = 0.0
        self.killed = False

    def kill(self) -> None:
        self.killed = True


def setup(
    config: str = CONFIG, streams: Optional[List[Any]] = None
) -> Tuple[Harness, AdminContext]:
    h = Harness(config)
    proc = stat.ProcessInfo("udsproxy", "0.1.0", "", 42, "node1", 1024, 500, 2)
    live = streams if streams is not None else []
    ctx = AdminContext(h.runtime, h.backends, h.clock, proc, lambda: list(live))
    return h, ctx


def run(ctx: AdminContext, line: str, level: Level = Level.ADMIN) -> str:
    return REGISTRY.dispatch(ctx, line.split(), CliSession(level))


def csv_rows(text: str) -> List[Dict[str, str]]:
    lines = text.splitlines()
    names = lines[0][2:-1].split(",")
    out = []
    for line in lines[1:]:
        assert line.endswith(",")
        values = line[:-1].split(",")
        assert len(values) == len(names), line
        out.append(dict(zip(names, values)))
    return out


# ---------------------------------------------------------------------------- levels
# (command line, the lowest level that may run it), from HAProxy 2.6 run with each level.
LEVELS = [
    ("show info", Level.USER),
    ("show stat", Level.USER),
    ("show servers state", Level.USER),
    ("show backend", Level.USER),
    ("get weight app/a", Level.USER),
    ("show cli level", Level.USER),
    ("show sess", Level.OPERATOR),
    ("show errors", Level.OPERATOR),
    ("clear counters", Level.OPERATOR),
    ("operator", Level.OPERATOR),
    ("clear counters all", Level.ADMIN),
    ("set weight app/a 2", Level.ADMIN),
    ("set server app/a state drain", Level.ADMIN),
    ("set server app/a weight 2", Level.ADMIN),
    ("set server app/b health down", Level.ADMIN),
    ("set maxconn server app/a 5", Level.ADMIN),
    ("disable server app/a", Level.ADMIN),
    ("enable server app/a", Level.ADMIN),
    ("disable health app/b", Level.ADMIN),
    ("enable health app/b", Level.ADMIN),
    ("shutdown sessions server app/a", Level.ADMIN),
    ("add server app/new /s/new.sock", Level.ADMIN),
    ("del server fixed/off", Level.ADMIN),
]


@pytest.mark.parametrize("line,needed", LEVELS)
@pytest.mark.parametrize("level", list(Level))
def test_every_command_at_every_level(line: str, needed: Level, level: Level) -> None:
    """Below its level a command answers 'Permission denied'; at or above it, it runs."""
    _, ctx = setup()
    reply = run(ctx, line, level)
    if level < needed:
        assert reply == "Permission denied"
    else:
        assert "Permission denied" not in reply
        assert not reply.startswith("Unknown command")


def test_help_lists_every_command_then_the_framing_ones() -> None:
    """help is generated from the registry, HAProxy's '  usage<40>: text' layout."""
    _, ctx = setup()
    text = run(ctx, "help", Level.USER)
    lines = text.splitlines()
    assert lines[0] == "The following commands are valid at this level:"
    assert "  add server <bk>/<srv>                   : create a new server" in lines
    assert lines[-3:] == [
        "  help [<command>]                        : list matching or all commands",
        "  prompt                                  : toggle interactive mode with prompt",
        "  quit                                    : disconnect",
    ]
    assert all(line.startswith("  show") for line in run(ctx, "help show").splitlines()[1:-3])


def test_unknown_command_suggests_the_same_first_word() -> None:
    """'show zzz' lists the show commands, as HAProxy does."""
    _, ctx = setup()
    reply = run(ctx, "show zzz")
    assert reply.startswith("Unknown command, but maybe one of the following")
    assert "  show stat" in reply and "  set server" not in reply


def test_operator_and_user_lower_the_session_level() -> None:
    """'user' lowers an admin session; it cannot be raised again."""
    _, ctx = setup()
    session = CliSession(Level.ADMIN)
    assert REGISTRY.dispatch(ctx, ["user"], session) == ""
    assert REGISTRY.dispatch(ctx, ["show", "cli", "level"], session) == "user"
    assert REGISTRY.dispatch(ctx, ["operator"], session) == "Permission denied"


def test_split_commands_honours_escaped_semicolons() -> None:
    """';' separates commands, '\\;' is a literal ';'."""
    assert split_commands("show info; show stat") == [["show", "info"], ["show", "stat"]]
    assert split_commands("show backend\\; x;;") == [["show", "backend;", "x"]]


# ---------------------------------------------------------------------------- show stat
def test_show_stat_header_is_haproxy_26s() -> None:
    """The CSV header is HAProxy 2.6's, column for column; every row has every column."""
    _, ctx = setup()
    text = run(ctx, "show stat", Level.USER)
    assert text.splitlines()[0] == HAPROXY_26_HEADER
    rows = csv_rows(text)
    assert [(r["pxname"], r["svname"]) for r in rows] == [
        ("web", "FRONTEND"),
        ("app", "a"),
        ("app", "b"),
        ("app", "BACKEND"),
        ("fixed", "s"),
        ("fixed", "off"),
        ("fixed", "BACKEND"),
    ]
    by = {(r["pxname"], r["svname"]): r for r in rows}
    assert by[("web", "FRONTEND")]["status"] == "OPEN"
    assert by[("app", "a")]["status"] == "no check"
    assert by[("fixed", "off")]["status"] == "MAINT"
    assert by[("app", "a")]["addr"] == "unix"
    assert (by[("web", "FRONTEND")]["iid"], by[("app", "BACKEND")]["iid"]) == ("2", "3")
    assert by[("app", "b")]["sid"] == "2" and by[("app", "b")]["type"] == "2"
    # An unchecked server has no check columns; a checked one before its first check is
    # INI / Initializing, with no duration yet (HAProxy: status < HCHK_STATUS_CHECKED).
    assert by[("app", "a")]["check_status"] == "" and by[("app", "a")]["chkfail"] == ""
    b = by[("app", "b")]
    assert (b["check_status"], b["check_desc"], b["check_duration"]) == ("INI", "Initializing", "")
    assert (b["chkfail"], b["chkdown"], b["downtime"], b["hanafail"]) == ("0", "0", "0", "")
    assert (b["check_rise"], b["check_fall"], b["check_health"]) == ("2", "3", "2")
    assert by[("app", "b")]["status"] == "UP 1/3"
    backend = by[("app", "BACKEND")]
    assert (backend["chkdown"], backend["downtime"], backend["agg_check_status"]) == ("0", "0", "0")
    assert by[("app", "BACKEND")]["algo"] == "roundrobin"


def test_show_stat_filter_collectors_use() -> None:
    """'show stat -1 4 -1' gives server rows only; '<proxy> 2 -1' one backend row."""
    _, ctx = setup()
    servers = csv_rows(run(ctx, "show stat -1 4 -1"))
    assert {r["svname"] for r in servers} == {"a", "b", "s", "off"}
    one = csv_rows(run(ctx, "show stat app 2 -1"))
    assert [(r["pxname"], r["svname"]) for r in one] == [("app", "BACKEND")]
    assert csv_rows(run(ctx, "show stat 3 4 2"))[0]["svname"] == "b"
    assert run(ctx, "show stat nope 1 -1") == "No such proxy."


def test_show_stat_typed_tags_fields_as_haproxy() -> None:
    """typed: 'F.<iid>.<sid>.<index>.<name>.1:<tags>:<value>', empty fields left out."""
    _, ctx = setup()
    lines = run(ctx, "show stat typed").splitlines()
    assert lines[0] == "F.2.0.0.pxname.1:KNS:str:web"
    assert "F.2.0.17.status.1:SGP:str:OPEN" in lines
    assert "S.3.1.18.weight.1:MaP:u32:1" in lines
    assert "S.3.2.36.check_status.1:MOP:str:INI" in lines
    assert "S.3.2.56.last_chk.1:MOP:str:" in lines  # a present, empty string
    assert not any(line.startswith("S.3.1.") and ".check_status." in line for line in lines)


def test_counters_move_under_traffic() -> None:
    """Requests move req_tot, hrsp_2xx, stot, lbtot, rates and the time averages."""
    h, ctx = setup()
    client = h.client()
    for _ in range(4):
        client.request()
        h.advance(0.01)
        answer_all(h)
        assert [status for status, _, _ in client.responses()] == [200]
    by = {(r["pxname"], r["svname"]): r for r in csv_rows(run(ctx, "show stat"))}
    fe, be = by[("web", "FRONTEND")], by[("app", "BACKEND")]
    assert (fe["req_tot"], fe["hrsp_2xx"], fe["stot"]) == ("4", "4", "1")
    assert (be["req_tot"], be["hrsp_2xx"], be["stot"], be["lbtot"]) == ("4", "4", "4", "4")
    assert int(by[("app", "a")]["req_tot"]) + int(by[("app", "b")]["req_tot"]) == 4
    assert fe["req_rate_max"] == "4" and be["rate_max"] == "4"
    assert be["lastsess"] == "0" and by[("fixed", "s")]["lastsess"] == "-1"
    assert int(be["rtime"]) >= 0 and int(be["ttime_max"]) >= 10
    assert run(ctx, "clear counters") == ""
    by = {(r["pxname"], r["svname"]): r for r in csv_rows(run(ctx, "show stat"))}
    assert by[("app", "BACKEND")]["rate_max"] == "0" and by[("app", "BACKEND")]["stot"] == "4"
    run(ctx, "clear counters all")
    by = {(r["pxname"], r["svname"]): r for r in csv_rows(run(ctx, "show stat"))}
    assert by[("app", "BACKEND")]["stot"] == "0" and by[("web", "FRONTEND")]["req_tot"] == "0"


def test_503_counts_on_frontend_and_backend_not_on_a_server() -> None:
    """A proxy's own 503 (every server in maintenance) is hrsp_5xx of fe and be."""
    h, ctx = setup()
    run(ctx, "disable server app/a")
    run(ctx, "disable server app/b")
    client = h.client()
    client.request()
    h.advance(0.01)
    by = {(r["pxname"], r["svname"]): r for r in csv_rows(run(ctx, "show stat"))}
    assert by[("web", "FRONTEND")]["hrsp_5xx"] == "1"
    assert by[("app", "BACKEND")]["hrsp_5xx"] == "1"
    assert by[("app", "a")]["hrsp_5xx"] == "0"


def test_rates_and_sliding_averages() -> None:
    """freq_ctr: the last second's count; swrate: HAProxy's sliding-window average."""
    ctr = FreqCtr()
    for _ in range(5):
        ctr.add(10.2)
    assert ctr.read(10.5) == 5 and ctr.max == 5
    assert ctr.read(11.5) == 2  # half of last second's 5, rounded down
    assert ctr.read(13.0) == 0
    total = 0
    for value in (10, 20, 30):  # fewer samples than the window: a plain sum, exact
        total = swrate_add(total, 0, value)
    assert swrate_avg(total, 3) == 20
    total = 0
    for i in range(3000):  # a full window, then sliding: the average stays the value's
        total = swrate_add(total, 1024 if i >= 1024 else 0, 100)
    assert swrate_avg(total, 1024) == 100
    counters = LoadCounters()
    for t in (4, 8):
        counters.note_times(t, t, t, t)
    assert swrate_avg(counters.q_time, counters.t_samples) == 6 and counters.ttime_max == 8


# ---------------------------------------------------------------------------- show info etc.
def test_show_info_fields() -> None:
    """show info: HAProxy's names and order; typed carries HAProxy's field index."""
    _, ctx = setup()
    text = run(ctx, "show info", Level.USER)
    assert text.splitlines()[:2] == ["Name: udsproxy", "Version: 0.1.0"]
    assert "Pid: 42" in text and "Uptime_sec: 0" in text and "node: node1" in text
    assert "6.Pid.1:SGP:u32:42" in run(ctx, "show info typed").splitlines()


def test_show_servers_state_format_1() -> None:
    """Version 1, HAProxy's header, '-' address for unix servers, config vs forced maint."""
    _, ctx = setup()
    run(ctx, "set server app/a state maint")
    lines = run(ctx, "show servers state").splitlines()
    assert lines[0] == "1"
    assert lines[1].startswith("# be_id be_name srv_id srv_name srv_addr srv_op_state")
    rows = {f[3]: f for f in (line.split() for line in lines[2:])}
    assert rows["a"][:7] == ["3", "app", "1", "a", "-", "0", "1"]  # forced: FMAINT
    assert rows["off"][6] == "5"  # from the config: CMAINT|FMAINT, as HAProxy shows it
    assert rows["b"][13] == "6"  # check configured and enabled
    assert len(rows["a"]) == 25
    assert run(ctx, "show servers state nope") == "Can't find backend."
    assert len(run(ctx, "show servers state fixed").splitlines()) == 4


def test_show_backend_and_errors() -> None:
    """show backend lists backends; show errors dumps a captured bad request."""
    h, ctx = setup()
    assert run(ctx, "show backend") == "# name\napp\nfixed"
    client = h.client()
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    text = run(ctx, "show errors")
    assert text.splitlines()[0].endswith(": 1")
    assert "frontend web (#2): invalid request" in text
    assert "  00000  GET / HTTP/1.1\\r\\n" in text
    assert run(ctx, "show errors web response").endswith(": 0")


# ---------------------------------------------------------------------------- changes
def test_set_weight_rules_and_messages() -> None:
    """Absolute 0..256, relative to the initial weight, static algorithms 0%/100% only."""
    _, ctx = setup()
    assert run(ctx, "set weight app/b 50%") == ""
    assert run(ctx, "get weight app/b") == "2 (initial 4)"
    assert run(ctx, "set server app/b weight 300") == (
        "Absolute weight can only be between 0 and 256 inclusive."
    )
    assert run(ctx, "set weight app/b") == "Require <weight> or <weight%>."
    assert run(ctx, "get weight app") == "Require 'backend/server'."
    assert run(ctx, "get weight nope/a") == "No such backend."
    assert run(ctx, "get weight app/zz") == "No such server."
    assert "static LB algorithm" in run(ctx, "set weight fixed/s 5")
    assert run(ctx, "set weight fixed/s 0%") == ""


def test_state_health_maxconn_changes_reach_the_runtime() -> None:
    """set server state, set server health, set maxconn server change the server at once."""
    h, ctx = setup()
    a = h.runtime.backends["app"].server("a")
    b = h.runtime.backends["app"].server("b")
    assert a is not None and b is not None
    run(ctx, "set server app/a state drain")
    assert a.status == "DRAIN" and a not in h.runtime.backends["app"].lb_pool()
    assert run(ctx, "set server app/a state bogus").startswith("'set server <srv> state'")
    run(ctx, "set server app/a state ready")
    assert a.admin == READY
    run(ctx, "set server app/b health down")
    assert b.status == "DOWN"
    run(ctx, "set server app/b health up")
    assert b.status == "UP"
    # As HAProxy 2.6 (run against it): an unchecked server takes the forced state too.
    assert run(ctx, "set server app/a health down") == "" and a.status == "DOWN"
    assert run(ctx, "set server app/a health stopping") == "" and a.status == "NOLB"
    assert run(ctx, "set server app/a health up") == "" and a.status == "no check"
    assert run(ctx, "set server app/a health sick") == (
        "'set server <srv> health' expects 'up', 'stopping', or 'down'."
    )
    run(ctx, "set maxconn server app/a 7")
    assert a.maxconn == 7
    assert run(ctx, "set maxconn server app/a x") == "maxconn string empty or preceded by garbage"
    assert run(ctx, "enable health app/a").startswith("Health check was not configured")
    run(ctx, "disable health app/b")
    assert b.status == "no check"
    assert run(ctx, "disable health app/a") == ""  # HAProxy: silent, configured or not


def test_agent_commands_answer_as_haproxy_for_a_server_without_agent() -> None:
    """No server has an agent check: HAProxy 2.6's answers for such a server."""
    _, ctx = setup()
    assert run(ctx, "enable agent app/b") == (
        "Agent was not configured on this server, cannot enable."
    )
    assert run(ctx, "disable agent app/b") == ""
    assert run(ctx, "set server app/b agent up") == "agent checks are not enabled on this server."
    assert run(ctx, "enable agent app/zz") == "No such server."


def test_add_server_starts_in_maintenance_with_checks_off() -> None:
    """add server: HAProxy's options, maint until 'enable server', checks until 'enable health'."""
    h, ctx = setup()
    assert run(ctx, "add server app/c /s/c.sock weight 3 maxconn 4 check") == (
        "New server registered."
    )
    c = h.runtime.backends["app"].server("c")
    assert c is not None and c.admin == MAINT and not c.checked and c.id == 3
    assert run(ctx, "add server app/c /s/c.sock") == (
        "Already exists a server with the same name in backend."
    )
    assert run(ctx, "add server app/d") == (
        "'server' expects <name> and <addr>[:<port>] as arguments."
    )
    assert "unknown server option 'foo'" in run(ctx, "add server app/d /s/d.sock foo")
    assert "dynamic load balancing" in run(ctx, "add server fixed/x /s/x.sock")
    run(ctx, "enable server app/c")
    run(ctx, "enable health app/c")
    assert c.usable and c.checked and c in h.runtime.backends["app"].lb_pool()


def test_del_server_only_in_maintenance_and_idle() -> None:
    """del server: refused unless in maint with no stream and an empty queue."""
    h, ctx = setup()
    a = h.runtime.backends["app"].server("a")
    assert a is not None
    assert run(ctx, "del server app/a") == "Only servers in maintenance mode can be deleted."
    run(ctx, "disable server app/a")
    a.scur += 1
    assert "still has connections" in run(ctx, "del server app/a")
    a.scur -= 1
    assert run(ctx, "del server app/a") == "Server deleted."
    assert h.runtime.backends["app"].server("a") is None
    assert run(ctx, "del server app/a") == "No such server."


def test_shutdown_sessions_kills_only_that_servers_streams() -> None:
    """shutdown sessions server: every live stream on the server is killed."""
    streams: List[FakeStream] = []
    h, ctx = setup(streams=streams)
    a = h.runtime.backends["app"].server("a")
    b = h.runtime.backends["app"].server("b")
    streams += [FakeStream(a), FakeStream(b), FakeStream(None)]
    assert run(ctx, "shutdown sessions server app/a") == ""
    assert [s.killed for s in streams] == [True, False, False]
    assert run(ctx, "show sess").startswith("0x1234: proto=unix_stream src=unix:1 fe=web be=app")


def test_table_matches_haproxy_usage_lines() -> None:
    """Every registered usage line is one HAProxy 2.6's help prints."""
    haproxy = textwrap.dedent(
        """\
        add server <bk>/<srv>
        clear counters [all]
        del server <bk>/<srv>
        disable agent
        disable health
        disable server (DEPRECATED)
        enable agent
        enable health
        enable server  (DEPRECATED)
        get weight <bk>/<srv>
        operator
        set maxconn server <bk>/<srv>
        set server <bk>/<srv> [opts]
        set weight <bk>/<srv>  (DEPRECATED)
        show backend
        show cli level
        show errors [<px>] [request|response]
        show info [desc|json|typed|float]*
        show servers state [<backend>]
        show sess [id]
        show stat [desc|json|no-maint|typed|up]*
        shutdown sessions server <bk>/<srv>
        user
        """
    ).splitlines()
    assert sorted(c.usage for c in REGISTRY.commands) == haproxy


def test_note_times_keeps_the_averages_swrate_add_defines() -> None:
    """note_times (swrate_add written out, for speed) keeps exactly the sums swrate_add gives,
    before and after the window fills."""
    counters = LoadCounters()
    expected = [0, 0, 0, 0]
    for i in range(3000):
        values = (i % 7, i % 11, i % 13 * 3, i % 17 * 5)
        counters.note_times(*values)
        n = 1024 if i + 1 > 1024 else 0
        expected = [swrate_add(total, n, v) for total, v in zip(expected, values)]
    assert [counters.q_time, counters.c_time, counters.r_time, counters.t_time] == expected
