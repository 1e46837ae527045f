"""The no-config start: demo backends on socket files in a temp dir, a frontend, a curl line.

``twistd -n udsproxy`` with no ``--config`` parses the bundled ``demo.cfg`` with the temp
directory and port filled in, starts three demo backends (``udsproxy.demo.backend``) in
the same process, prints how to see the balancing, and removes the directory on exit.
"""

from __future__ import annotations

import errno
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from twisted.application.service import MultiService, Service

from ..config.parser import parse_text
from ..errors import UdsProxyError
from ..service import ProxyService
from .backend import make_backend_service

DEMO_CFG = Path(__file__).with_name("demo.cfg")
BACKENDS = ("app1", "app2", "app3")


class DemoError(UdsProxyError):
    """The demo cannot start (its port is taken)."""


class TempDirService(Service):
    """Removes the demo's temporary directory when the process stops."""

    def __init__(self, path: str) -> None:
        self.path = path

    def stopService(self) -> None:
        super().stopService()
        shutil.rmtree(self.path, ignore_errors=True)


class BannerService(Service):
    """Prints what the demo is and the command that shows the balancing."""

    def __init__(self, port: int, directory: str) -> None:
        self.port = port
        self.directory = directory

    def startService(self) -> None:
        super().startService()
        url = f"http://127.0.0.1:{self.port}/"
        names = ",".join(BACKENDS)
        sys.stdout.write(
            f"\nudsproxy demo: HTTP on 127.0.0.1:{self.port} -> backends on "
            f"{self.directory}/{{{names}}}.sock (roundrobin, per request)\n"
            f"Try:  curl -s {url} {url} {url} {url} {url} {url}\n"
            "      (one keep-alive connection, six requests: each goes to the next backend)\n"
            f"      curl -si {url}headers   (what a backend receives: X-Forwarded-For, ...)\n"
            "Stop with Ctrl-C. Your own config: twistd -n udsproxy --config FILE\n\n"
        )
        sys.stdout.flush()


def check_port_free(port: int) -> None:
    """Fail early, with the fix, when the demo port is taken."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise DemoError(
                f"the demo's port 127.0.0.1:{port} is already in use; "
                f"start the demo on another port: twistd -n udsproxy --demo-port 8081"
            ) from None
        raise
    finally:
        probe.close()


def build_demo_service(reactor: Any, port: int = 8080) -> MultiService:
    """The demo process: backends, the proxy with the demo config, and cleanup."""
    check_port_free(port)
    directory = tempfile.mkdtemp(prefix="udsproxy-demo-")
    env = {"DEMO_DIR": directory, "DEMO_PORT": str(port)}
    config = parse_text(DEMO_CFG.read_text(), str(DEMO_CFG), env)
    top = MultiService()
    TempDirService(directory).setServiceParent(top)
    for name in BACKENDS:
        make_backend_service(name, f"{directory}/{name}.sock").setServiceParent(top)
    ProxyService(config, reactor).setServiceParent(top)
    BannerService(port, directory).setServiceParent(top)
    return top
