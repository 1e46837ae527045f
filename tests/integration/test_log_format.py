"""log-format, captures and unique IDs end to end: twistd, a real backend, real sockets."""

from __future__ import annotations

import json
import re

from tests.integration.backends import free_port, http_request
from tests.integration.proxy import StartProxy
from tests.integration.test_log_format_haproxy import head


def test_log_format_line_and_unique_id_header(
    sockdir, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """The server receives the request's ID in unique-id-header; the log line carries the
    same ID, the captured headers and samples of the request and the response."""
    start_backend("a", f"{sockdir}/a.sock")
    fe = f"{sockdir}/fe.sock"
    config = (
        head("http", fe, free_port())
        + f"""\
    capture request header User-Agent len 8
    capture response header X-Backend len 10
    unique-id-format %[req.hdr(x-request-id)]-%rt
    unique-id-header X-Unique-ID
    log-format "LF %ci:%cp [%tr] %ft %b/%s %ST %tsc %hr %hs %ID %[res.hdr(x-backend)] %{{+Q}}r"
    default_backend b
backend b
    server a {sockdir}/a.sock
"""
    )
    proxy = start_proxy(config, ready=f"unix@{fe}")
    answer = http_request(
        f"unix@{fe}",
        "GET",
        "/headers?q=1",
        headers=[("User-Agent", "curl/8.0 x"), ("X-Request-ID", "r1")],
    )
    assert answer.status == 200
    headers = dict((k.lower(), v) for k, v in json.loads(answer.body)["headers"])
    assert headers["x-unique-id"] == "r1-0"
    log = proxy.wait_log('"GET /headers?q=1 HTTP/1.1"')
    (line,) = [line for line in log.splitlines() if line.startswith("LF ")]
    assert re.fullmatch(
        r"LF unix:1 \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] fe b/a 200 ---- "
        r'\{curl/8\.0\} \{a\} r1-0 a "GET /headers\?q=1 HTTP/1\.1"',
        line,
    ), line
