"""Session log keywords: log-format, option httplog [clf] / tcplog, capture, unique-id-*.

Every error names the file, the line, the keyword and has a hint; formats are compiled when
the proxy is read whole (its mode decides), the last format line wins, as in HAProxy.
"""

from __future__ import annotations

from typing import Optional

import pytest

from tests.unit.test_config_parser import errors, one_error, parse
from udsproxy.config.model import Capture, Proxy
from udsproxy.errors import ConfigError
from udsproxy.logformat import CLF, HTTPLOG, TCPLOG, UNIQUE_ID, compile_format


def frontend(extra: str, mode: str = "http", defaults: str = "") -> str:
    return f"""
defaults
    mode {mode}
{defaults}
frontend fe
    bind :8080
{extra}
    default_backend b
backend b
    server a /a.sock
"""


def fe_of(text: str) -> Proxy:
    proxy = parse(text).proxy("fe")
    assert proxy is not None
    return proxy


def source(proxy: Proxy) -> Optional[str]:
    return proxy.log_format.source if proxy.log_format is not None else None


def test_format_keywords_set_one_format_the_last_wins() -> None:
    """option httplog, option httplog clf, option tcplog and log-format: the last line."""
    assert source(fe_of(frontend("    option httplog"))) == HTTPLOG
    assert source(fe_of(frontend("    option httplog clf"))) == CLF
    assert source(fe_of(frontend("    option httplog\n    log-format %b"))) == "%b"
    assert source(fe_of(frontend("    log-format %b\n    option tcplog"))) == TCPLOG
    assert source(fe_of(frontend(""))) is None


def test_frontend_inherits_the_defaults_format_and_may_replace_it() -> None:
    assert source(fe_of(frontend("", defaults="    log-format %f"))) == "%f"
    assert source(fe_of(frontend("    option httplog", defaults="    log-format %f"))) == HTTPLOG


def test_no_option_httplog_removes_only_its_own_line() -> None:
    """'no option httplog' drops the httplog format, not a log-format written after it."""
    assert fe_of(frontend("    option httplog\n    no option httplog")).log_format is None
    assert (
        source(fe_of(frontend("    option httplog\n    log-format %b\n    no option httplog")))
        == "%b"
    )
    assert fe_of(frontend("    option tcplog\n    no option tcplog")).log_format is None


def test_compiled_for_the_frontends_mode() -> None:
    """The format is the one compile_format makes for the proxy's mode; backends get none."""
    cfg = parse(frontend('    log-format "%ci %b"'))
    fe, be = cfg.proxy("fe"), cfg.proxy("b")
    assert fe is not None and fe.log_format == compile_format("%ci %b")
    assert be is not None and be.log_format is None


def test_httplog_in_a_tcp_frontend_falls_back_to_tcplog() -> None:
    """As HAProxy: a warning, and tcplog's line."""
    cfg = parse(frontend("    option httplog", mode="tcp"))
    fe = cfg.proxy("fe")
    assert fe is not None and source(fe) == TCPLOG
    (notice,) = [n for n in cfg.notices if "httplog" in n.text]
    assert notice.text == (
        "'option httplog' not usable with frontend 'fe' (needs 'mode http'). Falling back to "
        "'option tcplog'."
    )
    assert notice.lineno == 7


def test_unknown_flags_are_a_warning() -> None:
    """HAProxy ignores an unknown flag letter; udsproxy says so once at start."""
    cfg = parse(frontend("    log-format %{+Z}b"))
    assert any("unknown flag 'Z'" in n.text and n.lineno == 7 for n in cfg.notices)


@pytest.mark.parametrize(
    "line, message, hint",
    [
        ("log-format %ac2", "failed to parse log-format : no such format variable 'ac2'",
         "did you mean '%ac'?"),
        ("log-format %{+Q}", "failed to parse log-format : parse argument modifier without "
         "variable name near '%{+Q}'", "e.g. '%{+Q}r'"),
        ("log-format abc%", "failed to parse log-format : truncated line after '%'", "'%%'"),
        ("log-format %[src", "failed to parse log-format : missing ']' after 'src'", "']'"),
        ("log-format %[nosuch]", "failed to parse log-format : unknown fetch 'nosuch'", "7.3"),
        ("log-format %b %s", "log-format expects only one argument, don't forget to escape "
         "spaces!", "quote"),
        ("log-format", "missing argument", "log-format <format>"),
        ("unique-id-format %[res.hdr(x)]", "failed to parse unique-id-format : ", "response"),
    ],
)  # fmt: skip
def test_format_errors_name_file_line_keyword_and_hint(line: str, message: str, hint: str) -> None:
    """Each format error: file, line, keyword, HAProxy's words and a hint."""
    err = one_error(frontend(f"    {line}"))
    keyword = line.split(" ")[0]
    assert (err.filename, err.lineno, err.keyword) == ("t.cfg", 7, keyword)
    assert err.message.startswith(message), err.message
    assert hint in err.hint or hint in err.message, (err.message, err.hint)


def test_http_variable_in_a_tcp_frontend_is_an_error() -> None:
    err = one_error(frontend("    log-format %ci:%cp\\ %r", mode="tcp"))
    assert (
        err.message == "failed to parse log-format : format variable 'r' is reserved for HTTP mode"
    )
    assert (err.lineno, err.keyword) == (7, "log-format") and "mode http" in err.hint


def test_mode_after_the_format_line_counts() -> None:
    """As HAProxy: the format is compiled once the section is read (mode set later)."""
    text = "frontend fe\n    bind :1\n    log-format %r\n    mode http\n    default_backend b\n"
    text += "backend b\n    mode http\n    server a /a.sock\n"
    fe = parse(text).proxy("fe")
    assert fe is not None and fe.log_format is not None


def test_an_error_in_a_defaults_format_is_reported_once() -> None:
    """Two frontends inherit a broken log-format: one error, at the defaults' line."""
    text = (
        frontend("", defaults="    log-format %nope")
        + "frontend f2\n    bind :2\n    default_backend b\n"
    )
    errs = errors(text)
    assert [(e.lineno, e.keyword) for e in errs] == [(4, "log-format")]


def test_log_format_belongs_in_defaults_frontend_listen() -> None:
    err = one_error(frontend("") + "    log-format %b\n")
    assert err.message == "'log-format' is not allowed in a 'backend' section"


def test_captures_in_declaration_order() -> None:
    """capture request|response header <name> len <n>: kept in order, per direction."""
    fe = fe_of(
        frontend(
            "    capture request header X-Foo len 9\n"
            "    capture response header Content-Type len 20\n"
            "    capture request header User-Agent len 64"
        )
    )
    assert fe.request_captures == (Capture("X-Foo", 9), Capture("User-Agent", 64))
    assert fe.response_captures == (Capture("Content-Type", 20),)


@pytest.mark.parametrize(
    "line, message, hint",
    [
        ("capture request header X len abc", "capture length expects an integer, got 'abc'",
         "1 to 65536"),
        ("capture request header X len 0", "capture length must be between 1 and 65536, got 0",
         "bytes of the value"),
        ("capture response header X len 100000", "capture length must be between 1 and 65536",
         "1 to 65536"),
        ("capture request header X", "'capture request' expects 'header' <header_name> 'len' "
         "<len>", "capture request header User-Agent len 64"),
        ("capture response X len 5", "'capture response' expects 'header' <header_name> 'len' "
         "<len>", "Content-Type"),
        ("capture request header X size 5", "'capture request' expects 'header'", "len"),
        ("capture request header X len 5 more", "unexpected word 'more'", "usage"),
        ("capture cookie SID len 32", "'capture cookie' is not supported",
         "capture request header Cookie"),
        ("capture header X len 5", "unknown capture 'header'", "capture request|response"),
        ("capture", "missing argument", "capture request|response"),
    ],
)  # fmt: skip
def test_capture_errors(line: str, message: str, hint: str) -> None:
    """Each capture error: file, line, keyword 'capture', the problem and a hint."""
    err = one_error(frontend(f"    {line}"))
    assert (err.filename, err.lineno, err.keyword) == ("t.cfg", 7, "capture")
    assert err.message.startswith(message), err.message
    assert hint in err.hint, err.hint


def test_capture_belongs_in_frontend_and_listen() -> None:
    """HAProxy refuses captures in defaults; a backend never sees them logged."""
    err = one_error(frontend("", defaults="    capture request header X len 5"))
    assert err.message == "'capture' is not allowed in a 'defaults' section"
    err = one_error(frontend("") + "    capture request header X len 5\n")
    assert err.message == "'capture' is not allowed in a 'backend' section"


def test_capture_slots_numbered_in_file_order() -> None:
    """capture ... header, declare capture and http-request capture ... len share one
    numbering per direction, in file order (HAProxy's %hr order and capture.req.hdr index)."""
    fe = fe_of(
        frontend(
            "    capture request header X-Foo len 9\n"
            "    http-request capture req.hdr(host) len 5\n"
            "    declare capture response len 4\n"
            "    declare capture request len 8\n"
            "    capture response header Server len 6\n"
            "    http-request capture path id 2\n"
            "    http-response capture status id 0"
        )
    )
    assert fe.request_captures == (Capture("X-Foo", 9), Capture("", 5), Capture("", 8))
    assert fe.response_captures == (Capture("", 4), Capture("Server", 6))


def test_capture_rule_may_name_a_slot_declared_after_it() -> None:
    """As HAProxy, an ``id`` is checked once the frontend is read; a backend's ``id`` names
    its frontend's slot and cannot be checked (it is ignored at run time if missing)."""
    fe = fe_of(frontend("    http-request capture path id 0\n    declare capture request len 3"))
    assert fe.request_captures == (Capture("", 3),)
    parse(
        frontend("") + "    http-request capture path id 7\n    http-response capture status id 3\n"
    )


@pytest.mark.parametrize(
    "line, keyword, message, hint",
    [
        ("http-request capture req.hdr(host) id 0", "http-request capture",
         "frontend 'fe' has no request capture slot 0 (0 declared)", "declare capture request"),
        ("http-response capture status id 1\n    declare capture response len 4",
         "http-response capture", "frontend 'fe' has no response capture slot 1 (1 declared)",
         "numbered from 0"),
        ("http-response capture status len 4", "http-response capture",
         "expects 'id', found 'len'", "declare capture response len"),
        ("http-request capture req.hdr(host)", "http-request capture",
         "expects <sample> then 'len' <length> or 'id' <id>", "len <length> | id <id>"),
        ("http-request capture req.hdr(host) len 0", "http-request capture",
         "capture length must be between 1 and 65536, got 0", "bytes of the value"),
        ("http-request capture req.hdr(host) id x", "http-request capture",
         "capture id expects an integer, got 'x'", ""),
        ("http-request capture nope len 3", "http-request capture", "unknown fetch 'nope'", ""),
        ("http-request capture status len 3", "http-request capture",
         "fetch 'status' cannot be used in http-request rules", "http-response"),
        ("declare capture request", "declare", "'declare capture' expects 'request' or "
         "'response', then 'len' <length>", "declare capture request|response len"),
        ("declare capture request len 5 x", "declare", "unexpected word 'x'", "usage"),
        ("declare stick-table x", "declare", "unknown declaration 'stick-table'", "usage"),
        ('log-format "%[capture.req.hdr(-1)]"', "log-format", "capture slot -1 does not exist",
         "first capture"),
    ],
)  # fmt: skip
def test_capture_rule_errors(line: str, keyword: str, message: str, hint: str) -> None:
    """Each capture rule or declaration error: file, line, keyword, problem, hint."""
    err = one_error(frontend(f"    {line}"))
    assert (err.filename, err.lineno, err.keyword) == ("t.cfg", 7, keyword), err
    assert message in err.message, err.message
    assert hint in err.hint, err.hint


def test_capture_len_and_declare_belong_to_a_frontend() -> None:
    """HAProxy: 'len' needs a frontend's slots ("no frontend capability"), 'declare' is for
    frontend and listen sections."""
    err = one_error(frontend("") + "    http-request capture path len 5\n")
    assert "'len' adds a capture slot to a frontend; backend 'b' has none" in err.message
    assert "id <n>" in err.hint
    err = one_error(frontend("") + "    declare capture request len 5\n")
    assert err.message == "'declare' is not allowed in a 'backend' section"


def test_unique_id_format_and_header() -> None:
    """unique-id-format compiles with the request's fetches; the header name is kept."""
    fe = fe_of(
        frontend("    unique-id-format %{+X}o\\ %ci:%cp_%Ts_%rt\n    unique-id-header X-Req-ID")
    )
    assert fe.unique_id_format == compile_format("%{+X}o %ci:%cp_%Ts_%rt", UNIQUE_ID)
    assert fe.unique_id_header == "X-Req-ID"


@pytest.mark.parametrize(
    "line, message, hint",
    [
        ("unique-id-header", "missing argument", "unique-id-header <name>"),
        ("unique-id-header X:Y", "'X:Y' is not a valid header name", "X-Unique-ID"),
        ("unique-id-header A B", "unexpected word 'B'", "usage"),
        ("unique-id-format %b %s", "unique-id-format expects only one argument", "quote"),
        ("unique-id-format %r", "failed to parse unique-id-format : format variable 'r'",
         "mode http"),
    ],
)  # fmt: skip
def test_unique_id_errors(line: str, message: str, hint: str) -> None:
    err = one_error(frontend(f"    {line}", mode="tcp" if "%r" in line else "http"))
    assert (err.lineno, err.keyword) == (7, line.split(" ")[0])
    assert err.message.startswith(message), err.message
    assert hint in err.hint, err.hint


def test_configs_with_the_same_formats_compare_equal() -> None:
    """A reload diffs configs: the same log-format text means the same config."""
    text = frontend('    log-format "%ci %b"\n    capture request header X len 5')
    assert parse(text) == parse(text)
    assert parse(text) != parse(text.replace("%b", "%s"))


def test_no_not_active_notice_for_logging_keywords() -> None:
    """These keywords are active: the start-up lists none of them as planned."""
    cfg = parse(
        frontend(
            '    log-format "%ci %[src] %hr"\n    capture request header X len 5\n'
            "    unique-id-format %rt\n    unique-id-header X-ID"
        )
    )
    assert not [n for n in cfg.notices if "not active" in n.text]


def test_compile_lf_for_action_values() -> None:
    """compile_lf: what http-request actions compile their values with (spaces literal,
    samples %XX-encoded for a header), errors located and worded as HAProxy's."""
    from udsproxy.config.logformat import compile_lf
    from udsproxy.log.formats import SessionRecord
    from udsproxy.logformat import HTTP_VALUE
    from udsproxy.rules import ConnInfo, RuleContext, Where

    fmt = compile_lf(
        "%[path] id=%ID  %[req.hdr(x)]", HTTP_VALUE, http=True, where=Where.HTTP_REQUEST
    )
    ctx = RuleContext(ConnInfo(), b"GET", b"/a?b", b"1.1", [(b"X", b"x", b"v\x01")])
    rec = SessionRecord(unique_id="u", sample=ctx)
    assert fmt.render(rec) == "/a id=u  v%01"
    with pytest.raises(ConfigError) as info:
        compile_lf("%[res.hdr(x)]", HTTP_VALUE, http=True, where=Where.HTTP_REQUEST,
                   filename="a.cfg", lineno=9)  # fmt: skip
    assert (info.value.filename, info.value.lineno) == ("a.cfg", 9)
    assert str(info.value).startswith("a.cfg:9: failed to parse lf-string : ")
