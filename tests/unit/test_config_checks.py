"""Parser: health-check and reload keywords keep typed values, with HAProxy's defaults and checks."""

from __future__ import annotations

import pytest

from tests.unit.test_config_parser import one_error, parse
from udsproxy.config.model import (
    Check,
    ExpectMatch,
    HttpCheck,
    HttpCheckExpect,
    HttpCheckOther,
    HttpCheckSend,
    LoadServerState,
    Observe,
    OnError,
    Proxy,
    Server,
)


def backend(body: str, mode: str = "http") -> Proxy:
    cfg = parse(
        f"backend b\n    mode {mode}\n" + "".join(f"    {line}\n" for line in body.splitlines())
    )
    be = cfg.proxy("b")
    assert be is not None
    return be


def server(options: str, mode: str = "http") -> Server:
    return backend(f"server a /a.sock {options}", mode).servers[0]


# -- server options -------------------------------------------------------------------------


def test_check_defaults_are_haproxys() -> None:
    """A bare server has HAProxy's check defaults: inter 2s, rise 2, fall 3, error-limit 10..."""
    srv = server("")
    assert srv.check == Check()
    c = srv.check
    assert (c.enabled, c.inter, c.rise, c.fall) == (False, 2000, 2, 3)
    assert (c.observe, c.error_limit, c.on_error, c.slowstart) == (
        Observe.NONE,
        10,
        OnError.FAIL_CHECK,
        0,
    )
    assert (srv.send_proxy, srv.send_proxy_v2) == (False, False)


@pytest.mark.parametrize(
    "options, expected",
    [
        ("check", Check(enabled=True)),
        ("check no-check", Check(enabled=False)),
        ("inter 500ms", Check(inter=500)),
        ("fastinter 1s downinter 1m", Check(fastinter=1000, downinter=60000)),
        ("rise 1 fall 9", Check(rise=1, fall=9)),
        ("port 8081 addr 127.0.0.2", Check(port=8081, addr="127.0.0.2")),
        ("addr ::1", Check(addr="::1")),
        ("observe layer7", Check(observe=Observe.LAYER7)),
        ("observe layer4", Check(observe=Observe.LAYER4)),
        ("error-limit 3", Check(error_limit=3)),
        ("on-error mark-down", Check(on_error=OnError.MARK_DOWN)),
        ("on-error sudden-death", Check(on_error=OnError.SUDDEN_DEATH)),
        ("on-error fastinter", Check(on_error=OnError.FASTINTER)),
        ("slowstart 30s", Check(slowstart=30000)),
    ],
)
def test_check_options_parse_into_check(options: str, expected: Check) -> None:
    """Each check option lands in its typed Check field."""
    assert server(options).check == expected


def test_send_proxy_options_are_kept() -> None:
    """send-proxy and send-proxy-v2 are kept on the server."""
    assert server("send-proxy").send_proxy
    assert server("send-proxy-v2").send_proxy_v2


def test_default_server_check_options_are_inherited() -> None:
    """default-server check options apply to later server lines, which may override them."""
    be = backend("default-server inter 3s observe layer4 error-limit 5\nserver a /a.sock fall 4")
    c = be.servers[0].check
    assert (c.inter, c.observe, c.error_limit, c.fall) == (3000, Observe.LAYER4, 5, 4)


@pytest.mark.parametrize(
    "options, keyword, message, hint",
    [
        ("inter 0", "inter", "'inter' must be a positive time, got '0'", "inter 2s"),
        ("fastinter 0s", "fastinter", "'fastinter' must be a positive time", ""),
        ("downinter x", "downinter", "invalid time 'x'", "unit"),
        ("rise 0", "rise", "rise must be at least 1, got 0", ""),
        ("fall -1", "fall", "fall must be at least 1", ""),
        ("port 70000", "port", "port must be between 1 and 65535", ""),
        ("addr localhost", "addr", "'addr' expects an IPv4 or IPv6 address", "not resolved"),
        ("observe layer5", "observe", "unknown observe mode 'layer5'", "layer4 or layer7"),
        ("error-limit 0", "error-limit", "error-limit must be at least 1", ""),
        ("on-error retry", "on-error", "unknown on-error mode 'retry'", "fail-check"),
        ("slowstart soon", "slowstart", "invalid time 'soon'", ""),
        ("observe", "observe", "server option 'observe' needs a value", "layer4|layer7"),
    ],
)
def test_check_option_errors(options: str, keyword: str, message: str, hint: str) -> None:
    """Bad check option values are errors naming the line, the option and a hint."""
    err = one_error(f"backend b\n    server a /a.sock {options}\n")
    assert (err.filename, err.lineno, err.keyword) == ("t.cfg", 2, keyword)
    assert message in err.message
    assert hint in err.hint


def test_observe_layer7_needs_http_mode() -> None:
    """As HAProxy, layer7 observing is refused in a tcp backend."""
    err = one_error("backend b\n    mode tcp\n    server a /a.sock observe layer7\n")
    assert (err.lineno, err.keyword) == (3, "observe")
    assert "needs 'mode http'" in err.message and "layer4" in err.hint


# -- option httpchk and http-check ----------------------------------------------------------


@pytest.mark.parametrize(
    "line, expected",
    [
        ("option httpchk", HttpCheck(enabled=True)),
        ("option httpchk /health", HttpCheck(enabled=True, uri="/health")),
        ("option httpchk GET /up", HttpCheck(enabled=True, method="GET", uri="/up")),
        (
            "option httpchk HEAD /up HTTP/1.1",
            HttpCheck(enabled=True, method="HEAD", uri="/up", version="HTTP/1.1"),
        ),
    ],
)
def test_option_httpchk_forms(line: str, expected: HttpCheck) -> None:
    """The four forms of option httpchk; defaults OPTIONS / HTTP/1.0."""
    assert backend(line).http_check == expected


def test_no_option_httpchk_disables_an_inherited_one() -> None:
    """'no option httpchk' in a backend turns off the defaults' httpchk."""
    cfg = parse("defaults\n    option httpchk GET /x\nbackend b\n    no option httpchk\n")
    be = cfg.proxy("b")
    assert be is not None and not be.http_check.enabled


def test_http_check_rules_are_kept_in_order() -> None:
    """send, expect and other http-check lines are typed rules, in order."""
    be = backend(
        "option httpchk\n"
        "http-check send meth GET uri /health ver HTTP/1.1 hdr Host example.org body ok\n"
        "http-check expect status 200-299,304\n"
        "http-check expect ! string maintenance\n"
        "http-check expect min-recv 10 comment hdrcheck hdr name -m beg X-Ok value up\n"
        "http-check expect !rstatus ^5\n"
        "http-check send-state\n"
    )
    assert be.http_check.rules == (
        HttpCheckSend(
            method="GET",
            uri="/health",
            version="HTTP/1.1",
            headers=(("Host", "example.org"),),
            body="ok",
        ),
        HttpCheckExpect(ExpectMatch.STATUS, "200-299,304"),
        HttpCheckExpect(ExpectMatch.STRING, "maintenance", negate=True),
        HttpCheckExpect(
            ExpectMatch.HDR,
            "X-Ok",
            name_method="beg",
            value="up",
            min_recv=10,
            comment="hdrcheck",
        ),
        HttpCheckExpect(ExpectMatch.RSTATUS, "^5", negate=True),
        HttpCheckOther("send-state"),
    )
    assert be.http_check.enabled


def test_http_check_rules_of_a_proxy_replace_the_defaults() -> None:
    """A backend with its own http-check lines does not add them to the defaults' ones."""
    cfg = parse(
        "defaults\n    http-check expect status 200\n"
        "backend own\n    http-check expect status 204\n"
        "backend inherits\n"
    )
    own, inherits = cfg.proxy("own"), cfg.proxy("inherits")
    assert own is not None and inherits is not None
    assert own.http_check.rules == (HttpCheckExpect(ExpectMatch.STATUS, "204"),)
    assert inherits.http_check.rules == (HttpCheckExpect(ExpectMatch.STATUS, "200"),)


@pytest.mark.parametrize(
    "line, keyword, message, hint",
    [
        ("option httpchk GET / HTTP/1.1 x", "option httpchk", "unexpected word 'x'", "usage"),
        ("option httpchk G(T /", "option httpchk", "'G(T' is not an HTTP method", ""),
        ("option httpchk GET / HTTP/2x", "option httpchk", "is not an HTTP version", "HTTP/1.1"),
        ("http-check", "http-check", "missing argument", "send|expect"),
        (
            "http-check sned",
            "http-check",
            "unknown 'http-check sned'",
            "did you mean 'http-check send'",
        ),
        ("http-check send uri", "http-check", "'uri' needs a value", "usage"),
        ("http-check send hdr Host", "http-check", "'hdr' needs a name and a value", ""),
        ("http-check send hdr a:b c", "http-check", "is not a header field name", ""),
        ("http-check send method GET", "http-check", "unknown 'http-check send' option", "meth"),
        ("http-check expect", "http-check", "missing match", "usage"),
        (
            "http-check expect state 200",
            "http-check",
            "unknown 'http-check expect' match",
            "status",
        ),
        ("http-check expect status 2xx", "http-check", "invalid status codes '2xx'", "300-399"),
        ("http-check expect status", "http-check", "missing argument", "status <pattern>"),
        ("http-check expect rstring (", "http-check", "invalid regex '('", ""),
        (
            "http-check expect min-recv -2 status 200",
            "http-check",
            "min-recv must be at least -1",
            "",
        ),
        (
            "http-check expect ok-status L9OK status 200",
            "http-check",
            "invalid ok-status 'L9OK'",
            "L7OK",
        ),
        ("http-check expect hdr X-Ok", "http-check", "unexpected word 'X-Ok'", "expected 'name'"),
        (
            "http-check expect hdr name -m xyz a",
            "http-check",
            "'-m' expects a matching method",
            "beg",
        ),
        (
            "http-check expect hdr name-lf -m reg a",
            "http-check",
            "cannot be used with '-m reg'",
            "",
        ),
        ("http-check expect fhdr name a value", "http-check", "'value' needs a pattern", ""),
    ],
)
def test_httpchk_errors(line: str, keyword: str, message: str, hint: str) -> None:
    """Bad option httpchk / http-check lines are errors on their line with a hint."""
    err = one_error(f"backend b\n    {line}\n")
    assert (err.lineno, err.keyword) == (2, keyword)
    assert message in err.message
    assert hint in err.hint


# -- proxy and global keywords --------------------------------------------------------------


def test_proxy_check_and_reload_keywords() -> None:
    """fullconn, timeout check, log-health-checks, load-server-state-from-file keep their values."""
    be = backend(
        "fullconn 300\ntimeout check 3s\noption log-health-checks\n"
        "load-server-state-from-file local"
    )
    assert (be.fullconn, be.timeouts.check) == (300, 3000)
    assert be.has_option("log-health-checks")
    assert be.load_server_state == LoadServerState.LOCAL
    assert backend("").load_server_state == LoadServerState.NONE


def test_global_check_and_reload_keywords() -> None:
    """spread-checks, hard-stop-after and server-state-file keep their values (defaults: 0, none)."""
    glob = parse(
        "global\n    spread-checks 5\n    hard-stop-after 30s\n"
        "    server-state-file /var/lib/udsproxy/state\n"
    ).global_
    assert (glob.spread_checks, glob.hard_stop_after, glob.server_state_file) == (
        5,
        30000,
        "/var/lib/udsproxy/state",
    )
    empty = parse("global\n").global_
    assert (empty.spread_checks, empty.hard_stop_after, empty.server_state_file) == (0, None, None)


@pytest.mark.parametrize(
    "text, keyword, message, hint",
    [
        ("global\n    spread-checks 60\n", "spread-checks", "between 0 and 50, got 60", ""),
        (
            "global\n    spread-checks\n",
            "spread-checks",
            "missing argument",
            "spread-checks <0..50>",
        ),
        ("global\n    hard-stop-after never\n", "hard-stop-after", "invalid time 'never'", ""),
        ("global\n    server-state-file a b\n", "server-state-file", "unexpected word 'b'", ""),
        ("backend b\n    fullconn 0\n", "fullconn", "fullconn must be at least 1", ""),
        ("backend b\n    timeout check x\n", "timeout", "invalid time 'x'", ""),
        (
            "backend b\n    load-server-state-from-file all\n",
            "load-server-state-from-file",
            "unknown load-server-state-from-file mode 'all'",
            "global|local|none",
        ),
    ],
)
def test_global_and_proxy_value_errors(text: str, keyword: str, message: str, hint: str) -> None:
    """Bad values of these keywords are errors naming the keyword, with a hint."""
    err = one_error(text)
    assert (err.lineno, err.keyword) == (2, keyword)
    assert message in err.message
    assert hint in err.hint


def test_health_keywords_are_active_and_reload_ones_still_planned() -> None:
    """Health checks are built: no notice for them; the reload notices remain."""
    cfg = parse(
        "global\n    spread-checks 2\n    server-state-file /s\n"
        "backend b\n    mode http\n    option httpchk\n    http-check expect status 200\n"
        "    server a /a.sock check observe layer7\n"
    )
    texts = [n.text for n in cfg.notices]
    assert not any("(health checks)" in t for t in texts)
    assert any("(reload)" in t and "server-state-file" in t for t in texts)
