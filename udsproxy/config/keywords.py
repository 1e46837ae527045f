"""The keyword tables: every config word udsproxy knows, with its parser, help and status.

One row per keyword (section keywords, server options, bind options). A row's ``status``
is ``IMPLEMENTED`` or the name of the area that will make it active ("health checks",
"TLS", ...): such keywords are parsed and validated now, and the process says once
at start what is not active yet. Words in no table are refused with a did-you-mean hint.
The README's keyword list is generated from these tables (``udsproxy.config.docs``).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ..errors import ConfigError
from . import model
from .address import parse_address
from .model import (
    Balance,
    Bind,
    Check,
    ForwardFor,
    LogTarget,
    Redispatch,
    Server,
    SocketPerms,
    StatsSocket,
    Timeouts,
)
from .values import parse_group, parse_int, parse_mode, parse_time, parse_user

IMPLEMENTED = "implemented"
HTTP_REUSE_MODES = ("never", "safe", "aggressive", "always")
# Areas that will activate planned keywords, and what happens until they do.
PLANNED_AREAS: Dict[str, str] = {
    "health checks": "servers count as always up until health checks land",
    "stats socket": "the stats socket answers 'Unknown command.' to every command meanwhile",
    "reload": "it has no effect until reload support lands",
    "TLS": "it has no effect until TLS lands; traffic stays clear text",
    "routing": "requests go to the default_backend until ACL routing lands",
    "header rules": "headers pass unchanged until header rules land",
    "PROXY protocol": "no PROXY header is read or sent until the PROXY protocol lands",
    "TCP keep-alive": "no SO_KEEPALIVE is set until TCP keep-alive lands",
}

GLOBAL, DEFAULTS, FRONTEND, BACKEND, LISTEN = "global", "defaults", "frontend", "backend", "listen"
PROXY_SECTIONS = (DEFAULTS, FRONTEND, BACKEND, LISTEN)
LOG_FACILITIES = (
    "kern user mail daemon auth syslog lpr news uucp cron auth2 ftp ntp audit alert cron2 "
    "local0 local1 local2 local3 local4 local5 local6 local7"
).split()
LOG_LEVELS = "emerg alert crit err warning notice info debug".split()
TIMEOUT_NAMES = {
    "connect": "connect",
    "client": "client",
    "server": "server",
    "queue": "queue",
    "tunnel": "tunnel",
    "client-fin": "client_fin",
    "server-fin": "server_fin",
    "http-request": "http_request",
    "http-keep-alive": "http_keep_alive",
    "check": "check",
    "tarpit": "tarpit",
}
TIMEOUT_SECTIONS = {
    "connect": "dbl",
    "server": "dbl",
    "queue": "dbl",
    "tunnel": "dbl",
    "server-fin": "dbl",
    "check": "dbl",
    "client": "dfl",
    "client-fin": "dfl",
    "http-request": "dfbl",
    "http-keep-alive": "dfbl",
    "tarpit": "dfbl",
}
SECTION_LETTERS = {"g": GLOBAL, "d": DEFAULTS, "f": FRONTEND, "b": BACKEND, "l": LISTEN}


@dataclass
class ProxyBuilder:
    """The mutable fields of a proxy while its section is parsed; frozen by ``build``."""

    name: str
    kind: str
    filename: str = ""
    lineno: int = 0
    fields: Dict[str, object] = field(default_factory=dict)
    options: Dict[str, bool] = field(default_factory=dict)
    timeouts: Dict[str, int] = field(default_factory=dict)
    binds: List[Bind] = field(default_factory=list)
    servers: List[Server] = field(default_factory=list)
    default_server: Dict[str, object] = field(default_factory=dict)
    logs: Optional[List[LogTarget]] = None  # None: inherit; [] after "no log"
    log_global: bool = False
    planned: List[Tuple[str, Tuple[str, ...]]] = field(default_factory=list)

    def inherit(self, name: str, kind: str, filename: str, lineno: int) -> ProxyBuilder:
        """A new proxy section starting from this defaults section's settings."""
        return ProxyBuilder(
            name=name,
            kind=kind,
            filename=filename,
            lineno=lineno,
            fields=dict(self.fields),
            options=dict(self.options),
            timeouts=dict(self.timeouts),
            default_server=dict(self.default_server),
            logs=None if self.logs is None else list(self.logs),
            log_global=self.log_global,
            planned=list(self.planned),
        )

    def build(self, global_logs: Tuple[LogTarget, ...]) -> model.Proxy:
        logs: Tuple[LogTarget, ...] = tuple(self.logs or ())
        if self.log_global:
            logs = global_logs + logs
        f = self.fields
        return model.Proxy(
            name=self.name,
            kind=self.kind,
            mode=str(f.get("mode", "tcp")),
            binds=tuple(self.binds),
            servers=tuple(self.servers),
            balance=f.get("balance", Balance()),  # type: ignore[arg-type]
            maxconn=f.get("maxconn"),  # type: ignore[arg-type]
            fullconn=f.get("fullconn"),  # type: ignore[arg-type]
            backlog=f.get("backlog"),  # type: ignore[arg-type]
            timeouts=Timeouts(**self.timeouts),
            retries=int(f.get("retries", 3)),  # type: ignore[call-overload]
            redispatch=f.get("redispatch", Redispatch())  # type: ignore[arg-type]
            if self.options.get("redispatch")
            else Redispatch(),
            options=tuple(sorted(k for k, v in self.options.items() if v)),
            logs=logs,
            default_backend=f.get("default_backend"),  # type: ignore[arg-type]
            id=f.get("id"),  # type: ignore[arg-type]
            forwardfor=f.get("forwardfor") if self.options.get("forwardfor") else None,  # type: ignore[arg-type]
            http_reuse=str(f.get("http-reuse", "safe")),
            errorfiles=f.get("errorfiles", ()),  # type: ignore[arg-type]
            planned=tuple(self.planned),
            filename=self.filename,
            lineno=self.lineno,
        )


@dataclass
class GlobalBuilder:
    """The mutable fields of the global section while it is parsed."""

    fields: Dict[str, object] = field(default_factory=dict)
    logs: List[LogTarget] = field(default_factory=list)
    stats_sockets: List[StatsSocket] = field(default_factory=list)
    unix_bind_perms: SocketPerms = SocketPerms()

    def build(self) -> model.Global:
        f = self.fields
        return model.Global(
            maxconn=f.get("maxconn"),  # type: ignore[arg-type]
            uid=f.get("uid"),  # type: ignore[arg-type]
            gid=f.get("gid"),  # type: ignore[arg-type]
            user=f.get("user"),  # type: ignore[arg-type]
            logs=tuple(self.logs),
            unix_bind_prefix=str(f.get("unix_bind_prefix", "")),
            unix_bind_perms=self.unix_bind_perms,
            stats_sockets=tuple(self.stats_sockets),
            stats_timeout=int(f.get("stats_timeout", 10000)),  # type: ignore[call-overload]
            stats_maxconn=int(f.get("stats_maxconn", 10)),  # type: ignore[call-overload]
            bufsize=int(f.get("tune.bufsize", 16384)),  # type: ignore[call-overload]
            maxrewrite=int(f.get("tune.maxrewrite", 1024)),  # type: ignore[call-overload]
            http_maxhdr=int(f.get("tune.http.maxhdr", 101)),  # type: ignore[call-overload]
        )


@dataclass
class Context:
    """What a keyword handler sees: the section being built and where the line is."""

    section: str
    glob: GlobalBuilder
    proxy: Optional[ProxyBuilder]
    filename: str
    lineno: int
    negated: bool = False
    warnings: List[str] = field(default_factory=list)
    extensions: List[str] = field(default_factory=list)  # "not portable to HAProxy" kinds

    @property
    def px(self) -> ProxyBuilder:
        assert self.proxy is not None
        return self.proxy


Handler = Callable[[Context, List[str]], None]


@dataclass(frozen=True)
class Keyword:
    """One config keyword: where it is allowed, how it is parsed, its help and status."""

    words: str
    sections: str  # letters of SECTION_LETTERS
    handler: Handler
    help: str
    status: str = IMPLEMENTED
    negatable: bool = False

    def allowed_in(self, section: str) -> bool:
        return any(SECTION_LETTERS[c] == section for c in self.sections)

    @property
    def section_names(self) -> List[str]:
        return [SECTION_LETTERS[c] for c in self.sections]


# --------------------------------------------------------------------------- helpers


def _need(args: List[str], count: int, usage: str) -> None:
    if len(args) < count:
        raise ConfigError("missing argument", hint=f"usage: {usage}")


def _no_more(args: List[str], count: int, usage: str) -> None:
    if len(args) > count:
        raise ConfigError(f"unexpected word '{args[count]}'", hint=f"usage: {usage}")


def _planned(ctx: Context, words: str, args: List[str]) -> None:
    """Record a planned keyword's words for the feature that will use them."""
    if ctx.proxy is not None:
        ctx.px.planned.append((words, tuple(args)))


def _int_field(name: str, what: str, lo: int = 0, hi: Optional[int] = None) -> Handler:
    def handle(ctx: Context, args: List[str]) -> None:
        _need(args, 1, f"{what} <number>")
        _no_more(args, 1, f"{what} <number>")
        target = ctx.glob.fields if ctx.section == GLOBAL else ctx.px.fields
        target[name] = parse_int(args[0], what, lo, hi)

    return handle


def parse_log(args: List[str], usage: str) -> LogTarget:
    """``log <target> [len <n>] [format <fmt>] <facility> [<level> [<minlevel>]]``."""
    _need(args, 2, usage)
    target = args[0]
    rest = args[1:]
    fmt = ""
    length = 1024
    while rest and rest[0] in ("len", "format", "sample"):
        if len(rest) < 2:
            raise ConfigError(f"'{rest[0]}' needs a value", hint=f"usage: {usage}")
        if rest[0] == "format":
            fmt = rest[1]
            if fmt not in (
                "raw",
                "rfc3164",
                "rfc5424",
                "short",
                "priority",
                "iso",
                "timed",
                "local",
            ):
                raise ConfigError(
                    f"unknown log format '{fmt}'",
                    hint="use raw, rfc3164, rfc5424, short, priority, iso, timed or local",
                )
        elif rest[0] == "len":
            length = parse_int(rest[1], "log len", 80, 65535)
        else:
            raise ConfigError("'sample' in log lines is not supported", hint="remove it")
        rest = rest[2:]
    if not rest:
        raise ConfigError("missing log facility", hint=f"usage: {usage}")
    facility = rest[0]
    if facility not in LOG_FACILITIES:
        raise ConfigError(
            f"unknown log facility '{facility}'", hint="use one of " + ", ".join(LOG_FACILITIES)
        )
    levels = rest[1:]
    if len(levels) > 2:
        raise ConfigError(f"unexpected word '{levels[2]}'", hint=f"usage: {usage}")
    for lvl in levels:
        if lvl not in LOG_LEVELS:
            raise ConfigError(
                f"unknown log level '{lvl}'", hint="use one of " + ", ".join(LOG_LEVELS)
            )
    from ..log.targets import parse_target

    try:
        parse_target(target)
    except ValueError as exc:
        raise ConfigError(
            f"invalid log target '{target}': {exc}",
            hint="use stdout, stderr, /dev/log, a unix datagram socket path, ip:port or fd@N",
        ) from None
    return LogTarget(
        target=target,
        facility=facility,
        level=levels[0] if levels else "debug",
        min_level=levels[1] if len(levels) > 1 else "",
        format=fmt or "local",
        length=length,
    )


# --------------------------------------------------------------------------- global


def _g_user(ctx: Context, args: List[str]) -> None:
    _need(args, 1, "user <name>")
    _no_more(args, 1, "user <name>")
    ctx.glob.fields["uid"] = parse_user(args[0])
    ctx.glob.fields["user"] = args[0]


def _g_group(ctx: Context, args: List[str]) -> None:
    _need(args, 1, "group <name>")
    _no_more(args, 1, "group <name>")
    ctx.glob.fields["gid"] = parse_group(args[0])


def _g_log(ctx: Context, args: List[str]) -> None:
    usage = "log <target> [len <n>] [format <fmt>] <facility> [<level> [<minlevel>]]"
    ctx.glob.logs.append(replace(parse_log(args, usage), lineno=ctx.lineno))


def _perm_options(
    args: List[str], usage: str, extra: Tuple[str, ...] = ()
) -> Tuple[SocketPerms, Dict[str, str]]:
    """Parse ``mode/uid/gid/user/group`` pairs (and ``extra`` words) from a word list."""
    perms = SocketPerms()
    other: Dict[str, str] = {}
    i = 0
    while i < len(args):
        word = args[i]
        if i + 1 >= len(args):
            raise ConfigError(f"'{word}' needs a value", hint=f"usage: {usage}")
        value = args[i + 1]
        if word == "mode":
            perms = replace(perms, mode=parse_mode(value))
        elif word in ("uid", "gid"):
            num = parse_int(value, word)
            perms = replace(perms, **{word: num})
        elif word == "user":
            perms = replace(perms, uid=parse_user(value))
        elif word == "group":
            perms = replace(perms, gid=parse_group(value))
        elif word in extra:
            other[word] = value
        else:
            raise ConfigError(f"unknown option '{word}'", hint=f"usage: {usage}")
        i += 2
    return perms, other


def _g_unix_bind(ctx: Context, args: List[str]) -> None:
    usage = "unix-bind [prefix <p>] [mode <m>] [user <u>] [uid <n>] [group <g>] [gid <n>]"
    perms, other = _perm_options(args, usage, extra=("prefix",))
    ctx.glob.unix_bind_perms = perms
    if "prefix" in other:
        ctx.glob.fields["unix_bind_prefix"] = other["prefix"]


def _g_stats(ctx: Context, args: List[str]) -> None:
    _need(args, 1, "stats socket|timeout|maxconn ...")
    sub, rest = args[0], args[1:]
    if sub == "socket":
        usage = "stats socket <path> [mode <m>] [user <u>] [group <g>] [level user|operator|admin]"
        _need(rest, 1, usage)
        addrs = parse_address(rest[0], for_bind=True)
        if len(addrs) != 1 or not addrs[0].is_unix:
            raise ConfigError(
                f"stats socket '{rest[0]}' must be a unix socket",
                hint="write a path such as /run/udsproxy/admin.sock",
            )
        opts = rest[1:]
        level = "operator"
        perm_words: List[str] = []
        i = 0
        while i < len(opts):
            word = opts[i]
            if word == "level":
                if i + 1 >= len(opts) or opts[i + 1] not in ("user", "operator", "admin"):
                    raise ConfigError(
                        "'level' expects user, operator or admin", hint=f"usage: {usage}"
                    )
                level = opts[i + 1]
                i += 2
            elif word == "expose-fd":
                if i + 1 >= len(opts) or opts[i + 1] != "listeners":
                    raise ConfigError("'expose-fd' expects 'listeners'")
                ctx.warnings.append(
                    "'expose-fd listeners' has no effect until reload support lands"
                )
                i += 2
            elif word in ("process", "thread"):
                ctx.warnings.append(f"'{word}' ignored: udsproxy runs one reactor")
                i += 2
            else:
                perm_words.extend(opts[i : i + 2])
                i += 2
        perms, _ = _perm_options(perm_words, usage)
        ctx.glob.stats_sockets.append(
            StatsSocket(Bind(addrs[0], perms, lineno=ctx.lineno), level=level, lineno=ctx.lineno)
        )
    elif sub == "timeout":
        _need(rest, 1, "stats timeout <time>")
        ctx.glob.fields["stats_timeout"] = parse_time(rest[0])
    elif sub == "maxconn":
        _need(rest, 1, "stats maxconn <n>")
        ctx.glob.fields["stats_maxconn"] = parse_int(rest[0], "stats maxconn", 1)
    else:
        raise ConfigError(
            f"unknown 'stats {sub}' in global",
            hint="global accepts 'stats socket', 'stats timeout' and 'stats maxconn'",
        )


def _twistd_owned(equivalent: str) -> Handler:
    def handle(ctx: Context, args: List[str]) -> None:
        ctx.warnings.append(f"accepted but owned by twistd: {equivalent}")

    return handle


def _refuse(message: str, hint: str) -> Handler:
    def handle(ctx: Context, args: List[str]) -> None:
        raise ConfigError(message, hint=hint)

    return handle


def _planned_global(words: str) -> Handler:
    def handle(ctx: Context, args: List[str]) -> None:
        pass

    return handle


def _g_tune_int(name: str, lo: int, hi: int) -> Handler:
    def handle(ctx: Context, args: List[str]) -> None:
        _need(args, 1, f"{name} <number>")
        ctx.glob.fields[name] = parse_int(args[0], name, lo, hi)

    return handle


# --------------------------------------------------------------------------- proxies


def _p_mode(ctx: Context, args: List[str]) -> None:
    _need(args, 1, "mode tcp|http|unix")
    _no_more(args, 1, "mode tcp|http|unix")
    if args[0] not in ("tcp", "http", "unix"):
        hint = "use tcp or http" + (
            " ('health' mode was removed from HAProxy; use 'monitor-uri')"
            if args[0] == "health"
            else ""
        )
        raise ConfigError(f"unknown mode '{args[0]}'", hint=hint)
    if args[0] == "unix":
        ctx.extensions.append("'mode unix'")
    ctx.px.fields["mode"] = args[0]


def _p_bind(ctx: Context, args: List[str]) -> None:
    usage = "bind <address>[,<address>...] [mode <m>] [user <u>] [group <g>] [uid <n>] [gid <n>]"
    _need(args, 1, usage)
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
            raise _unknown_option("bind", word, BIND_OPTIONS)
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
    perms, _ = _perm_options(perm_words, usage)
    for addr in addrs:
        ctx.px.binds.append(Bind(addr, perms, name=name, lineno=ctx.lineno))


@dataclass(frozen=True)
class Option:
    """A server or bind option: its value parser and status."""

    name: str
    takes_value: bool
    help: str
    status: str = IMPLEMENTED
    parse: Optional[Callable[[str], object]] = None


def _unknown_option(where: str, word: str, table: Dict[str, Option]) -> ConfigError:
    import difflib

    close = difflib.get_close_matches(word, list(table), n=1)
    hint = (
        f"did you mean '{close[0]}'?"
        if close
        else f"known {where} options: " + ", ".join(sorted(table))
    )
    return ConfigError(f"unknown {where} option '{word}'", keyword=word, hint=hint)


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
        Option("check", False, "check: enable health checks", status="health checks"),
        Option("no-check", False, "no-check: disable health checks", status="health checks"),
        Option("inter", True, "inter <time>: check interval (2s)", "health checks", parse_time),
        Option(
            "fastinter",
            True,
            "fastinter <time>: interval while changing state",
            "health checks",
            parse_time,
        ),
        Option(
            "downinter", True, "downinter <time>: interval while down", "health checks", parse_time
        ),
        Option(
            "rise",
            True,
            "rise <n>: successes to go up (2)",
            "health checks",
            lambda v: parse_int(v, "rise", 1),
        ),
        Option(
            "fall",
            True,
            "fall <n>: failures to go down (3)",
            "health checks",
            lambda v: parse_int(v, "fall", 1),
        ),
        Option(
            "port",
            True,
            "port <n>: check port",
            "health checks",
            lambda v: parse_int(v, "port", 1, 65535),
        ),
        Option("addr", True, "addr <ip>: check address", "health checks"),
        Option("observe", True, "observe layer4|layer7: passive health", "health checks"),
        Option(
            "error-limit",
            True,
            "error-limit <n>",
            "health checks",
            lambda v: parse_int(v, "error-limit", 1),
        ),
        Option("on-error", True, "on-error <action>", "health checks"),
        Option(
            "slowstart",
            True,
            "slowstart <time>: ramp weight up after coming back",
            "health checks",
            parse_time,
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
            raise _unknown_option("server", word, SERVER_OPTIONS)
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
        lineno=lineno,
    )


def _p_server(ctx: Context, args: List[str]) -> None:
    usage = "server <name> <address> [options...]"
    _need(args, 2, usage)
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


def _p_default_server(ctx: Context, args: List[str]) -> None:
    planned = parse_server_options(args, ctx.px.default_server)
    if any(w in PERM_SERVER_OPTIONS for w in args):
        raise ConfigError(
            "socket owner/mode options belong on each server line, not on default-server",
            hint="move them to the server lines",
        )
    for word in planned:
        ctx.px.planned.append((f"default-server {word}", ()))


def _p_balance(ctx: Context, args: List[str]) -> None:
    usage = "balance roundrobin|static-rr|leastconn|first|source|random[(<draws>)]|uri|url_param|hdr(<name>)"
    _need(args, 1, usage)
    algo = args[0]
    draws = 2
    m = re.fullmatch(r"random(?:\((\d+)\))?", algo)
    if m:
        draws = parse_int(m.group(1), "random draws", 1) if m.group(1) else 2
        algo = "random"
        _no_more(args, 1, usage)
    elif algo in ("roundrobin", "static-rr", "leastconn", "first", "source"):
        _no_more(args, 1, usage)
    elif algo == "uri":
        parse_uri_options(args[1:])
    elif algo == "url_param":
        _check_url_param(ctx, args[1:])
    elif algo.startswith("hdr("):
        _check_hdr(algo, args[1:])
    elif algo in ("rdp-cookie", "hash") or algo.startswith(("rdp-cookie(", "hash")):
        raise ConfigError(
            f"'balance {algo}' is not supported",
            hint="use source, uri, url_param or hdr(<name>) hashing",
        )
    else:
        import difflib

        known = [
            "roundrobin",
            "static-rr",
            "leastconn",
            "first",
            "source",
            "random",
            "uri",
            "url_param",
            "hdr",
        ]
        close = difflib.get_close_matches(algo, known, n=1)
        raise ConfigError(
            f"unknown balance algorithm '{algo}'",
            hint=f"did you mean '{close[0]}'?" if close else "use one of " + ", ".join(known),
        )
    old: Balance = ctx.px.fields.get("balance", Balance())  # type: ignore[assignment]
    ctx.px.fields["balance"] = replace(old, algorithm=algo, args=tuple(args[1:]), draws=draws)


URI_OPTIONS = ("len", "depth", "whole", "path-only")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class UriOptions(NamedTuple):
    """``balance uri [len <n>] [depth <n>] [whole] [path-only]`` (0: no len / depth)."""

    length: int = 0
    depth: int = 0
    whole: bool = False
    path_only: bool = False


def parse_uri_options(words: Sequence[str]) -> UriOptions:
    """``balance uri`` options, as HAProxy checks them (len and depth: positive integers).

    Checked here when the config is parsed; the HTTP layer reads them with the same function.
    """
    usage = "balance uri [len <n>] [depth <n>] [whole] [path-only]"
    length = depth = 0
    whole = path_only = False
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("len", "depth"):
            if i + 1 >= len(words):
                raise ConfigError(
                    f"'balance uri {word}' expects a positive integer", hint=f"usage: {usage}"
                )
            value = parse_int(words[i + 1], f"balance uri {word}", 1)
            if word == "len":
                length = value
            else:
                depth = value
            i += 2
        elif word == "whole":
            whole = True
            i += 1
        elif word == "path-only":
            path_only = True
            i += 1
        else:
            import difflib

            close = difflib.get_close_matches(word, URI_OPTIONS, n=1)
            raise ConfigError(
                f"unknown 'balance uri' option '{word}'",
                hint=f"did you mean '{close[0]}'?" if close else f"usage: {usage}",
            )
    return UriOptions(length, depth, whole, path_only)


def _check_url_param(ctx: Context, words: List[str]) -> None:
    """``balance url_param <param> [check_post [<max_wait>]]``; max_wait is ignored."""
    usage = "balance url_param <param> [check_post]"
    _need(words, 1, usage)
    if len(words) > 1 and words[1] != "check_post":
        raise ConfigError(
            f"'balance url_param' only accepts 'check_post' after the parameter, got '{words[1]}'",
            hint=f"usage: {usage}",
        )
    if len(words) > 2:
        parse_int(words[2], "check_post <max_wait>", 0)
        _no_more(words, 3, usage)
        ctx.warnings.append(
            "'check_post <max_wait>' is ignored (as by HAProxy): the body is looked at "
            "up to min(Content-Length, tune.bufsize) bytes"
        )


def _check_hdr(algo: str, words: List[str]) -> None:
    """``balance hdr(<name>) [use_domain_only]``."""
    usage = "balance hdr(<name>) [use_domain_only]"
    m = re.fullmatch(r"hdr\((.*)\)", algo)
    if m is None or not m.group(1):
        raise ConfigError("'balance hdr' requires a header field name", hint=f"usage: {usage}")
    if not _HEADER_NAME.fullmatch(m.group(1)):
        raise ConfigError(f"'{m.group(1)}' is not a header field name", hint=f"usage: {usage}")
    if words and words[0] != "use_domain_only":
        raise ConfigError(
            f"'balance {algo}' only accepts 'use_domain_only', got '{words[0]}'",
            hint=f"usage: {usage}",
        )
    _no_more(words, 1, usage)


def _p_hash_type(ctx: Context, args: List[str]) -> None:
    usage = "hash-type map-based|consistent [sdbm|djb2|wt6|crc32|none] [avalanche]"
    _need(args, 1, usage)
    if args[0] not in ("map-based", "consistent"):
        raise ConfigError(f"unknown hash-type '{args[0]}'", hint=usage)
    fn = "sdbm"
    if len(args) > 1:
        if args[1] not in ("sdbm", "djb2", "wt6", "crc32", "none"):
            raise ConfigError(f"unknown hash function '{args[1]}'", hint=usage)
        fn = args[1]
    if len(args) > 2 and args[2] != "avalanche":
        raise ConfigError(f"unexpected word '{args[2]}'", hint=usage)
    old: Balance = ctx.px.fields.get("balance", Balance())  # type: ignore[assignment]
    ctx.px.fields["balance"] = replace(old, hash_type=args[0], hash_function=fn)


def _p_timeout(ctx: Context, args: List[str]) -> None:
    _need(args, 1, "timeout <name> <time>")
    name = args[0]
    key = TIMEOUT_NAMES.get(name)
    if key is None:
        import difflib

        close = difflib.get_close_matches(name, list(TIMEOUT_NAMES), n=1)
        raise ConfigError(
            f"unknown timeout '{name}'",
            keyword=f"timeout {name}",
            hint=f"did you mean 'timeout {close[0]}'?"
            if close
            else "known: " + ", ".join(TIMEOUT_NAMES),
        )
    letters = TIMEOUT_SECTIONS[name]
    if not any(SECTION_LETTERS[c] == ctx.section for c in letters):
        raise ConfigError(
            f"'timeout {name}' is not allowed in a {ctx.section} section",
            keyword=f"timeout {name}",
            hint="it belongs in " + ", ".join(SECTION_LETTERS[c] for c in letters),
        )
    _need(args, 2, f"timeout {name} <time>")
    _no_more(args, 2, f"timeout {name} <time>")
    ctx.px.timeouts[key] = parse_time(args[1])


def _p_retries(ctx: Context, args: List[str]) -> None:
    _need(args, 1, "retries <n>")
    ctx.px.fields["retries"] = parse_int(args[0], "retries", 0)


def _bool_option(name: str) -> Handler:
    def handle(ctx: Context, args: List[str]) -> None:
        _no_more(args, 0, f"option {name}")
        ctx.px.options[name] = not ctx.negated

    return handle


def _o_redispatch(ctx: Context, args: List[str]) -> None:
    _no_more(args, 1, "option redispatch [<interval>]")
    interval = -1
    if args:
        try:
            interval = int(args[0])
        except ValueError:
            raise ConfigError(
                "option redispatch expects an integer interval", hint="e.g. 1, -1"
            ) from None
    ctx.px.options["redispatch"] = not ctx.negated and interval != 0
    ctx.px.fields["redispatch"] = Redispatch(enabled=interval != 0, interval=interval)


def _o_httplog(ctx: Context, args: List[str]) -> None:
    if args and args != ["clf"]:
        raise ConfigError(f"unexpected word '{args[0]}'", hint="usage: option httplog [clf]")
    ctx.px.options["httplog"] = not ctx.negated


def _planned_option(words: str) -> Handler:
    def handle(ctx: Context, args: List[str]) -> None:
        ctx.px.options[words] = not ctx.negated
        if not ctx.negated:
            _planned(ctx, f"option {words}", args)

    return handle


def _o_forwardfor(ctx: Context, args: List[str]) -> None:
    usage = "option forwardfor [except <net>] [header <name>] [if-none]"
    ctx.px.options["forwardfor"] = not ctx.negated
    if ctx.negated:
        return
    header, except_net, if_none = "X-Forwarded-For", None, False
    words = list(args)
    while words:
        word = words.pop(0)
        if word == "if-none":
            if_none = True
        elif word in ("except", "header"):
            if not words:
                raise ConfigError(f"'{word}' needs a value", hint=f"usage: {usage}")
            value = words.pop(0)
            if word == "header":
                header = value
            else:
                try:
                    ipaddress.ip_network(value, strict=False)
                except ValueError:
                    raise ConfigError(
                        f"'{value}' is not a network", hint="e.g. except 127.0.0.0/8"
                    ) from None
                except_net = value
        else:
            raise ConfigError(f"unexpected word '{word}'", hint=f"usage: {usage}")
    ctx.px.fields["forwardfor"] = ForwardFor(header, except_net, if_none)


def _p_http_reuse(ctx: Context, args: List[str]) -> None:
    usage = "http-reuse never|safe|aggressive|always"
    _need(args, 1, usage)
    _no_more(args, 1, usage)
    if args[0] not in HTTP_REUSE_MODES:
        raise ConfigError(f"unknown http-reuse mode '{args[0]}'", hint=f"usage: {usage}")
    ctx.px.fields["http-reuse"] = args[0]


def _p_log(ctx: Context, args: List[str]) -> None:
    if ctx.negated:
        ctx.px.logs = []
        ctx.px.log_global = False
        return
    if args == ["global"]:
        ctx.px.log_global = True
        return
    usage = "log global | log <target> [format <fmt>] <facility> [<level> [<minlevel>]]"
    target = replace(parse_log(args, usage), lineno=ctx.lineno)
    ctx.px.logs = list(ctx.px.logs or []) + [target]


def _p_default_backend(ctx: Context, args: List[str]) -> None:
    _need(args, 1, "default_backend <backend>")
    _no_more(args, 1, "default_backend <backend>")
    ctx.px.fields["default_backend"] = args[0]


def _p_id(ctx: Context, args: List[str]) -> None:
    _need(args, 1, "id <n>")
    ctx.px.fields["id"] = parse_int(args[0], "id", 1)


def _planned_proxy(words: str, min_args: int = 0, usage: str = "") -> Handler:
    def handle(ctx: Context, args: List[str]) -> None:
        if len(args) < min_args:
            raise ConfigError("missing argument", hint=f"usage: {usage or words}")
        _planned(ctx, words, args)

    return handle


ERRORFILE_CODES = (
    200,
    400,
    401,
    403,
    404,
    405,
    407,
    408,
    410,
    413,
    425,
    429,
    500,
    501,
    502,
    503,
    504,
)


def _p_errorfile(ctx: Context, args: List[str]) -> None:
    usage = "errorfile <code> <file>"
    _need(args, 2, usage)
    _no_more(args, 2, usage)
    code = parse_int(args[0], "errorfile code")
    if code not in ERRORFILE_CODES:
        raise ConfigError(
            f"errorfile code {code} is not allowed",
            hint="allowed: " + " ".join(str(c) for c in ERRORFILE_CODES),
        )
    # HAProxy reads the file when it parses the line, with tune.bufsize as set so far.
    raw = ctx.glob.fields.get("tune.bufsize")
    bufsize = raw if isinstance(raw, int) else model.Global.bufsize
    data = read_errorfile(args[1], bufsize)
    old: Tuple[Tuple[int, bytes], ...] = ctx.px.fields.get("errorfiles", ())  # type: ignore[assignment]
    # A later line for the same code wins, also over one inherited from defaults.
    ctx.px.fields["errorfiles"] = tuple(sorted({**dict(old), code: data}.items()))


ERRORFILE_STATUS_LINE = re.compile(rb"HTTP/1\.[01] [0-9]{3}(?: [^\r\n]*)?\r?\n")
ERRORFILE_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
ERRORFILE_HINT = (
    "the file holds a whole response: a status line such as 'HTTP/1.0 503 Service "
    "Unavailable', header lines, an empty line, then the body"
)


def read_errorfile(path: str, bufsize: int) -> bytes:
    """An errorfile's bytes, refused as HAProxy refuses them at start.

    Readable, at most ``tune.bufsize`` bytes, and an HTTP/1.x response (status line, header
    lines, end of head, a body as long as its Content-Length says). An empty file is valid:
    the connection is then closed without a response.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(bufsize + 1)
    except OSError as exc:
        where = "" if os.path.isabs(path) else "; a relative path starts at the current directory"
        raise ConfigError(
            f"cannot read errorfile '{path}': {exc.strerror}",
            hint=f"check the path and permissions{where}",
        ) from None
    if len(data) > bufsize:
        raise ConfigError(
            f"errorfile '{path}' is too large: more than tune.bufsize ({bufsize} bytes)",
            hint="shorten the response, or raise tune.bufsize in the global section",
        )
    if data:
        problem = errorfile_problem(data)
        if problem:
            raise ConfigError(
                f"errorfile '{path}' is not an HTTP response: {problem}", hint=ERRORFILE_HINT
            )
    return data


def errorfile_problem(data: bytes) -> str:
    """What makes ``data`` no HTTP/1.x response, or "" (a light check, not a full parse)."""
    if ERRORFILE_STATUS_LINE.match(data) is None:
        return "it does not start with a status line 'HTTP/1.x <code> <reason>'"
    end = ERRORFILE_END_OF_HEAD.search(data)
    if end is None:
        return "its head has no end (an empty line after the header lines)"
    head, body = data[: end.start()], data[end.end() :]
    for line in head.split(b"\n")[1:]:
        name, colon, value = line.rstrip(b"\r").partition(b":")
        if not colon or not name or name != name.strip():
            return f"'{line.decode('latin-1').strip()}' is not a header field"
        if name.lower() == b"content-length":
            length = value.strip()
            if not length.isdigit():
                return f"invalid Content-Length '{length.decode('latin-1')}'"
            if int(length) != len(body):
                return f"Content-Length is {int(length)} but the body has {len(body)} bytes"
    return ""


# --------------------------------------------------------------------------- the table

K = Keyword
KEYWORDS: List[Keyword] = [
    # global
    K(
        "maxconn",
        "gdfl",
        _int_field("maxconn", "maxconn", 1),
        "maxconn <n>: most concurrent client connections (global, or per frontend); "
        "accepting pauses beyond it",
    ),
    K("user", "g", _g_user, "user <name>: drop privileges to this user after binding"),
    K("group", "g", _g_group, "group <name>: drop privileges to this group after binding"),
    K("uid", "g", _int_field("uid", "uid"), "uid <n>: drop privileges to this uid after binding"),
    K("gid", "g", _int_field("gid", "gid"), "gid <n>: drop privileges to this gid after binding"),
    K(
        "log",
        "gdfbl",
        lambda c, a: (_g_log if c.section == GLOBAL else _p_log)(c, a),
        "log <target> [format raw|rfc3164|rfc5424|short] <facility> [<level>]  |  log global",
        negatable=True,
    ),
    K(
        "unix-bind",
        "g",
        _g_unix_bind,
        "unix-bind [prefix <p>] [mode <m>] [user <u>] [group <g>]: defaults for unix bind lines",
    ),
    K(
        "stats",
        "g",
        _g_stats,
        "stats socket <path> [mode <m>] [user <u>] [group <g>] [level <l>]: the admin socket; "
        "stats timeout <time>; stats maxconn <n>",
    ),
    K(
        "daemon",
        "g",
        _twistd_owned("run twistd without -n to daemonize"),
        "daemon: owned by twistd (run without -n)",
    ),
    K(
        "pidfile",
        "g",
        _twistd_owned("use twistd --pidfile <file>"),
        "pidfile: owned by twistd (--pidfile)",
    ),
    K(
        "nbthread",
        "g",
        _twistd_owned("udsproxy runs one reactor; start several processes to use more cores"),
        "nbthread: udsproxy runs one reactor",
    ),
    K(
        "nbproc",
        "g",
        _twistd_owned("udsproxy runs one reactor; start several processes to use more cores"),
        "nbproc: udsproxy runs one reactor",
    ),
    K(
        "master-worker",
        "g",
        _twistd_owned("run twistd under systemd or another supervisor"),
        "master-worker: owned by twistd and your supervisor",
    ),
    K(
        "chroot",
        "g",
        _refuse(
            "chroot is not supported",
            "a chroot would hide the backends' socket files and Python's own modules; remove the line "
            "and restrict the process with systemd (ProtectSystem=, ReadWritePaths=) instead",
        ),
        "chroot: refused (use systemd sandboxing)",
    ),
    K("description", "gdfbl", lambda c, a: None, "description <text>: free text"),
    K("node", "g", lambda c, a: None, "node <name>: this process's name in stats"),
    K(
        "tune.bufsize",
        "g",
        _g_tune_int("tune.bufsize", 1024, 1 << 24),
        "tune.bufsize <n> (16384)",
    ),
    K(
        "tune.maxrewrite",
        "g",
        _g_tune_int("tune.maxrewrite", 0, 1 << 20),
        "tune.maxrewrite <n> (1024)",
    ),
    K(
        "tune.http.maxhdr",
        "g",
        _g_tune_int("tune.http.maxhdr", 1, 32767),
        "tune.http.maxhdr <n> (101)",
    ),
    K(
        "server-state-file",
        "g",
        _planned_global("server-state-file"),
        "server-state-file <file>: where server states survive a reload",
        status="reload",
    ),
    K(
        "hard-stop-after",
        "g",
        _planned_global("hard-stop-after"),
        "hard-stop-after <time>",
        status="reload",
    ),
    K(
        "spread-checks",
        "g",
        _planned_global("spread-checks"),
        "spread-checks <0..50>",
        status="health checks",
    ),
    K("ca-base", "g", _planned_global("ca-base"), "ca-base <dir>", status="TLS"),
    K("crt-base", "g", _planned_global("crt-base"), "crt-base <dir>", status="TLS"),
    K(
        "ssl-default-bind-ciphers",
        "g",
        _planned_global("ssl"),
        "ssl-default-bind-ciphers <list>",
        status="TLS",
    ),
    K(
        "ssl-default-bind-ciphersuites",
        "g",
        _planned_global("ssl"),
        "ssl-default-bind-ciphersuites <list>",
        status="TLS",
    ),
    K(
        "ssl-default-bind-options",
        "g",
        _planned_global("ssl"),
        "ssl-default-bind-options <opts>",
        status="TLS",
    ),
    K(
        "ssl-default-server-ciphers",
        "g",
        _planned_global("ssl"),
        "ssl-default-server-ciphers <list>",
        status="TLS",
    ),
    K(
        "ssl-default-server-options",
        "g",
        _planned_global("ssl"),
        "ssl-default-server-options <opts>",
        status="TLS",
    ),
    # proxies
    K(
        "mode",
        "dfbl",
        _p_mode,
        "mode tcp|http|unix: traffic mode (unix: tcp over unix sockets only)",
    ),
    K(
        "bind",
        "fl",
        _p_bind,
        "bind <address> [mode <m>] [user <u>] [group <g>] [uid <n>] [gid <n>]",
    ),
    K(
        "server",
        "bl",
        _p_server,
        "server <name> <address> [weight <w>] [backup] [maxconn <n>] [check ...]",
    ),
    K(
        "default-server",
        "dbl",
        _p_default_server,
        "default-server <options>: defaults for server lines",
    ),
    K("id", "fbl", _p_id, "id <n>: a forced numeric proxy id"),
    K(
        "balance",
        "dbl",
        _p_balance,
        "balance roundrobin|static-rr|leastconn|first|source|random[(<n>)]|uri [<opts>]"
        "|url_param <param> [check_post]|hdr(<name>) [use_domain_only]: the algorithm",
    ),
    K("hash-type", "dbl", _p_hash_type, "hash-type map-based|consistent [<function>]"),
    K(
        "backlog",
        "dfl",
        _int_field("backlog", "backlog", 1),
        "backlog <n>: listen backlog (default: the frontend's maxconn)",
    ),
    K(
        "fullconn",
        "dbl",
        _int_field("fullconn", "fullconn", 1),
        "fullconn <n>: used with minconn",
        status="health checks",
    ),
    K(
        "timeout",
        "dfbl",
        _p_timeout,
        "timeout connect|client|server|queue|tunnel|client-fin|server-fin|http-request|"
        "http-keep-alive|check <time>",
    ),
    K("retries", "dbl", _p_retries, "retries <n>: connect attempts after the first (3)"),
    K("default_backend", "dfl", _p_default_backend, "default_backend <backend>"),
    K(
        "option redispatch",
        "dbl",
        _o_redispatch,
        "option redispatch [<interval>]: retry on another server (-1: on the last retry)",
        negatable=True,
    ),
    K(
        "option allbackups",
        "dbl",
        _bool_option("allbackups"),
        "option allbackups: use all backups at once",
        negatable=True,
    ),
    K(
        "option tcplog",
        "dfl",
        _bool_option("tcplog"),
        "option tcplog: HAProxy's TCP log line per session",
        negatable=True,
    ),
    K(
        "option httplog",
        "dfl",
        _o_httplog,
        "option httplog: HAProxy's HTTP log line per request",
        negatable=True,
    ),
    K(
        "option dontlognull",
        "dfl",
        _bool_option("dontlognull"),
        "option dontlognull: no log line for sessions that carried no data",
        negatable=True,
    ),
    K(
        "option tcpka",
        "dfbl",
        _planned_option("tcpka"),
        "option tcpka: TCP keep-alive both ways",
        status="TCP keep-alive",
        negatable=True,
    ),
    K(
        "option clitcpka",
        "dfl",
        _planned_option("clitcpka"),
        "option clitcpka",
        status="TCP keep-alive",
        negatable=True,
    ),
    K(
        "option srvtcpka",
        "dbl",
        _planned_option("srvtcpka"),
        "option srvtcpka",
        status="TCP keep-alive",
        negatable=True,
    ),
    K(
        "option forwardfor",
        "dfbl",
        _o_forwardfor,
        "option forwardfor [except <net>] [header <name>] [if-none]: append X-Forwarded-For",
        negatable=True,
    ),
    K(
        "option http-server-close",
        "dfbl",
        _bool_option("http-server-close"),
        "option http-server-close: close the server connection after each response",
        negatable=True,
    ),
    K(
        "option httpclose",
        "dfbl",
        _bool_option("httpclose"),
        "option httpclose: close both connections after each response",
        negatable=True,
    ),
    K(
        "option http-keep-alive",
        "dfbl",
        _bool_option("http-keep-alive"),
        "option http-keep-alive: keep-alive on both sides (the default)",
        negatable=True,
    ),
    K(
        "option abortonclose",
        "dbl",
        _bool_option("abortonclose"),
        "option abortonclose: abort a queued or connecting request when its client closes",
        negatable=True,
    ),
    K(
        "option prefer-last-server",
        "dbl",
        _bool_option("prefer-last-server"),
        "option prefer-last-server: send a client's next request to the server of its last one",
        negatable=True,
    ),
    K(
        "option httpchk",
        "dbl",
        _planned_option("httpchk"),
        "option httpchk [<method>] [<uri>] [<version>]",
        status="health checks",
        negatable=True,
    ),
    K(
        "option log-health-checks",
        "dbl",
        _planned_option("log-health-checks"),
        "option log-health-checks",
        status="health checks",
        negatable=True,
    ),
    K(
        "http-check",
        "dbl",
        _planned_proxy("http-check", 1),
        "http-check send|expect ...",
        status="health checks",
    ),
    K(
        "http-reuse",
        "dbl",
        _p_http_reuse,
        "http-reuse never|safe|aggressive|always: which idle server connections a request may use",
    ),
    K(
        "errorfile",
        "dfbl",
        _p_errorfile,
        "errorfile <code> <file>: a raw HTTP response (read at start) for the proxy's own "
        "errors; an empty file closes without a response",
    ),
    K(
        "acl",
        "fbl",
        _planned_proxy("acl", 2, "acl <name> <criterion> [flags] [values]"),
        "acl <name> <criterion> [flags] [values]",
        status="routing",
    ),
    K(
        "use_backend",
        "fl",
        _planned_proxy("use_backend", 1, "use_backend <backend> [if|unless <cond>]"),
        "use_backend <backend> [if|unless <cond>]",
        status="routing",
    ),
    K(
        "http-request",
        "fbl",
        _planned_proxy("http-request", 1),
        "http-request <action> ...",
        status="header rules",
    ),
    K(
        "http-response",
        "fbl",
        _planned_proxy("http-response", 1),
        "http-response <action> ...",
        status="header rules",
    ),
    K(
        "load-server-state-from-file",
        "dbl",
        _planned_proxy("load-server-state-from-file", 1),
        "load-server-state-from-file global|local|none",
        status="reload",
    ),
]

KEYWORD_INDEX: Dict[str, Keyword] = {k.words: k for k in KEYWORDS}
OPTION_NAMES = sorted(k.words.split(" ", 1)[1] for k in KEYWORDS if k.words.startswith("option "))

# Keywords HAProxy knows that we refuse outright, with why.
REFUSED: Dict[str, str] = {
    "contimeout": "removed from HAProxy; write 'timeout connect'",
    "clitimeout": "removed from HAProxy; write 'timeout client'",
    "srvtimeout": "removed from HAProxy; write 'timeout server'",
    "redispatch": "write 'option redispatch'",
    "cookie": "cookie persistence is not supported",
    "stick-table": "stick tables are not supported",
    "stick": "stick tables are not supported",
    "capture": "captures are not supported",
    "compression": "compression is not supported",
    "lua-load": "Lua is not supported; extend udsproxy in Python instead",
    "tcp-request": "tcp-request rules are not supported",
    "tcp-response": "tcp-response rules are not supported",
}


def lookup(words: Tuple[str, ...]) -> Tuple[Optional[Keyword], int]:
    """Find the keyword a line starts with (two-word keywords first); return (kw, words used)."""
    if len(words) >= 2:
        kw = KEYWORD_INDEX.get(f"{words[0]} {words[1]}")
        if kw is not None:
            return kw, 2
    return KEYWORD_INDEX.get(words[0]), 1


def server_option_names() -> List[str]:
    return sorted(SERVER_OPTIONS)
