"""Header rules side by side with HAProxy 2.6: one config, the same requests, the same bytes.

The installed ``haproxy`` and udsproxy run the same config (only the listener addresses
differ) in front of the same backend; each request goes to both on a fresh connection. The
server's view of each rewritten request (the demo backend's ``/headers`` answers with the
request line and header fields it received) and each response (status, reason, header
fields in order, body) must be the same. Header names are compared lower-cased: HAProxy
sends every name lower-case, udsproxy keeps the case it received or was configured with.
"""

from __future__ import annotations

import base64
import json
from typing import Any, List, Tuple

import pytest

from tests.integration.backends import HTTPClient, connect, read_until_close
from tests.integration.test_log_format_haproxy import HAPROXY, Step, run_both
from udsproxy.rules import auth

pytestmark = pytest.mark.skipif(
    auth.crypt_function() is None, reason="no crypt(3) to make the userlist's hash"
)


def config_for(sockdir: str, bob_hash: str) -> Any:
    def config(fe: str, port: int) -> str:
        return f"""
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
userlist L1
    group admins users alice
    user alice insecure-password secret
    user bob password {bob_hash}
frontend fe
    bind {fe}
    bind 127.0.0.1:{port}
    unique-id-format %[req.hdr(x-req)]-%b
    unique-id-header X-Unique-ID
    acl auth_ok http_auth(L1)
    acl admin http_auth_group(L1) admins
    http-request auth realm Private if {{ path_beg /private }} !auth_ok
    http-request deny if {{ path_beg /private/admin }} !admin
    http-request deny if {{ path_beg /admin }}
    http-request deny deny_status 429 if {{ path_beg /slow }}
    http-request deny status 403 content-type text/plain string nope hdr X-Why %[path] if {{ path /nope }}
    http-request return status 201 content-type text/plain lf-string "made %[path] %[query]" hdr X-R %[req.hdr(x-a)] if {{ path_beg /made }}
    http-request return if {{ path /empty }}
    http-request redirect location /new code 301 if {{ path /old }}
    http-request redirect prefix /v2 drop-query append-slash set-cookie SEEN=1 if {{ path_beg /v1/ }}
    http-request redirect scheme https if {{ hdr(x-https) -m found }}
    redirect location /kw clear-cookie A= if {{ path /kw-old }}
    http-request set-var(txn.path) path
    http-request set-header X-From %f/%b/%HM/[%ID]
    http-request set-header X-U %[unique-id] if {{ hdr(x-u) -m found }}
    http-request set-header X-Set %[path]-%[req.hdr_cnt(x-multi)]-%[req.hdr(x-multi,1)]
    http-request set-header X-Multi replaced if {{ hdr(x-replace-multi) -m found }}
    http-request add-header X-Added one
    http-request add-header X-Added "two %[method]"
    http-request del-header x-drop- -m beg
    http-request del-header X-Gone
    http-request del-header ^x-r.g -m reg
    http-request replace-header X-Whole ^a(.*)$ A\\1
    http-request replace-value X-List ^a(.*)$ A\\1
    http-request set-path /headers if {{ path /rewrite-path }}
    http-request set-query q=%[query] if {{ path /headers }} {{ query -m found }}
    http-request set-uri /headers?from=uri if {{ path /rewrite-uri }}
    http-request replace-path ^/rp/(.*)$ /head\\1 if {{ path_beg /rp/ }}
    http-request replace-pathq ^/rq/([^?]*)\\?(.*)$ /headers?\\2&p=\\1 if {{ path_beg /rq/ }}
    http-request replace-uri ^/ru/(.*)$ /headers?ru=\\1 if {{ path_beg /ru/ }}
    http-request replace-path ^/nomatch$ /x if {{ path_beg /ru/ }}
    http-request set-pathq /headers?pq=%[query] if {{ path /spq }}
    http-request set-method PUT if {{ hdr(x-put) -m found }}
    http-request set-header X-User %[http_auth_group(L1)] if auth_ok
    http-response set-header X-Frame-Options DENY
    http-response add-header X-Seq fe
    default_backend b
backend b
    http-request set-header X-Backend-Saw %[be_name]
    http-response set-header X-Path %[var(txn.path)]
    http-response set-header X-ID %[unique-id]/%ID/%s/%ST
    http-response add-header X-Seq be
    http-response del-header X-Connection-Id
    http-response del-header X-Connection-Request
    http-response replace-value Cache-Control ^public$ private
    http-response replace-header X-Whole-Res ^(.*)$ [\\1]
    http-response set-status 299 if {{ res.hdr(x-status) 299 }}
    http-response set-status 503 reason "Slow Down" if {{ res.hdr(x-status) 503 }}
    http-response deny if {{ res.hdr(x-secret) -m found }}
    server a {sockdir}/a.sock
"""

    return config


def basic(user: str, password: str) -> Tuple[str, str]:
    return ("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


REQUEST_HEADERS = [
    ("X-Multi", "1"),
    ("X-Multi", "2"),
    ("x-drop-a", "1"),
    ("X-Drop-B", "2"),
    ("X-Gone", "3"),
    ("x-rag", "4"),
    ("X-Whole", "a1, a2"),
    ("X-List", "a1, b ,a2,  a3"),
    ("X-Keep", "k"),
]
RESPOND = "/respond?h=Cache-Control:max-age%3D3600,%20public&h=X-Whole-Res:abc"
# (method, target, headers): each sent alone on a fresh connection.
REQUESTS: List[Tuple[str, str, List[Tuple[str, str]]]] = [
    ("GET", "/headers", REQUEST_HEADERS + [("X-Req", "r1")]),
    ("GET", "/headers?a=1", [("X-Replace-Multi", "y"), ("X-Multi", "m")]),
    ("GET", "/headers", [("X-U", "1"), ("X-Req", "r2")]),
    ("GET", "/rewrite-path?z=1", []),
    ("GET", "/rewrite-uri", []),
    ("GET", "/rp/ers?x=1", []),
    ("GET", "/rq/zz?k=v", []),
    ("GET", "/ru/x", []),
    ("GET", "/spq?old=1", []),
    ("GET", "/headers", [("X-Put", "1")]),
    ("GET", RESPOND, []),
    ("GET", RESPOND + "&h=X-Status:299", []),
    ("GET", "/respond?h=X-Status:503", []),
    ("GET", "/respond?h=X-Secret:1", []),
    ("GET", "/admin/x", []),
    ("GET", "/slow", []),
    ("GET", "/nope", []),
    ("GET", "/made/x?y=1", [("X-A", "q")]),
    ("HEAD", "/made/x", []),
    ("GET", "/empty", []),
    ("GET", "/old", []),
    ("GET", "/v1/a?b=1", []),
    ("GET", "/", [("X-Https", "1")]),
    ("GET", "/kw-old", []),
    ("GET", "/private/x", []),
    ("GET", "/private/x", [basic("alice", "wrong")]),
    ("GET", "/headers", [basic("alice", "secret")]),
    ("GET", "/private/admin", [basic("alice", "secret")]),
    ("GET", "/private/x", [basic("bob", "hunter2")]),
    ("GET", "/private/admin", [basic("bob", "hunter2")]),
]


def exchange(fe: str, method: str, target: str, headers: List[Tuple[str, str]]) -> Any:
    """The response as bytes on the wire: status line, fields (names lower-cased), body;
    for /headers the body is the request the server saw, names lower-cased too."""
    with HTTPClient(f"unix@{fe}") as client:
        response = client.request(method, target, headers)
    body: Any = response.body
    if response.status == 200 and body.startswith(b"{"):
        seen = json.loads(body)
        seen["headers"] = [[k.lower(), v] for k, v in seen["headers"]]
        body = seen
    return response.status, response.headers, body


def reason_of(fe: str, method: str, target: str) -> bytes:
    """The raw status line (h11 drops nothing, but the reason is compared exactly)."""
    sock = connect(f"unix@{fe}")
    try:
        sock.sendall(
            f"{method} {target} HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n".encode()
        )
        return read_until_close(sock).split(b"\r\n", 1)[0]
    finally:
        sock.close()


def test_rewritten_requests_and_responses_match_haproxy(  # type: ignore[no-untyped-def]
    sockdir, start_backend, start_proxy
) -> None:
    """Every action of the config, on both proxies: what the server saw, and what the
    client got (status, reason, fields in order, body), are the same."""
    crypt = auth.crypt_function()
    assert crypt is not None
    bob_hash = crypt("hunter2", "$6$udsproxy$")
    assert bob_hash
    start_backend("a", f"{sockdir}/a.sock")
    steps: List[Step] = [
        (lambda fe, port, r=r: exchange(fe, *r))
        for r in REQUESTS  # type: ignore[misc]
    ]
    steps += [
        (lambda fe, port, t=t: reason_of(fe, "GET", t))  # type: ignore[misc]
        for t in ("/respond?h=X-Status:503", "/respond?h=X-Status:299", "/made/x")
    ]
    _, _, ours, theirs = run_both(
        sockdir, start_proxy, config_for(sockdir, bob_hash), steps, lambda text: 1 << 30
    )
    assert len(ours) == len(theirs) == len(steps)
    for request, mine, ref in zip(REQUESTS + [("reason", "", [])] * 3, ours, theirs):
        assert mine == ref, f"{request}:\n  udsproxy {mine}\n  haproxy  {ref}"
    # The comparisons cover what they should.
    seen = ours[0][2]["headers"]
    assert ["x-from", "fe/fe/GET/[]"] in seen  # before routing: %b is the frontend, no %ID
    assert seen[-2:] == [["x-backend-saw", "b"], ["x-unique-id", "r1-b"]]
    assert ours[13][0] == 502 and ours[17][0] == 201 and ours[-3] == b"HTTP/1.1 503 Slow Down"
    targets = [ours[i][2]["target"] for i in range(5, 9) if ours[i][0] == 200]
    assert targets[:2] == ["/headers?x=1", "/headers?k=v&p=zz"], targets
    assert targets[-1] == "/headers?pq=old=1", targets
    made_early = ours[2][2]["headers"]  # %[unique-id] in a frontend rule: made then
    assert ["x-u", "r2-fe"] in made_early and made_early[-1] == ["x-unique-id", "r2-fe"]


def test_haproxy_is_the_reference(sockdir) -> None:  # type: ignore[no-untyped-def]
    """The reference really is HAProxy 2.6 (the semantics compared are 2.6's)."""
    import subprocess

    out = subprocess.run([HAPROXY, "-v"], capture_output=True, text=True, timeout=10).stdout
    assert "version 2.6" in out
