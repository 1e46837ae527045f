"""Parser: sections, inheritance, every keyword family, errors with hints, notices."""

from __future__ import annotations

import textwrap

import pytest

from udsproxy.config.model import ABNS, ABNSZ, FD, IPV4, IPV6, UNIX, Address
from udsproxy.config.parser import parse_text
from udsproxy.errors import ConfigError, ConfigErrors


def parse(text: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return parse_text(textwrap.dedent(text), "t.cfg", env or {})


def errors(text: str) -> list[ConfigError]:
    with pytest.raises(ConfigErrors) as info:
        parse(text)
    return info.value.errors


def one_error(text: str) -> ConfigError:
    errs = errors(text)
    assert len(errs) == 1, [str(e) for e in errs]
    return errs[0]


BASIC = """
    global
        maxconn 500
        log stdout format raw local0
    defaults
        mode tcp
        log global
        option tcplog
        timeout connect 5s
        timeout client 30s
        timeout server 30
        retries 2
    frontend fe
        bind unix@/run/fe.sock mode 660
        bind 127.0.0.1:8080
        default_backend be
    backend be
        balance leastconn
        option redispatch
        server a /run/a.sock weight 3 maxconn 10
        server b unix@/run/b.sock backup
"""


def test_basic_config_is_parsed_into_the_model() -> None:
    """A typical config yields frozen proxies with inherited defaults."""
    cfg = parse(BASIC)
    assert cfg.global_.maxconn == 500
    fe = cfg.proxy("fe")
    be = cfg.proxy("be")
    assert fe is not None and be is not None
    assert fe.binds[0].address == Address(UNIX, path="/run/fe.sock")
    assert fe.binds[0].perms.mode == 0o660
    assert fe.binds[1].address == Address(IPV4, host="127.0.0.1", port=8080)
    assert fe.timeouts.client == 30000 and be.timeouts.server == 30
    assert be.retries == 2 and be.redispatch.enabled and be.redispatch.interval == -1
    assert be.balance.algorithm == "leastconn"
    assert [s.name for s in be.servers] == ["a", "b"]
    assert be.servers[0].weight == 3 and be.servers[0].maxconn == 10
    assert be.servers[1].backup
    assert fe.has_option("tcplog") and fe.logs and fe.logs[0].target == "stdout"
    assert cfg.backend_for(fe) is be
    assert fe.timeouts.effective_queue == 5000


def test_config_is_comparable() -> None:
    """Parsing the same text twice gives equal configs (a reload can diff them)."""
    assert parse(BASIC) == parse(BASIC)


def test_nearest_defaults_wins_and_no_option_cancels() -> None:
    """Each proxy inherits from the nearest preceding defaults; 'no option' cancels."""
    cfg = parse(
        """
        defaults
            mode http
            option redispatch
            timeout connect 1s
        backend one
            server a /a.sock
        defaults
            mode tcp
            option allbackups
        backend two
            no option allbackups
            server a /a.sock
        defaults named
            retries 7
        backend three from named
            server a /a.sock
        """
    )
    one, two, three = (cfg.proxy(n) for n in ("one", "two", "three"))
    assert one and two and three
    assert one.mode == "http" and one.redispatch.enabled and one.timeouts.connect == 1000
    assert two.mode == "tcp" and not two.has_option("allbackups") and not two.redispatch.enabled
    assert two.timeouts.connect is None
    assert three.retries == 7


def test_default_server_options_apply_to_servers() -> None:
    """default-server options are the base of every server line; the line wins."""
    cfg = parse(
        """
        backend b
            default-server maxconn 20 weight 5
            server a /a.sock
            server c /c.sock weight 2
        """
    )
    be = cfg.proxy("b")
    assert be is not None
    assert (be.servers[0].maxconn, be.servers[0].weight) == (20, 5)
    assert (be.servers[1].maxconn, be.servers[1].weight) == (20, 2)


@pytest.mark.parametrize(
    "word, expected",
    [
        ("unix@/run/x.sock", Address(UNIX, path="/run/x.sock")),
        ("/run/x.sock", Address(UNIX, path="/run/x.sock")),
        ("unix@rel/x.sock", Address(UNIX, path="rel/x.sock")),
        ("abns@name", Address(ABNS, path="name")),
        ("abnsz@name", Address(ABNSZ, path="name")),
        ("ipv4@127.0.0.1:81", Address(IPV4, host="127.0.0.1", port=81)),
        ("ipv6@[::1]:81", Address(IPV6, host="::1", port=81)),
        ("[::1]:82", Address(IPV6, host="::1", port=82)),
        ("*:80", Address(IPV4, host="", port=80)),
        (":80", Address(IPV4, host="", port=80)),
        ("fd@3", Address(FD, fd=3)),
    ],
)
def test_bind_addresses(word: str, expected: Address) -> None:
    """Every documented bind address form parses to its family."""
    cfg = parse(f"frontend f\n    bind {word}\n")
    fe = cfg.proxy("f")
    assert fe is not None and fe.binds[0].address == expected


def test_abns_sockaddr_is_padded_like_haproxy() -> None:
    """abns@ pads the name with NULs to the whole sun_path; abnsz@ keeps the exact length."""
    padded = Address(ABNS, path="x").sockaddr()
    assert isinstance(padded, bytes) and len(padded) == 108 and padded[:2] == b"\0x"
    assert Address(ABNSZ, path="x").sockaddr() == b"\0x"


def test_bind_lists_and_ranges() -> None:
    """A bind word may be a comma list and a port range."""
    fe = parse("frontend f\n    bind 127.0.0.1:8000-8001,unix@/a.sock\n").proxy("f")
    assert fe is not None
    assert [b.address.port for b in fe.binds[:2]] == [8000, 8001]
    assert fe.binds[2].address.family == UNIX


def test_unix_bind_defaults_and_prefix() -> None:
    """Global unix-bind gives defaults (the bind line wins) and prefixes unix bind paths."""
    cfg = parse(
        """
        global
            unix-bind prefix /run/p mode 600 uid 12 gid 34
        frontend f
            bind /a.sock mode 660
            bind abns@x
        """
    )
    fe = cfg.proxy("f")
    assert fe is not None
    first = fe.binds[0]
    assert first.address.path == "/run/p/a.sock"
    assert (first.perms.mode, first.perms.uid, first.perms.gid) == (0o660, 12, 34)
    assert fe.binds[1].address == Address(ABNS, path="x") and fe.binds[1].perms.mode is None


def test_times_units() -> None:
    """Times take us/ms/s/m/h/d; no unit means milliseconds."""
    be = parse(
        """
        backend b
            timeout connect 250
            timeout server 2m
            timeout queue 1500us
            timeout tunnel 1h
        """
    ).proxy("b")
    assert be is not None
    t = be.timeouts
    assert (t.connect, t.server, t.queue, t.tunnel) == (250, 120000, 2, 3600000)


def test_balance_variants() -> None:
    """random(N), hash-type and every pure algorithm parse."""
    be = parse("backend b\n    balance random(3)\n    hash-type consistent djb2\n").proxy("b")
    assert be is not None
    assert (be.balance.algorithm, be.balance.draws) == ("random", 3)
    assert (be.balance.hash_type, be.balance.hash_function) == ("consistent", "djb2")
    for algo in ("roundrobin", "static-rr", "leastconn", "first", "source"):
        be = parse(f"backend b\n    balance {algo}\n").proxy("b")
        assert be is not None and be.balance.algorithm == algo


def test_server_check_parameters() -> None:
    """check with inter/fastinter/downinter/rise/fall is stored on the server."""
    be = parse(
        "backend b\n    server a /a.sock check inter 5s fastinter 1s downinter 10s rise 4 fall 5\n"
    ).proxy("b")
    assert be is not None
    c = be.servers[0].check
    assert (c.enabled, c.inter, c.fastinter, c.downinter, c.rise, c.fall) == (
        True,
        5000,
        1000,
        10000,
        4,
        5,
    )


@pytest.mark.parametrize(
    "text, line, keyword, message, hint",
    [
        (
            "backend b\n    balanse roundrobin\n",
            2,
            "balanse",
            "unknown keyword",
            "did you mean 'balance'",
        ),
        (
            "backend b\n    option redispach\n",
            2,
            "option redispach",
            "unknown option",
            "option redispatch",
        ),
        (
            "backend b\n    timeout conect 5s\n",
            2,
            "timeout conect",
            "unknown timeout",
            "timeout connect",
        ),
        (
            "backend b\n    server a /a.sock wieght 3\n",
            2,
            "wieght",
            "unknown server option",
            "weight",
        ),
        ("backend b\n    server a /a.sock weight 300\n", 2, "weight", "between 0 and 256", ""),
        ("backend b\n    balance roundrobbin\n", 2, "balance", "unknown balance", "roundrobin"),
        (
            "backend b\n    maxconn 5\n",
            2,
            "maxconn",
            "not allowed in a 'backend'",
            "global, defaults",
        ),
        ("backend b\n    timeout client 5s\n", 2, "timeout client", "not allowed", "frontend"),
        ("frontend f\n    bind 1.2.3.4\n", 2, "bind", "missing port", "host:port"),
        ("frontend f\n    bind foo@x\n", 2, "bind", "unknown address prefix", "unix@"),
        ("global\n    chroot /var/lib/haproxy\n", 2, "chroot", "not supported", "systemd"),
        ("global\n    user no-such-user-xyz\n", 2, "user", "unknown user", "uid"),
        ("backend b\n    timeout connect 5x\n", 2, "timeout", "invalid time", "unit"),
        ("server a /a.sock\n", 1, "server", "outside of any section", "start a section"),
        ("userlist u\n    user a password x\n", 2, "user", "not a hash", "mkpasswd"),
        ("peers p\n    peer a 127.0.0.1:1\n", 1, "peers", "not supported", "stick-table"),
        ("backend b\n    mode health\n", 2, "mode", "unknown mode", "monitor-uri"),
        (
            "frontend f\n    bind :80\n    default_backend nope\n",
            1,
            "default_backend",
            "does not exist",
            "",
        ),
        ("backend b\n    contimeout 5s\n", 2, "contimeout", "not supported", "timeout connect"),
        ("backend b\n    server a rel/a.sock\n", 2, "server", "relative socket path", "unix@"),
        ("backend b\n    server a /a.sock weight\n", 2, "weight", "needs a value", "weight"),
        (
            "frontend f\n    bind :80\n    default_backend b\nbackend b\n    mode http\n",
            1,
            "default_backend",
            "cannot use http backend",
            "same 'mode'",
        ),
        (
            "global\n    stats socket 127.0.0.1:9 level admin\n",
            2,
            "stats",
            "must be a unix socket",
            "",
        ),
        ("backend b\n    errorfile 999 /x\n", 2, "errorfile", "not allowed", "503"),
    ],
)
def test_errors_name_file_line_keyword_and_hint(
    text: str, line: int, keyword: str, message: str, hint: str
) -> None:
    """Every error carries file, line, keyword and a useful hint."""
    err = one_error(text)
    assert err.filename == "t.cfg"
    assert err.lineno == line
    assert err.keyword == keyword
    assert message in err.message
    assert hint in err.hint
    assert str(err).startswith(f"t.cfg:{line}: '{keyword}': ")


def test_all_errors_are_reported() -> None:
    """The parser goes on after an error and reports every one."""
    errs = errors(
        """
        backend b
            balanse roundrobin
            server a /a.sock wieght 1
            timeout conect 1s
        """
    )
    assert [e.lineno for e in errs] == [3, 4, 5]


def test_duplicate_names_are_errors() -> None:
    """Two backends or two servers with one name are errors; a frontend and backend may share."""
    errs = errors(
        """
        backend b
            server a /a.sock
            server a /b.sock
        backend b
        """
    )
    assert {e.message.split(" ")[0] for e in errs} == {"server", "backend"}
    assert "declared twice (first at line 3)" in errs[0].message
    parse("frontend x\n    bind :1\n    default_backend x\nbackend x\n")


def test_mode_unix_requires_unix_sockets() -> None:
    """'mode unix' names each bind and server that is not a unix socket."""
    errs = errors(
        """
        listen l
            mode unix
            bind 127.0.0.1:80
            bind abns@ok
            server a 127.0.0.1:81
            server b /b.sock
        """
    )
    assert [(e.lineno, e.keyword) for e in errs] == [(4, "bind"), (6, "server")]
    assert "not a unix socket" in errs[0].message


def test_orphan_server_options_are_named() -> None:
    """Server options on their own lines (no '\\') are an error naming each line."""
    errs = errors(
        """
        backend secure_socket_backend
            server secure_socket unix@/var/run/app.sock
            check inter 5s
            rise 2
            fall 3
            maxconn 100
        """
    )
    assert [e.lineno for e in errs] == [4, 5, 6, 7]
    assert all("on a line of its own" in e.message for e in errs)
    assert "end the server line" in errs[0].hint


def test_server_socket_perms_are_an_extension() -> None:
    """uid/gid/mode on a server line set the expected socket owner, with a portability notice."""
    cfg = parse(
        """
        backend b
            server a /a.sock \\
                uid 1000 \\
                gid 1001 \\
                mode 660
        """
    )
    be = cfg.proxy("b")
    assert be is not None
    perms = be.servers[0].expect_perms
    assert (perms.uid, perms.gid, perms.mode) == (1000, 1001, 0o660)
    texts = [n.text for n in cfg.notices]
    assert "not portable to HAProxy: a trailing '\\' that continues a line at line 3" in texts
    assert "not portable to HAProxy: socket owner/mode options on a server line at line 3" in texts


def test_server_socket_perms_need_a_socket_file() -> None:
    """uid/gid/mode on a TCP server line is an error."""
    err = one_error("backend b\n    server a 127.0.0.1:80 mode 660\n")
    assert "not a socket file" in err.message


def test_planned_keywords_give_one_notice_per_area() -> None:
    """Planned keywords are accepted and announced once, grouped by area, with what happens."""
    cfg = parse(
        """
        global
            stats socket /run/s.sock mode 600 level admin
        backend b
            mode http
            http-request set-header X-A b
            server a /a.sock send-proxy
            server c /c.sock send-proxy
        """
    )
    texts = [n.text for n in cfg.notices]
    proxy = [t for t in texts if "(PROXY protocol)" in t]
    assert len(proxy) == 1 and "send-proxy (server option) (line 7)" in proxy[0]
    assert "no PROXY header" in proxy[0]
    assert not any("http-request" in t for t in texts)  # header rules are active
    assert not any("mode http" in t for t in texts)  # HTTP mode itself is active
    assert not any("(stats socket)" in t for t in texts)  # the stats socket is active
    be = cfg.proxy("b")
    assert be is not None and be.http_request[0].action.words == ("set-header", "X-A", "b")


def test_twistd_owned_keywords_warn_with_the_equivalent() -> None:
    """daemon/pidfile/nbthread are accepted with a notice naming twistd's equivalent."""
    cfg = parse("global\n    daemon\n    pidfile /run/x.pid\n    nbthread 4\n")
    texts = [n.text for n in cfg.notices]
    assert any("without -n" in t for t in texts)
    assert any("--pidfile" in t for t in texts)
    assert any("one reactor" in t for t in texts)


def test_missing_timeouts_are_noticed() -> None:
    """Like HAProxy, a proxy without client/connect/server timeouts gets a warning."""
    cfg = parse(
        "frontend f\n    bind :1\n    default_backend b\nbackend b\n    timeout connect 1s\n"
    )
    texts = [n.text for n in cfg.notices]
    assert any("frontend 'f': missing timeouts (client)" in t for t in texts)
    assert any("backend 'b': missing timeouts (server)" in t for t in texts)


def test_log_lines() -> None:
    """log targets with format, facility and levels; invalid facilities are refused."""
    cfg = parse(
        "global\n    log /dev/log local0\n    log 127.0.0.1:514 format rfc5424 local1 notice err\n"
        "frontend f\n    bind :1\n    log global\n    log stderr local2\n"
    )
    g = cfg.global_
    assert [(t.target, t.facility, t.format) for t in g.logs] == [
        ("/dev/log", "local0", "local"),
        ("127.0.0.1:514", "local1", "rfc5424"),
    ]
    assert (g.logs[1].level, g.logs[1].min_level) == ("notice", "err")
    fe = cfg.proxy("f")
    assert fe is not None and [t.target for t in fe.logs] == ["/dev/log", "127.0.0.1:514", "stderr"]
    assert "unknown log facility" in one_error("global\n    log stdout locl0\n").message


def test_proxy_without_log_has_no_targets() -> None:
    """A proxy without 'log' lines writes no session lines (HAProxy)."""
    cfg = parse("global\n    log stdout local0\nbackend b\n")
    be = cfg.proxy("b")
    assert be is not None and be.logs == ()


def test_environment_variables_in_addresses() -> None:
    """ "${VAR}" expands in quoted words, e.g. socket paths."""
    cfg = parse('backend b\n    server a "${DIR}/a.sock"\n', env={"DIR": "/srv"})
    be = cfg.proxy("b")
    assert be is not None and be.servers[0].address.path == "/srv/a.sock"
