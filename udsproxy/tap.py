"""The twistd entry point: command-line options, ``--check``, and ``makeService``.

``twistd -n udsproxy --config FILE`` runs a config; ``--check`` validates it and exits
(like ``haproxy -c``) from ``postOptions``, i.e. before twistd checks its pidfile or
daemonizes, and without binding or touching any socket path. With no ``--config`` the
bundled demo runs. This is the only module that imports the global reactor.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, List, Mapping, NoReturn, Optional, TextIO

from twisted.application.service import IService, MultiService
from twisted.python import usage

from .config.model import Config
from .config.parser import parse_file
from .errors import ConfigError, ConfigErrors, UdsProxyError

# ``--check`` exit codes, as ``haproxy -c``: 2 is "no error, but it would not start".
CHECK_VALID, CHECK_INVALID, CHECK_NO_LISTENER = 0, 1, 2


def no_listener(config: Config) -> str:
    """The alert for a config that binds nothing (HAProxy: "No enabled listener found")."""
    return str(
        ConfigError(
            "no listener: no frontend or listen section has a 'bind' line and there is no "
            "'stats socket', so nothing would accept connections",
            config.filename,
            hint="add 'frontend <name>' with 'bind <address>' and 'default_backend <backend>', "
            "or a 'listen' section with 'bind' and its servers",
        )
    )


def report(config: Optional[Config], errors: Optional[ConfigErrors], out: TextIO) -> None:
    """Write notices and errors the way ``--check`` and the start-up log show them."""
    if config is not None:
        for notice in config.notices:
            out.write(f"[NOTICE] {notice}\n")
    if errors is not None:
        for error in errors.errors:
            out.write(f"[ALERT] {error}\n")
        count = len(errors.errors)
        out.write(
            f"[ALERT] {count} error{'s' if count != 1 else ''} found; configuration is invalid\n"
        )


def socket_access_warnings(config: Config) -> List[str]:
    """``--check``: each unix server socket that the proxy's user could not connect to, with
    the EACCES text a connect would log (``haproxy -c`` does not look). The user is the
    global ``user``/``group`` when run as root, else whoever runs the check (ExecStartPre
    as the service's User=). A path that does not exist yet is not a warning."""
    import errno

    from .config.model import UNIX
    from .net.connect import (
        ConnectKind,
        access_advice,
        access_as,
        current_identity,
        effective_access,
        format_connect_message,
        future_identity,
        missing_permission,
    )
    from .privileges import PrivilegeError, plan_drop

    g, who = config.global_, current_identity()
    access: Callable[[str, int], bool] = effective_access
    if os.geteuid() == 0 and g.uid is not None:
        try:
            plan = plan_drop(g.uid, g.gid, g.user)
        except PrivilegeError:
            return []  # the start reports it
        assert plan.uid is not None and plan.gid is not None
        who = future_identity(plan.uid, plan.gid, plan.groups_of)
        access = access_as(who)
    lines = []
    for backend in config.backends:
        for server in backend.servers:
            address = server.address
            if address.family != UNIX:
                continue
            missing = missing_permission(address.path, False, access)
            if missing is None or not os.path.lexists(missing[1]):
                continue
            detail = access_advice(address.path, access=access, who=who)
            message = format_connect_message(address, ConnectKind.EACCES, errno.EACCES, detail)
            where = f"{config.filename}:{server.lineno}: " if config.filename else ""
            lines.append(f"{where}server {backend.name}/{server.name}: {message}")
    return lines


def problem_lines(error: UdsProxyError) -> List[str]:
    """One line per problem of a start-up error (``cannot bind:`` lists one per listener)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = lines[1:]
    return lines or [type(error).__name__]


class StartGuard(MultiService):
    """Ends an expected start-up failure with one line per problem and exit status 1.

    twistd prints a traceback for any exception out of ``privilegedStartService`` or
    ``startService``; a bind, file or privilege error is the operator's to fix, not a bug,
    so it is logged as one alert line (address or path, errno name, the fix) and the process
    exits 1. Any other exception is a bug and keeps its traceback. ``twistd`` is the
    twistd command line's options (pidfile, nodaemon, logfile, statusPipe).
    """

    def __init__(self, twistd: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__()
        self.twistd: Mapping[str, Any] = twistd or {}

    def privilegedStartService(self) -> None:
        root = os.geteuid() == 0
        try:
            super().privilegedStartService()
        except UdsProxyError as error:
            self.abort(error)
        if root and os.geteuid() != 0:
            self.dropped_privileges()

    def dropped_privileges(self) -> None:
        """After the drop to global ``user``: keep twistd from warning at exit that it may not
        delete its pid file. If the new user cannot, the file stays (as HAProxy's does) and
        twistd replaces it as stale at the next start; said once, now."""
        pidfile = self.twistd.get("pidfile")
        if not pidfile or not isinstance(self.twistd, dict):
            return
        directory = os.path.dirname(os.path.abspath(pidfile))
        from .net.connect import current_identity, effective_access

        if effective_access(directory, os.W_OK | os.X_OK):
            return  # twistd removes it at exit as the new user
        from .log.targets import log_event

        self.twistd["pidfile"] = ""
        log_event(
            f"pid file {pidfile} will stay after stop: {current_identity().describe()} "
            f"cannot write to {directory} (twistd replaces a stale pid file at the next start)"
        )

    def startService(self) -> None:
        try:
            super().startService()
        except UdsProxyError as error:
            self.abort(error)

    def abort(self, error: UdsProxyError) -> NoReturn:
        from .log.targets import log_event

        lines = [*problem_lines(error), "udsproxy did not start: exiting with status 1"]
        for line in lines:
            log_event(line, "alert")
        twistd = self.twistd
        if twistd.get("logfile") not in (None, "", "-") and twistd.get("nodaemon"):
            # twistd's log is a file: the terminal or supervisor sees the reason too.
            stream = sys.__stderr__
            if stream is not None:
                stream.write("".join(f"[ALERT] {line}\n" for line in lines))
                stream.flush()
        pipe = twistd.get("statusPipe")
        if pipe is not None:
            # Daemon mode: the waiting parent prints this (twistd truncates it to 100 bytes).
            try:
                os.write(pipe, b"1 " + lines[0].encode("utf-8", "replace")[:98])
                os.close(pipe)
            except OSError:
                pass
        # We leave through SystemExit, which twistd does not catch: its pid file is ours
        # to remove.
        pidfile = twistd.get("pidfile")
        if pidfile:
            try:
                os.unlink(pidfile)
            except OSError:
                pass
        raise SystemExit(1)


class Options(usage.Options):
    """``twistd udsproxy`` options."""

    synopsis = "[--config FILE] [--check]"
    longdesc = (
        "Run the HAProxy-syntax config FILE (without --config: the bundled demo, with demo "
        "backends on socket files in a temporary directory). --check validates FILE and exits."
    )
    optParameters = [
        ["config", "f", None, "HAProxy-syntax config file (none: run the demo)"],
        ["demo-port", None, "8080", "TCP port of the demo frontend on 127.0.0.1 (demo only)"],
    ]
    optFlags = [["check", "c", "validate the config, print every error and notice, and exit"]]

    def __init__(self) -> None:
        super().__init__()
        self.parsed: Optional[Config] = None

    def postOptions(self) -> None:
        path = self["config"]
        if self["check"] and not path:
            raise usage.UsageError("--check needs --config FILE")
        if not path:
            return
        try:
            self.parsed = parse_file(path)
        except ConfigErrors as errors:
            report(None, errors, sys.stderr)
            raise SystemExit(CHECK_INVALID) from None
        if self["check"]:
            report(self.parsed, None, sys.stdout)
            for warning in socket_access_warnings(self.parsed):
                sys.stdout.write(f"[WARNING] {warning}\n")
            if not self.parsed.has_listener:
                sys.stdout.flush()
                sys.stderr.write(f"[ALERT] {no_listener(self.parsed)}\n")
                sys.stderr.write(
                    "Configuration file has no error but will not start (no listener)"
                    f" => exit({CHECK_NO_LISTENER}).\n"
                )
                raise SystemExit(CHECK_NO_LISTENER)
            sys.stdout.write(f"Configuration file is valid: {path}\n")
            sys.stdout.flush()
            raise SystemExit(CHECK_VALID)
        if not self.parsed.has_listener:
            # HAProxy exits 1 at start: running idle forever would hide the mistake.
            sys.stderr.write(f"[ALERT] {no_listener(self.parsed)}\n")
            raise SystemExit(1)


def makeService(options: Options) -> IService:
    """Build the whole process (listeners, stats socket, demo backends) as one MultiService."""
    from twisted.internet import reactor

    from .jit import tune_jit
    from .log.targets import configure_twistd_log

    tune_jit()
    twistd = getattr(options, "parent", None)
    if twistd is not None:
        # Before any log sink is made: where twistd logs decides where log stdout goes.
        configure_twistd_log(
            bool(twistd.get("nodaemon")), twistd.get("logfile"), bool(twistd.get("syslog"))
        )
    guard = StartGuard(twistd)
    if options.parsed is not None:
        from .service import build_service

        inner = build_service(options.parsed, reactor)
    else:
        from .demo.run import build_demo_service

        inner = build_demo_service(reactor, port=int(options["demo-port"]))
    inner.setServiceParent(guard)
    return guard
