"""What keyword handlers work on: the section builders, the line's Context and argument checks.

A handler (``Handler``) gets the :class:`Context` of one config line and its words after the
keyword; it fills the mutable :class:`GlobalBuilder` or :class:`ProxyBuilder`, which the
parser freezes into the model once the whole file is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Tuple

from ..errors import ConfigError
from ..rules import AclTable
from . import model
from .model import (
    Balance,
    Bind,
    LogTarget,
    Redispatch,
    Server,
    SocketPerms,
    StatsSocket,
    Timeouts,
)
from .values import parse_group, parse_int, parse_mode, parse_user

IMPLEMENTED = "implemented"
# Areas that will activate planned keywords, and what happens until they do.
PLANNED_AREAS: Dict[str, str] = {
    "dynamic maxconn": "it has no effect until minconn lands",
    "reload": "no state file is read or written yet; a reload (SIGHUP) carries server states in-process",
    "TLS": "it has no effect until TLS lands; traffic stays clear text",
    "tarpit": "it has no use: the tarpit action is not supported",
    "PROXY protocol": "no PROXY header is read or sent until the PROXY protocol lands",
    "TCP keep-alive": "no SO_KEEPALIVE is set until TCP keep-alive lands",
}

GLOBAL, DEFAULTS, FRONTEND, BACKEND, LISTEN = "global", "defaults", "frontend", "backend", "listen"
PROXY_SECTIONS = (DEFAULTS, FRONTEND, BACKEND, LISTEN)
USERLIST = "userlist"
SECTION_LETTERS = {
    "g": GLOBAL,
    "d": DEFAULTS,
    "f": FRONTEND,
    "b": BACKEND,
    "l": LISTEN,
    "u": USERLIST,
}


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
    # http-check rules: a proxy's own lines replace those it inherits from defaults.
    http_check_rules: List[model.HttpCheckRule] = field(default_factory=list)
    http_check_inherited: Tuple[model.HttpCheckRule, ...] = ()
    # ``capture`` lines (frontends only, never inherited).
    request_captures: List[model.Capture] = field(default_factory=list)
    response_captures: List[model.Capture] = field(default_factory=list)
    # Capture rules' ``id <n>`` in a frontend: ("request"|"response", n, line), checked
    # against its slots once the section is read (a slot may be declared after the rule).
    capture_refs: List[Tuple[str, int, int]] = field(default_factory=list)
    # Rules: the proxy's own (ACLs and rules are not inherited from defaults).
    acls: AclTable = field(default_factory=AclTable)
    use_backends: List[model.UseBackend] = field(default_factory=list)
    use_servers: List[model.UseServer] = field(default_factory=list)
    tcp_connection: List[model.TcpRule] = field(default_factory=list)
    tcp_content: List[model.TcpRule] = field(default_factory=list)
    rule_modes: List[Tuple[int, str]] = field(default_factory=list)  # (line, mode read for)
    http_request: List[model.HttpRule] = field(default_factory=list)
    http_response: List[model.HttpRule] = field(default_factory=list)
    redirects: List[model.HttpRule] = field(default_factory=list)

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
            http_check_inherited=tuple(self.http_check_rules) or self.http_check_inherited,
        )

    def build(self, global_logs: Tuple[LogTarget, ...]) -> model.Proxy:
        logs: Tuple[LogTarget, ...] = tuple(self.logs or ())
        if self.log_global:
            logs = global_logs + logs
        f = self.fields
        httpchk: model.HttpCheck = f.get("httpchk", model.HttpCheck())  # type: ignore[assignment]
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
            http_check=replace(
                httpchk,
                enabled=bool(self.options.get("httpchk")),
                rules=tuple(self.http_check_rules) or self.http_check_inherited,
            ),
            load_server_state=f.get(  # type: ignore[arg-type]
                "load-server-state-from-file", model.LoadServerState.NONE
            ),
            request_captures=tuple(self.request_captures),
            response_captures=tuple(self.response_captures),
            use_backends=tuple(self.use_backends),
            use_servers=tuple(self.use_servers),
            tcp_connection=tuple(self.tcp_connection),
            tcp_content=tuple(self.tcp_content),
            inspect_delay=f.get("inspect-delay"),  # type: ignore[arg-type]
            http_request=tuple(self.http_request),
            http_response=tuple(self.http_response),
            redirects=tuple(self.redirects),
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
            spread_checks=int(f.get("spread-checks", 0)),  # type: ignore[call-overload]
            hard_stop_after=f.get("hard-stop-after"),  # type: ignore[arg-type]
            server_state_file=f.get("server-state-file"),  # type: ignore[arg-type]
        )


@dataclass
class UserlistBuilder:
    """A ``userlist`` section while it is parsed: its groups and users as written."""

    name: str
    lineno: int = 0
    groups: Dict[str, Tuple[int, Tuple[str, ...]]] = field(default_factory=dict)  # line, users
    users: Dict[str, model.User] = field(default_factory=dict)


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
    userlist: Optional[UserlistBuilder] = None  # in a userlist section

    @property
    def px(self) -> ProxyBuilder:
        assert self.proxy is not None
        return self.proxy


Handler = Callable[[Context, List[str]], None]


def need(args: List[str], count: int, usage: str) -> None:
    if len(args) < count:
        raise ConfigError("missing argument", hint=f"usage: {usage}")


def no_more(args: List[str], count: int, usage: str) -> None:
    if len(args) > count:
        raise ConfigError(f"unexpected word '{args[count]}'", hint=f"usage: {usage}")


def record_planned(ctx: Context, words: str, args: List[str]) -> None:
    """Record a planned keyword's words for the feature that will use them."""
    if ctx.proxy is not None:
        ctx.px.planned.append((words, tuple(args)))


def int_field(name: str, what: str, lo: int = 0, hi: Optional[int] = None) -> Handler:
    def handle(ctx: Context, args: List[str]) -> None:
        need(args, 1, f"{what} <number>")
        no_more(args, 1, f"{what} <number>")
        target = ctx.glob.fields if ctx.section == GLOBAL else ctx.px.fields
        target[name] = parse_int(args[0], what, lo, hi)

    return handle


def perm_options(
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
