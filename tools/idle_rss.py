"""RSS per idle client connection: start udsproxy, open N idle unix-socket clients, compare.

    python tools/idle_rss.py 10000

Prints the proxy's RSS growth per connection (HAProxy: about 1.1 KB). A measurement, not a
test: memory targets live in benchmarks. Needs an open-file limit above N (it raises its
own soft limit to the hard one).
"""

from __future__ import annotations

import os
import resource
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.integration.backends import stop_process  # noqa: E402
from tests.integration.proxy import spawn_proxy  # noqa: E402

CONFIG = """
defaults
    mode http
    timeout connect 2s
    timeout client 300s
    timeout server 30s
    timeout http-request 300s
frontend fe
    bind unix@{fe}
    default_backend be
backend be
    server a {dir}/a.sock
"""


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main(count: int) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    workdir = tempfile.mkdtemp(prefix="udsp-rss-")
    fe = f"{workdir}/fe.sock"
    proxy = spawn_proxy(CONFIG.format(fe=fe, dir=workdir), workdir, ready=fe)
    try:
        pid = proxy.proc.pid
        time.sleep(0.5)
        before = rss_kib(pid)
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        clients = []
        for _ in range(count):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(fe)
            clients.append(sock)
        # Polled: the proxy's descriptors (one per accepted connection) stop growing.
        deadline = time.monotonic() + 30
        seen, still_since = -1, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - still_since < 0.5:
            now = len(os.listdir(f"/proc/{pid}/fd"))
            if now != seen:
                seen, still_since = now, time.monotonic()
            time.sleep(0.05)
        accepted = seen - fds
        if accepted < count * 0.99:
            raise SystemExit(f"only {accepted} of {count} connections were accepted")
        after = rss_kib(pid)
        print(
            f"{accepted} idle connections: {(after - before) * 1024 / accepted:.0f} bytes of RSS "
            f"each ({before} -> {after} KiB)"
        )
        for sock in clients:
            sock.close()
    finally:
        stop_process(proxy.proc)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000)
