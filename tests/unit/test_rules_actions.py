"""The pure parts of the actions: lf-strings, replacement texts, value splitting, pages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from udsproxy.config.model import HttpRule
from udsproxy.errors import ConfigError
from udsproxy.http import pages
from udsproxy.log.formats import SessionRecord
from udsproxy.rules import ConnInfo, RuleContext, Where
from udsproxy.rules.actions import (
    Action,
    _split_target,
    del_header,
    parse_replacement,
    run_steps,
    set_header,
    steps_of,
)
from udsproxy.rules.context import split_list
from udsproxy.rules.lfvalue import LfValue, compile_lf


def ctx(target: bytes = b"/a?b", headers: tuple = ()) -> RuleContext:
    return RuleContext(ConnInfo("10.0.0.1", 4000), b"GET", target, b"1.1", headers)


def test_lf_string_constant_and_computed() -> None:
    """A value without expression is a constant (no work per request); %% is a percent;
    a missing sample prints nothing."""
    const = compile_lf("a %% b", where=Where.HTTP_REQUEST)
    assert const.const == "a % b" and const(ctx()) == "a % b"
    value = compile_lf("%[path]-%[query]-%[req.hdr(x)]-%[src]", where=Where.HTTP_REQUEST)
    assert value.const is None and value(ctx()) == "/a-b--10.0.0.1"
    assert compile_lf("%[path]", where=Where.HTTP_REQUEST) == compile_lf(
        "%[path]", where=Where.HTTP_REQUEST
    )


@pytest.mark.parametrize(
    "text, message, hint",
    [
        ("%bogus", "no such format variable", "8.2.6"),
        ("100%", "truncated line", "%%"),
        ("%[path", "missing ']'", "end the expression"),
        ("%[nope]", "unknown fetch", ""),
    ],
)
def test_lf_string_errors(text: str, message: str, hint: str) -> None:
    """What the log-format compiler refuses is an error at the rule's file and line."""
    with pytest.raises(ConfigError) as info:
        compile_lf(text, where=Where.HTTP_REQUEST, filename="f", lineno=3)
    assert message in info.value.message and hint in info.value.hint
    assert (info.value.filename, info.value.lineno) == ("f", 3)


def test_lf_string_variables_read_the_record() -> None:
    """Log-format variables read the request's session record (the data path's, else one
    made from the rule context); samples are %XX-encoded, never quoted (HAProxy's lf_encode_chunk)."""
    value = compile_lf("%ci:%cp %f %{+Q}[path] %HM", where=Where.HTTP_REQUEST)
    assert value.record and value.const is None
    assert value(ctx()) == "10.0.0.1:4000  /a GET"  # +Q: header values are not quoted
    c = ctx()
    c.memo["record"] = SessionRecord(client_ip="192.0.2.1", client_port=1, frontend="fe", sample=c)
    assert value(c).startswith("192.0.2.1:1 fe")


@pytest.mark.parametrize(
    "text, parts",
    [
        ("A\\1", ["A", 1, ""]),
        ("\\0\\x41\\\\", ["", 0, "", "A", "", "\\", ""]),
        ("\\q", ["", "q", ""]),
        ("plain", ["plain"]),
        ("end\\", None),
    ],
)
def test_replacement_texts(text: str, parts: object) -> None:
    """\\N is a group, \\xHH a byte, \\c the character c, a trailing \\ an error (exp_replace)."""
    assert parse_replacement(text) == parts


def test_values_split_at_commas_outside_quotes() -> None:
    """Commas inside a quoted string (with \\" escapes) do not split a value."""
    assert split_list('a, "b,c" ,d') == ["a", ' "b,c" ', "d"]
    assert split_list('"x\\",y",z') == ['"x\\",y"', "z"]
    assert split_list("") == [""]
    assert split_list("a,,b") == ["a", "", "b"]


def test_targets_split_into_authority_path_query() -> None:
    """Origin, absolute and asterisk forms."""
    assert _split_target(b"/p?q") == (b"", b"/p", b"?q")
    assert _split_target(b"http://h:1/p?q") == (b"http://h:1", b"/p", b"?q")
    assert _split_target(b"http://h?q") == (b"http://h", b"", b"?q")
    assert _split_target(b"*") == (b"", b"*", b"")


def test_reason_phrases_are_haproxys() -> None:
    """Statuses the proxy makes up get HAProxy 2.6's phrases (read from it)."""
    assert pages.reason(302) == "Moved Temporarily"
    assert pages.reason(418) == "I'm a teapot"
    assert pages.reason(299) == "Success"
    assert pages.reason(499) == "client has closed connection"
    assert pages.reason(777) == "Other"


def test_pages_are_haproxys_bytes() -> None:
    """Built-in pages as HAProxy 2.6 sends them for deny_status (401 and 501 checked)."""
    assert pages.raw(401).replace(b"connection: close\r\n", b"") == (
        b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 112\r\ncache-control: no-cache\r\n"
        b"content-type: text/html\r\n\r\n<html><body><h1>401 Unauthorized</h1>\n"
        b"You need a valid user and password to access this content.\n</body></html>\n"
    )
    assert b"\n.The server does not support" in pages.body(501)


def test_fields_replace_those_of_an_errorfile() -> None:
    """with_fields puts fields into a raw response in place of same-named ones."""
    raw = b"HTTP/1.0 401 No\nX-A: 1\nWWW-Authenticate: old\n\nbody"
    new = pages.with_fields(raw, [(b"WWW-Authenticate", b"www-authenticate", b"Basic")])
    assert new == b"HTTP/1.0 401 No\nX-A: 1\nWWW-Authenticate: Basic\n\nbody"
    assert pages.with_fields(b"", [(b"A", b"a", b"b")]) == b""


NAMES = [b"a", b"b", b"c", b"host"]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["set", "add", "del"]), st.sampled_from(NAMES[:3]), st.integers(0, 9)
        ),
        min_size=2,
        max_size=6,
    ),
    st.lists(st.tuples(st.sampled_from(NAMES), st.integers(0, 9)), max_size=6),
)
def test_fused_header_edits_equal_the_edits_one_by_one(edits: list, fields: list) -> None:
    """Unconditional constant set/add/del rules fused into one step make the same header
    list as the rules applied one after the other."""
    rules = []
    for kind, name, n in edits:
        value = LfValue(str(n), str(n), lambda ctx, n=n: str(n))
        run = (
            del_header(name.decode(), "str", False)
            if kind == "del"
            else set_header(name.upper(), value, False, add=kind == "add")
        )
        rules.append(HttpRule(Action((kind, name.decode()), run)))
    items = [(n.upper(), n, str(v).encode()) for n, v in fields]
    one_by_one = ctx(headers=tuple(items))
    for rule in rules:
        rule.action.run(one_by_one)
    steps = steps_of(rules)
    assert len(steps) == 1  # one fused step
    fused = ctx(headers=tuple(items))
    run_steps(steps, fused)
    assert list(fused.headers) == list(one_by_one.headers)
