"""``server``, ``default-server`` and ``bind`` lines: their option tables and parsers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from ..errors import ConfigError
from . import model
from .address import parse_address
from .builders import IMPLEMENTED, Context, need, perm_options
from .checks import check_interval, parse_check_addr, parse_observe, parse_on_error
from .model import Bind, Check, Observe, OnError, Server, SocketPerms
from .values import parse_group, parse_int, parse_mode, parse_time, parse_user


@dataclass(frozen=True)
class Option:
    """A server or bind option: its value parser and status."""

    name: str
    takes_value: bool
    help: str
    status: str = IMPLEMENTED
    parse: Optional[Callable[[str], object]] = None


def unknown_option(where: str, word: str, table: Dict[str, Option]) -> ConfigError:
    import difflib

    close = difflib.get_close_matches(word, list(table), n=1)
    hint = (
        f"did you mean '{close[0]}'?"
        if close
        else f"known {where} options: " + ", ".join(sorted(table))
    )
    return ConfigError(f"unknown {where} option '{word}'", keyword=word, hint=hint)


def _one_of(value: str, word: str, *allowed: str) -> str:
    if value not in allowed:
        raise ConfigError(
            f"'{word}' expects {' or '.join(allowed)}, got '{value}'", hint=f"{word} {allowed[0]}"
        )
    return value


def _weight(v: str) -> int:
    return parse_int(v, "weight", 0, 256)


SERVER_OPTIONS: Dict[str, Option] = {
    o.name: o
    for o in [
        Option(
            "weight",
            True,
            "weight <0..256>: share of the traffic (0: none, shown as drain)",
            parse=_weight,
        ),
        Option("backup", False, "backup: used only when no active server is usable"),
        Option("disabled", False, "disabled: start in maintenance"),
        Option("enabled", False, "enabled: start ready (the default)"),
        Option(
            "maxconn",
            True,
            "maxconn <n>: concurrent streams; beyond, they wait in the backend queue",
            parse=lambda v: parse_int(v, "maxconn"),
        ),
        Option(
            "maxqueue",
            True,
            "maxqueue <n>: waiting streams this server may account for",
            parse=lambda v: parse_int(v, "maxqueue"),
        ),
        Option(
            "id",
            True,
            "id <n>: a forced numeric id (used by 'balance first')",
            parse=lambda v: parse_int(v, "id", 1),
        ),
        Option("check", False, "check: enable health checks"),
        Option("no-check", False, "no-check: disable health checks"),
        Option(
            "inter",
            True,
            "inter <time>: check interval (2s)",
            IMPLEMENTED,
            check_interval("inter"),
        ),
        Option(
            "fastinter",
            True,
            "fastinter <time>: interval while changing state",
            IMPLEMENTED,
            check_interval("fastinter"),
        ),
        Option(
            "downinter",
            True,
            "downinter <time>: interval while down",
            IMPLEMENTED,
            check_interval("downinter"),
        ),
        Option(
            "rise",
            True,
            "rise <n>: successes to go up (2)",
            IMPLEMENTED,
            lambda v: parse_int(v, "rise", 1),
        ),
        Option(
            "fall",
            True,
            "fall <n>: failures to go down (3)",
            IMPLEMENTED,
            lambda v: parse_int(v, "fall", 1),
        ),
        Option(
            "port",
            True,
            "port <n>: check port (TCP servers)",
            IMPLEMENTED,
            lambda v: parse_int(v, "port", 1, 65535),
        ),
        Option(
            "addr", True, "addr <ip>: check address (TCP servers)", IMPLEMENTED, parse_check_addr
        ),
        Option(
            "observe",
            True,
            "observe layer4|layer7: passive health (none)",
            IMPLEMENTED,
            parse_observe,
        ),
        Option(
            "error-limit",
            True,
            "error-limit <n>: consecutive observed errors that trigger on-error (10)",
            IMPLEMENTED,
            lambda v: parse_int(v, "error-limit", 1),
        ),
        Option(
            "on-error",
            True,
            "on-error fastinter|fail-check|sudden-death|mark-down: what error-limit triggers "
            "(fail-check)",
            IMPLEMENTED,
            parse_on_error,
        ),
        Option(
            "slowstart",
            True,
            "slowstart <time>: ramp the weight up after coming back (STARTING)",
            IMPLEMENTED,
            parse_time,
        ),
        Option(
            "on-marked-down",
            True,
            "on-marked-down shutdown-sessions: end the server's streams when it goes DOWN",
            parse=lambda v: _one_of(v, "on-marked-down", "shutdown-sessions"),
        ),
        Option(
            "on-marked-up",
            True,
            "on-marked-up shutdown-backup-sessions: end the backups' streams when it comes UP",
            parse=lambda v: _one_of(v, "on-marked-up", "shutdown-backup-sessions"),
        ),
        Option("send-proxy", False, "send-proxy: send a PROXY v1 header", "PROXY protocol"),
        Option("send-proxy-v2", False, "send-proxy-v2: send a PROXY v2 header", "PROXY protocol"),
        Option("ssl", False, "ssl: TLS to the server", "TLS"),
        Option("verify", True, "verify none|required", "TLS"),
        Option("ca-file", True, "ca-file <file>", "TLS"),
        Option("sni", True, "sni <expr>", "TLS"),
        Option(
            "pool-purge-delay",
            True,
            "pool-purge-delay <time>: idle server connection lifetime",
            IMPLEMENTED,
            parse_time,
        ),
        Option(
            "pool-max-conn",
            True,
            "pool-max-conn <n>: idle connections kept",
            IMPLEMENTED,
            lambda v: parse_int(v, "pool-max-conn", -1),
        ),
        Option(
            "pool-low-conn",
            True,
            "pool-low-conn <n>: idle connections kept beyond what recent traffic needed "
            "(one thread: nothing to steal from)",
            IMPLEMENTED,
            lambda v: parse_int(v, "pool-low-conn", 0),
        ),
        # udsproxy extension: expected owner and mode of the backend's socket file.
        Option(
            "mode",
            True,
            "mode <octal>: expected permission bits of the socket file (udsproxy)",
            parse=parse_mode,
        ),
        Option(
            "uid",
            True,
            "uid <n>: expected owner of the socket file (udsproxy)",
            parse=lambda v: parse_int(v, "uid"),
        ),
        Option(
            "gid",
            True,
            "gid <n>: expected group of the socket file (udsproxy)",
            parse=lambda v: parse_int(v, "gid"),
        ),
        Option(
            "user",
            True,
            "user <name>: expected owner of the socket file (udsproxy)",
            parse=parse_user,
        ),
        Option(
            "group",
            True,
            "group <name>: expected group of the socket file (udsproxy)",
            parse=parse_group,
        ),
    ]
}
PERM_SERVER_OPTIONS = ("mode", "uid", "gid", "user", "group")

BIND_OPTIONS: Dict[str, Option] = {
    o.name: o
    for o in [
        Option("mode", True, "mode <octal>: permission bits of the socket file"),
        Option("uid", True, "uid <n>: owner of the socket file"),
        Option("gid", True, "gid <n>: group of the socket file"),
        Option("user", True, "user <name>: owner of the socket file"),
        Option("group", True, "group <name>: group of the socket file"),
        Option("name", True, "name <name>: the listener's name in logs and stats"),
        Option("accept-proxy", False, "accept-proxy: read a PROXY header", "PROXY protocol"),
        Option("ssl", False, "ssl: terminate TLS", "TLS"),
        Option("crt", True, "crt <file>: certificate", "TLS"),
        Option("alpn", True, "alpn <list>", "TLS"),
    ]
}


def apply_server_option(opts: Dict[str, object], word: str, value: str) -> None:
    """Store one server option (already known to exist) into an options dict."""
    opt = SERVER_OPTIONS[word]
    if word == "no-check":
        opts["check"] = False
        return
    if not opt.takes_value:
        opts[word] = True
        if word == "enabled":
            opts["disabled"] = False
        return
    opts[word] = opt.parse(value) if opt.parse else value
    if word in PERM_SERVER_OPTIONS:
        opts.setdefault("_perm_words", [])
        opts["_perm_words"] = list(opts["_perm_words"]) + [word]  # type: ignore[call-overload]


def parse_server_options(args: List[str], opts: Dict[str, object]) -> List[str]:
    """Parse server options into ``opts``; return the names of planned options used."""
    planned: List[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        opt = SERVER_OPTIONS.get(word)
        if opt is None:
            raise unknown_option("server", word, SERVER_OPTIONS)
        value = ""
        if opt.takes_value:
            if i + 1 >= len(args):
                raise ConfigError(
                    f"server option '{word}' needs a value", keyword=word, hint=opt.help
                )
            value = args[i + 1]
        try:
            apply_server_option(opts, word, value)
        except ConfigError as exc:
            exc.keyword = exc.keyword or word
            raise
        if opt.status != IMPLEMENTED:
            planned.append(word)
        i += 2 if opt.takes_value else 1
    return planned


def server_from_options(
    name: str, address: model.Address, opts: Dict[str, object], lineno: int
) -> Server:
    """Build a frozen Server from its merged option dict."""
    inter = int(opts.get("inter", 2000))  # type: ignore[call-overload]
    check = Check(
        enabled=bool(opts.get("check", False)),
        inter=inter,
        fastinter=opts.get("fastinter"),  # type: ignore[arg-type]
        downinter=opts.get("downinter"),  # type: ignore[arg-type]
        rise=int(opts.get("rise", 2)),  # type: ignore[call-overload]
        fall=int(opts.get("fall", 3)),  # type: ignore[call-overload]
        port=opts.get("port"),  # type: ignore[arg-type]
        addr=opts.get("addr"),  # type: ignore[arg-type]
        observe=opts.get("observe", Observe.NONE),  # type: ignore[arg-type]
        error_limit=int(opts.get("error-limit", 10)),  # type: ignore[call-overload]
        on_error=opts.get("on-error", OnError.FAIL_CHECK),  # type: ignore[arg-type]
        slowstart=int(opts.get("slowstart", 0)),  # type: ignore[call-overload]
    )
    perms = SocketPerms(
        mode=opts.get("mode"),  # type: ignore[arg-type]
        uid=opts.get("uid", opts.get("user")),  # type: ignore[arg-type]
        gid=opts.get("gid", opts.get("group")),  # type: ignore[arg-type]
    )
    return Server(
        name=name,
        address=address,
        weight=int(opts.get("weight", 1)),  # type: ignore[call-overload]
        backup=bool(opts.get("backup", False)),
        disabled=bool(opts.get("disabled", False)),
        maxconn=int(opts.get("maxconn", 0)),  # type: ignore[call-overload]
        maxqueue=int(opts.get("maxqueue", 0)),  # type: ignore[call-overload]
        id=opts.get("id"),  # type: ignore[arg-type]
        check=check,
        expect_perms=perms,
        pool_purge_delay=int(opts.get("pool-purge-delay", 5000)),  # type: ignore[call-overload]
        pool_max_conn=int(opts.get("pool-max-conn", -1)),  # type: ignore[call-overload]
        pool_low_conn=int(opts.get("pool-low-conn", 0)),  # type: ignore[call-overload]
        send_proxy=bool(opts.get("send-proxy", False)),
        send_proxy_v2=bool(opts.get("send-proxy-v2", False)),
        on_marked_down=str(opts.get("on-marked-down", "")),
        on_marked_up=str(opts.get("on-marked-up", "")),
        lineno=lineno,
    )


def p_server(ctx: Context, args: List[str]) -> None:
    usage = "server <name> <address> [options...]"
    need(args, 2, usage)
    name = args[0]
    addrs = parse_address(args[1], for_bind=False)
    opts = dict(ctx.px.default_server)
    opts.pop("_perm_words", None)
    planned = parse_server_options(args[2:], opts)
    if any(w in PERM_SERVER_OPTIONS for w in args[2::1]):
        if not addrs[0].is_unix or addrs[0].family != model.UNIX:
            bad = next(w for w in args[2:] if w in PERM_SERVER_OPTIONS)
            raise ConfigError(
                f"'{bad}' on a server line describes the socket file, but '{args[1]}' is not a "
                "socket file",
                keyword=bad,
                hint="remove it, or point the server at a unix socket path",
            )
        ctx.extensions.append("socket owner/mode options on a server line")
    for word in planned:
        ctx.px.planned.append((f"server {word}", ()))
    ctx.px.servers.append(server_from_options(name, addrs[0], opts, ctx.lineno))


def p_default_server(ctx: Context, args: List[str]) -> None:
    planned = parse_server_options(args, ctx.px.default_server)
    if any(w in PERM_SERVER_OPTIONS for w in args):
        raise ConfigError(
            "socket owner/mode options belong on each server line, not on default-server",
            hint="move them to the server lines",
        )
    for word in planned:
        ctx.px.planned.append((f"default-server {word}", ()))


def p_bind(ctx: Context, args: List[str]) -> None:
    usage = "bind <address>[,<address>...] [mode <m>] [user <u>] [group <g>] [uid <n>] [gid <n>]"
    need(args, 1, usage)
    addrs = parse_address(args[0], for_bind=True)
    perms = SocketPerms()
    name = ""
    i = 1
    opts = args[1:]
    perm_words: List[str] = []
    while i - 1 < len(opts):
        word = opts[i - 1]
        opt = BIND_OPTIONS.get(word)
        if opt is None:
            raise unknown_option("bind", word, BIND_OPTIONS)
        value = ""
        if opt.takes_value:
            if i >= len(opts):
                raise ConfigError(f"bind option '{word}' needs a value", hint=opt.help)
            value = opts[i]
        if word in ("mode", "uid", "gid", "user", "group"):
            perm_words += [word, value]
        elif word == "name":
            name = value
        elif opt.status != IMPLEMENTED:
            ctx.px.planned.append((f"bind {word}", (value,) if value else ()))
        i += 2 if opt.takes_value else 1
    perms, _ = perm_options(perm_words, usage)
    for addr in addrs:
        ctx.px.binds.append(Bind(addr, perms, name=name, lineno=ctx.lineno))
