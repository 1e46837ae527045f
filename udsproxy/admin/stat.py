"""``show stat`` and ``show info``: HAProxy 2.6's columns and fields, in its order.

Rows are built from the runtime model as ``{column: value}`` dicts (pure); a column we do
not compute is absent and renders empty, never as a made-up 0. The CSV header, the
``typed`` output's field tags (origin, nature, scope : type) and the FRONTEND / BACKEND /
server rows follow HAProxy 2.6.12's ``show stat`` (checked against it), so collectors
(``show stat -1 4 -1``, haproxy_exporter, netdata) read them unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Tuple

from ..config.model import IPV4, IPV6, Observe
from ..runtime import (
    DRAIN,
    MAINT,
    TIME_SAMPLES,
    WEIGHT_SCALE,
    BackendState,
    FreqCtr,
    LoadCounters,
    ProxyCounters,
    Runtime,
    ServerState,
    swrate_avg,
)

Row = Dict[str, Any]

# show stat's <type> filter bits and the row kinds (HAProxy's STATS_TYPE_*).
TYPE_FRONTEND, TYPE_BACKEND, TYPE_SERVER = 1, 2, 4
ROW_TYPE = {"F": 0, "B": 1, "S": 2}


@dataclass(frozen=True)
class Column:
    """One ``show stat`` column: its name and ``typed`` tags per row kind."""

    name: str
    tags: str  # "MCP:u64": origin, nature, scope : type
    by_kind: Dict[str, str] = field(default_factory=dict)

    def tags_for(self, kind: str) -> str:
        return self.by_kind.get(kind, self.tags)


COLUMNS: Tuple[Column, ...] = (
    Column("pxname", "KNS:str"),
    Column("svname", "KNS:str"),
    Column("qcur", "MGP:u32"),
    Column("qmax", "MMP:u32"),
    Column("scur", "MGP:u32"),
    Column("smax", "MMP:u32"),
    Column("slim", "CLP:u32"),
    Column("stot", "MCP:u64"),
    Column("bin", "MCP:u64"),
    Column("bout", "MCP:u64"),
    Column("dreq", "MCP:u64"),
    Column("dresp", "MCP:u64"),
    Column("ereq", "MCP:u64"),
    Column("econ", "MCP:u64"),
    Column("eresp", "MCP:u64"),
    Column("wretr", "MCP:u64"),
    Column("wredis", "MCP:u64"),
    Column("status", "SGP:str"),
    Column("weight", "MaP:u32"),
    Column("act", "SGP:u32", {"B": "MGP:u32"}),
    Column("bck", "SGP:u32", {"B": "MGP:u32"}),
    Column("chkfail", "MCP:u64"),
    Column("chkdown", "MCP:u64"),
    Column("lastchg", "MAP:u32"),
    Column("downtime", "MCP:u32"),
    Column("qlimit", "CGS:u32"),
    Column("pid", "KGP:u32"),
    Column("iid", "KGS:u32"),
    Column("sid", "KGS:u32"),
    Column("throttle", "MaP:u32"),
    Column("lbtot", "MCP:u64"),
    Column("tracked", "CNS:str"),
    Column("type", "CGS:u32"),
    Column("rate", "MRP:u32", {"B": "MGP:u32"}),
    Column("rate_lim", "CLP:u32"),
    Column("rate_max", "MMP:u32", {"B": "MGP:u32"}),
    Column("check_status", "MOP:str"),
    Column("check_code", "MOP:u32"),
    Column("check_duration", "MDP:u64"),
    Column("hrsp_1xx", "MCP:u64"),
    Column("hrsp_2xx", "MCP:u64"),
    Column("hrsp_3xx", "MCP:u64"),
    Column("hrsp_4xx", "MCP:u64"),
    Column("hrsp_5xx", "MCP:u64"),
    Column("hrsp_other", "MCP:u64"),
    Column("hanafail", "MCP:u64"),
    Column("req_rate", "MRP:u32"),
    Column("req_rate_max", "MMP:u32"),
    Column("req_tot", "MCP:u64"),
    Column("cli_abrt", "MCP:u64"),
    Column("srv_abrt", "MCP:u64"),
    Column("comp_in", "MCP:u64"),
    Column("comp_out", "MCP:u64"),
    Column("comp_byp", "MCP:u64"),
    Column("comp_rsp", "MCP:u64"),
    Column("lastsess", "MAP:s32"),
    Column("last_chk", "MOP:str"),
    Column("last_agt", "MOP:str"),
    Column("qtime", "MaP:u32"),
    Column("ctime", "MaP:u32"),
    Column("rtime", "MaP:u32"),
    Column("ttime", "MaP:u32"),
    Column("agent_status", "MOP:str"),
    Column("agent_code", "MOP:u32"),
    Column("agent_duration", "MDP:u64"),
    Column("check_desc", "MOP:str"),
    Column("agent_desc", "MOP:str"),
    Column("check_rise", "CGS:u32"),
    Column("check_fall", "CGS:u32"),
    Column("check_health", "CGS:u32"),
    Column("agent_rise", "CGS:u32"),
    Column("agent_fall", "CGS:u32"),
    Column("agent_health", "CGS:u32"),
    Column("addr", "CGS:str"),
    Column("cookie", "CNS:str"),
    Column("mode", "CGS:str"),
    Column("algo", "CGS:str"),
    Column("conn_rate", "MRP:u32"),
    Column("conn_rate_max", "MMP:u32"),
    Column("conn_tot", "MCP:u64"),
    Column("intercepted", "MCP:u64"),
    Column("dcon", "MCP:u64"),
    Column("dses", "MCP:u64"),
    Column("wrew", "MCP:u64"),
    Column("connect", "MCP:u64"),
    Column("reuse", "MCP:u64"),
    Column("cache_lookups", "MCP:u64"),
    Column("cache_hits", "MCP:u64"),
    Column("srv_icur", "MGP:u32"),
    Column("src_ilim", "CLP:u32"),
    Column("qtime_max", "MMP:u32"),
    Column("ctime_max", "MMP:u32"),
    Column("rtime_max", "MMP:u32"),
    Column("ttime_max", "MMP:u32"),
    Column("eint", "MCP:u64"),
    Column("idle_conn_cur", "MGP:u32"),
    Column("safe_conn_cur", "MGP:u32"),
    Column("used_conn_cur", "MGP:u32"),
    Column("need_conn_est", "MGP:u32"),
    Column("uweight", "MaP:u32"),
    Column("agg_server_status", "MGP:u32"),
    Column("agg_server_check_status", "MGP:u32"),
    Column("agg_check_status", "MGP:u32"),
    Column("-", ""),
    Column("ssl_sess", "MCP:u64"),
    Column("ssl_reused_sess", "MCP:u64"),
    Column("ssl_failed_handshake", "MCP:u64"),
    Column("h2_headers_rcvd", "MCP:u64"),
    Column("h2_data_rcvd", "MCP:u64"),
    Column("h2_settings_rcvd", "MCP:u64"),
    Column("h2_rst_stream_rcvd", "MCP:u64"),
    Column("h2_goaway_rcvd", "MCP:u64"),
    Column("h2_detected_conn_protocol_errors", "MCP:u64"),
    Column("h2_detected_strm_protocol_errors", "MCP:u64"),
    Column("h2_rst_stream_resp", "MCP:u64"),
    Column("h2_goaway_resp", "MCP:u64"),
    Column("h2_open_connections", "MGP:u64"),
    Column("h2_backend_open_streams", "MGP:u64"),
    Column("h2_total_connections", "MCP:u64"),
    Column("h2_backend_total_streams", "MCP:u64"),
    Column("h1_open_connections", "MGP:u64"),
    Column("h1_open_streams", "MGP:u64"),
    Column("h1_total_connections", "MCP:u64"),
    Column("h1_total_streams", "MCP:u64"),
    Column("h1_bytes_in", "MCP:u64"),
    Column("h1_bytes_out", "MCP:u64"),
    Column("h1_spliced_bytes_in", "MCP:u64"),
    Column("h1_spliced_bytes_out", "MCP:u64"),
)

HEADER = "# " + ",".join(c.name for c in COLUMNS) + ","


def _rate(ctr: FreqCtr, now: float) -> int:
    return ctr.read(now)


def _hrsp(row: Row, hrsp: List[int]) -> None:
    for name, value in zip(
        ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"), hrsp
    ):
        row[name] = value


def _load(row: Row, c: LoadCounters, now: float, http: bool) -> None:
    """The columns servers and backends share."""
    window = min(c.t_samples, TIME_SAMPLES)
    row.update(
        qcur=c.qcur,
        qmax=c.qmax,
        scur=c.scur,
        smax=c.smax,
        stot=c.stot,
        bin=c.bin,
        bout=c.bout,
        dresp=c.dresp,
        wrew=c.wrew,
        econ=c.econ,
        eresp=c.eresp,
        wretr=c.wretr,
        wredis=c.wredis,
        lbtot=c.lbtot,
        rate=c.rate.read(now),
        rate_max=c.rate.max,
        cli_abrt=c.cli_abrt,
        srv_abrt=c.srv_abrt,
        lastsess=int(now - c.last_sess) if c.last_sess >= 0 else -1,
        qtime=swrate_avg(c.q_time, window),
        ctime=swrate_avg(c.c_time, window),
        rtime=swrate_avg(c.r_time, window),
        ttime=swrate_avg(c.t_time, window),
        connect=c.connects,
        reuse=c.reuses,
        qtime_max=c.qtime_max,
        ctime_max=c.ctime_max,
        rtime_max=c.rtime_max,
        ttime_max=c.ttime_max,
    )
    if http:
        _hrsp(row, c.hrsp)
        row["req_tot"] = c.req_tot


def frontend_row(rt: Runtime, fe: ProxyCounters, now: float) -> Row:
    proxy = fe.proxy
    http = proxy.proxy_mode == "http"
    row: Row = dict(
        pxname=fe.name,
        svname="FRONTEND",
        scur=fe.scur,
        smax=fe.smax,
        stot=fe.stot,
        bin=fe.bin,
        bout=fe.bout,
        dreq=fe.dreq,
        dcon=fe.dcon,
        dresp=fe.dresp,
        wrew=fe.wrew,
        ereq=fe.ereq,
        status="OPEN",
        pid=1,
        iid=rt.iids.get(fe.name, 0),
        sid=0,
        type=0,
        rate=fe.conn_rate.read(now),
        rate_lim=0,
        rate_max=fe.conn_rate.max,
        req_rate=fe.req_rate.read(now),
        req_rate_max=fe.req_rate.max,
        req_tot=fe.req_tot,
        mode=proxy.proxy_mode,
        conn_rate=fe.conn_rate.read(now),
        conn_rate_max=fe.conn_rate.max,
        conn_tot=fe.stot,
    )
    slim = proxy.maxconn or rt.config.global_.maxconn
    if slim:
        row["slim"] = slim
    if http:
        _hrsp(row, fe.hrsp)
    return row


def server_row(rt: Runtime, srv: ServerState, now: float) -> Row:
    be = srv.backend
    http = be.proxy.proxy_mode == "http"
    row: Row = dict(
        pxname=be.name,
        svname=srv.name,
        status=srv.status,
        weight=srv.eweight,
        uweight=srv.uweight,
        act=0 if srv.backup else 1,
        bck=1 if srv.backup else 0,
        lastchg=int(now - srv.last_change),
        pid=1,
        iid=rt.iids.get(be.name, 0),
        sid=srv.id,
        type=2,
        addr=_addr(srv),
        mode=be.proxy.proxy_mode,
    )
    _load(row, srv, now, http)
    if srv.maxconn:
        row["slim"] = srv.maxconn
    if srv.maxqueue:
        row["qlimit"] = srv.maxqueue
    if srv.ramp is not None and srv.op_up and not srv.stopping and srv.admin != DRAIN:
        # HAProxy's server_throttle_rate: the share of the weight in force, in percent.
        steps = min(WEIGHT_SCALE, int(WEIGHT_SCALE * srv.ramp) + 1)
        row["throttle"] = (100 * steps + WEIGHT_SCALE - 1) // WEIGHT_SCALE if srv.uweight else 100
    _health(row, srv, now)
    return row


# The check statuses that carry a duration (HAProxy: status >= HCHK_STATUS_CHECKED, i.e. a
# check finished) and an HTTP code (>= HCHK_STATUS_L57DATA).
_NO_DURATION = frozenset({"", "INI"})
_WITH_CODE = frozenset({"L7OK", "L7OKC", "L7STS"})
CHECK_DESCRIPTIONS = {
    "INI": "Initializing",
    "SOCKERR": "Socket error",
    "L4OK": "Layer4 check passed",
    "L4TOUT": "Layer4 timeout",
    "L4CON": "Layer4 connection problem",
    "L6OK": "Layer6 check passed",
    "L6TOUT": "Layer6 timeout",
    "L6RSP": "Layer6 invalid response",
    "L7TOUT": "Layer7 timeout",
    "L7RSP": "Layer7 invalid response",
    "L7OK": "Layer7 check passed",
    "L7OKC": "Layer7 check conditionally passed",
    "L7STS": "Layer7 wrong status",
    "HANA": "Health analyze",
}


def _health(row: Row, srv: ServerState, now: float) -> None:
    """The check columns, as HAProxy 2.6's stats_fill_sv_stats fills them.

    chkfail, chkdown and downtime while the check is enabled; the check_* and last_chk
    columns only while it runs (enabled and not paused by maintenance), check_status with
    ``* `` while a probe is in progress; hanafail with ``observe``.
    """
    if srv.config.check.observe != Observe.NONE:
        row["hanafail"] = srv.hanafail
    if not srv.checked:
        return
    row.update(chkfail=srv.chkfail, chkdown=srv.chkdown, downtime=int(srv.downtime_at(now)))
    if srv.admin == MAINT:
        return  # HAProxy's CHK_ST_PAUSED
    status = srv.check_status
    row.update(
        check_status=("* " + status) if srv.check_in_progress else status,
        check_desc=CHECK_DESCRIPTIONS.get(status, "Unknown"),
        last_chk=srv.last_chk,
        check_rise=srv.rise,
        check_fall=srv.fall,
        check_health=srv.health,
    )
    if status not in _NO_DURATION and srv.check_duration is not None:
        row["check_duration"] = srv.check_duration
    if status in _WITH_CODE and srv.check_code is not None:
        row["check_code"] = srv.check_code


def backend_row(rt: Runtime, be: BackendState, now: float) -> Row:
    http = be.proxy.proxy_mode == "http"
    pool = [s for s in be.servers if s.usable]
    active = [s for s in pool if not s.backup]
    backups = [s for s in pool if s.backup]
    row: Row = dict(
        pxname=be.name,
        svname="BACKEND",
        dreq=be.dreq,
        status="UP" if pool else "DOWN",
        weight=sum(s.eweight for s in (active or backups)),
        uweight=sum(s.uweight for s in (active or backups)),
        act=len(active),
        bck=len(backups),
        chkdown=be.chkdown,
        lastchg=int(now - be.last_change),
        pid=1,
        iid=rt.iids.get(be.name, 0),
        sid=0,
        type=1,
        mode=be.proxy.proxy_mode,
        algo=str(be.proxy.balance.algorithm),
    )
    _load(row, be, now, http)
    if be.proxy.fullconn:
        row["slim"] = be.proxy.fullconn
    if be.servers:
        row["downtime"] = int(be.downtime_at(now))
    # HAProxy 2.6.12 fills these gauges with 0 in the BACKEND row (checked against it).
    row.update(agg_server_status=0, agg_server_check_status=0, agg_check_status=0)
    return row


def _addr(srv: ServerState) -> str:
    address = srv.config.address
    if address.is_unix:
        return "unix"
    if address.family == IPV6:
        return f"[{address.host}]:{address.port}"
    if address.family == IPV4:
        return f"{address.host}:{address.port}"
    return str(address)


def rows(
    rt: Runtime, now: float, iid: int = -1, types: int = -1, sid: int = -1
) -> Iterable[Tuple[str, Row]]:
    """(kind, row) for every proxy in config order, as HAProxy's filter selects them.

    ``iid``: one proxy (-1: all); ``types``: a mask of TYPE_FRONTEND/BACKEND/SERVER (-1:
    all); ``sid``: one server (-1: all).
    """
    for proxy in rt.config.proxies:
        if proxy.kind == "defaults":
            continue
        if iid != -1 and rt.iids.get(proxy.name) != iid:
            continue
        fe = rt.frontends.get(proxy.name)
        if fe is not None and types & TYPE_FRONTEND:
            yield "F", frontend_row(rt, fe, now)
        be = rt.backends.get(proxy.name)
        if be is None:
            continue
        if types & TYPE_SERVER:
            for srv in be.servers:
                if sid == -1 or srv.id == sid:
                    yield "S", server_row(rt, srv, now)
        if types & TYPE_BACKEND:
            yield "B", backend_row(rt, be, now)


def csv_line(row: Row) -> str:
    return ",".join(_text(row.get(c.name)) for c in COLUMNS) + ","


def _text(value: Any) -> str:
    if value is None:
        return ""
    return str(value)


def typed_lines(kind: str, row: Row) -> List[str]:
    """HAProxy's typed form: ``F.<iid>.<sid>.<index>.<name>.1:<tags>:<value>``."""
    prefix = f"{kind}.{row['iid']}.{row['sid']}."
    out = []
    for index, col in enumerate(COLUMNS):
        value = row.get(col.name)
        if value is None:
            continue
        out.append(f"{prefix}{index}.{col.name}.1:{col.tags_for(kind)}:{value}")
    return out


def render_stat(selected: Iterable[Tuple[str, Row]], typed: bool) -> str:
    if typed:
        return "\n".join(line for kind, row in selected for line in typed_lines(kind, row))
    return "\n".join([HEADER] + [csv_line(row) for _, row in selected])


# ------------------------------------------------------------------------- show info
# (HAProxy's field index, name, tags) for the fields we can tell; the others are left out.
INFO_FIELDS: Tuple[Tuple[int, str, str], ...] = (
    (0, "Name", "POS:str"),
    (1, "Version", "POS:str"),
    (2, "Release_date", "POS:str"),
    (3, "Nbthread", "CGS:u32"),
    (4, "Nbproc", "CGS:u32"),
    (5, "Process_num", "KGP:u32"),
    (6, "Pid", "SGP:u32"),
    (7, "Uptime", "MDP:str"),
    (8, "Uptime_sec", "MDP:u32"),
    (9, "Memmax_MB", "CLP:u32"),
    (13, "Ulimit-n", "CLP:u32"),
    (15, "Maxconn", "CLP:u32"),
    (16, "Hard_maxconn", "CLP:u32"),
    (17, "CurrConns", "MGP:u32"),
    (18, "CumConns", "MCP:u32"),
    (19, "CumReq", "MCP:u32"),
    (26, "ConnRate", "MRP:u32"),
    (27, "ConnRateLimit", "CLP:u32"),
    (28, "MaxConnRate", "MMP:u32"),
    (29, "SessRate", "MRP:u32"),
    (30, "SessRateLimit", "CLP:u32"),
    (31, "MaxSessRate", "MRP:u32"),
    (50, "node", "COS:str"),
    (52, "Stopping", "MGP:u32"),
    (55, "Listeners", "MGP:u32"),
    (70, "Start_time_sec", "MDP:u32"),
)


@dataclass(frozen=True)
class ProcessInfo:
    """What ``show info`` needs besides the runtime: read once by the shell."""

    name: str
    version: str
    release_date: str
    pid: int
    node: str
    ulimit_n: int
    maxconn: int
    listeners: int


def uptime_text(seconds: int) -> str:
    """HAProxy's ``0d 0h00m23s``."""
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{d}d {h}h{m:02d}m{s:02d}s"


def info_values(rt: Runtime, proc: ProcessInfo, now: float) -> Dict[str, Any]:
    up = int(now - rt.started)
    g = rt.counters
    rate = g.conn_rate.read(now)
    return {
        "Name": proc.name,
        "Version": proc.version,
        "Release_date": proc.release_date,
        "Nbthread": 1,
        "Nbproc": 1,
        "Process_num": 1,
        "Pid": proc.pid,
        "Uptime": uptime_text(up),
        "Uptime_sec": up,
        "Memmax_MB": 0,
        "Ulimit-n": proc.ulimit_n,
        "Maxconn": proc.maxconn,
        "Hard_maxconn": proc.maxconn,
        "CurrConns": g.curr_conns,
        "CumConns": g.cum_conns,
        "CumReq": sum(fe.req_tot for fe in rt.frontends.values()),
        "ConnRate": rate,
        "ConnRateLimit": 0,
        "MaxConnRate": g.conn_rate.max,
        "SessRate": rate,
        "SessRateLimit": 0,
        "MaxSessRate": g.conn_rate.max,
        "node": proc.node,
        "Stopping": 0,
        "Listeners": proc.listeners,
        "Start_time_sec": int(rt.started),
    }


def render_info(values: Dict[str, Any], typed: bool) -> str:
    if typed:
        return "\n".join(
            f"{index}.{name}.1:{tags}:{values[name]}" for index, name, tags in INFO_FIELDS
        )
    return "\n".join(f"{name}: {values[name]}" for _, name, _ in INFO_FIELDS)
