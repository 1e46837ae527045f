"""The real ``twistd udsproxy``: --check, a run with listeners and stats socket, the demo."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time

import pytest

from tests.integration.backends import (
    connect,
    free_port,
    read_until_close,
    recv_line,
    wait_connectable,
)
from tests.integration.proxy import TWISTD, child_env, spawn_proxy


def run_twistd(args: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        TWISTD + args, capture_output=True, text=True, timeout=timeout, env=child_env()
    )


def test_plugin_is_listed() -> None:
    """twistd --help lists the udsproxy plugin."""
    out = run_twistd(["--help"]).stdout
    assert re.search(r"^\s+udsproxy\s", out, re.M), out


def test_check_accepts_a_config_without_touching_paths(sockdir: str) -> None:
    """--check exits 0 on a valid config and creates no socket file."""
    cfg = os.path.join(sockdir, "ok.cfg")
    with open(cfg, "w") as f:
        f.write(
            f"frontend f\n    bind {sockdir}/fe.sock\n    default_backend b\nbackend b\n    server a {sockdir}/a.sock\n"
        )
    result = run_twistd(["udsproxy", "--config", cfg, "--check"])
    assert result.returncode == 0, result.stderr
    assert f"Configuration file is valid: {cfg}" in result.stdout
    assert "missing timeouts" in result.stdout
    assert os.listdir(sockdir) == ["ok.cfg"]


def test_check_reports_errors_and_fails(sockdir: str) -> None:
    """--check exits 1 and lists each error with file and line."""
    cfg = os.path.join(sockdir, "bad.cfg")
    with open(cfg, "w") as f:
        f.write("backend b\n    balanse roundrobin\n    server a /a.sock wieght 1\n")
    result = run_twistd(["udsproxy", "--config", cfg, "--check"])
    assert result.returncode == 1
    assert f"{cfg}:2: 'balanse'" in result.stderr and f"{cfg}:3: 'wieght'" in result.stderr


def test_run_binds_listeners_and_stats_socket(sockdir: str, start_backend) -> None:  # type: ignore[no-untyped-def]
    """A real run: modes as configured, the stats socket answers, notices logged, clean stop."""
    start_backend("a", f"{sockdir}/a.sock", mode="tcp-name")
    fe = f"{sockdir}/fe.sock"
    proxy = spawn_proxy(
        f"""
        global
            stats socket {sockdir}/admin.sock mode 640 level admin
        defaults
            timeout connect 1s
            timeout client 5s
            timeout server 5s
        frontend f
            bind {fe} mode 600
            default_backend b
        backend b
            server a {sockdir}/a.sock check
        """,
        sockdir,
        ready=f"unix@{fe}",
    )
    try:
        # Listeners are bound one after the other: the stats socket may follow the frontend.
        wait_connectable(f"unix@{sockdir}/admin.sock", proc=proxy.proc)
        assert os.stat(fe).st_mode & 0o777 == 0o600
        assert os.stat(f"{sockdir}/admin.sock").st_mode & 0o777 == 0o640
        with connect(f"unix@{sockdir}/admin.sock") as sock:
            sock.sendall(b"show stat\n")
            assert read_until_close(sock).startswith(b"# pxname,svname,qcur,qmax,")
        with connect(f"unix@{fe}") as sock:
            assert recv_line(sock) == b"a\n"
        log = proxy.wait_log("listening on")
        assert "not active yet" not in log  # health checks and the stats socket are active
        assert "is DOWN" not in log  # the checked server stays UP
    finally:
        # Twisted >= 25 ends a SIGTERM-ed twistd by re-raising the signal after a clean stop.
        assert proxy.stop() in (0, -signal.SIGTERM)
    assert "Server Shut Down." in proxy.log()
    assert not os.path.exists(fe) and not os.path.exists(f"{sockdir}/admin.sock")


def test_bind_error_aborts_start_with_the_path(sockdir: str) -> None:
    """A bind into a missing directory stops twistd with a message naming the path."""
    proxy = spawn_proxy(f"frontend f\n    bind {sockdir}/nodir/fe.sock\n", sockdir)
    proxy.proc.wait(20)
    assert proxy.proc.returncode != 0
    assert f"{sockdir}/nodir" in proxy.log()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to drop privileges")
def test_root_drops_to_the_configured_user(sockdir: str) -> None:
    """Started as root with 'user nobody', the process serves as nobody after binding."""
    port = free_port()
    os.chmod(sockdir, 0o755)
    proxy = spawn_proxy(
        f"""
        global
            user nobody
            group nogroup
        frontend f
            bind 127.0.0.1:{port}
            bind {sockdir}/fe.sock mode 666
        """,
        sockdir,
        ready=("127.0.0.1", port),
    )
    try:
        # The port accepts (the kernel's backlog) from privilegedStartService on; the drop
        # follows in the same start: poll for it rather than race it.
        deadline = time.monotonic() + 10
        while True:
            with open(f"/proc/{proxy.proc.pid}/status") as f:
                status = f.read()
            uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
            if uid_line.split()[1:] == ["65534"] * 4 or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert uid_line.split()[1:] == ["65534"] * 4
        assert os.stat(f"{sockdir}/fe.sock").st_uid == 0  # bound as root, before the drop
    finally:
        proxy.stop()


def test_demo_balances_and_cleans_up(sockdir: str) -> None:
    """With no --config the demo starts quietly, answers from every backend, and removes its
    temp dir."""
    port = free_port()
    log_path = os.path.join(sockdir, "demo.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            TWISTD + ["-n", "--pidfile=", "udsproxy", "--demo-port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(),
        )
    try:
        wait_connectable(("127.0.0.1", port), timeout=20, proc=proc)
        url = f"http://127.0.0.1:{port}/"
        # The banner's own command: six requests on one keep-alive connection.
        out = subprocess.run(
            ["curl", "-s", "-w", "connects=%{num_connects}\n"] + [url] * 6,
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
        seen = re.findall(r"hello from (app\d)", out)
        assert sorted(seen) == ["app1", "app1", "app2", "app2", "app3", "app3"], out
        assert seen[:3] == seen[3:]  # round robin, request by request
        assert out.count("connects=1") == 1 and out.count("connects=0") == 5, out
        with open(log_path) as f:
            text = f.read()
        demo_dir = re.search(r"backends on (\S+)/\{", text)
        assert demo_dir and os.path.isdir(demo_dir.group(1)), text
        assert f"curl -s {url} {url}" in text
        assert "Starting factory" not in text  # no twistd factory chatter (issue 17)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert not os.path.exists(demo_dir.group(1))


def test_demo_port_taken_says_how_to_change_it(sockdir: str) -> None:
    """When the demo port is taken, the error names the port and --demo-port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        result = run_twistd(["-n", "--pidfile=", "udsproxy", "--demo-port", str(port)])
    assert result.returncode != 0
    assert f"127.0.0.1:{port} is already in use" in result.stdout + result.stderr
    assert "--demo-port" in result.stdout + result.stderr
    time.sleep(0)  # nothing left running: twistd exited


def test_a_config_without_listener_fails_check_and_start(sockdir: str) -> None:
    """Backends only: --check exits 2 as haproxy -c, start exits 1; both name the file."""
    cfg = os.path.join(sockdir, "be.cfg")
    with open(cfg, "w") as f:
        f.write(f"backend b\n    server a {sockdir}/a.sock\n")
    check = run_twistd(["udsproxy", "--config", cfg, "--check"])
    assert check.returncode == 2
    assert f"[ALERT] {cfg}: no listener:" in check.stderr
    assert "will not start (no listener) => exit(2)." in check.stderr
    start = run_twistd(["-n", "--pidfile=", "udsproxy", "--config", cfg])
    assert start.returncode == 1
    assert f"[ALERT] {cfg}: no listener:" in start.stderr and "Traceback" not in start.stderr


def test_a_missing_config_file_is_named(sockdir: str) -> None:
    """--config on a missing file names the file and the errno, without a line number."""
    cfg = os.path.join(sockdir, "nothere.cfg")
    result = run_twistd(["-n", "--pidfile=", "udsproxy", "--config", cfg])
    assert result.returncode == 1
    assert f"[ALERT] {cfg}: cannot open configuration file: No such file" in result.stderr
    assert "[ENOENT]" in result.stderr and f"{cfg}:0" not in result.stderr


def test_address_in_use_is_one_line_without_traceback(sockdir: str) -> None:
    """Start on a taken port: one alert naming the address and errno, exit 1, pid file gone."""
    pidfile = os.path.join(sockdir, "u.pid")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        proxy = spawn_proxy(
            f"frontend f\n    bind 127.0.0.1:{port}\n    bind {sockdir}/fe.sock\n",
            sockdir,
        )
        proxy.proc.wait(20)
        # The same with a pid file: twistd's pid file is removed on this exit too.
        args = [f"--pidfile={pidfile}", "-n", "udsproxy", "--config", proxy.cfg_path]
        result = run_twistd(args)
    assert result.returncode == 1 and not os.path.exists(pidfile)
    log = proxy.log()
    assert proxy.proc.returncode == 1, log
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if f"127.0.0.1:{port}" in line]
    assert len(lines) == 1 and "[EADDRINUSE]" in lines[0], log
    assert "did not start" in log
    assert not os.path.exists(f"{sockdir}/fe.sock")  # the other listener was undone


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to become an unprivileged user")
def test_privileged_port_as_non_root_is_one_line(sockdir: str) -> None:
    """bind *:80 as nobody: one line with EACCES and what to do, no traceback, exit 1."""
    os.chmod(sockdir, 0o777)
    cfg = os.path.join(sockdir, "p.cfg")
    with open(cfg, "w") as f:
        f.write("frontend f\n    bind 127.0.0.1:80\n")
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        + TWISTD
        + ["-n", "--pidfile=", "udsproxy", "--config", cfg],
        capture_output=True,
        text=True,
        timeout=30,
        env=child_env(),
        cwd=sockdir,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out
    assert "cannot bind 127.0.0.1:80: permission denied [EACCES]" in out
    assert "CAP_NET_BIND_SERVICE" in out
