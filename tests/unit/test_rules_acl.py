"""ACLs and conditions: match methods, flags, derived keywords, errors, and a reference model."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, List, Optional, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from udsproxy.errors import ConfigError
from udsproxy.rules import (
    FAIL,
    MISS,
    PASS,
    AclTable,
    ConnInfo,
    RuleContext,
    Where,
    compile_condition,
    split_condition,
)

H = Where.HTTP_REQUEST


def ctx(
    path: str = "/",
    host: str = "app.example.com",
    method: str = "GET",
    src: Optional[str] = "10.1.2.3",
    extra: Tuple[Tuple[str, str], ...] = (),
) -> RuleContext:
    headers = [(b"Host", b"host", host.encode())] + [
        (k.encode(), k.lower().encode(), v.encode()) for k, v in extra
    ]
    return RuleContext(
        ConnInfo(src, 1234, "127.0.0.1", 80, "fe"), method.encode(), path.encode(), b"1.1", headers
    )


def matches(acl: str, c: RuleContext, where: Where = H) -> bool:
    return compile_condition(["if", "{", *acl.split(), "}"], where=where)(c)


@pytest.mark.parametrize(
    "acl, path, expected",
    [
        ("path /a/b", "/a/b", True),
        ("path /a/b", "/a/b/", False),
        ("path -i /A/B", "/a/b", True),
        ("path_beg /api /v2", "/v2/x", True),
        ("path_beg /api", "/ap", False),
        ("path_end .png .jpg", "/x.jpg", True),
        ("path_end -i .PNG", "/x.png", True),
        ("path_sub adm", "/x/admin/y", True),
        ("path_reg ^/u/[0-9]+$", "/u/42", True),
        ("path_reg ^/u/[0-9]+$", "/u/4a", False),
        ("path_reg -i ^/U/", "/u/4", True),
        ("path_dir images/png", "/images/png/logo/32x32.png", True),
        ("path_dir /png/logo", "/images/png/logo/32x32.png", True),
        ("path_dir 32x32.png", "/images/png/logo/32x32.png", True),
        ("path_dir png", "/images/png2/x", False),
        ("path_dir 32x32", "/images/png/logo/32x32.png", False),
        ("path_dir /", "/images/png", False),  # only delimiters: never matches (HAProxy)
        ("path_dir / //", "/", False),
        ("path_dir -i / PNG", "/images/png/x", True),
        ("path_len 4", "/abc", True),
        ("path_len gt 3", "/ab", False),
        ("path -m beg /a", "/abc", True),
        ("path -m found", "/", True),
        ("path,lower -m beg /a", "/ABC", True),
        ("path_beg,upper /A", "/abc", False),  # a converter drops the derived method: str
        ("path_beg,upper /ABC", "/abc", True),
        ("url -- -i", "-i", True),
        ("path /a -i /b", "/a", True),
    ],
)
def test_string_methods(acl: str, path: str, expected: bool) -> None:
    """String match methods and flags behave as HAProxy's section 7.1.3 says."""
    assert matches(acl, ctx(path=path)) is expected


@pytest.mark.parametrize(
    "acl, host, expected",
    [
        ("hdr(host) -i app.example.com", "APP.example.com", True),
        ("hdr_beg(host) -i www.", "WWW.x.com", True),
        ("hdr_end(host) .example.com", "app.example.com", True),
        ("hdr_dom(host) example", "http://www1.dc-eu.example.com:80/blah", True),
        ("hdr_dom(host) dc-eu.example:80", "http://www1.dc-eu.example.com:80/blah", False),
        ("hdr_dom(host) example.com:80", "http://www1.dc-eu.example.com:80/blah", True),
        ("hdr_dom(host) .www1.", "http://www1.dc-eu.example.com:80/blah", True),
        ("hdr_dom(host) eu", "http://www1.dc-eu.example.com:80/blah", False),
        ("hdr_dom(host) dc", "http://www1.dc-eu.example.com:80/blah", False),
        ("hdr_dom(host) .", "www.example.com", False),
        ("hdr_dom(host) -i ./: WWW", "www.example.com", True),
        ("hdr_sub(host) ample", "example.org", True),
        ("hdr_reg(host) ^[a-z]+\\.example", "app.example.com", True),
        ("hdr_len(host) 3:5", "abcd", True),
        ("hdr_cnt(host) eq 1", "x", True),
        ("hdr_cnt(host) gt 1", "x", False),
        ("hdr(host) -m found", "", True),
        ("hdr(x-none) -m found", "x", False),
    ],
)
def test_header_methods(acl: str, host: str, expected: bool) -> None:
    """hdr and its ACL declinations; dom patterns keep their inner delimiters."""
    assert matches(acl, ctx(host=host)) is expected


def test_hdr_in_acl_checks_every_value() -> None:
    """In an ACL hdr() tries every comma-separated value of every line; fhdr whole lines."""
    c = ctx(extra=(("X-Tag", "a, b"), ("X-Tag", "c")))
    assert matches("hdr(x-tag) b", c)
    assert matches("hdr(x-tag) c", c)
    assert not matches("hdr(x-tag) a,b", c)
    assert matches("req.fhdr(x-tag) a,\\ b", c) is False  # the escape is not the lexer's
    assert matches("hdr(x-tag,1) a", c)
    assert not matches("hdr(x-tag,1) b", c)


@pytest.mark.parametrize(
    "acl, src, expected",
    [
        ("src 10.0.0.0/8", "10.1.2.3", True),
        ("src 10.12/8", "10.1.2.3", True),
        ("src 192.168.1/22", "192.168.0.5", True),
        ("src 192.168.1", "192.168.0.1", True),  # inet_aton: not 192.168.1.0
        ("src 192.168.1", "192.168.1.0", False),
        ("src 127.1", "127.0.0.1", True),
        ("src 10.12/32", "10.0.0.12", True),
        ("src 10.12/32", "10.12.0.0", False),
        ("src 10.1.2.3", "10.1.2.4", False),
        ("src 10.0.0.0/255.0.0.0", "10.9.9.9", True),
        ("src 2001:db8::/32", "2001:db8::1", True),
        ("src 10.0.0.0/8", "::ffff:10.0.0.1", True),
        ("src 10.0.0.0/8", "2002:a00:1::", True),
        ("src ::ffff:10.0.0.0/104", "10.5.5.5", True),
        ("src 10.0.0.0/8", None, False),
        ("LOCALHOST", "127.0.0.9", True),
        ("src_port 1000:2000", "10.0.0.1", True),
        ("dst_port 80 443", "10.0.0.1", True),
        ("src,ipmask(16) 10.1.0.0", "10.1.2.3", True),
    ],
)
def test_addresses(acl: str, src: Optional[str], expected: bool) -> None:
    """IPv4/IPv6 networks (HAProxy's short forms and mixed families); unix: no match."""
    if acl == "LOCALHOST":
        assert compile_condition(["if", "LOCALHOST"], where=H)(ctx(src=src)) is expected
        return
    assert matches(acl, ctx(src=src)) is expected


@pytest.mark.parametrize(
    "patterns, value, expected",
    [
        ("eq 5", 5, True),
        ("ge 5", 4, False),
        ("gt 5", 6, True),
        ("le 5", 5, True),
        ("lt 5", 5, False),
        ("lt 5 10", 10, False),  # the operator applies to every value after it
        ("lt 5 10", 9, True),
        ("1:3", 3, True),
        ("4:", 100, True),
        (":3", 4, False),
        ("1 2 3", 2, True),
    ],
)
def test_integer_patterns(patterns: str, value: int, expected: bool) -> None:
    """Integers: values, ranges and eq/ge/gt/le/lt operators."""
    assert matches(f"int({value}) {patterns}", ctx()) is expected


def test_bool_and_found() -> None:
    """-m bool on integers, the predefined TRUE/FALSE, -m found on missing samples."""
    assert matches("int(2) -m bool", ctx())
    assert not matches("int(0) -m bool", ctx())
    assert compile_condition(["if", "TRUE"], where=H)(ctx())
    assert not compile_condition(["if", "FALSE"], where=H)(ctx())
    assert not matches("url_param(x) -m found", ctx(path="/?y=1"))
    assert matches("url_param(x) -m found", ctx(path="/?x="))


def test_pattern_files(tmp_path: Path) -> None:
    """-f reads one pattern per line (comments and blanks skipped); -i applies to later files."""
    exact = tmp_path / "exact.lst"
    exact.write_text("# agents\nCurl/8\n\n   Wget\n")
    generic = tmp_path / "generic.lst"
    generic.write_text("bot\n")
    acl = f"hdr(user-agent) -f {exact} -i -f {generic} test"
    for agent, expected in [
        ("Curl/8", True),
        ("curl/8", False),
        ("Wget", True),
        ("BOT", True),
        ("TEST", True),
        ("other", False),
    ]:
        assert matches(acl, ctx(extra=(("User-Agent", agent),))) is expected, agent


def test_named_acls_or_their_lines_and_see_later_lines() -> None:
    """Lines with one name are ORed; a line added after a rule used the name still counts."""
    table = AclTable()
    table.define("static", ["path_beg", "/static/"])
    cond = compile_condition(["if", "static"], table, where=H)
    assert not cond(ctx(path="/img/x"))
    table.define("static", ["path_beg", "/img/"])
    assert cond(ctx(path="/img/x")) and cond(ctx(path="/static/x"))


@pytest.mark.parametrize(
    "words, path, method, expected",
    [
        ("if api get", "/api/x", "GET", True),
        ("if api get", "/api/x", "POST", False),
        ("if api !get", "/api/x", "POST", True),
        ("if ! api", "/x", "GET", True),
        ("if !!api", "/api/x", "GET", True),
        ("if api || get", "/x", "GET", True),
        ("if api or get", "/x", "POST", False),
        ("unless api", "/x", "GET", True),
        ("unless api || get", "/x", "GET", False),
        ("if !api get || { path /special }", "/special", "POST", True),
        ("if api { method POST } || !get", "/api", "PUT", True),
        ("if !{ path_beg /api }", "/api", "GET", False),
    ],
)
def test_conditions(words: str, path: str, method: str, expected: bool) -> None:
    """Implicit AND, ||/or, ! (alone or attached, doubled), anonymous ACLs, unless."""
    table = AclTable()
    table.define("api", ["path_beg", "/api"])
    table.define("get", ["method", "GET", "HEAD"])
    cond = compile_condition(words.split(), table, where=H)
    assert cond(ctx(path=path, method=method)) is expected


def test_short_circuit() -> None:
    """A condition stops at the first term that decides: later fetches are not read."""
    table = AclTable()
    table.define("no", ["always_false"])
    table.define("boom", ["hdr(x)", "-m", "found"])
    cond = compile_condition(["if", "no", "boom"], table, where=H)

    class Exploding(RuleContext):
        def header_values(self, lower: bytes, response: bool = False) -> List[str]:
            raise AssertionError("fetched")

    c = Exploding(ConnInfo("10.0.0.1"))
    assert cond(c) is False


@pytest.mark.parametrize(
    "words, message, hint",
    [
        (["if", "nope"], "no such ACL: 'nope'", "declare it above"),
        (["if", "is_apl"], "no such ACL: 'is_apl'", "did you mean 'is_api'?"),
        (["if", "path_beg"], "no such ACL: 'path_beg'", "{ path_beg <pattern> }"),
        (["if", "pathh_beg"], "no such ACL", "did you mean 'path_beg'?"),
        (["if", "{", "pathh", "/x", "}"], "unknown fetch 'pathh'", "did you mean 'path'?"),
        (["if", "{", "path,lowr", "x", "}"], "unknown converter 'lowr'", "did you mean 'lower'?"),
        (["if", "{", "path", "-m", "rex", "x", "}"], "unknown match method 'rex'", "'reg'"),
        (["if", "{", "path_reg", "((", "}"], "regex '((' does not compile", ""),
        (["if", "{", "status", "200", "}"], "fetch 'status' cannot be used in http-request", ""),
        (["if", "{", "path", "/x"], "missing '}'", ""),
        (["if", "{path", "/x", "}"], "braces must be words of their own", ""),
        (["if", "}"], "'}' without its '{'", ""),
        (["if"], "'if' needs a condition", ""),
        (["if", "is_api", "||"], "nothing after '||'", ""),
        (["if", "||", "is_api"], "'||' without a term before it", ""),
        (["if", "is_api", "!"], "'!' at the end", ""),
        (["when", "is_api"], "starts with 'if' or 'unless'", ""),
        (["if", "{", "src", "10.0.0.300", "}"], "'10.0.0.300' is not an IP address", ""),
        (["if", "{", "hdr_cnt(host)", "many", "}"], "'many' is not an integer", ""),
        (["if", "{", "path", "-x", "a", "}"], "'-x' is not a valid ACL flag", "'--'"),
        (["if", "{", "path", "-f", "/nonexistent/x.lst", "}"], "cannot read pattern file", ""),
        (["if", "{", "src", "-m", "bool", "}"], "match method 'bool' cannot apply", ""),
        (["if", "{", "req.payload(0,2)", "ab", "}"], "no default match method", "-m"),
    ],
)
def test_condition_errors(words: List[str], message: str, hint: str) -> None:
    """Every condition error names the token, with a hint, at the rule's file and line."""
    table = AclTable()
    table.define("is_api", ["path_beg", "/api"])
    where = Where.TCP_CONTENT if any("req.payload" in w for w in words) else H
    with pytest.raises(ConfigError) as info:
        compile_condition(words, table, where=where, filename="app.cfg", lineno=12)
    assert message in info.value.message
    assert hint in info.value.hint
    assert (info.value.filename, info.value.lineno) == ("app.cfg", 12)


def test_acl_defined_for_requests_refused_in_connection_rules() -> None:
    """A named ACL over the path used in tcp-request connection: an error at the use."""
    table = AclTable()
    table.define("api", ["path_beg", "/api"], "app.cfg", 3)
    with pytest.raises(
        ConfigError,
        match="ACL 'api' \\(line 3\\): fetch 'path' cannot be used in tcp-request connection",
    ):
        compile_condition(["if", "api"], table, where=Where.TCP_CONNECTION, lineno=9)


def test_acl_definition_errors() -> None:
    """acl lines are checked where they are written."""
    table = AclTable()
    with pytest.raises(ConfigError, match="invalid ACL name"):
        table.define("bad name!", ["path", "/"])
    with pytest.raises(ConfigError, match="unknown fetch"):
        table.define("x", ["nope", "/"])


def test_tri_state_for_content_rules() -> None:
    """req.len failing while data may come is MISS; final contents decide; unless keeps MISS."""
    cond = compile_condition(["if", "{", "req.len", "ge", "4", "}"], where=Where.TCP_CONTENT)
    c = RuleContext(ConnInfo("10.0.0.1"))
    c.payload, c.final = b"ab", False
    assert cond.eval3(c) == MISS
    c.final = True
    assert cond.eval3(c) == FAIL
    c.payload, c.final = b"abcd", False
    assert cond.eval3(c) == PASS
    neg = compile_condition(["unless", "{", "req.len", "ge", "4", "}"], where=Where.TCP_CONTENT)
    c.payload = b"a"
    assert neg.eval3(c) == MISS
    both = compile_condition(
        ["if", "{", "src", "10.0.0.0/8", "}", "{", "req.len", "gt", "9", "}"],
        where=Where.TCP_CONTENT,
    )
    assert both.eval3(c) == MISS
    c.conn = ConnInfo("192.0.2.1")
    assert both.eval3(c) == FAIL  # a definite failure wins over a miss in an AND


def test_a_complete_payload_slice_decides_at_once() -> None:
    """req.payload(off,len) is MISS only while fewer than off+len bytes came (as HAProxy);
    length 0 (to the end) and req.len may still change until the data is final."""
    cases = [
        ("if", "req.payload(0,3)", "474554", [(b"PO", MISS), (b"POS", FAIL), (b"GET /", PASS)]),
        ("unless", "req.payload(1,2)", "4554", [(b"GE", MISS), (b"GET", FAIL), (b"PUT", PASS)]),
    ]
    c = RuleContext(ConnInfo("10.0.0.1"))
    c.final = False
    for word, fetch, pattern, steps in cases:
        cond = compile_condition(
            [word, "{", fetch, "-m", "bin", pattern, "}"], where=Where.TCP_CONTENT
        )
        for payload, expected in steps:
            c.payload = payload
            assert cond.eval3(c) == expected, (word, fetch, payload)
    rest = compile_condition(
        ["if", "{", "req.payload(0,0)", "-m", "sub", "xyz", "}"], where=Where.TCP_CONTENT
    )
    c.payload = b"abcdef"
    assert rest.eval3(c) == MISS
    c.final = True
    assert rest.eval3(c) == FAIL


def test_conditions_compare_by_text_and_acl_lines() -> None:
    """Equal conditions over equal ACL lines compare equal (the config model relies on it)."""
    t1, t2 = AclTable(), AclTable()
    t1.define("a", ["path_beg", "/a"])
    t2.define("a", ["path_beg", "/a"])
    c1 = compile_condition(["if", "a"], t1, where=H)
    c2 = compile_condition(["if", "a"], t2, where=H)
    assert c1 == c2
    t2.define("a", ["path_beg", "/b"])
    assert c1 != c2


def test_split_condition() -> None:
    """A rule's words split at its if/unless."""
    assert split_condition(["be", "if", "a"]) == (["be"], ["if", "a"])
    assert split_condition(["be"]) == (["be"], [])


# ----------------------------------------------------------------- the reference model
PATHS = ["/", "/api", "/api/v1", "/static/a.png", "/Admin/x", "/a/b/c", "/img.JPG", "/x?id=7"]
HOSTS = ["app.example.com", "API.example.com", "example.org", "www.example.com:8080"]
METHODS = ["GET", "POST", "HEAD", "DELETE"]
SOURCES = ["10.1.2.3", "192.168.1.10", "203.0.113.5", "2001:db8::9", None]
WORDS = ["api", "static", "a", "b", "png", "example", "com", "/api", "/a/b", "x", "admin", ".png"]


def _word_positions(value: str, pattern: str, delims: str) -> bool:
    """Straightforward word match: the pattern (outer delimiters dropped) found with a
    delimiter or an end on both sides; a pattern of delimiters only never matches."""
    p = pattern.strip(delims)
    if not p:
        return False
    start = 0
    while True:
        i = value.find(p, start)
        if i < 0:
            return False
        before = i == 0 or value[i - 1] in delims
        j = i + len(p)
        after = j == len(value) or value[j] in delims
        if before and after:
            return True
        start = i + 1


def ref_match(method: str, value: Any, patterns: List[str], icase: bool) -> bool:
    if value is None:
        return False
    if method == "found":
        return True
    if method == "ip":
        if not isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            return False
        for p in patterns:
            net = ipaddress.ip_network(p, strict=False)
            if value.version == net.version and value in net:
                return True
            mapped = value.ipv4_mapped if value.version == 6 else None
            if mapped is not None and net.version == 4 and mapped in net:
                return True
        return False
    if method == "len":
        return any(len(value) == int(p) for p in patterns)
    v = value.lower() if icase else value
    ps = [p.lower() for p in patterns] if icase else patterns
    if method == "str":
        return v in ps
    if method == "beg":
        return any(v.startswith(p) for p in ps)
    if method == "end":
        return any(v.endswith(p) for p in ps)
    if method == "sub":
        return any(p in v for p in ps)
    if method == "reg":
        return any(re.search(re.escape(p), v) for p in ps)
    if method == "dir":
        return any(_word_positions(v, p, "/") for p in ps)
    if method == "dom":
        return any(_word_positions(v, p, "/?.:") for p in ps)
    raise AssertionError(method)


FETCHES = {
    "path": lambda r: r["path"].split("?")[0],
    "hdr(host)": lambda r: r["host"],
    "method": lambda r: r["method"],
    "url": lambda r: r["path"],
    "url_param(id)": lambda r: r["path"].split("id=")[1] if "id=" in r["path"] else None,
    "src": lambda r: ipaddress.ip_address(r["src"]) if r["src"] else "unix",
}
STRING_METHODS = ["str", "beg", "end", "sub", "reg", "dir", "dom", "len", "found"]


@st.composite
def acl_defs(draw: Any) -> Tuple[str, str, bool, List[str]]:
    fetch = draw(st.sampled_from(sorted(FETCHES)))
    if fetch == "src":
        nets = ["10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32", "0.0.0.0/0", "203.0.113.5"]
        return fetch, "ip", False, draw(st.lists(st.sampled_from(nets), min_size=1, max_size=3))
    method = draw(st.sampled_from(STRING_METHODS))
    if method == "len":
        pats = [str(n) for n in draw(st.lists(st.integers(0, 14), min_size=1, max_size=3))]
    elif method == "found":
        pats = []
    else:
        pats = draw(
            st.lists(st.sampled_from(WORDS + PATHS + HOSTS + METHODS), min_size=1, max_size=4)
        )
    return fetch, method, draw(st.booleans()), pats


def acl_words(d: Tuple[str, str, bool, List[str]]) -> List[str]:
    fetch, method, icase, pats = d
    return (
        [fetch, "-m", method]
        + (["-i"] if icase else [])
        + ["--"]
        + [re.escape(p) if method == "reg" else p for p in pats]
    )


@st.composite
def conditions(
    draw: Any,
) -> Tuple[List[Tuple[str, str, bool, List[str]]], bool, List[List[Tuple[bool, int]]]]:
    defs = draw(st.lists(acl_defs(), min_size=1, max_size=5))
    suites = draw(
        st.lists(
            st.lists(
                st.tuples(st.booleans(), st.integers(0, len(defs) - 1)), min_size=1, max_size=4
            ),
            min_size=1,
            max_size=3,
        )
    )
    return defs, draw(st.booleans()), suites


requests = st.fixed_dictionaries(
    {
        "path": st.sampled_from(PATHS),
        "host": st.sampled_from(HOSTS),
        "method": st.sampled_from(METHODS),
        "src": st.sampled_from(SOURCES),
    }
)


@given(conditions(), st.lists(requests, min_size=1, max_size=5), st.booleans())
def test_compiled_conditions_agree_with_a_reference_evaluator(
    cond: Tuple[List[Any], bool, List[List[Tuple[bool, int]]]], reqs: List[dict], anonymous: bool
) -> None:
    """Random ACLs (named or anonymous) in random disjunctive conditions: the compiled
    evaluator gives what a plain reading of HAProxy's rules gives, on random requests."""
    defs, unless, suites = cond
    table = AclTable()
    for i, d in enumerate(defs):
        table.define(f"a{i}", acl_words(d))
    words = ["unless" if unless else "if"]
    for n, suite in enumerate(suites):
        if n:
            words.append("||")
        for neg, i in suite:
            term = ["{", *acl_words(defs[i]), "}"] if anonymous else [f"a{i}"]
            if neg:
                term[0] = "!" + term[0] if not anonymous else term[0]
                if anonymous:
                    words.append("!")
            words.extend(term)
    compiled = compile_condition(words, table, where=H)

    def reference(r: dict) -> bool:
        def acl(i: int) -> bool:
            fetch, method, icase, pats = defs[i]
            return ref_match(method, FETCHES[fetch](r), pats, icase)

        result = any(all(acl(i) != neg for neg, i in suite) for suite in suites)
        return not result if unless else result

    for r in reqs:
        c = ctx(path=r["path"], host=r["host"], method=r["method"], src=r["src"])
        assert compiled(c) is reference(r), (words, r)


@given(
    st.lists(st.tuples(conditions(), st.booleans()), min_size=1, max_size=6),
    st.lists(requests, min_size=1, max_size=5),
)
def test_first_match_agrees_with_rules_in_order(
    rules: List[Tuple[Tuple[List[Any], bool, List[List[Tuple[bool, int]]]], bool]],
    reqs: List[dict],
) -> None:
    """The generated first-match function (rules guarded together by what they imply)
    gives the result of the first rule whose condition holds, as a loop over them does."""
    from udsproxy.rules.codegen import first_match

    compiled = []
    for n, ((defs, unless, suites), always) in enumerate(rules):
        table = AclTable()
        for i, d in enumerate(defs):
            table.define(f"a{i}", acl_words(d))
        words = ["unless" if unless else "if"]
        for k, suite in enumerate(suites):
            if k:
                words.append("||")
            words.extend(("!" if neg else "") + f"a{i}" for neg, i in suite)
        cond = None if always and n == len(rules) - 1 else compile_condition(words, table, where=H)
        compiled.append((cond, n, False))
    select = first_match(compiled, "default")
    for r in reqs:
        c = ctx(path=r["path"], host=r["host"], method=r["method"], src=r["src"])
        expected = next((n for cond, n, _ in compiled if cond is None or cond(c)), "default")
        assert select(c) == expected, select.source  # type: ignore[attr-defined]


def test_first_match_guards_the_bench_rules() -> None:
    """Ten use_backend rules over path prefixes/suffixes and methods share one guard of
    three tests (so a request none of them matches costs three C-level tests)."""
    from udsproxy.rules.codegen import first_match

    table = AclTable()
    for i in range(5):
        table.define(f"api{i}", ["path_beg", f"/api{i}/"])
        table.define(f"host{i}", ["hdr(host)", "-i", f"app{i}.example"])
        table.define(f"img{i}", ["path_end", f".png{i}", f".jpg{i}"])
        table.define(f"post{i}", ["method", "POST", f"PUT{i}"])
    rules: List[Tuple[Any, Any, bool]] = []
    for i in range(5):
        rules.append((compile_condition(["if", f"api{i}", f"host{i}"], table, where=H), i, False))
    for i in range(5):
        rules.append(
            (compile_condition(["if", f"img{i}", "||", f"post{i}"], table, where=H), 5 + i, False)
        )
    select = first_match(rules, "default")
    guard = select.source.splitlines()[3]  # type: ignore[attr-defined]
    assert guard.startswith("    if ") and guard.count(" or ") == 2
    assert select(ctx(path="/")) == "default"
    assert select(ctx(path="/api3/x", host="APP3.example")) == 3
    assert select(ctx(path="/api3/x")) == "default"
    assert select(ctx(path="/a.jpg4")) == 9
    assert select(ctx(path="/", method="PUT2")) == 7


def test_conditions_differ_when_a_pattern_file_differs(tmp_path: Path) -> None:
    """A named ACL reading -f compares by the file's contents too (a reload sees the change)."""
    lst = tmp_path / "nets.lst"
    lst.write_text("10.0.0.0/8\n")
    t1 = AclTable()
    t1.define("lan", ["src", "-f", str(lst)])
    c1 = compile_condition(["if", "lan"], t1, where=H)
    lst.write_text("192.168.0.0/16\n")
    t2 = AclTable()
    t2.define("lan", ["src", "-f", str(lst)])
    c2 = compile_condition(["if", "lan"], t2, where=H)
    assert c1 != c2
    assert c1(ctx(src="10.1.1.1")) and not c2(ctx(src="10.1.1.1"))
