"""The keyword table: every config word udsproxy knows, with its handler, help and status.

One row per section keyword; server and bind options have their tables in ``servers``.
A row's ``status`` is ``IMPLEMENTED`` or the name of the area that will make it active
("health checks", "TLS", ...): such keywords are parsed and validated now, and the process
says once at start what is not active yet. Words in no table are refused with a
did-you-mean hint. The README's keyword list is generated from these tables
(``udsproxy.config.docs``). The handlers live in one module per concern.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from .action_keywords import p_http_request, p_http_response, p_redirect
from .balance import p_balance, p_hash_type
from .builders import IMPLEMENTED, SECTION_LETTERS, Handler, int_field
from .checks import o_httpchk, p_http_check
from .errorfile import p_errorfile
from .global_keywords import (
    g_group,
    g_hard_stop_after,
    g_server_state_file,
    g_spread_checks,
    g_stats,
    g_tune_int,
    g_unix_bind,
    g_user,
    planned_global,
    refuse,
    twistd_owned,
)
from .logformat import (
    o_httplog,
    o_tcplog,
    p_capture,
    p_declare,
    p_log_format,
    p_unique_id_format,
    p_unique_id_header,
)
from .logtargets import log_line
from .proxy_keywords import (
    bool_option,
    o_forwardfor,
    o_redispatch,
    p_default_backend,
    p_http_reuse,
    p_id,
    p_load_server_state,
    p_mode,
    p_retries,
    p_timeout,
    planned_option,
)
from .rule_keywords import p_acl, p_tcp_request, p_use_backend, p_use_server
from .servers import p_bind, p_default_server, p_server
from .userlists import by_section, p_group, p_user


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


K = Keyword
KEYWORDS: List[Keyword] = [
    # global
    K(
        "maxconn",
        "gdfl",
        int_field("maxconn", "maxconn", 1),
        "maxconn <n>: most concurrent client connections (global, or per frontend); "
        "accepting pauses beyond it",
    ),
    K(
        "user",
        "gu",
        by_section(g_user, p_user),
        "user <name> (global): drop privileges to this user after binding  |  user <name> "
        "[password <crypt(3) hash>|insecure-password <text>] [groups <g>,...] (userlist): "
        "a user http_auth(<userlist>) accepts",
    ),
    K(
        "group",
        "gu",
        by_section(g_group, p_group),
        "group <name> (global): drop privileges to this group after binding  |  group <name> "
        "[users <u>,...] (userlist): a group http_auth_group(<userlist>) matches",
    ),
    K("uid", "g", int_field("uid", "uid"), "uid <n>: drop privileges to this uid after binding"),
    K("gid", "g", int_field("gid", "gid"), "gid <n>: drop privileges to this gid after binding"),
    K(
        "log",
        "gdfbl",
        log_line,
        "log <target> [format raw|rfc3164|rfc5424|short] <facility> [<level>]  |  log global",
        negatable=True,
    ),
    K(
        "unix-bind",
        "g",
        g_unix_bind,
        "unix-bind [prefix <p>] [mode <m>] [user <u>] [group <g>]: defaults for unix bind lines",
    ),
    K(
        "stats",
        "g",
        g_stats,
        "stats socket <path> [mode <m>] [user <u>] [group <g>] [level <l>]: the admin socket; "
        "stats timeout <time>; stats maxconn <n>",
    ),
    K(
        "daemon",
        "g",
        twistd_owned("run twistd without -n to daemonize"),
        "daemon: owned by twistd (run without -n)",
    ),
    K(
        "pidfile",
        "g",
        twistd_owned("use twistd --pidfile <file>"),
        "pidfile: owned by twistd (--pidfile)",
    ),
    K(
        "nbthread",
        "g",
        twistd_owned("udsproxy runs one reactor; start several processes to use more cores"),
        "nbthread: udsproxy runs one reactor",
    ),
    K(
        "nbproc",
        "g",
        twistd_owned("udsproxy runs one reactor; start several processes to use more cores"),
        "nbproc: udsproxy runs one reactor",
    ),
    K(
        "master-worker",
        "g",
        twistd_owned("run twistd under systemd or another supervisor"),
        "master-worker: owned by twistd and your supervisor",
    ),
    K(
        "chroot",
        "g",
        refuse(
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
        g_tune_int("tune.bufsize", 1024, 1 << 24),
        "tune.bufsize <n> (16384)",
    ),
    K(
        "tune.maxrewrite",
        "g",
        g_tune_int("tune.maxrewrite", 0, 1 << 20),
        "tune.maxrewrite <n> (1024)",
    ),
    K(
        "tune.http.maxhdr",
        "g",
        g_tune_int("tune.http.maxhdr", 1, 32767),
        "tune.http.maxhdr <n> (101)",
    ),
    K(
        "server-state-file",
        "g",
        g_server_state_file,
        "server-state-file <file>: where server states survive a reload",
        status="reload",
    ),
    K(
        "hard-stop-after",
        "g",
        g_hard_stop_after,
        "hard-stop-after <time>: the longest a graceful stop (SIGTERM) may last",
    ),
    K(
        "spread-checks",
        "g",
        g_spread_checks,
        "spread-checks <0..50>: random +-N% on each check interval",
    ),
    K("ca-base", "g", planned_global("ca-base"), "ca-base <dir>", status="TLS"),
    K("crt-base", "g", planned_global("crt-base"), "crt-base <dir>", status="TLS"),
    K(
        "ssl-default-bind-ciphers",
        "g",
        planned_global("ssl"),
        "ssl-default-bind-ciphers <list>",
        status="TLS",
    ),
    K(
        "ssl-default-bind-ciphersuites",
        "g",
        planned_global("ssl"),
        "ssl-default-bind-ciphersuites <list>",
        status="TLS",
    ),
    K(
        "ssl-default-bind-options",
        "g",
        planned_global("ssl"),
        "ssl-default-bind-options <opts>",
        status="TLS",
    ),
    K(
        "ssl-default-server-ciphers",
        "g",
        planned_global("ssl"),
        "ssl-default-server-ciphers <list>",
        status="TLS",
    ),
    K(
        "ssl-default-server-options",
        "g",
        planned_global("ssl"),
        "ssl-default-server-options <opts>",
        status="TLS",
    ),
    # proxies
    K(
        "mode",
        "dfbl",
        p_mode,
        "mode tcp|http|unix: traffic mode (unix: tcp over unix sockets only)",
    ),
    K(
        "bind",
        "fl",
        p_bind,
        "bind <address> [mode <m>] [user <u>] [group <g>] [uid <n>] [gid <n>]",
    ),
    K(
        "server",
        "bl",
        p_server,
        "server <name> <address> [weight <w>] [backup] [maxconn <n>] [check ...]",
    ),
    K(
        "default-server",
        "dbl",
        p_default_server,
        "default-server <options>: defaults for server lines",
    ),
    K("id", "fbl", p_id, "id <n>: a forced numeric proxy id"),
    K(
        "balance",
        "dbl",
        p_balance,
        "balance roundrobin|static-rr|leastconn|first|source|random[(<n>)]|uri [<opts>]"
        "|url_param <param> [check_post]|hdr(<name>) [use_domain_only]: the algorithm",
    ),
    K("hash-type", "dbl", p_hash_type, "hash-type map-based|consistent [<function>]"),
    K(
        "backlog",
        "dfl",
        int_field("backlog", "backlog", 1),
        "backlog <n>: listen backlog (default: the frontend's maxconn)",
    ),
    K(
        "fullconn",
        "dbl",
        int_field("fullconn", "fullconn", 1),
        "fullconn <n>: used with minconn",
        status="dynamic maxconn",
    ),
    K(
        "timeout",
        "dfbl",
        p_timeout,
        "timeout connect|client|server|queue|tunnel|client-fin|server-fin|http-request|"
        "http-keep-alive|check <time>",
    ),
    K("retries", "dbl", p_retries, "retries <n>: connect attempts after the first (3)"),
    K("default_backend", "dfl", p_default_backend, "default_backend <backend>"),
    K(
        "option redispatch",
        "dbl",
        o_redispatch,
        "option redispatch [<interval>]: retry on another server (-1: on the last retry)",
        negatable=True,
    ),
    K(
        "option allbackups",
        "dbl",
        bool_option("allbackups"),
        "option allbackups: use all backups at once",
        negatable=True,
    ),
    K(
        "option tcplog",
        "dfl",
        o_tcplog,
        "option tcplog: HAProxy's TCP log line per session",
        negatable=True,
    ),
    K(
        "option httplog",
        "dfl",
        o_httplog,
        "option httplog [clf]: HAProxy's HTTP log line per request (clf: Common Log Format)",
        negatable=True,
    ),
    K(
        "log-format",
        "dfl",
        p_log_format,
        "log-format <format>: the session line, with HAProxy's %variables, %[<expr>] samples "
        "and %{+Q,+X,+E} flags",
    ),
    K(
        "capture",
        "fl",
        p_capture,
        "capture request|response header <name> len <length>: log a header's value in "
        "httplog's {...} blocks (%hr, %hs)",
    ),
    K(
        "declare",
        "fl",
        p_declare,
        "declare capture request|response len <length>: a capture slot for "
        "'http-request capture <sample> id <n>' rules (numbered with the capture lines)",
    ),
    K(
        "unique-id-format",
        "dfl",
        p_unique_id_format,
        "unique-id-format <format>: an ID for each request (%ID), a log-format string",
    ),
    K(
        "unique-id-header",
        "dfl",
        p_unique_id_header,
        "unique-id-header <name>: send the request's ID to the server in this header",
    ),
    K(
        "option dontlognull",
        "dfl",
        bool_option("dontlognull"),
        "option dontlognull: no log line for sessions that carried no data",
        negatable=True,
    ),
    K(
        "option tcpka",
        "dfbl",
        planned_option("tcpka"),
        "option tcpka: TCP keep-alive both ways",
        status="TCP keep-alive",
        negatable=True,
    ),
    K(
        "option clitcpka",
        "dfl",
        planned_option("clitcpka"),
        "option clitcpka",
        status="TCP keep-alive",
        negatable=True,
    ),
    K(
        "option srvtcpka",
        "dbl",
        planned_option("srvtcpka"),
        "option srvtcpka",
        status="TCP keep-alive",
        negatable=True,
    ),
    K(
        "option forwardfor",
        "dfbl",
        o_forwardfor,
        "option forwardfor [except <net>] [header <name>] [if-none]: append X-Forwarded-For",
        negatable=True,
    ),
    K(
        "option http-server-close",
        "dfbl",
        bool_option("http-server-close"),
        "option http-server-close: close the server connection after each response",
        negatable=True,
    ),
    K(
        "option httpclose",
        "dfbl",
        bool_option("httpclose"),
        "option httpclose: close both connections after each response",
        negatable=True,
    ),
    K(
        "option http-keep-alive",
        "dfbl",
        bool_option("http-keep-alive"),
        "option http-keep-alive: keep-alive on both sides (the default)",
        negatable=True,
    ),
    K(
        "option abortonclose",
        "dbl",
        bool_option("abortonclose"),
        "option abortonclose: abort a queued or connecting request when its client closes",
        negatable=True,
    ),
    K(
        "option prefer-last-server",
        "dbl",
        bool_option("prefer-last-server"),
        "option prefer-last-server: send a client's next request to the server of its last one",
        negatable=True,
    ),
    K(
        "option httpchk",
        "dbl",
        o_httpchk,
        "option httpchk [<method>] [<uri>] [<version>]: HTTP health checks (OPTIONS / HTTP/1.0)",
        negatable=True,
    ),
    K(
        "option log-health-checks",
        "dbl",
        bool_option("log-health-checks"),
        "option log-health-checks: log each check whose result changes the health",
        negatable=True,
    ),
    K(
        "http-check",
        "dbl",
        p_http_check,
        "http-check send|expect|disable-on-404 ...",
    ),
    K(
        "http-reuse",
        "dbl",
        p_http_reuse,
        "http-reuse never|safe|aggressive|always: which idle server connections a request may use",
    ),
    K(
        "errorfile",
        "dfbl",
        p_errorfile,
        "errorfile <code> <file>: a raw HTTP response (read at start) for the proxy's own "
        "errors; an empty file closes without a response",
    ),
    K(
        "acl",
        "fbl",
        p_acl,
        "acl <name> <criterion>[,<converter>...] [-i] [-f <file>] [-m <method>] [--] "
        "[<pattern> ...]: a named test; lines with one name are ORed",
    ),
    K(
        "use_backend",
        "fl",
        p_use_backend,
        "use_backend <backend>|<%[expr]> [if|unless <cond>]: the first matching rule picks "
        "the backend, per request (a computed name that does not exist: 503)",
    ),
    K(
        "use-server",
        "bl",
        p_use_server,
        "use-server <server> if|unless <cond>: send matching requests to this server "
        "(skipped while it is down)",
    ),
    K(
        "tcp-request",
        "dfbl",
        p_tcp_request,
        "tcp-request connection accept|reject [if|unless <cond>] (at accept, layer 4 only)"
        "  |  tcp-request content accept|reject [if|unless <cond>] (mode tcp)"
        "  |  tcp-request inspect-delay <time>",
    ),
    K(
        "http-request",
        "fbl",
        p_http_request,
        "http-request <action> [if|unless <cond>]: in file order, the frontend's then the backend's, "
        "around use_backend; actions: set-header, add-header, del-header [-m str|beg|end|sub|reg], "
        "replace-header, replace-value, set-path, set-pathq, set-query, set-uri, "
        "replace-path, replace-pathq, replace-uri, set-method, "
        "set-var(<scope>.<name>[,<cond>...]), set-var-fmt, unset-var, "
        "capture <sample> len <length>|id <id>, set-log-level <level>|silent, allow, reject, "
        "deny [deny_status <code>] [content-type <type> string|lf-string|file|lf-file ...], "
        "return [status <code>] [content-type <type>] [string|lf-string|file|lf-file|errorfile "
        "...] [hdr <name> <fmt>]..., redirect location|prefix|scheme ..., auth [realm <realm>]; "
        "values are lf-strings (%[expr]); Content-Length and hop-by-hop fields cannot be "
        "touched, Host is re-validated per request",
    ),
    K(
        "http-response",
        "fbl",
        p_http_response,
        "http-response <action> [if|unless <cond>]: on server responses (not the proxy's own "
        "pages), backend then frontend; actions: set-header, add-header, del-header, "
        "replace-header, replace-value, set-status <code> [reason <text>], deny "
        "[deny_status <code>] ..., set-var, set-var-fmt, unset-var, capture <sample> id <id>, "
        "set-log-level <level>|silent, allow",
    ),
    K(
        "redirect",
        "fbl",
        p_redirect,
        "redirect location|prefix|scheme <value> [code 301|302|303|307|308] [drop-query] "
        "[append-slash] [ignore-empty] [set-cookie <n>[=<v>]] [clear-cookie <n>[=]] "
        "[if|unless <cond>]: after the section's http-request rules",
    ),
    K(
        "load-server-state-from-file",
        "dbl",
        p_load_server_state,
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
    "compression": "compression is not supported",
    "lua-load": "Lua is not supported; extend udsproxy in Python instead",
    "tcp-response": "tcp-response rules are not supported",
}


def lookup(words: Tuple[str, ...]) -> Tuple[Optional[Keyword], int]:
    """Find the keyword a line starts with (two-word keywords first); return (kw, words used)."""
    if len(words) >= 2:
        kw = KEYWORD_INDEX.get(f"{words[0]} {words[1]}")
        if kw is not None:
            return kw, 2
    return KEYWORD_INDEX.get(words[0]), 1
