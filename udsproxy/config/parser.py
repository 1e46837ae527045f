"""The config parser: logical lines -> sections -> a validated, frozen ``model.Config``.

It reports every error it finds (file, line, keyword, hint) instead of stopping at the
first, never touches sockets or socket paths, and collects the notices the process prints
at start: warnings, planned keywords that are not active yet (once per keyword, grouped
by area) and udsproxy extensions that HAProxy would not accept (once per kind per file).
"""

from __future__ import annotations

import difflib
import errno
import os
from dataclasses import replace
from typing import Dict, List, Mapping, Optional, Tuple, Union

from ..errors import ConfigError, ConfigErrors
from ..rules import auth
from . import keywords as kw
from . import userlists
from .builders import (
    IMPLEMENTED,
    PLANNED_AREAS,
    Context,
    GlobalBuilder,
    ProxyBuilder,
    UserlistBuilder,
)
from .lexer import Line, lex
from .logformat import compile_proxy_formats
from .model import (
    ABNS,
    ABNSZ,
    UNIX,
    Algorithm,
    Bind,
    Config,
    Global,
    Notice,
    Observe,
    Proxy,
    SocketPerms,
    TcpRule,
    UseBackend,
)
from .servers import BIND_OPTIONS, SERVER_OPTIONS

HTTP_HASHES = (Algorithm.URI, Algorithm.URL_PARAM, Algorithm.HDR)  # need mode http
SECTION_HEADERS = ("global", "defaults", "frontend", "backend", "listen", "userlist")
UNSUPPORTED_SECTIONS = {
    "peers": "stick-table peers are not supported",
    "resolvers": "DNS resolvers are not supported; use IP addresses or socket paths",
    "mailers": "mail alerts are not supported",
    "program": "use your supervisor (systemd) to run programs",
    "http-errors": "use 'errorfile' lines in the proxy",
    "ring": "log rings are not supported; use 'log stdout' or syslog",
    "cache": "HTTP caching is not supported",
    "fcgi-app": "FastCGI is not supported",
    "crt-store": "TLS is not supported yet",
}


class _Parser:
    def __init__(self, filename: str, env: Mapping[str, str]) -> None:
        self.filename = filename
        self.env = env
        self.errors: List[ConfigError] = []
        self.warnings: List[Notice] = []
        self.glob = GlobalBuilder()
        self.defaults = ProxyBuilder(name="", kind="defaults")
        self.named_defaults: Dict[str, ProxyBuilder] = {}
        self.proxies: List[ProxyBuilder] = []
        self.section: Optional[str] = None
        self.current: Optional[ProxyBuilder] = None
        self.userlists: Dict[str, UserlistBuilder] = {}
        self.current_userlist: Optional[UserlistBuilder] = None
        self.planned_used: Dict[str, Tuple[str, int]] = {}  # keyword -> (area, first line)
        self.extensions: Dict[str, List[int]] = {}  # kind -> lines
        self.after_server = False  # previous statement was a server line or an orphan option line
        self.prev_orphan = False
        self.bind_attempted: set[str] = set()  # proxies with a bind line, even a broken one

    # ----------------------------------------------------------------- errors
    def error(self, exc: ConfigError, line: Line, keyword: str = "") -> None:
        exc.filename = exc.filename or self.filename
        exc.lineno = exc.lineno or line.lineno
        exc.keyword = exc.keyword or keyword
        self.errors.append(exc)

    def warn(self, text: str, lineno: int, keyword: str = "") -> None:
        self.warnings.append(Notice(text, self.filename, lineno, keyword))

    # ----------------------------------------------------------------- sections
    def start_section(self, line: Line) -> None:
        kind = line.words[0]
        args = list(line.words[1:])
        self.after_server = self.prev_orphan = False
        self.current = None
        self.current_userlist = None
        self.section = kind
        if kind == "userlist":
            self.start_userlist(line, args)
            return
        if kind == "global":
            if args:
                self.error(
                    ConfigError("'global' takes no name", hint="write just 'global'"), line, kind
                )
            return
        name = args[0] if args else ""
        # A defaults section starts afresh (HAProxy resets defaults at each one) unless "from".
        base = ProxyBuilder(name="", kind="defaults") if kind == "defaults" else self.defaults
        if len(args) >= 3 and args[1] == "from":
            ref = self.named_defaults.get(args[2])
            if ref is None:
                self.error(
                    ConfigError(
                        f"unknown defaults section '{args[2]}'",
                        hint="name a defaults section declared above, e.g. 'defaults web'",
                    ),
                    line,
                    kind,
                )
            else:
                base = ref
            args = args[:1]
        if len(args) > 1:
            self.error(
                ConfigError(
                    f"unexpected word '{args[1]}'", hint=f"usage: {kind} <name> [from <defaults>]"
                ),
                line,
                kind,
            )
        if kind == "defaults":
            self.defaults = base.inherit(name, "defaults", self.filename, line.lineno)
            self.current = self.defaults
            if name:
                self.named_defaults[name] = self.defaults
            return
        if not name:
            self.error(
                ConfigError(f"'{kind}' needs a name", hint=f"usage: {kind} <name>"), line, kind
            )
            name = f"<unnamed:{line.lineno}>"
        self.current = base.inherit(name, kind, self.filename, line.lineno)
        self.proxies.append(self.current)

    def start_userlist(self, line: Line, args: List[str]) -> None:
        if len(args) != 1:
            self.error(
                ConfigError(
                    "'userlist' needs one name" if not args else f"unexpected word '{args[1]}'",
                    hint="usage: userlist <name>",
                ),
                line,
                "userlist",
            )
        name = args[0] if args else f"<unnamed:{line.lineno}>"
        if name in self.userlists:
            self.error(
                ConfigError(
                    f"userlist '{name}' is declared twice (first at line "
                    f"{self.userlists[name].lineno})",
                    hint="give each userlist a unique name",
                ),
                line,
                "userlist",
            )
        self.current_userlist = self.userlists[name] = UserlistBuilder(name, line.lineno)

    # ----------------------------------------------------------------- statements
    def statement(self, line: Line) -> None:
        words = line.words
        negated = words[0] == "no"
        if negated:
            words = words[1:]
            if not words:
                self.error(
                    ConfigError("'no' needs a keyword", hint="e.g. 'no option redispatch'"),
                    line,
                    "no",
                )
                return
        if self.section is None:
            self.error(
                ConfigError(
                    "keyword outside of any section",
                    hint="start a section first: global, defaults, frontend, backend or listen",
                ),
                line,
                words[0],
            )
            return
        if self.section in UNSUPPORTED_SECTIONS:
            return  # the section header already carries the error
        keyword, used = kw.lookup(words)
        section = self.section
        first = words[0]
        orphan_candidate = (
            self.after_server
            and first in SERVER_OPTIONS
            and section in ("backend", "listen", "defaults")
        )
        if orphan_candidate and (
            keyword is None or not keyword.allowed_in(section) or self.prev_orphan
        ):
            self.prev_orphan = True
            self.error(
                ConfigError(
                    f"server option '{first}' is on a line of its own",
                    hint="keep server options on the server line, or end the server line (and each "
                    "continued line) with '\\'",
                ),
                line,
                first,
            )
            return
        self.prev_orphan = False
        self.after_server = first in ("server",)
        if first == "bind" and self.current is not None:
            self.bind_attempted.add(self.current.name)
        if keyword is None:
            self.unknown(line, words)
            return
        if not keyword.allowed_in(section):
            where = ", ".join(keyword.section_names)
            self.error(
                ConfigError(
                    f"'{keyword.words}' is not allowed in a '{section}' section",
                    hint=f"it belongs in: {where}",
                ),
                line,
                keyword.words,
            )
            return
        if negated and not keyword.negatable:
            self.error(
                ConfigError(
                    f"'no {keyword.words}' is not supported",
                    hint=f"remove the line or write '{keyword.words}'",
                ),
                line,
                keyword.words,
            )
            return
        ctx = Context(
            section=section,
            glob=self.glob,
            proxy=self.current,
            filename=self.filename,
            lineno=line.lineno,
            negated=negated,
            userlist=self.current_userlist,
        )
        try:
            keyword.handler(ctx, list(words[used:]))
        except ConfigError as exc:
            self.error(exc, line, keyword.words)
            return
        for text in ctx.warnings:
            self.warn(text, line.lineno, keyword.words)
        for ext in ctx.extensions:
            self.extensions.setdefault(ext, []).append(line.lineno)
        if keyword.status != IMPLEMENTED and not negated:
            self.planned_used.setdefault(keyword.words, (keyword.status, line.lineno))
        if keyword.words in ("server", "default-server"):
            for opt in words[used + (2 if keyword.words == "server" else 0) :]:
                option = SERVER_OPTIONS.get(opt)
                if option is not None and option.status != IMPLEMENTED:
                    self.planned_used.setdefault(
                        f"{opt} (server option)", (option.status, line.lineno)
                    )
        if keyword.words == "bind":
            for opt in words[used + 1 :]:
                option = BIND_OPTIONS.get(opt)
                if option is not None and option.status != IMPLEMENTED:
                    self.planned_used.setdefault(
                        f"{opt} (bind option)", (option.status, line.lineno)
                    )
        if keyword.words == "timeout" and words[used : used + 1] == ("tarpit",):
            self.planned_used.setdefault("timeout tarpit", ("tarpit", line.lineno))

    def unknown(self, line: Line, words: Tuple[str, ...]) -> None:
        first = words[0]
        if first in kw.REFUSED:
            self.error(
                ConfigError(f"'{first}' is not supported", hint=kw.REFUSED[first]), line, first
            )
            return
        if first == "option" and len(words) > 1:
            close = difflib.get_close_matches(words[1], kw.OPTION_NAMES, n=1)
            hint = (
                f"did you mean 'option {close[0]}'?"
                if close
                else "known options: " + ", ".join(kw.OPTION_NAMES)
            )
            self.error(
                ConfigError(f"unknown option '{words[1]}'", hint=hint), line, f"option {words[1]}"
            )
            return
        candidates = sorted({k.words.split(" ")[0] for k in kw.KEYWORDS})
        close = difflib.get_close_matches(first, candidates, n=1)
        if close:
            hint = f"did you mean '{close[0]}'?"
        else:
            here = sorted(
                {
                    k.words.split(" ")[0]
                    for k in kw.KEYWORDS
                    if self.section and k.allowed_in(self.section)
                }
            )
            hint = f"keywords in a '{self.section}' section: " + ", ".join(here)
        self.error(ConfigError(f"unknown keyword '{first}'", hint=hint), line, first)

    # ----------------------------------------------------------------- run
    def run(self, text: str) -> Config:
        # Fetches that name a userlist (http_auth) may come before its section.
        with auth.collect_references() as refs:
            self.read(text)
        lists = {name: userlists.build(ul, self.fail) for name, ul in self.userlists.items()}
        for ref in auth.bind(refs, lists):
            close = difflib.get_close_matches(ref.name, list(lists), n=1)
            self.errors.append(
                ConfigError(
                    f"userlist '{ref.name}' does not exist",
                    ref.filename or self.filename,
                    ref.lineno,
                    hint=f"did you mean '{close[0]}'?"
                    if close
                    else f"declare it: userlist {ref.name}, then user lines",
                )
            )
        glob = self.glob.build()
        proxies = [self.finish_proxy(b, glob) for b in self.proxies]
        self.validate(glob, proxies)
        if self.errors:
            raise ConfigErrors(self.errors)
        return Config(
            global_=self.finish_global(glob),
            proxies=tuple(proxies),
            userlists=tuple(lists.values()),
            notices=tuple(self.notices(proxies)),
            filename=self.filename,
        )

    def read(self, text: str) -> None:
        for item in lex(text, self.filename, self.env):
            if isinstance(item, ConfigError):
                self.errors.append(item)
                continue
            if item.continued:
                self.extensions.setdefault("a trailing '\\' that continues a line", []).append(
                    item.lineno
                )
            head = item.words[0]
            if head in SECTION_HEADERS:
                self.start_section(item)
            elif head in UNSUPPORTED_SECTIONS and not item.indented:
                self.section = head
                self.current = None
                self.error(
                    ConfigError(
                        f"section '{head}' is not supported", hint=UNSUPPORTED_SECTIONS[head]
                    ),
                    item,
                    head,
                )
            else:
                self.statement(item)

    def merge_bind(self, bind: Bind, glob: Global) -> Bind:
        """Apply global unix-bind defaults (the bind line wins) and the path prefix."""
        if bind.address.family not in (UNIX,):
            return bind
        defaults = glob.unix_bind_perms
        perms = SocketPerms(
            mode=bind.perms.mode if bind.perms.mode is not None else defaults.mode,
            uid=bind.perms.uid if bind.perms.uid is not None else defaults.uid,
            gid=bind.perms.gid if bind.perms.gid is not None else defaults.gid,
        )
        address = bind.address
        if glob.unix_bind_prefix:
            address = replace(address, path=glob.unix_bind_prefix + address.path)
        return replace(bind, address=address, perms=perms)

    def finish_global(self, glob: Global) -> Global:
        sockets = tuple(replace(s, bind=self.merge_bind(s.bind, glob)) for s in glob.stats_sockets)
        return replace(glob, stats_sockets=sockets)

    def finish_proxy(self, builder: ProxyBuilder, glob: Global) -> Proxy:
        proxy = builder.build(glob.logs)
        for kind, slot, lineno in builder.capture_refs:
            slots = proxy.request_captures if kind == "request" else proxy.response_captures
            if slot >= len(slots):
                self.fail(
                    f"{proxy.kind} '{proxy.name}' has no {kind} capture slot {slot} "
                    f"({len(slots)} declared)",
                    lineno,
                    f"http-{kind} capture",
                    f"declare it: declare capture {kind} len <length> (slots are numbered "
                    "from 0, with the 'capture ... header' lines, in file order)",
                )
        proxy, errors, notices = compile_proxy_formats(proxy, builder.fields)
        for exc in errors:
            # A format inherited from a defaults section fails once, not once per frontend.
            if not any(str(e) == str(exc) for e in self.errors):
                self.errors.append(exc)
        for notice in notices:
            if notice not in self.warnings:
                self.warnings.append(notice)
        final = "http" if proxy.mode == "http" else "tcp"
        for lineno, mode in builder.rule_modes:
            if ("http" if mode == "http" else "tcp") != final:
                self.fail(
                    f"{proxy.kind} '{proxy.name}': this rule was read for mode {mode}, but "
                    f"the section's mode is {proxy.mode}",
                    lineno,
                    "mode",
                    "put the 'mode' line before the rules (conditions depend on it)",
                )
        return replace(proxy, binds=tuple(self.merge_bind(b, glob) for b in proxy.binds))

    # ----------------------------------------------------------------- validation
    def fail(self, message: str, lineno: int, keyword: str, hint: str = "") -> None:
        self.errors.append(ConfigError(message, self.filename, lineno, keyword, hint))

    def validate(self, glob: Global, proxies: List[Proxy]) -> None:
        seen_fe: Dict[str, Proxy] = {}
        seen_be: Dict[str, Proxy] = {}
        ids: Dict[int, Proxy] = {}
        for p in proxies:
            for table, cap in ((seen_fe, p.is_frontend), (seen_be, p.is_backend)):
                if not cap:
                    continue
                other = table.get(p.name)
                if other is not None:
                    self.fail(
                        f"{p.kind} '{p.name}' has the same name as the {other.kind} at line {other.lineno}",
                        p.lineno,
                        p.kind,
                        "give each proxy a unique name",
                    )
                else:
                    table[p.name] = p
            if p.id is not None:
                if p.id in ids:
                    self.fail(f"proxy id {p.id} already used by '{ids[p.id].name}'", p.lineno, "id")
                ids[p.id] = p
            self.validate_proxy(p)
        for p in proxies:
            if not p.is_frontend:
                continue
            self.validate_routing(p, seen_be)
            if p.default_backend is not None:
                be = seen_be.get(p.default_backend)
                if be is None:
                    close = difflib.get_close_matches(p.default_backend, list(seen_be), n=1)
                    self.fail(
                        f"{p.kind} '{p.name}': default_backend '{p.default_backend}' does not exist",
                        p.lineno,
                        "default_backend",
                        f"did you mean '{close[0]}'?"
                        if close
                        else "declare a backend with that name",
                    )
                elif be.proxy_mode != p.proxy_mode:
                    self.fail(
                        f"{p.mode} {p.kind} '{p.name}' cannot use {be.mode} backend '{be.name}'",
                        p.lineno,
                        "default_backend",
                        "set the same 'mode' in both (tcp, http or unix)",
                    )

    def validate_routing(self, p: Proxy, backends: Dict[str, Proxy]) -> None:
        """use_backend names that exist and share the frontend's mode; tcp-request content
        only in TCP mode; content rules that read the payload wait for it."""
        for rule in p.use_backends:
            name = rule.backend
            if not isinstance(name, str):
                continue
            be = backends.get(name)
            if be is None:
                close = difflib.get_close_matches(name, list(backends), n=1)
                self.fail(
                    f"{p.kind} '{p.name}': use_backend '{name}' does not exist",
                    rule.lineno,
                    "use_backend",
                    f"did you mean '{close[0]}'?" if close else "declare a backend with that name",
                )
            elif be.proxy_mode != p.proxy_mode:
                self.fail(
                    f"{p.mode} {p.kind} '{p.name}' cannot use {be.mode} backend '{be.name}'",
                    rule.lineno,
                    "use_backend",
                    "set the same 'mode' in both (tcp, http or unix)",
                )
        if p.tcp_content and p.proxy_mode == "http":
            self.fail(
                f"{p.kind} '{p.name}': tcp-request content rules in mode http are not supported",
                p.tcp_content[0].lineno,
                "tcp-request content",
                "use http-request rules, or route in a mode tcp frontend",
            )
        rules: List[Union[TcpRule, UseBackend]] = [*p.tcp_content, *p.use_backends]
        volatile = [r.lineno for r in rules if r.condition is not None and r.condition.volatile]
        if volatile and not p.inspect_delay and p.proxy_mode == "tcp":
            self.warn(
                f"{p.kind} '{p.name}': rules read the request's bytes (req.len, req.payload) "
                "without 'tcp-request inspect-delay': they see what arrived at accept, usually "
                "nothing (as HAProxy warns)",
                volatile[0],
                "tcp-request inspect-delay",
            )

    def validate_proxy(self, p: Proxy) -> None:
        for rules, keyword in (
            (p.http_request, "http-request"),
            (p.http_response, "http-response"),
            (p.redirects, "redirect"),
        ):
            if rules and p.proxy_mode != "http":
                self.fail(
                    f"{p.kind} '{p.name}': '{keyword}' rules need 'mode http' (this section "
                    f"is mode {p.mode})",
                    rules[0].lineno,
                    keyword,
                    "set 'mode http' in the section (or its defaults)",
                )
        if p.is_frontend and not p.binds and p.name not in self.bind_attempted:
            self.fail(
                f"{p.kind} '{p.name}' has no 'bind' line",
                p.lineno,
                p.kind,
                "add 'bind <address>', or declare it as a backend if that was intended",
            )
        names: Dict[str, int] = {}
        sids: Dict[int, str] = {}
        for s in p.servers:
            if s.name in names:
                self.fail(
                    f"server '{p.name}/{s.name}' is declared twice (first at line {names[s.name]})",
                    s.lineno,
                    "server",
                    "give each server a unique name",
                )
            names[s.name] = s.lineno
            if s.check.observe == Observe.LAYER7 and p.proxy_mode != "http":
                self.fail(
                    f"server '{p.name}/{s.name}': 'observe layer7' needs 'mode http'",
                    s.lineno,
                    "observe",
                    "use 'observe layer4' in a tcp backend",
                )
            if s.id is not None:
                if s.id in sids:
                    self.fail(f"server id {s.id} already used by '{sids[s.id]}'", s.lineno, "id")
                sids[s.id] = s.name
        for rule in p.use_servers:
            if rule.server not in names:
                close = difflib.get_close_matches(rule.server, list(names), n=1)
                self.fail(
                    f"backend '{p.name}': use-server '{rule.server}' names no server of it",
                    rule.lineno,
                    "use-server",
                    f"did you mean '{close[0]}'?"
                    if close
                    else "use-server names a server of the same backend",
                )
        if p.mode == "unix":
            for b in p.binds:
                if b.address.family not in (UNIX, ABNS, ABNSZ):
                    self.fail(
                        f"'mode unix' {p.kind} '{p.name}': bind {b.address} is not a unix socket",
                        b.lineno,
                        "bind",
                        "bind a unix@/path or abns@name, or use 'mode tcp'",
                    )
            for s in p.servers:
                if s.address.family not in (UNIX, ABNS, ABNSZ):
                    self.fail(
                        f"'mode unix' backend '{p.name}': server {s.name} at {s.address} is not a unix socket",
                        s.lineno,
                        "server",
                        "point it at a unix@/path or abns@name, or use 'mode tcp'",
                    )

    # ----------------------------------------------------------------- notices
    def notices(self, proxies: List[Proxy]) -> List[Notice]:
        out = list(self.warnings)
        by_area: Dict[str, List[Tuple[str, int]]] = {}
        for word, (area, lineno) in self.planned_used.items():
            by_area.setdefault(area, []).append((word, lineno))
        for area, uses in sorted(by_area.items()):
            listing = ", ".join(f"{w} (line {n})" for w, n in sorted(uses, key=lambda u: u[1]))
            out.append(
                Notice(
                    f"not active yet ({area}): {listing}: {PLANNED_AREAS[area]}",
                    self.filename,
                    min(n for _, n in uses),
                    area,
                )
            )
        for what, lines in self.extensions.items():
            more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
            out.append(
                Notice(
                    f"not portable to HAProxy: {what} at line {lines[0]}{more}",
                    self.filename,
                    lines[0],
                    what,
                )
            )
        for p in proxies:
            t = p.timeouts
            missing = [
                name
                for name, value, needed in (
                    ("client", t.client, p.is_frontend),
                    ("connect", t.connect, p.is_backend),
                    ("server", t.server, p.is_backend),
                )
                if needed and value is None
            ]
            if missing:
                out.append(
                    Notice(
                        f"{p.kind} '{p.name}': missing timeouts ({', '.join(missing)}): they are infinite; "
                        "set them to avoid piling up dead connections",
                        self.filename,
                        p.lineno,
                        "timeout",
                    )
                )
            if (
                p.balance.algorithm == "first"
                and p.servers
                and not any(s.maxconn for s in p.servers)
            ):
                out.append(
                    Notice(
                        f"backend '{p.name}': 'balance first' without server maxconn sends everything "
                        "to the first server",
                        self.filename,
                        p.lineno,
                        "balance",
                    )
                )
            algo = p.balance.spelling
            if p.is_backend and p.mode != "http" and p.balance.algorithm in HTTP_HASHES:
                out.append(
                    Notice(
                        f"backend '{p.name}': 'balance {algo}' needs 'mode http'; "
                        f"in {p.mode} mode it balances round robin (as HAProxy)",
                        self.filename,
                        p.lineno,
                        "balance",
                    )
                )
            if p.is_frontend and p.default_backend is None and not p.is_backend:
                out.append(
                    Notice(
                        f"frontend '{p.name}' has no default_backend: its connections are closed",
                        self.filename,
                        p.lineno,
                        "default_backend",
                    )
                )
        return out


def parse_text(
    text: str, filename: str = "<config>", env: Optional[Mapping[str, str]] = None
) -> Config:
    """Parse config text; raise ConfigErrors listing every error found."""
    return _Parser(filename, os.environ if env is None else env).run(text)


_OPEN_HINTS = {
    errno.ENOENT: "no such file: check the path given to --config",
    errno.EACCES: "the user running udsproxy cannot read it or search its directory",
    errno.EISDIR: "give the path of a file, not a directory",
}


def parse_file(path: str, env: Optional[Mapping[str, str]] = None) -> Config:
    """Read and parse a config file; an unreadable file is a ConfigErrors with one entry."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigErrors(
            [
                ConfigError(
                    f"cannot open configuration file: {exc.strerror}"
                    f" [{errno.errorcode.get(exc.errno or 0, exc.errno)}]",
                    path,
                    0,
                    hint=_OPEN_HINTS.get(exc.errno or 0, "check the path and permissions"),
                )
            ]
        ) from None
    return parse_text(text, path, env)
