"""HTTP mode's per-request cost in memory: no sockets, no kernel, just udsproxy's code.

Runs N keep-alive requests over one client connection through the unit-test harness
(fake transports, a Clock) and prints the CPU seconds per request. Meant for comparing
two versions of the code side by side (run it in each checkout) and for profilers:

    python tools/hotpath.py 20000
    python tools/hotpath.py 20000 --rules   # behind the bench's http-rules scenario rules
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


# --rules: the bench's http-rules scenario (../shared/bench/run.py RULES): 20 ACLs, 10
# use_backend rules none of which match "/", 4 http-request and 2 http-response rules.
RULES = "".join(
    f"    {line}\n"
    for line in (
        *(f"acl api{i} path_beg /api{i}/" for i in range(5)),
        *(f"acl host{i} hdr(host) -i app{i}.example" for i in range(5)),
        *(f"acl img{i} path_end .png{i} .jpg{i}" for i in range(5)),
        *(f"acl post{i} method POST PUT{i}" for i in range(5)),
        "http-request deny if { path_beg /admin/ }",
        "http-request set-header X-Forwarded-Proto http",
        "http-request del-header X-Debug",
        "http-request add-header X-Edge bench",
        "http-response set-header X-Frame-Options DENY",
        "http-response del-header X-Powered-By",
        *(f"use_backend be if api{i} host{i}" for i in range(5)),
        *(f"use_backend be if img{i} || post{i}" for i in range(5)),
    )
)

REQUEST = b"GET / HTTP/1.1\r\nHost: app\r\nUser-Agent: hotpath\r\nAccept: */*\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Type: text/plain\r\n\r\nhello\n"


def run(n: int, rules: bool = False) -> float:
    """CPU seconds for ``n`` requests; the fake servers answer canned bytes (no parsing)."""
    h = Harness(
        CONFIG.replace("    default_backend be\n", RULES + "    default_backend be\n")
        if rules
        else CONFIG
    )
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
    args = [a for a in sys.argv[1:] if a != "--rules"]
    with_rules = "--rules" in sys.argv
    count = int(args[0]) if args else 5000
    run(200, with_rules)  # warm up (imports, the JIT on PyPy)
    elapsed = run(count, with_rules)
    what = " behind the http-rules scenario's rules" if with_rules else ""
    print(f"{count} requests{what}: {elapsed / count * 1e6:.1f} us CPU per request")
