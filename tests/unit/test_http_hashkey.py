"""HTTP hash keys: uri, url_param (check_post), hdr(); their balancing, in memory and end to end."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, Dict, List, Optional, Tuple

import h11
import pytest
from twisted.internet.task import Clock

from tests.unit.http_harness import Harness, answer_all
from udsproxy.backend import Backend
from udsproxy.config.model import UNIX, Address, Balance, Proxy, Server
from udsproxy.config.parser import parse_text
from udsproxy.http.hashkey import (
    BodySearch,
    HashKey,
    domain_only,
    first_value,
    make_hash_key,
    uri_path,
)
from udsproxy.runtime import BackendState, ServerState

Items = List[Tuple[bytes, bytes, bytes]]


def balance_of(*words: str) -> Balance:
    """The Balance a ``balance <words>`` line parses to."""
    cfg = parse_text(f"backend b\n    mode http\n    balance {' '.join(words)}\n", "t.cfg", {})
    proxy = cfg.proxy("b")
    assert proxy is not None
    return proxy.balance


def hk(algorithm: str, *args: str, bufsize: int = 16384) -> HashKey:
    return HashKey(balance_of(algorithm, *args), bufsize)


def fields(*pairs: Tuple[str, str]) -> Items:
    return [(n.encode(), n.lower().encode(), v.encode()) for n, v in pairs]


# -- uri ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, target, key",
    [
        ((), b"/a/b?x=1", b"/a/b"),
        (("whole",), b"/a/b?x=1", b"/a/b?x=1"),
        ((), b"/", b"/"),
        ((), b"http://h.example:8080/a?q", b"http://h.example:8080/a"),
        (("path-only",), b"http://h.example:8080/a?q", b"/a"),
        (("path-only", "whole"), b"HTTP://h/a?q", b"/a?q"),
        (("path-only",), b"/a?q", b"/a"),
        (("path-only",), b"http://h", b""),
        (("path-only",), b"*", b""),
        (("len", "4"), b"/abcdef", b"/abc"),
        (("len", "40"), b"/abc?d", b"/abc"),
        (("len", "6", "whole"), b"/ab?cdef", b"/ab?cd"),
        (("depth", "1"), b"/a/b/c", b"/a"),
        (("depth", "2"), b"/a/b/c/d", b"/a/b"),
        (("depth", "3"), b"/a/b", b"/a/b"),
        (("depth", "2"), b"/a/b?x=/c/d", b"/a/b"),
        (("depth", "2", "whole"), b"/a?x=/c/d", b"/a?x=/c"),
        (("depth", "2", "len", "3"), b"/ab/cd/ef", b"/ab"),
        # As in HAProxy the slashes of "scheme://" count: path-only avoids it.
        (("depth", "2"), b"http://h/a/b", b"http://h"),
        (("depth", "1", "path-only"), b"http://h/a/b", b"/a"),
    ],
)
def test_uri_key(args: Tuple[str, ...], target: bytes, key: bytes) -> None:
    """balance uri cuts at '?' (unless whole), to len bytes and before the depth+1-th '/'."""
    assert hk("uri", *args).key(target, []) == key


def test_uri_path_is_haproxy_http_get_path() -> None:
    """uri_path: origin-form as is, absolute-form from the first '/', no path: empty."""
    assert uri_path(b"/x?y") == b"/x?y"
    assert uri_path(b"https://u@h:1/x") == b"/x"
    assert uri_path(b"h2c+x.y-z://h/p") == b"/p"
    assert uri_path(b"host:443") == b""
    assert uri_path(b"") == b""


# -- url_param --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, key",
    [
        (b"/p?a=1&user=bob&x", b"bob"),
        (b"/p?user=bob", b"bob"),
        (b"/p?username=x&user=y", b"y"),
        (b"/p?user=a&user=b", b"a"),
        (b"/p?xuser=a", None),
        (b"/p?user", None),
        (b"/p?user=&x=1", b""),  # HAProxy 2.6 hashes an empty value (checked)
        (b"/p", None),
        (b"/p/user=bob", None),
    ],
)
def test_url_param_key(target: bytes, key: Optional[bytes]) -> None:
    """url_param: the first value of '<param>=' in the query; absent is no key."""
    assert hk("url_param", "user").key(target, []) == key


def test_url_param_without_check_post_never_looks_at_the_body() -> None:
    """Without check_post a POST lacking the parameter is simply balanced round robin."""
    items = fields(("Content-Length", "20"))
    assert hk("url_param", "user").for_request(b"POST", b"/p", items) == (None, None)


def test_check_post_looks_in_a_post_body_up_to_min_length_bufsize() -> None:
    """check_post: only a POST with a body whose query lacks the key searches its body."""
    key = hk("url_param", "user", "check_post", bufsize=1000)
    key_now, search = key.for_request(b"POST", b"/p", fields(("Content-Length", "20")))
    assert key_now is None and search is not None and search.limit == 20
    _, search = key.for_request(b"POST", b"/p", fields(("Content-Length", "5000")))
    assert search is not None and search.limit == 1000
    _, search = key.for_request(b"POST", b"/p", fields(("Transfer-Encoding", "chunked")))
    assert search is not None and search.limit == 1000
    assert key.for_request(b"POST", b"/p?user=q", fields(("Content-Length", "9"))) == (
        b"q",
        None,
    )
    assert key.for_request(b"GET", b"/p", fields(("Content-Length", "9"))) == (None, None)
    assert key.for_request(b"POST", b"/p", fields(("Content-Length", "0"))) == (None, None)
    assert key.for_request(b"POST", b"/p", []) == (None, None)


@pytest.mark.parametrize(
    "body, complete, result",
    [
        (b"a=1&user=bob&z=2", False, (True, b"bob")),
        (b"user=bob&", False, (True, b"bob")),
        (b"a=1&user=bo", False, (False, None)),
        (b"a=1&user=bo", True, (True, b"bo")),
        (b"a=1&us", False, (False, None)),
        (b"a=1&us", True, (True, None)),
        (b"", False, (False, None)),
        (b"user=\x00\x01&x", True, (True, None)),  # not URL-encoded: no key
        (b"user= x&y", True, (True, b"")),  # a blank ends the value at once
        (b"user=&y", True, (True, b"")),
    ],
)
def test_body_search(body: bytes, complete: bool, result: Tuple[bool, Optional[bytes]]) -> None:
    """A body decides once the value ends with '&' or the body is complete."""
    assert BodySearch(b"user=", 100).find(body, complete) == result


def test_body_search_stops_at_its_limit() -> None:
    """Bytes past the limit are not looked at, and reaching it decides."""
    search = BodySearch(b"user=", 8)
    assert search.find(b"a=1&user=bob", False) == (True, None)
    assert search.find(b"user=bob&", False) == (True, b"bob")
    assert search.find(b"user=b", False) == (False, None)


# -- hdr() --------------------------------------------------------------------------------------


def test_hdr_key_is_the_first_value_of_the_first_field() -> None:
    """hdr(<name>): first field, first comma-separated value (as HAProxy 2.6, checked)."""
    key = hk("hdr(X-User)")
    assert key.key(b"/", fields(("x-user", "alice, bob"), ("X-User", "carol"))) == b"alice"
    assert key.key(b"/", fields(("X-USER", '"a,b" , c'))) == b'"a,b"'
    assert key.key(b"/", fields(("X-Other", "a"))) is None
    assert key.key(b"/", fields(("X-User", ""), ("X-User", "b"))) is None
    assert key.key(b"/", fields(("X-User", " , b"))) is None


@pytest.mark.parametrize(
    "host, key",
    [
        (b"haproxy.1wt.eu", b"1wt"),
        (b"www.example.org:8080", b"example"),
        (b"example.com", b"example"),
        (b"localhost:8080", b"localhost:8080"),
        (b".com", b".com"),
    ],
)
def test_hdr_use_domain_only(host: bytes, key: bytes) -> None:
    """use_domain_only keeps the label before the last dot, as HAProxy's manual example."""
    assert domain_only(host) == key
    assert hk("hdr(host)", "use_domain_only").key(b"/", [(b"Host", b"host", host)]) == key


def test_first_value_keeps_quoted_commas() -> None:
    """A comma inside a quoted string (escapes included) does not end the value."""
    assert first_value(b'"a\\",b",c') == b'"a\\",b"'
    assert first_value(b" x ,y") == b"x"


def test_only_http_algorithms_make_a_key() -> None:
    """roundrobin and source have no HTTP key; uri, url_param and hdr() do."""
    assert make_hash_key(Balance(algorithm="source"), 16384) is None
    assert make_hash_key(Balance(algorithm="roundrobin"), 16384) is None
    for algo, args in (("uri", ()), ("url_param", ("u",)), ("hdr(host)", ())):
        assert isinstance(make_hash_key(balance_of(algo, *args), 16384), HashKey)


# -- the keys through hash-type map-based / consistent ---------------------------------------

URIS = [f"/static/{i}/img.png?v={i % 7}".encode() for i in range(1000)]


def backend(hash_type: str) -> Backend:
    servers = tuple(Server(name=n, address=Address(UNIX, path=f"/run/{n}.sock")) for n in "abcd")
    proxy = Proxy(
        name="be",
        kind="backend",
        mode="http",
        servers=servers,
        balance=Balance(algorithm="uri", hash_type=hash_type),
    )
    return Backend(BackendState(proxy, Clock()), random.Random(1))


def placement(be: Backend, keys: List[bytes]) -> Dict[bytes, str]:
    out = {}
    for k in keys:
        srv = be.balancer.pick(k)
        assert srv is not None
        out[k] = srv.name
    return out


def take_out(srv: ServerState, how: str) -> None:
    if how == "down":
        srv.set_check_enabled(True)
        srv.set_check_result(False)
        assert not srv.op_up
    elif how == "weight 0":
        srv.set_weight(0)
    else:
        srv.set_admin(how)


@pytest.mark.parametrize("how", ["down", "maint", "drain", "weight 0"])
def test_consistent_uri_hash_moves_only_the_keys_of_the_server_taken_out(how: str) -> None:
    """hash-type consistent: 1000 URIs on 4 servers; one out moves exactly its own keys."""
    key = hk("uri")
    keys = [key.key(u, []) or b"" for u in URIS]
    be = backend("consistent")
    before = placement(be, keys)
    assert set(before.values()) == set("abcd")
    take_out({s.name: s for s in be.servers}["c"], how)
    after = placement(be, keys)
    moved = {k for k in keys if before[k] != after[k]}
    assert moved == {k for k in keys if before[k] == "c"}
    assert "c" not in after.values()


def test_map_based_uri_hash_is_deterministic_and_spreads() -> None:
    """hash-type map-based: the same keys land alike on two backends, whatever the order."""
    key = hk("uri", "whole")
    keys = [key.key(u, []) or b"" for u in URIS]
    one = placement(backend("map-based"), keys)
    two = placement(backend("map-based"), list(reversed(keys)))
    assert one == two
    spread = Counter(one.values())
    assert set(spread) == set("abcd") and min(spread.values()) > 150


# -- end to end through the HTTP harness --------------------------------------------------


def config(balance: str, hash_type: str = "map-based", extra: str = "") -> str:
    return f"""
        frontend fe
            bind 127.0.0.1:8080
            default_backend be
        backend be
            balance {balance}
            hash-type {hash_type}
            {extra}
            server a /s/a.sock
            server b /s/b.sock
            server c /s/c.sock
        """


def ask(h: Harness, client: Any, method: str = "GET", target: str = "/", **kw: Any) -> str:
    """One request on ``client``'s keep-alive connection; the answering server's name."""
    client.request(method=method, target=target, **kw)
    answer_all(h)
    ((status, _, body),) = client.responses()
    assert status == 200
    return str(body.decode())


@pytest.mark.parametrize("hash_type", ["map-based", "consistent"])
def test_same_uri_same_server_different_uris_spread(hash_type: str) -> None:
    """balance uri: a path always reaches one server (its key's); 20 paths use all three."""
    h = Harness(config("uri", hash_type))
    assert h.backend is not None
    client = h.client()
    paths = [f"/item/{i}" for i in range(20)]
    seen: Dict[str, set] = {}
    for path in paths * 3:
        seen.setdefault(path, set()).add(ask(h, client, target=f"{path}?t={len(seen)}"))
    assert all(len(names) == 1 for names in seen.values())
    for path, names in seen.items():
        home = h.backend.balancer.pick(path.encode())
        assert home is not None and names == {home.name}
    assert {n for names in seen.values() for n in names} == {"a", "b", "c"}


def test_prefer_last_server_does_not_override_the_hash() -> None:
    """As in HAProxy, prefer-last-server is ignored by hash algorithms."""
    h = Harness(config("uri", extra="option prefer-last-server"))
    client = h.client()
    assert {ask(h, client, target=f"/item/{i}") for i in range(20)} == {"a", "b", "c"}


def test_hdr_and_url_param_requests_follow_their_key() -> None:
    """hdr(x-user) and url_param: one key, one server; no key: round robin over all."""
    h = Harness(config("hdr(X-User)"))
    client = h.client()
    alice = {ask(h, client, headers=[("X-User", "alice")]) for _ in range(5)}
    assert len(alice) == 1
    assert {ask(h, client) for _ in range(3)} == {"a", "b", "c"}
    h = Harness(config("url_param sid"))
    client = h.client()
    assert len({ask(h, client, target=f"/x/{i}?sid=42") for i in range(5)}) == 1


HEAD = b"POST /form HTTP/1.1\r\nHost: app\r\nContent-Length: %d\r\n"


def test_check_post_holds_the_body_until_the_param_shows() -> None:
    """check_post: nothing is sent until 'user=' is read in the body, then it goes to user's server."""
    h = Harness(config("url_param user check_post"))
    assert h.backend is not None
    home = h.backend.balancer.pick(b"bob")
    assert home is not None
    client = h.client()
    body = b"a=1&user=bob&pad=123456"
    client.send(HEAD % len(body) + b"\r\n" + body[:6])
    assert h.connector.calls == []  # held: the key may still come
    client.send(body[6:13])  # "user=bob&": the value is complete
    assert h.connector.calls == [f"/s/{home.name}.sock"]
    client.send(body[13:])
    answer_all(h)
    (server,) = h.connector.servers
    assert b"".join(e.data for e in server.events if isinstance(e, h11.Data)) == body
    raw = client.raw()
    assert raw.startswith(b"HTTP/1.1 200 ") and f"X-Backend: {home.name}".encode() in raw
    # The same user, in the query or a whole body, keeps reaching that server.
    assert ask(h, client, target="/form?user=bob") == home.name
    assert ask(h, client, method="POST", body=b"user=bob") == home.name


def test_check_post_without_the_param_decides_at_the_end_or_the_limit() -> None:
    """No key in the body: round robin once the body ends or tune.bufsize bytes are held."""
    h = Harness(config("url_param user check_post"))
    client = h.client()
    client.send(HEAD % 7 + b"\r\na=1&")
    assert h.connector.calls == []
    client.send(b"b=2")  # the end of the body: decided, without a key
    assert len(h.connector.calls) == 1
    answer_all(h)
    assert client.raw().startswith(b"HTTP/1.1 200 ")
    other = h.client()
    other.send(HEAD % 30000 + b"\r\n" + b"x" * 16383)
    assert len(h.connector.calls) == 1  # below tune.bufsize (16384): still held
    other.send(b"x")
    assert len(h.connector.calls) == 2


def test_check_post_answers_expect_100_continue_itself() -> None:
    """A client waiting for 100-continue gets it from the proxy; the server sees no Expect."""
    h = Harness(config("url_param user check_post"))
    client = h.client()
    client.send(HEAD % 8 + b"Expect: 100-continue\r\n\r\n")
    assert client.raw() == b"HTTP/1.1 100 Continue\r\n\r\n"
    client.send(b"user=bob")
    answer_all(h)
    ((request,),) = [s.requests() for s in h.connector.servers]
    assert not any(name.lower() == b"expect" for name, _ in request.headers)
    assert client.raw().startswith(b"HTTP/1.1 200 ")


def test_check_post_hold_ends_with_the_client_timeout() -> None:
    """A client that stops sending its body while held gets 408 after timeout client."""
    h = Harness(config("url_param user check_post"))
    client = h.client()
    client.send(HEAD % 20 + b"\r\na=1")
    h.advance(10.5)
    assert client.raw().startswith(b"HTTP/1.1 408 ")
    assert h.connector.calls == []
    assert any(" 408 " in line and " cD-- " in line for line in h.sink.lines)
    assert h.quiet()


@pytest.mark.parametrize(
    "body",
    [b"a=1&user=bob&c=3", b"user=", b"x=1&&user=&z", b"usr=1&user", b"a=1&user=b%20ob", b"&" * 50],
)
@pytest.mark.parametrize("complete", [False, True])
def test_body_search_fed_byte_by_byte_agrees_with_the_whole_body(
    body: bytes, complete: bool
) -> None:
    """feed() over one-byte chunks decides exactly what find() decides on the whole body."""
    search = BodySearch(b"user=", 100)
    result = (False, None)
    for i in range(len(body)):
        result = search.feed(body[i : i + 1], complete and i == len(body) - 1)
        if result[0]:
            break
    if not body:
        result = search.feed(b"", complete)
    expected = BodySearch(b"user=", 100).find(body, complete)
    if expected[0]:
        assert result == expected
    else:
        assert result == (False, None)


def test_body_search_of_many_tiny_chunks_is_linear() -> None:
    """16 KiB of '&' fed one byte at a time scans each byte a bounded number of times."""
    search = BodySearch(b"user=", 16384)
    calls = 0
    for _ in range(16383):
        decided, _ = search.feed(b"&", False)
        calls += 1
        assert not decided
        assert search.resume == len(search.held)  # nothing before this point is rescanned
    assert search.feed(b"&", False) == (True, None)  # the limit: decided, no key
