"""http-request / http-response / redirect rules in memory: what the server and the client see."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import h11
import pytest

from tests.unit.http_harness import FakeClient, Harness
from udsproxy.admin.stat import backend_row, frontend_row, server_row
from udsproxy.rules import auth
from udsproxy.rules.variables import PROC_VARS

Headers = Sequence[Tuple[str, str]]


def run(
    h: Harness,
    c: FakeClient,
    target: str = "/",
    headers: Headers = (),
    method: str = "GET",
    answer: Headers = (),
    status: int = 200,
) -> Tuple[Optional[h11.Request], Tuple[int, dict, bytes]]:
    """One request: (what the server received or None, the response the client got)."""
    c.request(method=method, target=target, headers=list(headers))
    seen: Optional[h11.Request] = None
    for server in h.connector.servers:
        for event in server.read():
            if isinstance(event, h11.Request):
                seen = event
        if seen is not None and server.h11.our_state is h11.SEND_RESPONSE:
            server.respond(status, b"body", list(answer))
            break
    responses = c.responses()
    assert len(responses) == 1, responses
    return seen, responses[0]


def head_lines(raw: bytes) -> List[str]:
    """The status line and header lines of a raw response."""
    return raw.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")


def fields(request: Optional[h11.Request]) -> List[Tuple[str, str]]:
    assert request is not None
    return [(k.decode(), v.decode()) for k, v in request.headers.raw_items()]


BACKEND = """
    default_backend be
backend be
    server a /s/a.sock
"""


def harness(rules: str, backend: str = BACKEND) -> Harness:
    return Harness("frontend fe\n    bind 127.0.0.1:8080\n" + rules + backend)


# ----------------------------------------------------------------- request headers
def test_set_header_replaces_every_occurrence_and_appends() -> None:
    """set-header removes every field of the name (any case) and appends one; its value is
    computed before the removal, so it may read the field it replaces."""
    h = harness("    http-request set-header X-Multi %[req.hdr(x-multi,1)]+new\n")
    seen, (status, _, _) = run(
        h, h.client(), headers=[("X-Multi", "1"), ("Keep", "k"), ("x-multi", "2")]
    )
    assert status == 200
    assert fields(seen) == [("Host", "app"), ("Keep", "k"), ("X-Multi", "1+new")]


def test_add_header_appends_and_later_rules_see_it() -> None:
    """add-header appends after existing fields; a later rule reads the added value."""
    h = harness(
        "    http-request add-header X-Add a\n"
        "    http-request add-header X-Add b\n"
        "    http-request set-header X-Count %[req.hdr_cnt(x-add)]\n"
    )
    seen, _ = run(h, h.client(), headers=[("X-Add", "zz")])
    assert fields(seen)[1:] == [("X-Add", "zz"), ("X-Add", "a"), ("X-Add", "b"), ("X-Count", "3")]


@pytest.mark.parametrize(
    "rule, gone",
    [
        ("del-header x-del", ["X-Del"]),
        ("del-header X-DEL -m str", ["X-Del"]),
        ("del-header x-del -m beg", ["X-Del", "X-DEL-2", "x-deleted"]),
        ("del-header -2 -m end", ["X-DEL-2"]),
        ("del-header SUB -m sub", ["X-SUBx"]),
        ("del-header ^x-(d.l|sub) -m reg", ["X-Del", "X-DEL-2", "x-deleted", "X-SUBx"]),
        ("del-header ^X- -m reg", []),  # regexes see the lower-case name (HAProxy)
    ],
)
def test_del_header_methods(rule: str, gone: List[str]) -> None:
    """del-header compares names case-insensitively; -m reg matches the lower-case name."""
    names = ["X-Del", "X-DEL-2", "x-deleted", "X-SUBx", "Keep"]
    h = harness(f"    http-request {rule}\n")
    seen, _ = run(h, h.client(), headers=[(n, "1") for n in names])
    assert [k for k, _ in fields(seen)] == ["Host"] + [n for n in names if n not in gone]


def test_replace_header_replaces_whole_matching_lines() -> None:
    """replace-header: each line whose value matches is replaced whole (back-references)."""
    h = harness("    http-request replace-header X-Whole ^a(.*)$ A\\1\n")
    seen, _ = run(
        h, h.client(), headers=[("X-Whole", "a1, a2"), ("X-Whole", "b"), ("X-Other", "a")]
    )
    assert fields(seen)[1:] == [("X-Whole", "A1, a2"), ("X-Whole", "b"), ("X-Other", "a")]


def test_replace_header_unanchored_match_replaces_the_value() -> None:
    """A regex matching part of the value still replaces all of it (HAProxy)."""
    h = harness("    http-request replace-header X-Part b B\n")
    seen, _ = run(h, h.client(), headers=[("X-Part", "abcb")])
    assert ("X-Part", "B") in fields(seen)


def test_replace_value_works_per_comma_separated_value() -> None:
    """replace-value: each value replaced with the blanks around it; others kept as sent;
    commas inside quoted strings do not split (checked against HAProxy 2.6)."""
    h = harness("    http-request replace-value X-List ^a(.*)$ A\\1\n")
    seen, _ = run(
        h,
        h.client(),
        headers=[("X-List", "a1, b2 ,a3,a4  ,  a5"), ("X-List", 'a6, "a,7"')],
    )
    assert fields(seen)[1:] == [("X-List", "A1, b2 ,A3,A4,A5"), ("X-List", 'A6, "a,7"')]


def test_replacement_escapes_and_computed_template() -> None:
    """Replacement texts take \\xHH and an lf-string evaluated before the back-references."""
    h = harness("    http-request replace-header X-A ^(.*)$ \\1\\x2d%[req.hdr(x-b)]\n")
    seen, _ = run(h, h.client(), headers=[("X-A", "one"), ("X-B", "two")])
    assert ("X-A", "one-two") in fields(seen)


# ----------------------------------------------------------------- the request line
def test_set_path_query_uri_and_method_reach_the_server() -> None:
    """set-path keeps the query, set-query replaces it (adds '?' only for a value),
    set-uri replaces everything, set-method the method; the log keeps the request as sent."""
    h = harness(
        "    http-request set-path /v2%[path] if { path_beg /p }\n"
        "    http-request set-query a=1&%[query] if { path_beg /v2/q }\n"
        "    http-request set-uri /u?x if { path /u }\n"
        "    http-request set-method POST if { hdr(x-post) -m found }\n"
        "    http-request set-query %[url_param(none)] if { path /empty }\n"
    )
    c = h.client()
    seen, _ = run(h, c, "/p?z=9")
    assert seen is not None and seen.target == b"/v2/p?z=9"
    seen, _ = run(h, c, "/p/q?z")
    assert seen is not None and seen.target == b"/v2/p/q?z"
    seen, _ = run(h, c, "/pq")
    assert seen is not None and seen.target == b"/v2/pq"
    h2 = harness("    http-request set-query a=1&%[query]\n")
    seen, _ = run(h2, h2.client(), "/x")
    assert seen is not None and seen.target == b"/x?a=1&"
    seen, _ = run(h, c, "/u")
    assert seen is not None and seen.target == b"/u?x"
    seen, _ = run(h, c, "/m", [("X-Post", "1")])
    assert seen is not None and seen.method == b"POST"
    seen, _ = run(h, c, "/empty")
    assert seen is not None and seen.target == b"/empty"  # empty value, no '?': nothing added
    assert '"GET /m HTTP/1.1"' in h.sink.lines[-2]


def test_set_uri_absolute_sets_host_and_set_host_follows_absolute_target() -> None:
    """An absolute set-uri makes its authority the Host (HAProxy's http_update_host); a
    rule setting Host on an absolute-form request moves the authority with it."""
    h = harness(
        "    http-request set-uri %[hdr(x-u)] if { hdr(x-u) -m found }\n"
        "    http-request set-header Host %[hdr(x-h)] if { hdr(x-h) -m found }\n"
        "    http-request set-header X-Seen %[hdr(host)]\n"
    )
    c = h.client()
    seen, _ = run(h, c, "/", [("X-U", "http://new.example:8081/z?q")])
    assert seen is not None and seen.target == b"/z?q"
    assert ("host", "new.example:8081") in [(k.lower(), v) for k, v in fields(seen)]
    assert ("X-Seen", "new.example:8081") in fields(seen)
    seen, _ = run(h, c, "http://app/d", [("X-H", "other.example")])
    assert seen is not None and seen.target == b"/d"
    assert [v for k, v in fields(seen) if k.lower() == "host"] == ["other.example"]


def test_replace_path_pathq_uri_and_set_pathq() -> None:
    """replace-path matches the path alone (scheme, authority and query stay), replace-pathq
    the path with its query, replace-uri the whole target (an absolute result makes its
    authority the Host, as set-uri); the matched part becomes the replacement with its
    groups; no match, or a target without a path, is left as it is; set-pathq sets the path
    and query, keeping an absolute target's scheme and authority."""
    h = harness(
        "    http-request replace-path ^/old/(.*) /new/\\1 if { hdr(x-r) path }\n"
        "    http-request replace-pathq ^/q/([^?]*)\\?(.*) /q?\\2&p=\\1 if { hdr(x-r) pathq }\n"
        "    http-request replace-uri ^/u/(.*)$ http://\\1.example/u if { hdr(x-r) uri }\n"
        "    http-request replace-path (.*) %[hdr(x-to)]\\1 if { hdr(x-to) -m found }\n"
        "    http-request set-pathq /s?%[query] if { hdr(x-r) setpq }\n"
        "    http-request replace-uri ^(.*)$ '\\1 x' if { hdr(x-r) blank }\n"
    )
    c = h.client()
    cases = [
        ("/old/a/b?q=1", "path", b"/new/a/b?q=1", "app"),
        ("http://app/old/a?q", "path", b"/new/a?q", "app"),
        ("/other?q=1", "path", b"/other?q=1", "app"),
        ("/q/zz?k=v", "pathq", b"/q?k=v&p=zz", "app"),
        ("/u/www", "uri", b"/u", "www.example"),
        ("/a?b", "setpq", b"/s?b", "app"),
        ("http://app/a?b", "setpq", b"/s?b", "app"),
    ]
    for target, rule, sent, host in cases:
        seen, _ = run(h, c, target, [("X-R", rule)])
        assert seen is not None and seen.target == sent, (target, seen)
        assert [v for k, v in fields(seen) if k.lower() == "host"] == [host], target
    seen, _ = run(h, c, "/p?z", [("X-To", "/pre")])
    assert seen is not None and seen.target == b"/pre/p?z"  # a computed replacement
    _, (status, _, _) = run(h, c, "/x", [("X-R", "blank")])
    assert status == 500  # a blank in the new target: a failed rewrite
    assert '"GET /old/a/b?q=1 HTTP/1.1"' in h.sink.lines[0]  # the log keeps what was sent


@pytest.mark.parametrize(
    "headers",
    [
        [("X-H", "bad host")],  # set-header Host with a blank
        [("X-H", "a,b")],  # two hosts in one
        [("X-M", "HEAD")],  # GET to HEAD: the response's framing would change
        [("X-M", "G(ET")],  # not a token
        [("X-M", "CONNECT")],
        [("X-U", "/a b")],  # a blank in the target
        [("X-R", "x"), ("X-T", "\\x0d\\x0aEvil: 1")],  # a computed \xHH makes CR LF
    ],
)
def test_rewrites_that_would_smuggle_fail_with_500(headers: Headers) -> None:
    """Computed Host, method, target and header values are re-validated per request: a
    failed rewrite answers 500, logs IR and counts in wrew; nothing reaches a server."""
    h = harness(
        "    http-request set-header Host %[req.fhdr(x-h)] if { hdr(x-h) -m found }\n"
        "    http-request set-method %[hdr(x-m)] if { hdr(x-m) -m found }\n"
        "    http-request set-uri %[hdr(x-u)] if { hdr(x-u) -m found }\n"
        "    http-request replace-header X-R (.*) \\1%[hdr(x-t)] if { hdr(x-r) -m found }\n"
    )
    seen, (status, _, _) = run(h, h.client(), "/", headers)
    assert seen is None and status == 500
    assert " 500 " in h.sink.lines[-1] and " IR-- " in h.sink.lines[-1]
    assert h.runtime.frontends["fe"].wrew == 1
    ((level, text),) = h.sink.events
    assert level == "warning" and "http-request rewrite refused (" in text
    assert "for 'GET / HTTP/1.1': 500" in text
    assert h.connector.servers == []


def test_samples_with_control_characters_are_percent_encoded() -> None:
    """A sample put in a header value cannot carry a line break: HAProxy's %XX encoding
    (a tab stays: it is allowed in a value)."""
    h = harness("    http-request set-header X-Q %[path,regsub(/,\\x0d\\x0a\\t,g)]\n")
    seen, _ = run(h, h.client(), "/a/b")
    assert ("X-Q", "%0D%0A\ta%0D%0A\tb") in fields(seen)


def test_a_client_cannot_strip_what_rules_add_through_connection() -> None:
    """A header a rule sets survives a client's Connection field naming it (a client-named
    field of its own is still dropped as hop-by-hop)."""
    h = harness("    http-request set-header X-Proto https\n")
    seen, _ = run(h, h.client(), "/", [("Connection", "X-Proto, X-Mine"), ("X-Mine", "1")])
    assert fields(seen)[1:] == [("X-Proto", "https")]


# ----------------------------------------------------------------- variables
def test_variables_by_scope() -> None:
    """txn lives through the response, req not; sess across a connection's requests;
    proc across connections; conditions and var() defaults as HAProxy (compared)."""
    PROC_VARS.clear()
    h = harness(
        "    http-request set-var(txn.p) path\n"
        "    http-request set-var(req.r) path\n"
        "    http-request set-var(sess.s) path if { path /sess }\n"
        "    http-request set-var(proc.hits) str(seen) if { path /proc }\n"
        "    http-request set-var(txn.n) int(5)\n"
        "    http-request set-var(txn.n,ifgt) int(7)\n"
        "    http-request set-var(txn.m) int(5)\n"
        "    http-request set-var(txn.m,iflt) int(7)\n"
        "    http-request set-var(txn.e,ifnotempty) str()\n"
        "    http-request set-var-fmt(txn.f) %[path]:%[var(txn.n)]\n"
        "    http-request set-var(txn.g,ifnotexists) str(first)\n"
        "    http-request set-var(txn.g,ifnotexists) str(second)\n"
        "    http-request set-var(txn.u) str(x)\n"
        "    http-request unset-var(txn.u)\n"
        "    http-request set-var(txn.u2,ifset) str(y)\n"
        "    http-request set-header X-N %[var(txn.n)]/%[var(txn.m)]/%[var(txn.zz,dflt)]\n"
        "    http-request set-header X-E %[var(txn.e,none)]/%[var(txn.f)]/%[var(txn.g)]\n"
        "    http-request set-header X-U %[var(txn.u,unset)]/%[var(txn.u2,unset)]\n"
        "    http-response set-header X-Res %[var(txn.p)]|%[var(req.r)]|%[var(sess.s)]"
        "|%[var(proc.hits)]\n"
    )
    c = h.client()
    seen, (_, res, _) = run(h, c, "/sess")
    assert ("X-N", "5/7/dflt") in fields(seen)
    assert ("X-E", "none//sess:5/first") in fields(seen)
    assert ("X-U", "unset/unset") in fields(seen)
    assert res["x-res"] == "/sess||/sess|"
    _, (_, res, _) = run(h, c, "/other")
    assert res["x-res"] == "/other||/sess|"
    _, (_, res, _) = run(h, h.client(), "/proc")
    assert res["x-res"] == "/proc|||seen"
    _, (_, res, _) = run(h, h.client(), "/later")
    assert res["x-res"] == "/later|||seen"
    PROC_VARS.clear()


# ----------------------------------------------------------------- replies
def test_deny_variants() -> None:
    """deny: the 403 page (PR, dreq); deny_status picks another page; with a payload and
    hdr the response is built (hdr first, then Content-Length, then Content-Type)."""
    h = harness(
        "    http-request deny if { path /deny }\n"
        "    http-request deny deny_status 429 if { path /d429 }\n"
        '    http-request deny status 403 content-type text/plain string "nope" '
        "hdr X-A %[path] if { path_beg /dstr }\n"
    )
    c = h.client()
    seen, (status, hdrs, body) = run(h, c, "/deny")
    assert seen is None and status == 403 and b"Request forbidden" in body
    assert list(hdrs) == ["content-length", "cache-control", "content-type"]
    _, (status, _, body) = run(h, c, "/d429")
    assert status == 429 and b"too many requests" in body
    _, (status, hdrs, body) = run(h, c, "/dstr/x")
    assert (status, body) == (403, b"nope")
    assert list(hdrs.items()) == [
        ("x-a", "/dstr/x"),
        ("content-length", "4"),
        ("content-type", "text/plain"),
    ]
    assert all(" PR-- " in line and "fe/<NOSRV>" in line for line in h.sink.lines)
    assert h.runtime.frontends["fe"].dreq == 3
    assert h.connector.servers == []  # keep-alive: the same connection carried all three


def test_return_variants(tmp_path: Path) -> None:
    """return: an empty response with the status alone; a string or lf-string payload
    (with hdr); a file; an errorfile written as it is; the proxy's page (LR)."""
    page = tmp_path / "page.txt"
    page.write_bytes(b"from a file\n")
    errorfile = tmp_path / "503.http"
    errorfile.write_bytes(b"HTTP/1.0 503 Busy\r\nContent-Length: 3\r\n\r\nno\n")
    h = harness(
        "    http-request return status 201 content-type text/plain lf-string "
        '"hi %[path]" hdr X-R 1 if { path_beg /ret }\n'
        "    http-request return if { path /empty }\n"
        "    http-request return status 418 content-type text/html string teapot "
        "if { path /tea }\n"
        f"    http-request return content-type text/plain file {page} if {{ path /file }}\n"
        f"    http-request return status 503 errorfile {errorfile} if {{ path /ef }}\n"
        "    http-request return status 404 default-errorfiles if { path /nf }\n"
    )
    c = h.client()
    _, (status, hdrs, body) = run(h, c, "/ret/a")
    assert (status, body) == (201, b"hi /ret/a")
    assert list(hdrs.items()) == [
        ("x-r", "1"),
        ("content-length", "9"),
        ("content-type", "text/plain"),
    ]
    _, (status, hdrs, body) = run(h, c, "/empty")
    assert (status, hdrs, body) == (200, {"content-length": "0"}, b"")
    _, (status, _, body) = run(h, c, "/tea")
    assert (status, body) == (418, b"teapot")
    _, (status, _, body) = run(h, c, "/file")
    assert (status, body) == (200, b"from a file\n")
    _, (status, _, body) = run(h, c, "/nf")
    assert status == 404 and b"could not be found" in body
    assert all(" LR-- " in line for line in h.sink.lines)
    c.request(target="/ef")
    assert c.raw().startswith(b"HTTP/1.0 503 Busy\r\n")
    assert c.transport.disconnecting  # a raw response: its framing is the file's, then close


def test_a_reply_leaves_out_a_hdr_with_an_empty_value() -> None:
    """hdr whose value is empty is not sent (HAProxy); set-header with one is (compared)."""
    h = harness(
        "    http-request return content-type text/plain string x hdr X-E %[req.hdr(x-no)] "
        "hdr X-F f\n"
    )
    _, (_, hdrs, _) = run(h, h.client())
    assert list(hdrs) == ["x-f", "content-length", "content-type"]


def test_a_head_request_gets_the_reply_head_only() -> None:
    """A reply to HEAD announces its length and sends no body."""
    h = harness("    http-request return content-type text/plain string hello\n")
    c = h.client()
    c.request(method="HEAD", target="/")
    data = c.raw()
    assert data.endswith(b"content-type: text/plain\r\n\r\n") and b"content-length: 5" in data


@pytest.mark.parametrize(
    "target, status, location, extra",
    [
        ("/rloc", 301, "/new", {}),
        (
            "/rpfx/a?q=1",
            302,
            "/pfx/rpfx/a/",
            {"cache-control": "no-cache", "set-cookie": "A=1; path=/;"},
        ),
        ("/rsch/x?y", 302, "https://app/rsch/x?y", {"cache-control": "no-cache"}),
        ("/r1/a?q", 302, "/r1/a?q/", {"cache-control": "no-cache"}),
        ("/r3", 303, "/x", {"cache-control": "no-cache", "set-cookie": "B=; path=/; Max-Age=0;"}),
        ("/r6", 307, "/there", {"cache-control": "no-cache"}),
        ("/r7", 308, "/r8", {}),
    ],
)
def test_redirects(target: str, status: int, location: str, extra: dict) -> None:
    """redirect location|prefix|scheme with code, drop-query, append-slash, set-cookie and
    clear-cookie build HAProxy's response (header for header, compared with HAProxy 2.6)."""
    h = harness(
        "    http-request redirect location /new code 301 if { path_beg /rloc }\n"
        "    http-request redirect prefix /pfx drop-query append-slash set-cookie A=1 "
        "if { path_beg /rpfx }\n"
        "    http-request redirect scheme https if { path_beg /rsch }\n"
        "    http-request redirect prefix / append-slash if { path_beg /r1 }\n"
        "    redirect location /x code 303 clear-cookie B= if { path_beg /r3 }\n"
        "    http-request redirect code 307 location %[hdr(x-loc)] ignore-empty "
        "if { path_beg /r6 }\n"
        "    http-request redirect code 308 location /r8 if { path_beg /r7 }\n"
    )
    _, (got, hdrs, body) = run(h, h.client(), target, [("X-Loc", "/there")])
    assert (got, body) == (status, b"")
    assert hdrs == {"content-length": "0", "location": location, **extra}
    assert " LR-- " in h.sink.lines[-1]


def test_ignore_empty_skips_the_redirect() -> None:
    """ignore-empty: an empty computed location skips the rule."""
    h = harness("    http-request redirect location %[hdr(x-loc)] ignore-empty\n")
    seen, (status, _, _) = run(h, h.client(), "/")
    assert seen is not None and status == 200


def test_redirect_keyword_runs_after_http_request_rules() -> None:
    """A redirect line is evaluated after the section's http-request rules, even written
    before them (HAProxy warns, so does udsproxy)."""
    h = harness(
        "    redirect location /from-redirect if { path /r }\n"
        "    http-request return status 200 content-type text/plain string rule if { path /r }\n"
    )
    assert any("still processed before" in n.text for n in h.config.notices)
    _, (_, _, body) = run(h, h.client(), "/r")
    assert body == b"rule"


def test_allow_ends_the_sections_http_request_rules_only() -> None:
    """allow stops the section's remaining http-request rules; redirect rules still run."""
    h = harness(
        "    http-request allow if { path_beg /ok }\n"
        "    http-request deny\n"
        "    redirect location /moved if { path /ok/moved }\n"
    )
    c = h.client()
    seen, (status, _, _) = run(h, c, "/ok")
    assert seen is not None and status == 200
    _, (status, hdrs, _) = run(h, c, "/ok/moved")
    assert status == 302 and hdrs["location"] == "/moved"
    _, (status, _, _) = run(h, c, "/other")
    assert status == 403


USERLIST = """
userlist L1
    group admins users alice
    group ops
    user alice insecure-password secret
    user bob password {hash} groups ops
"""


def basic(user: str, password: str) -> Tuple[str, str]:
    return ("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


@pytest.mark.skipif(auth.crypt_function() is None, reason="no crypt(3) here")
def test_auth_with_plain_and_crypt_passwords() -> None:
    """auth answers 401 with a Basic challenge unless http_auth holds; crypt(3) hashes and
    insecure-password both work; http_auth_group matches a user's groups."""
    crypt = auth.crypt_function()
    assert crypt is not None
    hashed = crypt("hunter2", "$6$saltsalt$")
    h = Harness(
        USERLIST.format(hash=hashed)
        + "frontend fe\n    bind 127.0.0.1:8080\n"
        + "    acl ok http_auth(L1)\n"
        + "    acl admin http_auth_group(L1) admins\n"
        + "    http-request auth realm Secret unless ok\n"
        + "    http-request deny if { path_beg /admin } !admin\n"
        + "    http-request set-header X-User %[http_auth_group(L1)]\n"
        + BACKEND
    )
    c = h.client()
    _, (status, hdrs, body) = run(h, c, "/")
    assert status == 401 and hdrs["www-authenticate"] == 'Basic realm="Secret"'
    assert b"valid user and password" in body
    _, (status, _, _) = run(h, c, "/", [basic("alice", "wrong")])
    assert status == 401
    seen, (status, _, _) = run(h, c, "/", [basic("alice", "secret")])
    assert status == 200 and ("X-User", "alice") in fields(seen)
    seen, (status, _, _) = run(h, c, "/admin", [basic("alice", "secret")])
    assert status == 200
    _, (status, _, _) = run(h, c, "/", [basic("bob", "hunter2")])
    assert status == 200
    _, (status, _, _) = run(h, c, "/admin", [basic("bob", "hunter2")])
    assert status == 403
    _, (status, _, _) = run(h, c, "/", [basic("bob", "hunter3")])
    assert status == 401
    _, (status, _, _) = run(h, c, "/", [("Authorization", "Bearer abc")])
    assert status == 401


def test_auth_realm_defaults_to_the_proxy_and_fills_an_errorfile(tmp_path: Path) -> None:
    """Without realm the proxy's name is the realm; a 401 errorfile gets the challenge in
    place of its own WWW-Authenticate (HAProxy)."""
    page = tmp_path / "401.http"
    page.write_bytes(
        b"HTTP/1.1 401 Go away\r\nWWW-Authenticate: Digest x\r\nContent-Length: 3\r\n\r\nno\n"
    )
    h = harness(f"    errorfile 401 {page}\n    http-request auth\n")
    c = h.client()
    c.request()
    assert c.raw() == (
        b'HTTP/1.1 401 Go away\r\nContent-Length: 3\r\nwww-authenticate: Basic realm="fe"'
        b"\r\n\r\nno\n"
    )


def test_crypt_through_the_module_and_the_c_library_agree() -> None:
    """Both ways to crypt(3) (the deprecated module, libcrypt by ctypes) give one hash."""
    module, libc = auth._module_crypt(), auth._libc_crypt()
    if module is None or libc is None:
        pytest.skip("only one crypt(3) path here")
    assert module("pw", "$6$abc$") == libc("pw", "$6$abc$")
    assert module("pw", "$6$abc$").startswith("$6$abc$")  # type: ignore[union-attr]


# ----------------------------------------------------------------- order of sections
def test_frontend_rules_run_before_routing_and_backend_rules_after() -> None:
    """A frontend rule's header can route (use_backend reads it); the backend's rules run
    after the choice and see be_name; backend denies count in the backend (dreq)."""
    h = Harness(
        """
frontend fe
    bind 127.0.0.1:8080
    http-request set-header X-Route api if { path_beg /api }
    use_backend api if { hdr(x-route) api }
    default_backend app
backend app
    server a /s/app.sock
backend api
    http-request set-header X-Backend-Seen %[be_name]
    http-request deny if { path /api/deny }
    server b /s/api.sock
"""
    )
    c = h.client()
    seen, _ = run(h, c, "/api/x")
    assert ("X-Backend-Seen", "api") in fields(seen)
    assert h.connector.servers[-1].name == "api"
    _, (status, _, _) = run(h, c, "/api/deny")
    assert status == 403 and "fe api/<NOSRV>" in h.sink.lines[-1]
    assert h.backends["api"].state.dreq == 1 and h.runtime.frontends["fe"].dreq == 1
    now = h.clock.seconds()
    assert backend_row(h.runtime, h.backends["api"].state, now)["dreq"] == 1
    assert frontend_row(h.runtime, h.runtime.frontends["fe"], now)["dreq"] == 1


def test_listen_rules_run_once() -> None:
    """A listen section is its own backend: its rules run once per request."""
    h = Harness(
        """
listen l
    bind 127.0.0.1:8080
    http-request add-header X-Once 1
    http-response add-header X-Once 1
    server a /s/a.sock
"""
    )
    seen, (_, hdrs, _) = run(h, h.client())
    assert [k for k, _ in fields(seen)].count("X-Once") == 1
    assert hdrs["x-once"] == "1"


# ----------------------------------------------------------------- responses
def test_response_rules_rewrite_the_servers_response() -> None:
    """http-response set/add/del/replace on the server's headers, set-status (with HAProxy's
    reason or the one given); backend rules first, then the frontend's."""
    h = harness(
        "    http-response set-header X-Order fe\n"
        "    http-response add-header X-Seq fe\n"
        "    http-response replace-value Cache-Control ^public$ private\n",
        backend=BACKEND
        + "    http-response set-header X-Order be\n"
        + "    http-response add-header X-Seq be\n"
        + "    http-response del-header X-Powered-By\n"
        + "    http-response set-status 299 if { res.hdr(x-s) 299 }\n"
        + '    http-response set-status 503 reason "Slow Down" if { res.hdr(x-s) 503 }\n'
        + "    http-response set-status 777 if { status 404 }\n",
    )
    c = h.client()
    c.request()
    h.connector.servers[0].read()
    h.connector.servers[0].respond(
        200, b"body", [("X-Powered-By", "php"), ("Cache-Control", "max-age=3600, public")]
    )
    assert head_lines(c.raw()) == [
        "HTTP/1.1 200 ",
        "Cache-Control: max-age=3600,private",
        "Content-Length: 4",
        "X-Backend: a",
        "X-Seq: be",
        "X-Order: fe",
        "X-Seq: fe",
    ]
    for answer, status, line in (
        ([("X-S", "503")], 200, b"HTTP/1.1 503 Slow Down\r\n"),
        ([("X-S", "299")], 200, b"HTTP/1.1 299 Success\r\n"),
        ([], 404, b"HTTP/1.1 777 Other\r\n"),
    ):
        c = h.client()
        c.request()
        for server in h.connector.servers:
            server.read()
        h.connector.servers[-1].respond(status, b"x", answer)
        assert c.raw().startswith(line)
    assert "777" in h.sink.lines[-1]


def test_response_deny_replaces_the_response_and_drops_the_server_connection() -> None:
    """http-response deny answers 502 (or deny_status), logs PH with Tr -1, counts dresp
    in frontend, backend and server, and closes the server connection."""
    h = harness(
        "    http-response deny if { res.hdr(x-secret) -m found }\n"
        "    http-response deny deny_status 503 if { res.hdr(x-other) -m found }\n"
    )
    c = h.client()
    _, (status, _, body) = run(h, c, "/", answer=[("X-Secret", "1")])
    assert status == 502 and b"502 Bad Gateway" in body
    assert " 0/0/0/-1/0 502 " in h.sink.lines[-1] and " PH-- " in h.sink.lines[-1]
    server = h.connector.servers[0]
    assert server.transport.disconnecting
    _, (status, _, _) = run(h, c, "/", answer=[("X-Other", "1")])
    assert status == 503
    fe = h.runtime.frontends["fe"]
    be = h.backends["be"].state
    assert (fe.dresp, be.dresp, be.servers[0].dresp) == (2, 2, 2)
    now = h.clock.seconds()
    assert server_row(h.runtime, be.servers[0], now)["dresp"] == 2
    assert frontend_row(h.runtime, fe, now)["dresp"] == 2


def test_response_rules_skip_the_proxys_own_pages() -> None:
    """No server response, no response rules: a 503 page and a deny are sent as they are."""
    h = Harness(
        """
frontend fe
    bind 127.0.0.1:8080
    http-request deny if { path /deny }
    http-response set-header X-Rule 1
    default_backend be
backend be
    server a /s/a.sock disabled
"""
    )
    c = h.client()
    _, (status, hdrs, _) = run(h, c, "/deny")
    assert status == 403 and "x-rule" not in hdrs
    _, (status, hdrs, _) = run(h, c, "/")
    assert status == 503 and "x-rule" not in hdrs


def test_response_rules_alone_see_connection_fetches() -> None:
    """With response rules only, a response still sees the connection and the server."""
    h = harness("    http-response set-header X-Where %[fe_name]/%[be_name]/%[srv_name]\n")
    _, (_, hdrs, _) = run(h, h.client())
    assert hdrs["x-where"] == "fe/be/a"


def test_log_format_variables_and_the_unique_id_in_rule_values() -> None:
    """Values print log-format variables from the request's record (%ci, %b, %HM ...): before
    routing %b is the frontend; the unique ID is made once the backend is chosen, so only
    response rules (and the header) see it (as HAProxy 2.6, compared)."""
    h = harness(
        "    unique-id-format %[req.hdr(x-req)]-%b\n"
        "    unique-id-header X-Unique-ID\n"
        "    http-request set-header X-From %ci:%cp/%f/%b/%HM\n"
        "    http-response set-header X-ID %[unique-id]/%ID/%s/%ST\n"
    )
    seen, (_, hdrs, _) = run(h, h.client(), "/", [("X-Req", "r1")])
    assert ("X-From", "10.0.0.1:4242/fe/fe/GET") in fields(seen)  # before routing: %b is fe
    assert ("X-Unique-ID", "r1-be") in fields(seen)
    assert hdrs["x-id"] == "r1-be/r1-be/a/200"


def test_requests_without_rules_are_forwarded_without_a_copy() -> None:
    """No rule applies: the header list h11 parsed is the one the head is built from."""
    h = harness("    http-request set-header X-A 1 if { path /never }\n")
    seen, _ = run(h, h.client(), "/", [("X-B", "2")])
    assert fields(seen) == [("Host", "app"), ("X-B", "2")]


def test_rule_values_compare_equal_across_parses(tmp_path: Path) -> None:
    """The same rules parse to equal proxies (a reload sees no change); a changed file a
    rule read makes them differ."""
    body = tmp_path / "body.txt"
    body.write_text("one")
    rules = (
        "    http-request set-header X-A %[path]\n"
        f"    http-request return content-type text/plain file {body} if {{ path /f }}\n"
    )
    one = harness(rules).config.proxy("fe")
    two = harness(rules).config.proxy("fe")
    assert one == two
    body.write_text("two")
    three = harness(rules).config.proxy("fe")
    assert one != three
