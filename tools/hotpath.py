"""HTTP mode's per-request cost in memory: no sockets, no kernel, just udsproxy's code.

Runs N keep-alive requests over one client connection through the unit-test harness
(fake transports, a Clock) and prints the CPU seconds per request. Meant for comparing
two versions of the code side by side (run it in each checkout) and for profilers:

    python tools/hotpath.py 20000
    valgrind --tool=callgrind python tools/hotpath.py 2000   # instructions, repeatable

Speed targets live in ../shared/bench (real sockets, beside HAProxy), not here.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.unit.http_harness import Harness  # noqa: E402

CONFIG = """
frontend fe
    bind 127.0.0.1:8080
    default_backend be
backend be
    balance roundrobin
    server a /s/a.sock
    server b /s/b.sock
    server c /s/c.sock
"""


REQUEST = b"GET / HTTP/1.1\r\nHost: app\r\nUser-Agent: hotpath\r\nAccept: */*\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Type: text/plain\r\n\r\nhello\n"


def run(n: int) -> float:
    """CPU seconds for ``n`` requests; the fake servers answer canned bytes (no parsing)."""
    h = Harness(CONFIG)
    client = h.client()
    start = time.process_time()
    for _ in range(n):
        client.send(REQUEST)
        for server in h.connector.servers:
            if server.transport.value():
                server.transport.clear()
                server.feed(RESPONSE)
                break
        else:
            raise SystemExit("no server received the request")
        if not client.transport.value().endswith(b"hello\n"):
            raise SystemExit("no response")
        client.transport.clear()
    return time.process_time() - start


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    run(200)  # warm up (imports, the JIT on PyPy)
    elapsed = run(count)
    print(f"{count} requests: {elapsed / count * 1e6:.1f} us CPU per request")
