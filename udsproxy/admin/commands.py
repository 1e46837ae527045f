"""The stats socket's commands (HAProxy's runtime API), registered with their levels.

Each handler parses its words, acts on the runtime model (server states through their
``set_*`` methods, weights and servers through the backend core) and renders its reply;
none does I/O. Changes take effect at once: observers tell the balancers, queues and pools.
Replies and error messages use HAProxy 2.6's wording (checked against it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ..backend import Backend
from ..config.address import parse_address
from ..config.servers import parse_server_options, server_from_options
from ..errors import ConfigError
from ..runtime import (
    DRAIN,
    MAINT,
    MAX_WEIGHT,
    READY,
    BackendState,
    CapturedError,
    Runtime,
    ServerSetError,
    ServerState,
)
from . import stat
from .registry import PERMISSION_DENIED, CliSession, CommandError, Level, Registry

USER, OPERATOR, ADMIN = Level.USER, Level.OPERATOR, Level.ADMIN


class LiveStream:
    """What the stats socket sees of one live stream (a TCP session, an HTTP client).

    The shell (:mod:`udsproxy.admin.live`) makes these from the data path's objects;
    ``kill`` ends the stream now (``shutdown sessions``), with ``K`` termination flags.
    """

    ident: int
    proto: str  # "unix_stream", "tcpv4", "tcpv6"
    source: str
    frontend: str
    backend: Optional[str]
    server: Optional[ServerState]
    started: float

    def kill(self) -> None:
        raise NotImplementedError


@dataclass
class AdminContext:
    """Everything the commands read and change; built by the generation."""

    runtime: Runtime
    backends: Dict[str, Backend]
    clock: Any  # IReactorTime: now, for ages and rates
    process: stat.ProcessInfo
    streams: Callable[[], Iterable[LiveStream]] = field(default=lambda: ())
    # The generation's health checks (udsproxy.health.checker.HealthChecks): state changes
    # go through it so they are logged as HAProxy logs them; None: changed without logs.
    health: Any = None

    def now(self) -> float:
        return float(self.clock.seconds())


REGISTRY = Registry()
command = REGISTRY.register


def dispatch(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    return REGISTRY.dispatch(ctx, args, session)


# ------------------------------------------------------------------------------ lookups
def find_server(ctx: AdminContext, spec: Optional[str]) -> Tuple[Backend, ServerState]:
    """``<backend>/<server>`` with HAProxy's messages."""
    if not spec or "/" not in spec:
        raise CommandError("Require 'backend/server'.")
    be_name, _, srv_name = spec.partition("/")
    backend = ctx.backends.get(be_name)
    if backend is None:
        raise CommandError("No such backend.")
    srv = backend.server(srv_name)
    if srv is None:
        raise CommandError("No such server.")
    return backend, srv


def server_at(ctx: AdminContext, args: List[str]) -> Tuple[Backend, ServerState]:
    """The ``<backend>/<server>`` word of ``<verb> <noun> <backend>/<server> ...``."""
    return find_server(ctx, args[2] if len(args) > 2 else None)


def find_proxy_id(ctx: AdminContext, word: str) -> int:
    """A proxy's iid from its number or name; -1 stays "all"."""
    try:
        return int(word)
    except ValueError:
        pass
    iid = ctx.runtime.iids.get(word)
    if iid is None:
        raise CommandError("No such proxy.")
    return iid


def find_backend(ctx: AdminContext, word: str) -> Optional[BackendState]:
    rt = ctx.runtime
    state = rt.backends.get(word)
    if state is not None:
        return state
    for name, iid in rt.iids.items():
        if str(iid) == word and name in rt.backends:
            return rt.backends[name]
    return None


# ------------------------------------------------------------------------------ CLI session
@command("show cli level", USER, "show cli level", "display the level of the current CLI session")
def show_cli_level(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    return session.level.word


@command("operator", USER, "operator", "lower the level of the current CLI session to operator")
def lower_to_operator(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    if session.level < OPERATOR:
        return PERMISSION_DENIED
    session.level = OPERATOR
    return ""


@command("user", USER, "user", "lower the level of the current CLI session to user")
def lower_to_user(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    session.level = USER
    return ""


# ------------------------------------------------------------------------------ show
@command(
    "show info",
    USER,
    "show info [desc|json|typed|float]*",
    "report information about the running process",
)
def show_info(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    values = stat.info_values(ctx.runtime, ctx.process, ctx.now())
    return stat.render_info(values, "typed" in args[2:])


@command(
    "show stat",
    USER,
    "show stat [desc|json|no-maint|typed|up]*",
    "report counters for each proxy and server",
)
def show_stat(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    words = args[2:]
    flags = {w for w in words if w in ("typed", "json", "desc", "up", "no-maint")}
    if "json" in flags:
        raise CommandError("show stat json is not supported by udsproxy; use CSV or typed.")
    positional = [w for w in words if w not in flags]
    iid, types, sid = -1, -1, -1
    if len(positional) >= 3:
        iid = find_proxy_id(ctx, positional[0])
        try:
            types, sid = int(positional[1]), int(positional[2])
        except ValueError:
            raise CommandError("Invalid type or server id.") from None
    selected = stat.rows(ctx.runtime, ctx.now(), iid, types, sid)
    if "up" in flags or "no-maint" in flags:
        keep_up = "up" in flags
        selected = (
            (kind, row)
            for kind, row in selected
            if kind != "S"
            or not (row["status"] == "MAINT" or (keep_up and not row["status"].startswith("UP")))
        )
    return stat.render_stat(selected, "typed" in flags)


@command("show backend", USER, "show backend", "list backends in the current running config")
def show_backend(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    return "\n".join(["# name"] + list(ctx.runtime.backends))


SERVERS_STATE_HEADER = (
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
    "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
    "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
    "srv_agent_port"
)

# srv_admin_state bits (HAProxy's SRV_ADMF_*)
FMAINT, CMAINT, FDRAIN = 0x01, 0x04, 0x08


def admin_bits(srv: ServerState) -> int:
    """HAProxy's admin state mask: config maintenance and forced maintenance are distinct."""
    if srv.admin == MAINT:
        return (CMAINT | FMAINT) if srv.config_maint else FMAINT
    if srv.admin == DRAIN:
        return FDRAIN
    return 0


# HAProxy 2.6's enum healthcheck_status (srv_check_status) and enum chk_result.
CHECK_STATUS_NUMBERS = {
    "INI": 1,
    "HANA": 4,
    "SOCKERR": 5,
    "L4OK": 6,
    "L4TOUT": 7,
    "L4CON": 8,
    "L6OK": 9,
    "L6TOUT": 10,
    "L6RSP": 11,
    "L7TOUT": 12,
    "L7RSP": 13,
    "L7OK": 15,
    "L7OKC": 16,
    "L7STS": 17,
}
CHK_RES_UNKNOWN, CHK_RES_FAILED, CHK_RES_PASSED, CHK_RES_CONDPASS = 0, 2, 3, 4
PASSED = {"L4OK": CHK_RES_PASSED, "L6OK": CHK_RES_PASSED, "L7OK": CHK_RES_PASSED}


def check_result(status: str) -> int:
    """srv_check_result: the last check's verdict (UNKNOWN before the first one)."""
    if status in ("", "INI"):
        return CHK_RES_UNKNOWN
    if status == "L7OKC":
        return CHK_RES_CONDPASS
    return PASSED.get(status, CHK_RES_FAILED)


def servers_state_line(ctx: AdminContext, be: BackendState, srv: ServerState, now: float) -> str:
    """One line of format 1, as HAProxy 2.6's dump_servers_state: srv_op_state is the
    operational state (0 in maintenance: HAProxy stops the server), the check fields are
    the last check's status and verdict, the counter, and CHK_ST_* (CONFIGURED 0x02,
    ENABLED 0x04, PAUSED 0x08 in maintenance)."""
    rt = ctx.runtime
    address = srv.config.address
    op = int(srv.op_state) if srv.admin != MAINT else 0
    configured = srv.config.check.enabled
    check_state = (0x02 if configured else 0) | (0x04 if srv.checked else 0)
    if srv.checked and srv.admin == MAINT:
        check_state |= 0x08
    status = srv.check_status if configured else ""
    fields = [
        rt.iids.get(be.name, 0),
        be.name,
        srv.id,
        srv.name,
        "-" if address.is_unix else address.host,
        op,
        admin_bits(srv),
        srv.uweight,
        srv.iweight,
        int(now - srv.last_change),
        CHECK_STATUS_NUMBERS.get(status, 1),  # unchecked servers stay at INI
        check_result(status),
        srv.health,
        check_state,
        0,
        1 if be.proxy.id is not None else 0,
        1 if srv.config.id is not None else 0,
        "-",
        0 if address.is_unix else address.port,
        "-",
        0,
        srv.config.check.port or 0,
        srv.config.check.addr or "-",
        "-",
        0,
    ]
    return " ".join(str(f) for f in fields)


@command(
    "show servers state",
    USER,
    "show servers state [<backend>]",
    "dump volatile server information (all or for a single backend)",
)
def show_servers_state(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    if len(args) > 3:
        state = find_backend(ctx, args[3])
        if state is None:
            raise CommandError("Can't find backend.")
        backends = [state]
    else:
        backends = list(ctx.runtime.backends.values())
    now = ctx.now()
    lines = ["1", SERVERS_STATE_HEADER]
    for be in backends:
        lines += [servers_state_line(ctx, be, srv, now) for srv in be.servers]
    return "\n".join(lines)


@command(
    "show sess",
    OPERATOR,
    "show sess [id]",
    "report the list of current sessions or dump this exact session",
)
def show_sess(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    now = ctx.now()
    want = args[2] if len(args) > 2 and args[2] != "all" else None
    lines = []
    for s in ctx.streams():
        ident = f"0x{s.ident:x}"
        if want is not None and want != ident:
            continue
        srv = s.server.name if s.server is not None else "<none>"
        lines.append(
            f"{ident}: proto={s.proto} src={s.source} fe={s.frontend} "
            f"be={s.backend or '<NONE>'} srv={srv} ts=00 age={format_age(now - s.started)}"
        )
    if want is not None and not lines:
        raise CommandError("Session not found.")
    return "\n".join(lines)


def format_age(seconds: float) -> str:
    """HAProxy's human_time: ``3s``, ``2m5s``, ``1h2m``, ``1d3h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def timestamp(when: float) -> str:
    """HAProxy's ``[03/Dec/2026:07:17:01.958]`` (local time)."""
    t = time.localtime(when)
    return time.strftime("%d/%b/%Y:%H:%M:%S", t) + f".{int(when * 1000) % 1000:03d}"


def escape_line(data: bytes) -> str:
    out = []
    for b in data:
        if b == 0x5C:
            out.append("\\\\")
        elif b == 9:
            out.append("\\t")
        elif b == 10:
            out.append("\\n")
        elif b == 13:
            out.append("\\r")
        elif b == 27:
            out.append("\\e")
        elif 32 <= b < 127:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def dump_bytes(data: bytes, width: int = 50) -> List[str]:
    """HAProxy's error dump: one input line per output line, offsets first, long lines
    broken with a ``+`` after the next offset."""
    lines: List[str] = []
    pos = 0
    for raw in data.splitlines(keepends=True):
        first = True
        for i in range(0, len(raw), width):
            chunk = raw[i : i + width]
            mark = " " if first else "+"
            lines.append(f"  {pos + i:05d}{mark} {escape_line(chunk)}")
            first = False
        pos += len(raw)
    return lines


def render_error(
    ctx: AdminContext, err: CapturedError, kind: str, name: str, event: int
) -> List[str]:
    iids = ctx.runtime.iids
    if kind == "request":
        head = f"[{timestamp(err.when)}] frontend {name} (#{iids.get(name, -1)}): invalid request"
        other = (
            f"backend {err.other} (#{iids.get(err.other, -1)})"
            if err.other
            else "backend <NONE> (#-1)"
        )
        detail = f"  {other}, server <NONE> (#-1), event #{event}, src {err.peer}"
    else:
        head = f"[{timestamp(err.when)}] backend {name} (#{iids.get(name, -1)}): invalid response"
        srv = ctx.runtime.backends[name].server(err.server) if err.server else None
        server = (
            f"server {err.server} (#{srv.id if srv else -1})" if err.server else "server <NONE>"
        )
        detail = (
            f"  frontend {err.other or '<NONE>'} (#{iids.get(err.other, -1)}), {server}, "
            f"event #{event}, src {err.peer}"
        )
    length = err.length if err.length >= 0 else len(err.data)
    where = f", error at position {err.position}" if err.position >= 0 else ""
    return [
        head,
        detail,
        f"  reason: {err.reason}",
        f"  len {length}{where}",
        "  ",
        *dump_bytes(err.data),
        "",
    ]


@command(
    "show errors",
    OPERATOR,
    "show errors [<px>] [request|response]",
    "report last request and/or response errors for each proxy",
)
def show_errors(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    words = args[2:]
    which = {"request", "response"}
    if words and words[-1] in which:
        which = {words[-1]}
        words = words[:-1]
    iid = find_proxy_id(ctx, words[0]) if words else -1
    rt = ctx.runtime
    body: List[str] = []
    count = 0
    for name, pid in rt.iids.items():
        if iid != -1 and pid != iid:
            continue
        fe = rt.frontends.get(name)
        if "request" in which and fe is not None and fe.last_request_error is not None:
            count += 1
            body += render_error(ctx, fe.last_request_error, "request", name, fe.request_errors - 1)
        be = rt.backends.get(name)
        if "response" in which and be is not None and be.last_response_error is not None:
            count += 1
            body += render_error(
                ctx, be.last_response_error, "response", name, be.response_errors - 1
            )
    lines = [f"Total events captured on [{timestamp(ctx.now())}] : {count}"]
    if body:
        lines.append(" ")
        lines += body
    return "\n".join(lines).rstrip("\n")


# ------------------------------------------------------------------------------ counters
@command(
    "clear counters",
    OPERATOR,
    "clear counters [all]",
    "clear max statistics counters (or all counters)",
)
def clear_counters(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    everything = args[2:3] == ["all"]
    if everything and session.level < ADMIN:
        return PERMISSION_DENIED
    rt = ctx.runtime
    for fe in rt.frontends.values():
        fe.clear_all() if everything else fe.clear_max()
    for be in rt.backends.values():
        for c in [be, *be.servers]:
            c.clear_all() if everything else c.clear_max()
    g = rt.counters
    g.max_conns = g.curr_conns
    g.conn_rate.max = 0
    return ""


# ------------------------------------------------------------------------------ weights
def parse_weight(srv: ServerState, word: Optional[str]) -> int:
    """``<w>`` or ``<w>%`` (of the initial weight), HAProxy's rules and messages."""
    if not word:
        raise CommandError("Require <weight> or <weight%>.")
    relative = word.endswith("%")
    digits = word[:-1] if relative else word
    try:
        value = int(digits)
    except ValueError:
        raise CommandError("Require <weight> or <weight%>.") from None
    if relative:
        if value < 0:
            raise CommandError("Relative weight must be positive.")
        weight = srv.iweight * value // 100
        if weight > MAX_WEIGHT:
            raise CommandError("Relative weight too large.")
        return weight
    if not 0 <= value <= MAX_WEIGHT:
        raise CommandError("Absolute weight can only be between 0 and 256 inclusive.")
    return value


def apply_weight(backend: Backend, srv: ServerState, word: Optional[str]) -> str:
    weight = parse_weight(srv, word)
    try:
        backend.set_weight(srv, weight)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return ""


@command("get weight", USER, "get weight <bk>/<srv>", "report a server's current weight")
def get_weight(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    _, srv = server_at(ctx, args)
    return f"{srv.uweight} (initial {srv.iweight})"


@command(
    "set weight",
    ADMIN,
    "set weight <bk>/<srv>  (DEPRECATED)",
    "change a server's weight (use 'set server' instead)",
)
def set_weight(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    backend, srv = server_at(ctx, args)
    return apply_weight(backend, srv, args[3] if len(args) > 3 else None)


# ------------------------------------------------------------------------------ set server
SET_SERVER_USAGE = (
    "usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | "
    "agent-send | check-addr | check-port | fqdn | health | ssl | state | weight"
)
STATES = {"ready": READY, "drain": DRAIN, "maint": MAINT}


def set_admin(ctx: AdminContext, srv: ServerState, state: str) -> None:
    """An admin state change through the health checks (logged), or directly."""
    if ctx.health is not None:
        ctx.health.set_admin(srv, state)
    else:
        srv.set_admin(state)


@command(
    "set server",
    ADMIN,
    "set server <bk>/<srv> [opts]",
    "change a server's state, weight, address or ssl",
)
def set_server(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    backend, srv = server_at(ctx, args)
    what = args[3] if len(args) > 3 else ""
    value = args[4] if len(args) > 4 else None
    if what == "state":
        state = STATES.get(value or "")
        if state is None:
            raise CommandError("'set server <srv> state' expects 'ready', 'drain' and 'maint'.")
        set_admin(ctx, srv, state)
        return ""
    if what == "weight":
        return apply_weight(backend, srv, value)
    if what == "health":
        if value not in ("up", "stopping", "down"):
            raise CommandError("'set server <srv> health' expects 'up', 'stopping', or 'down'.")
        # As HAProxy: checked or not, the server takes the state (an unchecked one keeps it).
        if ctx.health is not None:
            ctx.health.force_health(srv, value)
        else:
            srv.force_health(value)
        return ""
    if what == "agent":
        # No server has an agent check (agent-check is refused in the config).
        raise CommandError("agent checks are not enabled on this server.")
    if what in (
        "addr",
        "agent-addr",
        "agent-port",
        "agent-send",
        "check-addr",
        "check-port",
        "fqdn",
        "ssl",
    ):
        raise CommandError(f"'set server <srv> {what}' is not supported by udsproxy.")
    raise CommandError(SET_SERVER_USAGE)


@command(
    "set maxconn server",
    ADMIN,
    "set maxconn server <bk>/<srv>",
    "change a server's maxconn setting",
)
def set_maxconn_server(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    _, srv = find_server(ctx, args[3] if len(args) > 3 else None)
    if len(args) < 5:
        raise CommandError("Require <maxconn>.")
    try:
        value = int(args[4])
    except ValueError:
        raise CommandError("maxconn string empty or preceded by garbage") from None
    if value < 0:
        raise CommandError("maxconn string empty or preceded by garbage")
    srv.set_maxconn(value)
    return ""


@command(
    "enable server",
    ADMIN,
    "enable server  (DEPRECATED)",
    "enable a disabled server (use 'set server' instead)",
)
def enable_server(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    _, srv = server_at(ctx, args)
    set_admin(ctx, srv, READY)
    return ""


@command(
    "disable server",
    ADMIN,
    "disable server (DEPRECATED)",
    "disable a server for maintenance (use 'set server' instead)",
)
def disable_server(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    _, srv = server_at(ctx, args)
    set_admin(ctx, srv, MAINT)
    return ""


@command("enable health", ADMIN, "enable health", "enable health checks")
def enable_health(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    _, srv = server_at(ctx, args)
    if not srv.config.check.enabled:
        raise CommandError("Health check was not configured on this server, cannot enable.")
    set_check_enabled(ctx, srv, True)
    return ""


@command("disable health", ADMIN, "disable health", "disable health checks")
def disable_health(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    # HAProxy 2.6 answers nothing, configured or not, and leaves the server's state alone.
    _, srv = server_at(ctx, args)
    if srv.config.check.enabled:
        set_check_enabled(ctx, srv, False)
    return ""


def set_check_enabled(ctx: AdminContext, srv: ServerState, enabled: bool) -> None:
    if ctx.health is not None:
        ctx.health.set_enabled(srv, enabled)
    else:
        srv.set_check_enabled(enabled)


# udsproxy has no agent checks (``agent-check`` is refused in the config), so no server has
# one configured: HAProxy's answers for such a server.
@command("enable agent", ADMIN, "enable agent", "enable agent checks")
def enable_agent(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    server_at(ctx, args)
    raise CommandError("Agent was not configured on this server, cannot enable.")


@command("disable agent", ADMIN, "disable agent", "disable agent checks")
def disable_agent(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    server_at(ctx, args)
    return ""  # HAProxy: nothing to disable, nothing said


# ------------------------------------------------------------------------------ add / del
@command("add server", ADMIN, "add server <bk>/<srv>", "create a new server")
def add_server(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    spec = args[2] if len(args) > 2 else ""
    if "/" not in spec:
        raise CommandError("Require 'backend/server'.")
    be_name, _, name = spec.partition("/")
    backend = ctx.backends.get(be_name)
    if backend is None:
        raise CommandError("No such backend.")
    if not backend.balancer.dynamic:
        raise CommandError("Backend must use a dynamic load balancing to support dynamic servers.")
    if not name or len(args) < 4:
        raise CommandError("'server' expects <name> and <addr>[:<port>] as arguments.")
    if backend.server(name) is not None:
        raise CommandError("Already exists a server with the same name in backend.")
    try:
        addrs = parse_address(args[3], for_bind=False)
        opts: Dict[str, object] = {}
        parse_server_options(args[4:], opts)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    if "track" in opts:
        raise CommandError("'track' is not supported by udsproxy.")
    opts.pop("_perm_words", None)
    # As HAProxy: a dynamic server starts in maintenance ("enable server" puts it in
    # service) and with its health checks off until "enable health".
    opts["disabled"] = True
    config = server_from_options(name, addrs[0], opts, 0)
    try:
        srv = backend.add_server(config)
    except ServerSetError as exc:
        raise CommandError(str(exc)) from None
    srv.dynamic = True
    srv.config_maint = False
    srv.forced_admin = True
    srv.set_check_enabled(False)
    return "New server registered."


@command("del server", ADMIN, "del server <bk>/<srv>", "remove a dynamically added server")
def del_server(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    backend, srv = server_at(ctx, args)
    if srv.admin != MAINT:
        raise CommandError("Only servers in maintenance mode can be deleted.")
    if srv.scur:
        raise CommandError("Server still has connections attached to it, cannot remove it.")
    if srv.qcur:
        raise CommandError("Server still has queued connections, cannot remove it.")
    try:
        backend.remove_server(srv)
    except ServerSetError as exc:
        raise CommandError(str(exc)) from None
    return "Server deleted."


# ------------------------------------------------------------------------------ sessions
@command(
    "shutdown sessions server",
    ADMIN,
    "shutdown sessions server <bk>/<srv>",
    "kill sessions on a server",
)
def shutdown_sessions_server(ctx: AdminContext, args: List[str], session: CliSession) -> str:
    _, srv = find_server(ctx, args[3] if len(args) > 3 else None)
    for s in [s for s in ctx.streams() if s.server is srv]:
        s.kill()
    return ""
