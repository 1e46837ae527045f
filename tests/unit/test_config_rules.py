"""Rule keywords in config files: what is parsed, and every error with file, line and hint."""

from __future__ import annotations

import textwrap
from typing import List

import pytest

from udsproxy.config.model import NameFormat, TcpAction
from udsproxy.config.parser import parse_text
from udsproxy.errors import ConfigError, ConfigErrors

HEAD = """\
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
backend app
    server a /s/a.sock
backend api
    server b /s/b.sock
backend tcpbe
    mode tcp
    server t /s/t.sock
"""


def parse(body: str) -> object:
    return parse_text(HEAD + textwrap.dedent(body), "app.cfg", {})


def errors(body: str) -> List[ConfigError]:
    with pytest.raises(ConfigErrors) as info:
        parse(body)
    return info.value.errors


def test_rules_are_parsed_into_the_model() -> None:
    """use_backend, use-server and tcp-request rules land in the frozen proxy, in order."""
    cfg = parse(
        """
        frontend fe
            bind 127.0.0.1:8080
            tcp-request connection reject if { src 192.0.2.0/24 }
            acl is_api path_beg /api
            use_backend api if is_api
            use_backend %[req.hdr(x-pool)] if { req.hdr(x-pool) -m found }
            default_backend app
        listen l
            mode tcp
            bind 127.0.0.1:9000
            tcp-request inspect-delay 3s
            tcp-request content accept if { req.len gt 0 }
            use-server t2 if { src 10.0.0.0/8 }
            server t1 /s/t1.sock
            server t2 /s/t2.sock
        """
    )
    fe = cfg.proxy("fe")  # type: ignore[attr-defined]
    assert [r.backend for r in fe.use_backends][0] == "api"
    dyn = fe.use_backends[1].backend
    assert isinstance(dyn, NameFormat) and dyn.text == "%[req.hdr(x-pool)]"
    assert fe.use_backends[0].lineno == 18
    assert fe.tcp_connection[0].action == TcpAction.REJECT
    listen = cfg.proxy("l")  # type: ignore[attr-defined]
    assert listen.inspect_delay == 3000
    assert listen.tcp_content[0].action == TcpAction.ACCEPT
    assert listen.use_servers[0].server == "t2"
    assert not [n for n in cfg.notices if "not active yet" in n.text]  # type: ignore[attr-defined]


def test_equal_configs_compare_equal() -> None:
    """Two parses of one file give equal models (rules compare by what they say)."""
    body = """
        frontend fe
            bind 127.0.0.1:8080
            acl is_api path_beg /api
            use_backend api if is_api
            default_backend app
        """
    assert parse(body) == parse(body)


@pytest.mark.parametrize(
    "body, line, keyword, message, hint",
    [
        (
            "use_backend api if is_apj\nacl is_api path_beg /api\n",
            1,
            "use_backend",
            "no such ACL: 'is_apj'",
            "",
        ),
        (
            "acl is_api path_beg /api\nuse_backend api if is_apj\n",
            2,
            "use_backend",
            "no such ACL: 'is_apj'",
            "did you mean 'is_api'?",
        ),
        (
            "use_backend api if { pathh_beg /x }\n",
            1,
            "use_backend",
            "unknown fetch 'pathh_beg'",
            "did you mean 'path_beg'?",
        ),
        (
            "use_backend api if { path,lowr /x }\n",
            1,
            "use_backend",
            "unknown converter 'lowr'",
            "did you mean 'lower'?",
        ),
        (
            "use_backend api if { status 200 }\n",
            1,
            "use_backend",
            "fetch 'status' cannot be used in http-request rules",
            "http-response",
        ),
        (
            "use_backend api if { path_reg ([a-z] }\n",
            1,
            "use_backend",
            "regex '([a-z]' does not compile",
            "",
        ),
        ("acl x path_reg ([a-z]\n", 1, "acl", "regex '([a-z]' does not compile", ""),
        ("acl x nope /a\n", 1, "acl", "unknown fetch 'nope'", ""),
        ("acl x\n", 1, "acl", "missing argument", "usage: acl"),
        (
            "use_backend apii if { path /x }\n",
            1,
            "use_backend",
            "use_backend 'apii' does not exist",
            "did you mean 'api'?",
        ),
        ("use_backend tcpbe\n", 1, "use_backend", "cannot use tcp backend 'tcpbe'", ""),
        ("use_backend api extra\n", 1, "use_backend", "unexpected word 'extra'", ""),
        ("use_backend %[req.hdr(x)\n", 1, "use_backend", "missing ']'", ""),
        ("use_backend be_%ci\n", 1, "use_backend", "only %[<expression>] may compute", ""),
        ("use_backend %[req.hdr(x),nope]\n", 1, "use_backend", "unknown converter 'nope'", ""),
        (
            "tcp-request connection accept if { path /x }\n",
            1,
            "tcp-request connection",
            "fetch 'path' cannot be used in tcp-request connection",
            "src",
        ),
        (
            "tcp-request connection track-sc0 src\n",
            1,
            "tcp-request connection",
            "unsupported action 'track-sc0'",
            "accept|reject",
        ),
        (
            "tcp-request session accept\n",
            1,
            "tcp-request session",
            "unknown tcp-request rule set 'session'",
            "not supported",
        ),
        (
            "tcp-request content accept\n",
            1,
            "tcp-request content",
            "tcp-request content rules in mode http are not supported",
            "http-request",
        ),
        ("tcp-request inspect-delay soon\n", 1, "tcp-request", "", ""),
    ],
)
def test_frontend_rule_errors(body: str, line: int, keyword: str, message: str, hint: str) -> None:
    """Each rule error names the file, the line, the keyword and the token, with a hint."""
    fe = "frontend fe\n    bind 127.0.0.1:8080\n    default_backend app\n"
    text = fe + textwrap.indent(body, "    ")
    errs = errors(text)
    assert len(errs) == 1, [str(e) for e in errs]
    err = errs[0]
    assert (err.filename, err.lineno, err.keyword) == (
        "app.cfg",
        HEAD.count("\n") + 3 + line,
        keyword,
    )
    assert message in err.message
    assert hint in err.hint


def test_backend_rule_errors() -> None:
    """use-server names a server of its backend; tcp-request rules are not for backends."""
    errs = errors(
        """
        backend b
            use-server srv3 if { path /x }
            use-server srv1
            tcp-request content accept
            server srv1 /s/s1.sock
            server srv2 /s/s2.sock
        """
    )
    text = [str(e) for e in errs]
    assert any("'use-server'" in t and "missing condition" in t for t in text), text
    assert any("'tcp-request content' in a backend section is not supported" in t for t in text)
    assert any(
        "use-server 'srv3' names no server" in t and "did you mean 'srv2'?" in t for t in text
    )


def test_rules_read_before_the_mode_line() -> None:
    """A rule compiled for one mode in a section whose mode changes later is an error."""
    errs = errors(
        """
        frontend f
            bind 127.0.0.1:8081
            use_backend tcpbe if { src 10.0.0.0/8 }
            mode tcp
            default_backend tcpbe
        """
    )
    assert len(errs) == 1 and "read for mode http" in errs[0].message
    assert "put the 'mode' line before the rules" in errs[0].hint


def test_acls_are_per_proxy() -> None:
    """An ACL of one proxy is not visible from another (nor from defaults)."""
    errs = errors(
        """
        frontend f1
            bind 127.0.0.1:8081
            acl mine path /x
            default_backend app
        frontend f2
            bind 127.0.0.1:8082
            use_backend api if mine
            default_backend app
        """
    )
    assert len(errs) == 1 and "no such ACL: 'mine'" in errs[0].message


def test_every_error_is_listed_together() -> None:
    """Rule errors come with the file's other errors, not one at a time."""
    errs = errors(
        """
        frontend f
            bind 127.0.0.1:8081
            use_backend api if nope
            timeout bogus 1s
            acl a hdr(host) -m rex x
            default_backend app
        """
    )
    assert [e.keyword for e in errs] == ["use_backend", "timeout bogus", "acl"]


def test_payload_rules_without_inspect_delay_warn() -> None:
    """Content rules over req.len without inspect-delay: a warning, as HAProxy gives."""
    cfg = parse(
        """
        frontend f
            mode tcp
            bind 127.0.0.1:8081
            tcp-request content reject if { req.len eq 0 }
            default_backend tcpbe
        """
    )
    notes = [n.text for n in cfg.notices]  # type: ignore[attr-defined]
    assert any("without 'tcp-request inspect-delay'" in t for t in notes)


def test_tcp_mode_routing_is_content_rules() -> None:
    """In mode tcp use_backend may read src, dst_port and req.len, not HTTP fetches."""
    parse(
        """
        frontend f
            mode tcp
            bind 127.0.0.1:8081
            tcp-request inspect-delay 1s
            use_backend tcpbe if { src 10.0.0.0/8 } { dst_port 8081 } { req.len gt 0 }
        """
    )
    errs = errors(
        """
        frontend f
            mode tcp
            bind 127.0.0.1:8081
            use_backend tcpbe if { path /x }
        """
    )
    assert "cannot be used in tcp-request content rules" in errs[0].message
