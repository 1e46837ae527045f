"""The twistd entry point: command-line options, ``--check``, and ``makeService``.

``twistd -n udsproxy --config FILE`` runs a config; ``--check`` validates it and exits
(like ``haproxy -c``) from ``postOptions``, i.e. before twistd checks its pidfile or
daemonizes, and without binding or touching any socket path. With no ``--config`` the
bundled demo runs. This is the only module that imports the global reactor.
"""

from __future__ import annotations

import sys
from typing import Optional, TextIO

from twisted.application.service import IService
from twisted.python import usage

from .config.model import Config
from .config.parser import parse_file
from .errors import ConfigErrors


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
            raise SystemExit(1) from None
        if self["check"]:
            report(self.parsed, None, sys.stdout)
            sys.stdout.write(f"Configuration file is valid: {path}\n")
            sys.stdout.flush()
            raise SystemExit(0)


def makeService(options: Options) -> IService:
    """Build the whole process (listeners, stats socket, demo backends) as one MultiService."""
    from twisted.internet import reactor

    from .service import build_service

    if options.parsed is not None:
        return build_service(options.parsed, reactor)
    from .demo.run import build_demo_service

    return build_demo_service(reactor, port=int(options["demo-port"]))
