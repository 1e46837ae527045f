"""The frozen config model: what a parsed config file means, comparable and immutable.

Every object here is a frozen dataclass built by the parser (``config.parser``) and never
changed afterwards; a reload builds a new one and diffs it against the running one.
Times are integers in milliseconds; ``None`` means "not set" (HAProxy: infinite, or the
documented fallback, which the accessors below apply).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

# Address families understood by ``bind`` and ``server``.
UNIX = "unix"  # a socket file
ABNS = "abns"  # Linux abstract namespace, NUL-padded to the whole sun_path (HAProxy)
ABNSZ = "abnsz"  # Linux abstract namespace, exact length (curl, socat, Go, systemd)
IPV4 = "ipv4"
IPV6 = "ipv6"
FD = "fd"  # an inherited, already bound and listening descriptor

SUN_PATH_MAX = 108  # sizeof(sockaddr_un.sun_path) on Linux


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
    lineno: int = 0


@dataclass(frozen=True)
class Check:
    """Health-check parameters of a server (``check inter rise fall ...``)."""

    enabled: bool = False
    inter: int = 2000
    fastinter: Optional[int] = None  # defaults to inter
    downinter: Optional[int] = None  # defaults to inter
    rise: int = 2
    fall: int = 3
    port: Optional[int] = None
    addr: Optional[str] = None


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
    lineno: int = 0


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


@dataclass(frozen=True)
class Balance:
    """``balance <algorithm> [args]`` plus ``hash-type``."""

    algorithm: str = "roundrobin"
    args: Tuple[str, ...] = ()
    draws: int = 2  # random(<draws>)
    hash_type: str = "map-based"  # or "consistent"
    hash_function: str = "sdbm"


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
    lineno: int = 0


@dataclass(frozen=True)
class StatsSocket:
    """A ``stats socket`` line."""

    bind: Bind
    level: str = "operator"
    lineno: int = 0


@dataclass(frozen=True)
class Redispatch:
    """``option redispatch [interval]``: -1 redispatch on the last retry; 0 never."""

    enabled: bool = False
    interval: int = -1


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
    # ``errorfile``: (status, the file's raw bytes read at parse time), ascending by status;
    # empty bytes mean "close without a response" (HAProxy's ``errorfile 408 /dev/null``).
    errorfiles: Tuple[Tuple[int, bytes], ...] = ()
    # Planned keywords as written (words, args): parsed and validated, used by later features.
    planned: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()
    filename: str = ""
    lineno: int = 0

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


@dataclass(frozen=True)
class Notice:
    """A message about the config that is not an error: a warning or a planned feature."""

    text: str
    filename: str = ""
    lineno: int = 0
    keyword: str = ""

    def __str__(self) -> str:
        where = f"{self.filename}:{self.lineno}: " if self.filename else ""
        return f"{where}{self.text}"


@dataclass(frozen=True)
class Config:
    """A whole parsed and validated config file."""

    global_: Global = Global()
    proxies: Tuple[Proxy, ...] = ()
    notices: Tuple[Notice, ...] = field(default=(), compare=False)
    filename: str = ""

    @property
    def frontends(self) -> Tuple[Proxy, ...]:
        return tuple(p for p in self.proxies if p.is_frontend)

    @property
    def backends(self) -> Tuple[Proxy, ...]:
        return tuple(p for p in self.proxies if p.is_backend)

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
