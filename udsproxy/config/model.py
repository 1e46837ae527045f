"""The frozen config model: what a parsed config file means, comparable and immutable.

Every object here is a frozen dataclass built by the parser (``config.parser``) and never
changed afterwards; a reload builds a new one and diffs it against the running one.
Two configs that mean the same compare equal: file names and line numbers are kept for
messages but left out of equality and hashing (``field(compare=False)``).
Times are integers in milliseconds; ``None`` means "not set" (HAProxy: infinite, or the
documented fallback, which the accessors below apply).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Tuple, Union

from udsproxy.strenum import StrEnum

if TYPE_CHECKING:
    from udsproxy.logformat import LogFormat
    from udsproxy.rules import Condition, Sample
    from udsproxy.rules.actions import Action

# Address families understood by ``bind`` and ``server``.
UNIX = "unix"  # a socket file
ABNS = "abns"  # Linux abstract namespace, NUL-padded to the whole sun_path (HAProxy)
ABNSZ = "abnsz"  # Linux abstract namespace, exact length (curl, socat, Go, systemd)
IPV4 = "ipv4"
IPV6 = "ipv6"
FD = "fd"  # an inherited, already bound and listening descriptor
SYSTEMD = "systemd"  # an inherited descriptor named by LISTEN_FDNAMES (``path``: the name)

SUN_PATH_MAX = 108  # sizeof(sockaddr_un.sun_path) on Linux


class Word(StrEnum):
    """A closed set of config words: equal to, hashed and printed as the word itself.

    ``Algorithm.SOURCE == "source"`` holds, and so does ``{"source": x}[Algorithm.SOURCE]``.
    """


@dataclass(frozen=True)
class Address:
    """One socket address from a ``bind`` or ``server`` line."""

    family: str
    path: str = ""  # UNIX: the file path; ABNS/ABNSZ: the name without the leading NUL
    host: str = ""  # IPV4/IPV6: "" for any address
    port: int = 0
    fd: int = -1  # FD only

    @property
    def is_unix(self) -> bool:
        """True for every AF_UNIX family (file and abstract)."""
        return self.family in (UNIX, ABNS, ABNSZ)

    def sockaddr(self) -> object:
        """The address as Python's socket module wants it (str, bytes or (host, port))."""
        if self.family == UNIX:
            return self.path
        if self.family == ABNS:
            raw = self.path.encode()
            return b"\0" + raw + b"\0" * (SUN_PATH_MAX - 1 - len(raw))
        if self.family == ABNSZ:
            return b"\0" + self.path.encode()
        if self.family == IPV6:
            return (self.host or "::", self.port)
        return (self.host or "0.0.0.0", self.port)

    def __str__(self) -> str:
        if self.family == UNIX:
            return f"unix@{self.path}"
        if self.family in (ABNS, ABNSZ):
            return f"{self.family}@{self.path}"
        if self.family == FD:
            return f"fd@{self.fd}"
        if self.family == SYSTEMD:
            return f"systemd@{self.path}"
        if self.family == IPV6:
            return f"[{self.host or '::'}]:{self.port}"
        return f"{self.host or '*'}:{self.port}"


@dataclass(frozen=True)
class SocketPerms:
    """Owner, group and permission bits of a socket file (bind options, expected on servers)."""

    mode: Optional[int] = None
    uid: Optional[int] = None
    gid: Optional[int] = None

    def is_empty(self) -> bool:
        return self.mode is None and self.uid is None and self.gid is None


@dataclass(frozen=True)
class Bind:
    """A ``bind`` line: one listening address with its unix-socket options."""

    address: Address
    perms: SocketPerms = SocketPerms()
    name: str = ""
    lineno: int = field(default=0, compare=False)  # for messages only


class Observe(Word):
    """``observe <mode>``: passive health from live traffic."""

    NONE = "none"
    LAYER4 = "layer4"
    LAYER7 = "layer7"


class OnError(Word):
    """``on-error <mode>``: what ``error-limit`` consecutive observed errors do."""

    FASTINTER = "fastinter"
    FAIL_CHECK = "fail-check"
    SUDDEN_DEATH = "sudden-death"
    MARK_DOWN = "mark-down"


@dataclass(frozen=True)
class Check:
    """Health-check parameters of a server (``check inter rise fall ...``), HAProxy's defaults."""

    enabled: bool = False
    inter: int = 2000
    fastinter: Optional[int] = None  # defaults to inter
    downinter: Optional[int] = None  # defaults to inter
    rise: int = 2
    fall: int = 3
    port: Optional[int] = None
    addr: Optional[str] = None  # an IPv4 or IPv6 address, as written
    observe: Observe = Observe.NONE
    error_limit: int = 10
    on_error: OnError = OnError.FAIL_CHECK
    slowstart: int = 0  # ms for a server back up to reach full weight; 0: at once


@dataclass(frozen=True)
class Server:
    """A ``server`` line."""

    name: str
    address: Address
    weight: int = 1
    backup: bool = False
    disabled: bool = False
    maxconn: int = 0  # 0: unlimited
    maxqueue: int = 0  # 0: unlimited
    id: Optional[int] = None  # forced id; None: assigned in order (1, 2, ...)
    check: Check = Check()
    expect_perms: SocketPerms = SocketPerms()  # udsproxy extension: expected socket owner/mode
    pool_purge_delay: int = 5000  # ms an idle keep-alive connection is kept (HTTP mode)
    pool_max_conn: int = -1  # idle connections kept; -1: no limit, 0: no pooling
    pool_low_conn: int = 0  # idle connections kept beyond the estimated need
    send_proxy: bool = False  # send-proxy: a PROXY v1 header on each connection
    send_proxy_v2: bool = False  # send-proxy-v2: a PROXY v2 header
    on_marked_down: str = ""  # "shutdown-sessions": end its streams when it goes DOWN
    on_marked_up: str = ""  # "shutdown-backup-sessions": end backups' streams when UP
    lineno: int = field(default=0, compare=False)  # for messages only


@dataclass(frozen=True)
class Timeouts:
    """``timeout <name> <time>`` values in milliseconds; None: unset."""

    connect: Optional[int] = None
    client: Optional[int] = None
    server: Optional[int] = None
    queue: Optional[int] = None
    tunnel: Optional[int] = None
    client_fin: Optional[int] = None
    server_fin: Optional[int] = None
    http_request: Optional[int] = None
    http_keep_alive: Optional[int] = None
    check: Optional[int] = None
    tarpit: Optional[int] = None

    @property
    def effective_queue(self) -> Optional[int]:
        """HAProxy: an unset ``timeout queue`` equals ``timeout connect``."""
        return self.queue if self.queue is not None else self.connect

    @property
    def effective_keep_alive(self) -> Optional[int]:
        """HAProxy: unset http-keep-alive falls back to http-request, then client."""
        for value in (self.http_keep_alive, self.http_request, self.client):
            if value is not None:
                return value
        return None


@dataclass(frozen=True)
class ForwardFor:
    """``option forwardfor [except <net>] [header <name>] [if-none]``."""

    header: str = "X-Forwarded-For"
    except_net: Optional[str] = None  # a network, as written (CIDR or an address)
    if_none: bool = False


class Algorithm(Word):
    """``balance <algorithm>``."""

    ROUNDROBIN = "roundrobin"
    STATIC_RR = "static-rr"
    LEASTCONN = "leastconn"
    FIRST = "first"
    SOURCE = "source"
    RANDOM = "random"
    URI = "uri"
    URL_PARAM = "url_param"
    HDR = "hdr"


class HashType(Word):
    """``hash-type <method>``."""

    MAP_BASED = "map-based"
    CONSISTENT = "consistent"


class HashFunction(Word):
    """``hash-type <method> <function>``."""

    SDBM = "sdbm"
    DJB2 = "djb2"
    WT6 = "wt6"
    CRC32 = "crc32"
    NONE = "none"


@dataclass(frozen=True)
class UriOptions:
    """``balance uri [len <n>] [depth <n>] [whole] [path-only]`` (0: no len / depth)."""

    length: int = 0
    depth: int = 0
    whole: bool = False
    path_only: bool = False


@dataclass(frozen=True)
class Balance:
    """``balance <algorithm> [options]`` plus ``hash-type``, every option in its own field."""

    algorithm: Algorithm = Algorithm.ROUNDROBIN
    draws: int = 2  # random(<draws>)
    uri: UriOptions = UriOptions()  # balance uri
    url_param: str = ""  # balance url_param <param>
    check_post: bool = False  # ... check_post: also look in a POST body
    check_post_max_wait: Optional[int] = None  # ... check_post <max_wait>: ignored (as HAProxy)
    header: str = ""  # balance hdr(<name>), the name as written
    use_domain_only: bool = False  # ... use_domain_only
    hash_type: HashType = HashType.MAP_BASED
    hash_function: HashFunction = HashFunction.SDBM
    avalanche: bool = False  # hash-type ... avalanche

    @property
    def spelling(self) -> str:
        """The algorithm as written on the ``balance`` line: ``hdr(<name>)`` with its name."""
        if self.algorithm == Algorithm.HDR:
            return f"hdr({self.header})"
        return str(self.algorithm)


@dataclass(frozen=True)
class LogTarget:
    """A ``log`` line: where session and event lines go."""

    target: str  # "stdout", "stderr", "/dev/log", a unix path, or "host:port"
    facility: str = "local0"
    level: str = "debug"  # max level sent
    min_level: str = ""
    # HAProxy's default header is "local" (<PRI>Mmm dd hh:mm:ss tag[pid]: msg), for syslog
    # and stdout/stderr alike (checked against HAProxy 2.6).
    format: str = "local"  # raw | local | rfc3164 | rfc5424 | short | priority | iso | timed
    length: int = 1024  # "len": longest line sent
    lineno: int = field(default=0, compare=False)  # for messages only


@dataclass(frozen=True)
class StatsSocket:
    """A ``stats socket`` line."""

    bind: Bind
    level: str = "operator"
    lineno: int = field(default=0, compare=False)  # for messages only


class ExpectMatch(Word):
    """What an ``http-check expect`` rule looks at."""

    STATUS = "status"
    RSTATUS = "rstatus"
    HDR = "hdr"
    FHDR = "fhdr"
    STRING = "string"
    RSTRING = "rstring"


@dataclass(frozen=True)
class HttpCheckSend:
    """``http-check send [meth <m>] [uri <u>|uri-lf <fmt>] [ver <v>] [hdr <n> <fmt>]* ...``.

    None: what ``option httpchk`` says (OPTIONS / HTTP/1.0 by default).
    """

    method: Optional[str] = None
    uri: Optional[str] = None
    uri_lf: bool = False  # uri is a log-format string
    version: Optional[str] = None
    headers: Tuple[Tuple[str, str], ...] = ()  # (name, log-format value), in order
    body: Optional[str] = None
    body_lf: bool = False  # body is a log-format string
    comment: str = ""


@dataclass(frozen=True)
class HttpCheckExpect:
    """``http-check expect [<options>] [!] <match> <pattern>``."""

    match: ExpectMatch
    pattern: str  # codes, a regex or a string; hdr/fhdr: the header name pattern
    negate: bool = False
    name_method: str = "str"  # hdr/fhdr: -m str|beg|end|sub|reg on the name
    name_lf: bool = False
    value: Optional[str] = None  # hdr/fhdr: the value pattern, None: presence only
    value_method: str = "str"
    value_lf: bool = False
    min_recv: int = -1
    comment: str = ""
    ok_status: str = "L7OK"
    error_status: str = "L7RSP"
    tout_status: str = "L7TOUT"
    on_success: str = ""
    on_error: str = ""
    status_code: str = ""


@dataclass(frozen=True)
class HttpCheckOther:
    """Another ``http-check`` rule (comment, connect, disable-on-404, send-state, set-var...)."""

    action: str
    words: Tuple[str, ...] = ()


HttpCheckRule = Union[HttpCheckSend, HttpCheckExpect, HttpCheckOther]


@dataclass(frozen=True)
class HttpCheck:
    """``option httpchk [<method>] [<uri>] [<version>]`` and the ``http-check`` rules, in order."""

    enabled: bool = False
    method: str = "OPTIONS"
    uri: str = "/"
    version: str = "HTTP/1.0"
    rules: Tuple[HttpCheckRule, ...] = ()


class LoadServerState(Word):
    """``load-server-state-from-file``: which state file a reload reads for this backend."""

    GLOBAL = "global"
    LOCAL = "local"
    NONE = "none"


@dataclass(frozen=True)
class Redispatch:
    """``option redispatch [interval]``: -1 redispatch on the last retry; 0 never."""

    enabled: bool = False
    interval: int = -1


@dataclass(frozen=True)
class Capture:
    """A capture slot: ``capture request|response header <name> len <length>`` (a header's
    value), or ``declare capture`` / ``http-request capture ... len`` (name "": filled by
    rules)."""

    name: str  # the header, as written (matched case-insensitively); "" for a rules' slot
    length: int  # the value is cut to this many bytes


@dataclass(frozen=True)
class NameFormat:
    """A name computed per request (``use_backend %[...]``): literal text and samples."""

    text: str  # as written
    parts: Tuple[Union[str, Sample], ...]


@dataclass(frozen=True)
class UseBackend:
    """``use_backend <name>|<format> [if|unless <cond>]``."""

    backend: Union[str, NameFormat]  # a backend name, or one computed per request
    condition: Optional[Condition] = None  # None: always
    lineno: int = field(default=0, compare=False)  # for messages only


@dataclass(frozen=True)
class UseServer:
    """``use-server <server> if|unless <cond>``."""

    server: str
    condition: Condition
    lineno: int = field(default=0, compare=False)  # for messages only


class TcpAction(Word):
    """What a ``tcp-request connection|content`` rule does when its condition holds."""

    ACCEPT = "accept"
    REJECT = "reject"


@dataclass(frozen=True)
class TcpRule:
    """``tcp-request connection|content accept|reject [if|unless <cond>]``."""

    action: TcpAction
    condition: Optional[Condition] = None  # None: always
    lineno: int = field(default=0, compare=False)  # for messages only


@dataclass(frozen=True)
class HttpRule:
    """An ``http-request``, ``http-response`` or ``redirect`` rule: its action, compiled by
    the rules engine (compared by its words and the files it read), and its condition."""

    action: Action
    condition: Optional[Condition] = None  # None: always
    lineno: int = field(default=0, compare=False)  # for messages only


@dataclass(frozen=True)
class User:
    """A ``user`` line of a ``userlist``: its password (a crypt(3) hash, or as written when
    ``insecure``) and every group it belongs to (its own ``groups`` and the ``group`` lines
    that list it)."""

    name: str
    password: str
    insecure: bool = False
    groups: Tuple[str, ...] = ()
    lineno: int = field(default=0, compare=False)  # for messages only


@dataclass(frozen=True)
class Userlist:
    """A ``userlist`` section: users checked by ``http_auth(<name>)``."""

    name: str
    users: Tuple[User, ...] = ()
    groups: Tuple[str, ...] = ()
    lineno: int = field(default=0, compare=False)  # for messages only


@dataclass(frozen=True)
class Proxy:
    """A ``frontend``, ``backend`` or ``listen`` section (or a ``defaults`` one)."""

    name: str
    kind: str  # "frontend" | "backend" | "listen" | "defaults"
    mode: str = "tcp"  # "tcp" | "http" | "unix" (tcp restricted to unix sockets)
    binds: Tuple[Bind, ...] = ()
    servers: Tuple[Server, ...] = ()
    balance: Balance = Balance()
    maxconn: Optional[int] = None
    fullconn: Optional[int] = None
    backlog: Optional[int] = None
    timeouts: Timeouts = Timeouts()
    retries: int = 3
    redispatch: Redispatch = Redispatch()
    options: Tuple[str, ...] = ()  # enabled boolean options: "allbackups", "tcplog", ...
    logs: Tuple[LogTarget, ...] = ()
    default_backend: Optional[str] = None
    id: Optional[int] = None
    forwardfor: Optional[ForwardFor] = None  # set when ``option forwardfor`` is on
    http_reuse: str = "safe"
    http_check: HttpCheck = HttpCheck()
    load_server_state: LoadServerState = LoadServerState.NONE
    # ``errorfile``: (status, the file's raw bytes read at parse time), ascending by status;
    # empty bytes mean "close without a response" (HAProxy's ``errorfile 408 /dev/null``).
    errorfiles: Tuple[Tuple[int, bytes], ...] = ()
    # The session log line, compiled from the last of ``log-format``, ``option httplog
    # [clf]`` and ``option tcplog`` (frontends only; None: no session line).
    log_format: Optional[LogFormat] = None
    request_captures: Tuple[Capture, ...] = ()  # in declaration order: %hr's fields
    response_captures: Tuple[Capture, ...] = ()
    unique_id_format: Optional[LogFormat] = None  # %ID, and the unique-id-header value
    unique_id_header: Optional[str] = None
    use_backends: Tuple[UseBackend, ...] = ()  # in file order, before default_backend
    use_servers: Tuple[UseServer, ...] = ()  # in file order, before balancing
    tcp_connection: Tuple[TcpRule, ...] = ()  # tcp-request connection, at accept
    tcp_content: Tuple[TcpRule, ...] = ()  # tcp-request content, on the first bytes
    inspect_delay: Optional[int] = None  # tcp-request inspect-delay (ms); None: no wait
    http_request: Tuple[HttpRule, ...] = ()  # in file order
    http_response: Tuple[HttpRule, ...] = ()  # in file order
    redirects: Tuple[HttpRule, ...] = ()  # the redirect keyword: after http-request rules
    # Planned keywords as written (words, args): parsed and validated, used by later features.
    planned: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()
    filename: str = field(default="", compare=False)  # for messages only
    lineno: int = field(default=0, compare=False)  # for messages only

    @property
    def is_frontend(self) -> bool:
        return self.kind in ("frontend", "listen")

    @property
    def is_backend(self) -> bool:
        return self.kind in ("backend", "listen")

    @property
    def proxy_mode(self) -> str:
        """The traffic mode: ``unix`` is TCP mode restricted to unix sockets."""
        return "tcp" if self.mode == "unix" else self.mode

    def has_option(self, name: str) -> bool:
        return name in self.options

    def server(self, name: str) -> Optional[Server]:
        for srv in self.servers:
            if srv.name == name:
                return srv
        return None


@dataclass(frozen=True)
class Global:
    """The ``global`` section."""

    maxconn: Optional[int] = None
    uid: Optional[int] = None
    gid: Optional[int] = None
    user: Optional[str] = None  # the name, kept for initgroups()
    logs: Tuple[LogTarget, ...] = ()
    unix_bind_prefix: str = ""
    unix_bind_perms: SocketPerms = SocketPerms()
    stats_sockets: Tuple[StatsSocket, ...] = ()
    stats_timeout: int = 10000
    stats_maxconn: int = 10
    bufsize: int = 16384
    maxrewrite: int = 1024
    http_maxhdr: int = 101
    spread_checks: int = 0  # percent of random spread of check intervals (0..50)
    hard_stop_after: Optional[int] = None  # ms a soft stop may last; None: no limit
    server_state_file: Optional[str] = None


@dataclass(frozen=True)
class Notice:
    """A message about the config that is not an error: a warning or a planned feature."""

    text: str
    filename: str = field(default="", compare=False)  # for messages only
    lineno: int = field(default=0, compare=False)  # for messages only
    keyword: str = ""

    def __str__(self) -> str:
        where = f"{self.filename}:{self.lineno}: " if self.filename else ""
        return f"{where}{self.text}"


@dataclass(frozen=True)
class Config:
    """A whole parsed and validated config file."""

    global_: Global = Global()
    proxies: Tuple[Proxy, ...] = ()
    userlists: Tuple[Userlist, ...] = ()
    notices: Tuple[Notice, ...] = field(default=(), compare=False)
    filename: str = field(default="", compare=False)  # for messages only

    @property
    def frontends(self) -> Tuple[Proxy, ...]:
        return tuple(p for p in self.proxies if p.is_frontend)

    @property
    def backends(self) -> Tuple[Proxy, ...]:
        return tuple(p for p in self.proxies if p.is_backend)

    @property
    def has_listener(self) -> bool:
        """True if the config binds anything: a frontend or listen ``bind``, or a stats socket
        (HAProxy counts its CLI sockets as listeners too)."""
        return bool(self.global_.stats_sockets) or any(p.binds for p in self.frontends)

    def proxy(self, name: str) -> Optional[Proxy]:
        for p in self.proxies:
            if p.name == name:
                return p
        return None

    def backend_for(self, frontend: Proxy) -> Optional[Proxy]:
        """The backend a frontend sends traffic to: its own servers (listen) or default_backend."""
        if frontend.default_backend is not None:
            return next((p for p in self.backends if p.name == frontend.default_backend), None)
        if frontend.is_backend:
            return frontend
        return None
