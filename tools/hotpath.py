"""HTTP mode's per-request cost in memory: no sockets, no kernel, just udsproxy's code.

Runs N keep-alive requests over one client connection through the unit-test harness
(fake transports, a Clock) and prints the CPU seconds per request. Meant for comparing
two versions of the code side by side (run it in each checkout) and for profilers:

    python tools/hotpath.py 20000
    python tools/hotpath.py 20000 --rules   # behind the bench's http-rules scenario rules
    python tools/hotpath.py --pipeline 16 20000   # 16 requests per client write
    python tools/hotpath.py --heads browser 20000  # a browser's 16-field head, cookies
    valgrind --tool=callgrind python tools/hotpath.py 2000   # instructions, repeatable

Instructions per request: run callgrind at two counts and divide the difference by the
difference of the counts (start-up and imports cancel out). With ``--pipeline N`` the
client sends N requests in one write and each is answered in turn, as wrk's pipelining
script does; the cost per request should not depend on N.

Speed targets live in ../shared/bench (real sockets, beside HAProxy), not here.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
# What a browser sends for a page of an app behind a login: 16 fields, cookies included
# (also the request of tools/bench_heads.py, so both measure the same head).
BROWSER_REQUEST = (
    b"GET /account/orders?page=2&sort=date HTTP/1.1\r\n"
    b"Host: app.example.com\r\n"
    b"Connection: keep-alive\r\n"
    b'sec-ch-ua: "Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"\r\n'
    b"sec-ch-ua-mobile: ?0\r\n"
    b'sec-ch-ua-platform: "Linux"\r\n'
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/124.0.0.0 Safari/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    b"image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n"
    b"Sec-Fetch-Site: same-origin\r\n"
    b"Sec-Fetch-Mode: navigate\r\n"
    b"Sec-Fetch-User: ?1\r\n"
    b"Sec-Fetch-Dest: document\r\n"
    b"Referer: https://app.example.com/account\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n"
    b"Cookie: _ga=GA1.1.1843212349.1714070000; _ga_X1Y2Z3=GS1.1.1714070000.3.1.1714070400.0.0.0;"
    b" remember_user_token=eyJfcmFpbHMiOnsibWVzc2FnZSI6IlcxczBNbDBzSWlReVlTUXhNaVJ"
    b"1WVhSc2FXNW5JbDA9IiwiZXhwIjoiMjAyNC0wNS0xMFQxMjowMDowMC4wMDBaIn19--4b1f0c2e9a;"
    b" _app_session=Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG9mcmVkcGx1Z3h5enp5"
    b"dGh1ZA%3D%3D--a1b2c3d4e5f60718293a4b5c6d7e8f9012345678\r\n"
    b"\r\n"
)
HEADS = {"short": REQUEST, "browser": BROWSER_REQUEST}
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Type: text/plain\r\n\r\nhello\n"


def run(n: int, request: bytes = REQUEST, pipeline: int = 1, rules: bool = False) -> float:
    """CPU seconds for ``n`` requests sent ``pipeline`` per write (behind the http-rules
    scenario's rules with ``rules``); the fake servers answer canned bytes (no parsing)."""
    # Imported here: tools/bench_heads.py takes the heads above with the stdlib only.
    from tests.unit.http_harness import Harness

    h = Harness(
        CONFIG.replace("    default_backend be\n", RULES + "    default_backend be\n")
        if rules
        else CONFIG
    )
    client = h.client()
    batch = request * pipeline
    start = time.process_time()
    for _ in range(n // pipeline):
        client.send(batch)
        for _ in range(pipeline):
            for server in h.connector.servers:
                if server.transport.value():
                    server.transport.clear()
                    server.feed(RESPONSE)
                    break
            else:
                raise SystemExit("no server received the request")
        if client.transport.value().count(b"hello\n") != pipeline:
            raise SystemExit("no response")
        client.transport.clear()
    return time.process_time() - start


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, nargs="?", default=5000)
    parser.add_argument("--pipeline", type=int, default=1, help="requests per client write")
    parser.add_argument("--heads", choices=sorted(HEADS), default="short")
    parser.add_argument("--rules", action="store_true", help="the http-rules scenario's rules")
    args = parser.parse_args()
    request = HEADS[args.heads]
    run(200, request, args.pipeline, args.rules)  # warm up (imports, the JIT on PyPy)
    elapsed = run(args.count, request, args.pipeline, args.rules)
    what = " behind the http-rules scenario's rules" if args.rules else ""
    print(f"{args.count} requests{what}: {elapsed / args.count * 1e6:.1f} us CPU per request")
