"""Accept limits and the fd budget: ``maxconn`` pauses listeners; unset, it follows ``ulimit -n``.

HAProxy stops accepting when a frontend (or the process) holds ``maxconn`` connections;
waiting clients stay in the kernel's backlog until a connection closes. Here each limit
owns the listeners it may pause; a listener accepts only while every limit over it has
room, so a frontend under its own limit stays paused while the global one is reached.

The fd budget (HAProxy's ``compute_ideal_maxconn``, without pipes and SSL engines): when
the global ``maxconn`` is unset it is derived from the open-file limit::

    budget  = min(RLIMIT_NOFILE soft limit after raising it to the hard one, DEFAULT_MAXFD)
    maxconn = max(DEFAULT_MAXCONN, (budget - reserved) // FDS_PER_CONN)
    reserved = BASE_FDS + listeners + log targets + checked servers + stats maxconn

Two descriptors per proxied connection (client and server side); ``reserved`` is what the
process holds besides them. Idle keep-alive server connections are bounded by recent
traffic (http/upstream.ServerPool.put), not by this budget. Memory per connection is
bounded by the input limits (``tune.bufsize`` per side, paused reads) and by the write
back-pressure of each splice, so maxconn also bounds memory at about
maxconn x (2 x bufsize + per-connection state).
"""

from __future__ import annotations

import resource
from typing import Any, Callable, List, NamedTuple, Optional, Tuple

DEFAULT_MAXCONN = 100  # HAProxy's floor when the fd budget leaves less
DEFAULT_MAXFD = 1048576  # HAProxy's cap on an fd budget no setting limits (fd-hard-limit)
FDS_PER_CONN = 2  # the client socket and the server socket
# stdin/out/err, the reactor's poller and waker pipe, twistd's log file and pidfile, and
# the odd file Python or a resolver opens: what the process holds with no listener at all.
BASE_FDS = 16


class AcceptLimit:
    """A connection count with an optional ceiling that pauses its listeners when reached."""

    def __init__(self, name: str, maxconn: Optional[int]) -> None:
        self.name = name
        self.maxconn = maxconn or 0  # 0: no limit
        self.current = 0
        self.listeners: List[Any] = []  # objects with pause()/resume()
        self.limits_of: dict[int, List[AcceptLimit]] = {}
        # Called each time the count drops to zero (a graceful stop waits for it).
        self.on_empty: Optional[Callable[[], None]] = None

    @property
    def full(self) -> bool:
        return bool(self.maxconn) and self.current >= self.maxconn

    def attach(self, listener: Any, limits: List[AcceptLimit]) -> None:
        """Put a listener under this limit; ``limits`` are all the limits over that listener."""
        self.listeners.append(listener)
        self.limits_of[id(listener)] = limits

    def detach(self, listener: Any) -> None:
        """Take a listener from under this limit (a new generation re-attaches it)."""
        if self.limits_of.pop(id(listener), None) is not None:
            self.listeners = [each for each in self.listeners if each is not listener]

    def opened(self) -> None:
        self.current += 1
        if self.full:
            for listener in self.listeners:
                listener.pause()

    def closed(self) -> None:
        was_full = self.full
        if self.current > 0:
            self.current -= 1
            if self.current == 0 and self.on_empty is not None:
                self.on_empty()
        if was_full and not self.full:
            for listener in self.listeners:
                if not any(limit.full for limit in self.limits_of[id(listener)]):
                    listener.resume()


# ---------------------------------------------------------------------------------------
# The fd budget: pure computation


class FdBudget(NamedTuple):
    """The global maxconn in effect, how it was reached, and what to tell the operator."""

    maxconn: int
    derived: bool  # True: no global maxconn was configured
    fd_limit: int  # the open-file limit the computation used
    reserved: int  # descriptors counted besides FDS_PER_CONN per connection
    warning: Optional[str]  # the fd limit is below what udsproxy reserves
    error: Optional[str] = None  # a configured maxconn the fd limit cannot back: no start

    def describe(self) -> str:
        """The start-up log line."""
        if self.derived:
            return (
                f"global maxconn {self.maxconn} (derived from the open-file limit "
                f"{self.fd_limit}: ({self.fd_limit} - {self.reserved} reserved) / "
                f"{FDS_PER_CONN} fds per connection, at least {DEFAULT_MAXCONN})"
            )
        return (
            f"global maxconn {self.maxconn} (configured; open-file limit {self.fd_limit}, "
            f"{fds_needed(self.maxconn, self.reserved)} needed)"
        )


def reserved_fds(listeners: int, log_targets: int, checks: int, stats_maxconn: int) -> int:
    """Descriptors the process holds besides the two per proxied connection."""
    return BASE_FDS + listeners + log_targets + checks + stats_maxconn


def fds_needed(maxconn: int, reserved: int) -> int:
    """The open-file limit ``maxconn`` connections need (HAProxy's maxsock)."""
    return reserved + FDS_PER_CONN * maxconn


def derive_maxconn(fd_limit: int, reserved: int) -> int:
    """HAProxy's default global maxconn for an open-file limit and the fds reserved."""
    budget = min(fd_limit, DEFAULT_MAXFD)
    return max(DEFAULT_MAXCONN, (budget - reserved) // FDS_PER_CONN)


def fd_budget(
    configured: Optional[int],
    fd_limit: int,
    reserved: int,
    frontends_sum: Optional[int] = None,
) -> FdBudget:
    """The effective global maxconn: the configured one, else derived from ``fd_limit``.

    As HAProxy ("Cannot raise FD limit"), a configured maxconn the open-file limit cannot
    back is an ``error``: the process does not start. Without a global maxconn, so is a
    sum of frontend maxconns (``frontends_sum``, when every frontend sets one) beyond it.
    """
    if not configured:
        maxconn = derive_maxconn(fd_limit, reserved)
        warning = None
        if fds_needed(maxconn, reserved) > fd_limit:
            warning = (
                f"the open-file limit {fd_limit} is below the {reserved} descriptors "
                f"udsproxy reserves plus {FDS_PER_CONN} per connection; global maxconn "
                f"{maxconn} may hit EMFILE: raise 'ulimit -n' (LimitNOFILE=)"
            )
        error = None
        if frontends_sum and fds_needed(frontends_sum, reserved) > fd_limit:
            error = _cannot_back(
                f"the frontends' maxconn add up to {frontends_sum}, which",
                fds_needed(frontends_sum, reserved),
                fd_limit,
                reserved,
            )
        return FdBudget(maxconn, True, fd_limit, reserved, warning, error)
    needed = fds_needed(configured, reserved)
    error = None
    if needed > fd_limit:
        error = _cannot_back(f"global maxconn {configured}", needed, fd_limit, reserved)
    return FdBudget(configured, False, fd_limit, reserved, None, error)


def _cannot_back(what: str, needed: int, fd_limit: int, reserved: int) -> str:
    fits = max(0, (fd_limit - reserved) // FDS_PER_CONN)
    return (
        f"{what} needs about {needed} file descriptors ({reserved} reserved + "
        f"{FDS_PER_CONN} per connection) but the open-file limit is {fd_limit} and cannot "
        f"be raised: raise it to {needed} ('ulimit -n', LimitNOFILE= in the systemd unit) "
        f"or lower maxconn to at most {fits}"
    )


# ---------------------------------------------------------------------------------------
# The fd budget: the rlimit syscalls (the edge)

Rlimit = Tuple[int, int]


class NofileLimit:
    """RLIMIT_NOFILE read and raised; the two calls injectable for tests."""

    def __init__(
        self,
        get: Callable[[], Rlimit] = lambda: resource.getrlimit(resource.RLIMIT_NOFILE),
        set_: Callable[[Rlimit], None] = lambda lim: resource.setrlimit(
            resource.RLIMIT_NOFILE, lim
        ),
    ) -> None:
        self.get = get
        self.set = set_

    def raise_soft(self, wanted: Optional[int] = None) -> Tuple[int, Optional[str]]:
        """Raise the soft limit to the hard one (at most DEFAULT_MAXFD), or to ``wanted``.

        ``wanted`` above the hard limit raises the hard limit too, which only root may do
        (HAProxy does the same for a configured maxconn). Returns the soft limit in effect
        and, when the raise failed, why.
        """
        soft, hard = self.get()
        if soft == resource.RLIM_INFINITY:
            return DEFAULT_MAXFD, None  # no limit: the budget's own cap applies
        if wanted is None:
            target = DEFAULT_MAXFD if hard == resource.RLIM_INFINITY else hard
            target = min(target, DEFAULT_MAXFD)
            new_hard = hard
        else:
            target = wanted
            new_hard = hard if hard == resource.RLIM_INFINITY or hard >= wanted else wanted
        if soft >= target:
            return soft, None
        try:
            self.set((target, new_hard))
        except (OSError, ValueError) as exc:
            return soft, (
                f"cannot raise the open-file limit from {soft} to {target} "
                f"(hard limit {hard}): {exc}"
            )
        return target, None


def apply_fd_budget(
    configured: Optional[int],
    reserved: int,
    nofile: Optional[NofileLimit] = None,
    frontends_sum: Optional[int] = None,
) -> Tuple[FdBudget, List[str]]:
    """Raise RLIMIT_NOFILE as far as needed and allowed, then compute the global maxconn.

    Returns the budget (its ``error`` set when a configured maxconn cannot be backed) and
    the notes to log (a failed raise).
    """
    nofile = nofile or NofileLimit()
    notes: List[str] = []
    limit, error = nofile.raise_soft()
    if error:
        notes.append(error)
    wanted = configured or frontends_sum
    if wanted and fds_needed(wanted, reserved) > limit:
        limit, error = nofile.raise_soft(fds_needed(wanted, reserved))
        if error:
            notes.append(error)
    return fd_budget(configured, limit, reserved, frontends_sum), notes
