"""Sample fetches and converters: values as HAProxy 2.6 gives them, errors at compile time."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, List, Optional, Tuple

import pytest

from udsproxy.errors import ConfigError
from udsproxy.rules import ConnInfo, RuleContext, Where, compile_sample, find_sample_end, to_text

HEADERS = [
    (b"Host", b"host", b"App.Example.com:8080"),
    (b"Cookie", b"cookie", b"a=1; sid=first"),
    (b"Cookie", b"cookie", b"sid=last"),
    (b"Accept", b"accept", b"text/html, application/json"),
    (b"Content-Length", b"content-length", b"12"),
]


def ctx(
    target: bytes = b"/api/v1/items?id=42&page=3;x=1",
    method: bytes = b"GET",
    headers: Optional[List[Tuple[bytes, bytes, bytes]]] = None,
    src: Optional[str] = "10.1.2.3",
) -> RuleContext:
    conn = ConnInfo(src, 40000, "127.0.0.1" if src else None, 8080, "fe", 1)
    return RuleContext(conn, method, target, b"1.1", HEADERS if headers is None else headers)


def value(text: str, where: Where = Where.HTTP_REQUEST, c: Optional[RuleContext] = None) -> Any:
    return compile_sample(text, where=where)(c if c is not None else ctx())


# Fields and what HAProxy 2.6.12 fetched from them (observed with ``http-request return
# ... lf-string "%[...]"``): commas inside double quotes do not split hdr() values; a
# Cookie field's cookies are separated by ``;`` and by a ``,`` outside quotes.
LIST_FIELDS = [
    (b"X-Q", b"x-q", b'"a,b", c'),
    (b"X-E", b"x-e", b'"a\\"b,c", d'),
    (b"X-Z", b"x-z", b"a,,b"),
    (b"Cookie", b"cookie", b'a=1, b=2; q="x,y"'),
    (b"Cookie", b"cookie", b"b=1,a=3"),
]


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("req.hdr(x-q,1)", '"a,b"'),
        ("req.hdr(x-q,2)", "c"),
        ("req.hdr_cnt(x-q)", 2),
        ("req.hdr(x-e,1)", '"a\\"b,c"'),
        ("req.hdr(x-e,2)", "d"),
        ("req.hdr(x-z,2)", ""),
        ("req.hdr_cnt(x-z)", 3),
        ("req.cook(a)", "3"),
        ("req.cook(b)", "1"),
        ("req.cook(q)", '"x,y"'),
        ("req.cook_cnt(a)", 2),
        ("req.cook_cnt", 5),
    ],
)
def test_list_values_split_as_haproxy(expr: str, expected: Any) -> None:
    assert value(expr, c=ctx(headers=LIST_FIELDS)) == expected


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("path", "/api/v1/items"),
        ("url", "/api/v1/items?id=42&page=3;x=1"),
        ("query", "id=42&page=3;x=1"),
        ("url_param(id)", "42"),
        ("urlp(page)", "3"),
        ("url_param(x)", "1"),
        ("url_param(nope)", None),
        ("urlp_val(id)", 42),
        ("method", "GET"),
        ("req.ver", "1.1"),
        ("hdr(host)", "App.Example.com:8080"),
        ("req.hdr(accept)", "application/json"),
        ("req.hdr(accept,1)", "text/html"),
        ("req.fhdr(accept)", "text/html, application/json"),
        ("hdr(missing)", None),
        ("hdr_cnt(cookie)", 2),
        ("req.hdr_cnt(accept)", 2),
        ("req.fhdr_cnt(accept)", 1),
        ("hdr_val(content-length)", 12),
        ("req.cook(sid)", "last"),
        ("req.cook(a)", "1"),
        ("req.cook_cnt(sid)", 2),
        ("base", "App.Example.com:8080/api/v1/items"),
        ("src", ipaddress.ip_address("10.1.2.3")),
        ("src_port", 40000),
        ("dst", ipaddress.ip_address("127.0.0.1")),
        ("dst_port", 8080),
        ("fe_name", "fe"),
        ("be_name", "fe"),
        ("str(x)", "x"),
        ("int(7)", 7),
    ],
)
def test_fetches(expr: str, expected: Any) -> None:
    """Each fetch reads the request as HAProxy does."""
    assert value(expr) == expected


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("hdr(host),lower", "app.example.com:8080"),
        ("hdr(host),upper", "APP.EXAMPLE.COM:8080"),
        ("path,length", 13),
        ("path,field(2,/)", "api"),
        ("str(f1_f2_f3__f5),field(5,_)", "f5"),
        ("str(f1_f2_f3__f5),field(2,_,0)", "f2_f3__f5"),
        ("str(f1_f2_f3__f5),field(2,_,2)", "f2_f3"),
        ("str(f1_f2_f3__f5),field(-2,_,3)", "f2_f3_"),
        ("str(f1_f2_f3__f5),field(-3,_,0)", "f1_f2_f3"),
        ("str(f1_f2_f3__f5),field(9,_)", None),
        ("str(f1_f2_f3__f5),word(4,_)", "f5"),
        ("str(f1_f2_f3__f5),word(2,_,0)", "f2_f3__f5"),
        ("str(f1_f2_f3__f5),word(3,_,2)", "f3__f5"),
        ("str(f1_f2_f3__f5),word(-2,_,3)", "f1_f2_f3"),
        ("str(f1_f2_f3__f5),word(-3,_,0)", "f1_f2"),
        ("str(/f1/f2/f3/f4),word(1,/)", "f1"),
        ("str(hello),base64", "aGVsbG8="),
        ("str(AB),hex", "4142"),
        ("src,ipmask(24)", ipaddress.ip_address("10.1.2.0")),
        ("src,ipmask(255.255.0.0)", ipaddress.ip_address("10.1.0.0")),
        ("int(3),bool", True),
        ("int(0),bool", False),
        ("int(0),not", True),
        ("str(/a//b///c),regsub(/+,/,g)", "/a/b/c"),
        ("str(/a//b///c),regsub(/+,/)", "/a//b///c"),
        ("str(FOO),regsub(foo,x,i)", "x"),
        ("str(foo12),regsub('(foo|bar)([0-9]+)',\\2\\1)", "12foo"),
        ("str(a,b),lower", None),
    ],
)
def test_converters(expr: str, expected: Any) -> None:
    """Converters apply in order; a failed one makes the sample missing."""
    if expr == "str(a,b),lower":
        with pytest.raises(ConfigError):
            compile_sample(expr, where=Where.HTTP_REQUEST)
        return
    assert value(expr) == expected


def test_quoted_arguments_protect_commas_and_parentheses() -> None:
    """Quotes inside an argument list keep ',' and ')' (HAProxy's make_arg_list)."""
    assert value("str('a,b)'),upper") == "A,B)"
    assert value('str(x),regsub("[a-z]","(\\,)",g)') == "(,)"


def test_unix_client_src_is_unix() -> None:
    """A unix-socket client's src is 'unix' (as HAProxy logs it), never a crash."""
    c = ctx(src=None)
    assert value("src", c=c) == "unix"
    assert value("src,ipmask(24)", c=c) is None
    assert to_text(value("src", c=c)) == "unix"


def test_absolute_target_path() -> None:
    """path of an absolute-form target is its origin part."""
    c = ctx(target=b"http://h.example:81/x/y?q=1")
    assert value("path", c=c) == "/x/y"
    assert value("query", c=c) == "q=1"
    assert value("path", c=ctx(target=b"http://h.example?q")) == "/"


def test_response_fetches() -> None:
    """status and res.hdr read the response; hdr means res.hdr in http-response rules."""
    c = ctx()
    c.status = 404
    c.res_headers = [(b"X-Powered-By", b"x-powered-by", b"php")]
    assert value("status", Where.HTTP_RESPONSE, c) == 404
    assert value("res.hdr(x-powered-by)", Where.HTTP_RESPONSE, c) == "php"
    assert value("hdr(x-powered-by)", Where.HTTP_RESPONSE, c) == "php"
    assert value("shdr_cnt(x-powered-by)", Where.HTTP_RESPONSE, c) == 1


def test_map_converters(tmp_path: Path) -> None:
    """map files are read at load: str exact, beg longest prefix, dom, reg, int output, default."""
    hosts = tmp_path / "hosts.map"
    hosts.write_text("# host to backend\n\napp.example.com  app_pool\n  api.example.com api_pool\n")
    prefixes = tmp_path / "prefix.map"
    prefixes.write_text("/api v1\n/api/v2 v2\n/ root\n")
    doms = tmp_path / "dom.map"
    doms.write_text("example.org org\nexample.com com\n")
    regs = tmp_path / "reg.map"
    regs.write_text("^/img/.*\\.png$ png\n^/img/ img\n")
    ints = tmp_path / "int.map"
    ints.write_text("/a 10\n/b 20\n")
    c = ctx(headers=[(b"Host", b"host", b"API.example.com")])
    where = Where.HTTP_REQUEST
    assert value(f"hdr(host),lower,map({hosts})", where, c) == "api_pool"
    assert value(f"hdr(host),map({hosts},default_pool)", where, c) == "default_pool"
    assert value(f"hdr(host),map({hosts})", where, c) is None
    assert value(f"path,map_beg({prefixes})", where, ctx(target=b"/api/v2/x")) == "v2"
    assert value(f"path,map_beg({prefixes})", where, ctx(target=b"/apix")) == "v1"
    assert value(f"path,map_beg({prefixes})", where, ctx(target=b"/other")) == "root"
    assert value(f"hdr(host),map_dom({doms})", where, c) == "com"
    assert value(f"path,map_reg({regs})", where, ctx(target=b"/img/a.png")) == "png"
    assert value(f"path,map_reg({regs})", where, ctx(target=b"/img/a.gif")) == "img"
    assert value(f"path,map_str_int({ints},0)", where, ctx(target=b"/b")) == 20
    assert value(f"path,map_str_int({ints},0)", where, ctx(target=b"/c")) == 0


def test_map_ip_short_keys_are_inet_aton_addresses(tmp_path: Path) -> None:
    """map_ip keys in HAProxy's short form: 10.1.2 is 10.1.0.2, 10.12/16 is 10.0.0.12/16."""
    ips = tmp_path / "ip.map"
    ips.write_text("10.1.2 host\n10.12/16 net\n")
    where = Where.HTTP_REQUEST
    assert value(f"src,map_ip({ips})", where, ctx(src="10.1.0.2")) == "host"
    assert value(f"src,map_ip({ips})", where, ctx(src="10.1.2.0")) is None
    assert value(f"src,map_ip({ips})", where, ctx(src="10.0.200.1")) == "net"
    assert value(f"src,map_ip({ips})", where, ctx(src="10.12.0.1")) is None


def test_map_errors_name_file_and_line(tmp_path: Path) -> None:
    """A map that cannot be read, or a bad value in it, names the file (and line)."""
    with pytest.raises(ConfigError, match="cannot read map file"):
        compile_sample(f"path,map({tmp_path}/nope.map)", where=Where.HTTP_REQUEST)
    bad = tmp_path / "bad.map"
    bad.write_text("/a 1\n/b two\n")
    with pytest.raises(ConfigError, match=r"bad\.map:2"):
        compile_sample(f"path,map_str_int({bad})", where=Where.HTTP_REQUEST)
    bad.write_text("10.0.0.0/33 x\n")
    with pytest.raises(ConfigError, match=r"bad\.map:1"):
        compile_sample(f"src,map_ip({bad})", where=Where.HTTP_REQUEST)


@pytest.mark.parametrize(
    "expr, message, hint",
    [
        ("pathh", "unknown fetch 'pathh'", "did you mean 'path'?"),
        ("path,lowr", "unknown converter 'lowr'", "did you mean 'lower'?"),
        ("hdr", "fetch 'hdr' takes 1 to 2 arguments, got 0", "usage: hdr(<name>[,<occ>])"),
        ("hdr(host,x)", "argument <occ> must be an integer", ""),
        ("hdr(host", "missing ')'", ""),
        ("path,regsub((,x)", "regex '(' does not compile", ""),
        ("path,regsub(a,\\1)", "names a group the regex does not have", ""),
        ("path,field(0,/)", "index 0 does not exist", ""),
        ("path,ipmask(40)", "is not an IPv4 mask", ""),
        ("int(1),bool,ipmask(24)", "converter 'ipmask' takes an address, but gets a boolean", ""),
        ("status", "fetch 'status' cannot be used in http-request rules", "http-response"),
        ("path nope", "unknown fetch 'path nope'", ""),
    ],
)
def test_compile_errors(expr: str, message: str, hint: str) -> None:
    """Bad expressions fail at load with the token and a hint."""
    with pytest.raises(ConfigError) as info:
        compile_sample(expr, where=Where.HTTP_REQUEST, filename="app.cfg", lineno=7)
    err = info.value
    assert message in err.message
    assert hint in err.hint
    assert (err.filename, err.lineno) == ("app.cfg", 7)


def test_place_checks() -> None:
    """Request fetches are refused in tcp-request connection and http-response rules."""
    with pytest.raises(ConfigError, match="needs the HTTP request"):
        compile_sample("path", where=Where.TCP_CONNECTION)
    with pytest.raises(ConfigError, match="needs the HTTP request"):
        compile_sample("path", where=Where.HTTP_RESPONSE)
    with pytest.raises(ConfigError, match="tcp-request content"):
        compile_sample("req.len", where=Where.HTTP_REQUEST)
    assert compile_sample("src", where=Where.TCP_CONNECTION) is not None
    assert compile_sample("path", where=Where.LOG)(ctx()) == "/api/v1/items"


def test_payload_fetches() -> None:
    """req.len and req.payload read the bytes received so far."""
    c = ctx()
    c.payload = b"\x16\x03\x01hello"
    assert value("req.len", Where.TCP_CONTENT, c) == 8
    assert value("req.payload(0,3),hex", Where.TCP_CONTENT, c) == "160301"
    assert value("req.payload(3,0)", Where.TCP_CONTENT, c) == b"hello"
    assert value("req.payload(0,30)", Where.TCP_CONTENT, c) is None


def test_samples_compare_by_text() -> None:
    """Two samples written the same are equal (the frozen config model compares them)."""
    a = compile_sample("hdr(host),lower", where=Where.HTTP_REQUEST)
    b = compile_sample("hdr(host),lower", where=Where.HTTP_REQUEST)
    assert a == b and hash(a) == hash(b)
    assert a != compile_sample("hdr(host)", where=Where.HTTP_REQUEST)


def test_find_sample_end() -> None:
    """The ']' closing %[ skips quoted and parenthesised ones."""
    text = "%[path,regsub('[0-9]+',x)] rest"
    assert text[find_sample_end(text, 2)] == "]"
    assert find_sample_end(text, 2) == text.index("] rest")
    assert find_sample_end("%[path", 2) == -1
