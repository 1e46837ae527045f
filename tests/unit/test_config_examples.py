"""The bundled example configs and Debian's stock haproxy.cfg through the --check path."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from udsproxy.config.parser import parse_file
from udsproxy.errors import ConfigErrors
from udsproxy.tap import Options

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "etc" / "examples").glob("*.cfg")) + [ROOT / "etc" / "app.cfg"]
DEBIAN_CFG = "/etc/haproxy/haproxy.cfg"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_pass_check(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each example config passes --check: exit 0, or 2 for a backend-only fragment, as haproxy -c."""
    options = Options()
    with pytest.raises(SystemExit) as info:
        options.parseOptions(["--config", str(path), "--check"])
    out, err = capsys.readouterr()
    assert "errors found" not in err
    if "bind" in path.read_text():
        assert info.value.code == 0
        assert f"Configuration file is valid: {path}" in out
    else:
        assert info.value.code == 2
        assert f"[ALERT] {path}: no listener: " in err
        assert "will not start (no listener) => exit(2)." in err


def test_examples_are_the_source_documents_configs() -> None:
    """The five configs of the source document are all there."""
    assert {p.name for p in EXAMPLES} >= {
        "socket_backend.cfg",
        "secure_socket_backend.cfg",
        "unix_frontend.cfg",
        "http_in_thin.cfg",
        "thin_socket_perms.cfg",
    }


def test_thin_socket_perms_example_carries_its_extensions() -> None:
    """The continued server line keeps all options and yields the two portability notices."""
    cfg = parse_file(str(ROOT / "etc/examples/thin_socket_perms.cfg"))
    be = cfg.proxy("socket_backend")
    assert be is not None
    srv = be.servers[0]
    assert srv.maxconn == 100 and srv.check.inter == 2000
    assert (srv.expect_perms.uid, srv.expect_perms.gid, srv.expect_perms.mode) == (
        1000,
        1000,
        0o660,
    )
    portability = [n.text for n in cfg.notices if n.text.startswith("not portable to HAProxy")]
    assert len(portability) == 2


def test_check_reports_every_error_and_exits_nonzero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--check prints each error with file and line, and exits 1."""
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("backend b\n    balanse roundrobin\n    server a /a.sock wieght 2\n")
    with pytest.raises(SystemExit) as info:
        Options().parseOptions(["--config", str(cfg), "--check"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert (
        f"[ALERT] {cfg}:2: 'balanse': unknown keyword 'balanse' (hint: did you mean 'balance'?)"
        in err
    )
    assert f"{cfg}:3: 'wieght'" in err
    assert "2 errors found" in err


def test_no_listener_refuses_to_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A config that binds nothing is refused at start (exit 1), with the file and a hint."""
    cfg = tmp_path / "be.cfg"
    cfg.write_text("backend b\n    server a /a.sock\n")
    with pytest.raises(SystemExit) as info:
        Options().parseOptions(["--config", str(cfg)])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"[ALERT] {cfg}: no listener: ")
    assert "hint: add 'frontend <name>' with 'bind <address>'" in err


def test_a_stats_socket_alone_is_a_listener(tmp_path: Path) -> None:
    """A stats socket counts as a listener, as in HAProxy: --check says valid."""
    cfg = tmp_path / "st.cfg"
    cfg.write_text(
        f"global\n    stats socket {tmp_path}/st.sock\nbackend b\n    server a /a.sock\n"
    )
    with pytest.raises(SystemExit) as info:
        Options().parseOptions(["--config", str(cfg), "--check"])
    assert info.value.code == 0


def test_check_on_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A config file that cannot be read is one clear error."""
    with pytest.raises(SystemExit) as info:
        Options().parseOptions(["--config", str(tmp_path / "none.cfg"), "--check"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert f"[ALERT] {tmp_path / 'none.cfg'}: cannot open configuration file: " in err
    assert "No such file or directory [ENOENT]" in err and ":0:" not in err
    assert "check the path given to --config" in err


@pytest.mark.skipif(not os.path.exists(DEBIAN_CFG), reason="haproxy (Debian package) not installed")
def test_debian_stock_haproxy_cfg_leaves_exactly_chroot() -> None:
    """Debian's stock haproxy.cfg: the only error left is chroot, with its hint."""
    try:
        import pwd

        pwd.getpwnam("haproxy")
    except KeyError:
        pytest.skip("the haproxy user does not exist")
    with pytest.raises(ConfigErrors) as info:
        parse_file(DEBIAN_CFG)
    errs = info.value.errors
    assert [(e.lineno, e.keyword, e.message) for e in errs] == [
        (4, "chroot", "chroot is not supported")
    ]
    assert "systemd" in errs[0].hint
    # Once chroot is gone, what is left parses, with notices for what is not active yet.
    text = Path(DEBIAN_CFG).read_text().replace("\tchroot /var/lib/haproxy\n", "\n")
    from udsproxy.config.parser import parse_text

    cfg = parse_text(text, DEBIAN_CFG)
    out = io.StringIO()
    for notice in cfg.notices:
        out.write(str(notice) + "\n")
    notes = out.getvalue()
    assert "not active yet (TLS)" in notes
    assert "errorfile" not in notes  # active: /etc/haproxy/errors/*.http were read
    assert "accepted but owned by twistd: run twistd without -n to daemonize" in notes
