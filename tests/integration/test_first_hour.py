"""The operator's first hour (issue 17), side by side with HAProxy 2.6 where it runs here."""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from typing import List

import pytest

from tests.integration.backends import (
    connect,
    free_port,
    http_request,
    read_until_close,
    stop_process,
    wait_connectable,
)
from tests.integration.proxy import REPO_ROOT, TWISTD, StartProxy, child_env

HAPROXY = "/usr/sbin/haproxy"


def redispatch_config(sockdir: str, fe: str) -> str:
    return f"""
global
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
    retries 3
    option redispatch
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend f
    bind {fe}
    option dontlognull
    default_backend b
backend b
    server gone {sockdir}/gone.sock
    server a {sockdir}/a.sock
"""


def retries_fields(log: str) -> list:  # type: ignore[type-arg]
    """(server, retries field) of each request line."""
    return re.findall(r" f b/(\w+) \S+ \d+ .*? \d+/\d+/\d+/\d+/(\+?\d+) \d+/\d+ \"GET", log)


def test_missing_socket_file_redispatches_at_once_as_haproxy(
    sockdir, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """One of two servers has no socket file, retries 3, option redispatch: every request is
    answered by the other, logged +1 (one retry, redispatched) by udsproxy and HAProxy alike."""
    start_backend("a", f"{sockdir}/a.sock")
    fe = f"{sockdir}/fe.sock"
    proxy = start_proxy(redispatch_config(sockdir, fe), ready=f"unix@{fe}")
    for _ in range(4):
        assert http_request(f"unix@{fe}", "GET", "/").status == 200
    deadline = time.monotonic() + 5
    while len(retries_fields(proxy.log())) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    ours = retries_fields(proxy.log())
    assert ("a", "+1") in ours and set(ours) <= {("a", "+1"), ("a", "0")}, proxy.log()
    if not shutil.which(HAPROXY):
        return
    hfe = f"{sockdir}/hfe.sock"
    cfg = os.path.join(sockdir, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(redispatch_config(sockdir, hfe))
    log_path = os.path.join(sockdir, "haproxy.log")
    with open(log_path, "wb") as log:
        hap = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_connectable(f"unix@{hfe}", proc=hap)
        for _ in range(4):
            assert http_request(f"unix@{hfe}", "GET", "/").status == 200
        deadline = time.monotonic() + 5
        while len(retries_fields(open(log_path).read())) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop_process(hap)
    theirs = retries_fields(open(log_path).read())
    # The first request meets the missing file in both; which server round robin names
    # next after a redispatch differs (HAProxy's fwrr vs our smooth round robin).
    assert theirs[0] == ours[0] == ("a", "+1"), (theirs, ours)
    assert set(theirs) <= {("a", "+1"), ("a", "0")}, theirs


@pytest.mark.skipif(not shutil.which(HAPROXY), reason="HAProxy is not installed")
def test_haproxy_agrees_on_the_listener_less_config(sockdir: str) -> None:
    """The reference: haproxy -c exits 2 on a config without listener, as our --check does."""
    cfg = os.path.join(sockdir, "be.cfg")
    with open(cfg, "w") as f:
        f.write(f"backend b\n    server a {sockdir}/a.sock\n")
    result = subprocess.run([HAPROXY, "-c", "-f", cfg], capture_output=True, text=True)
    assert result.returncode == 2


def app_config(sockdir: str, extra_global: str = "") -> str:
    return f"""
global
    log stdout format raw local0
{extra_global}
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend f
    bind {sockdir}/fe.sock mode 666
    default_backend b
backend b
    server a {sockdir}/a.sock
"""


def stats_answer(admin: str, command: str) -> str:
    """The stats socket's answer to ``command``, polling while the proxy starts."""
    deadline = time.monotonic() + 10
    while True:
        try:
            with connect(f"unix@{admin}") as sock:
                sock.sendall(command.encode() + b"\n")
                answer = read_until_close(sock).decode()
            if answer:
                return answer
        except OSError:
            pass
        assert time.monotonic() < deadline, f"no answer on {admin}"
        time.sleep(0.02)


def messages(log: str) -> List[str]:
    """The log's lines without twistd's ``<time> [<system>] `` prefix."""
    return [re.sub(r"^\S+ \[[^]]*\] ", "", line) for line in log.splitlines() if line.strip()]


def test_startup_lines_are_printed_once_with_log_stdout(
    sockdir, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """twistd -n with log stdout: every start-up line once (notices and warnings too, whether
    twistd or the raw stdout target printed it), no factory chatter."""
    start_backend("a", f"{sockdir}/a.sock")
    config = app_config(sockdir).replace("    timeout server 5s\n", "")  # a warning
    config += f"    server spare {sockdir}/spare.sock uid 0\n"  # a notice, and one at run time
    proxy = start_proxy(config, ready=f"unix@{sockdir}/fe.sock")
    log = proxy.wait_log("socket file")  # the spare's check follows the listener
    for expected in ("listening on", "global maxconn", "missing timeouts", "not portable"):
        assert log.count(expected) == 1, log
    repeated = [line for line, count in Counter(messages(log)).items() if count > 1]
    assert repeated == [], log
    assert "Starting factory" not in log


def wait_file_has(path: str, needle: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = open(path).read() if os.path.exists(path) else ""
        if needle in text or time.monotonic() > deadline:
            return text
        time.sleep(0.02)


def test_daemon_mode_writes_request_logs_to_the_logfile(sockdir, start_backend) -> None:  # type: ignore[no-untyped-def]
    """twistd without -n and log stdout: request lines land in --logfile, said once at start;
    SIGUSR1 rotates that file as twistd does, and the next request lines go to the new one."""
    start_backend("a", f"{sockdir}/a.sock")
    cfg = os.path.join(sockdir, "app.cfg")
    with open(cfg, "w") as f:
        f.write(app_config(sockdir))
    pidfile, logfile = os.path.join(sockdir, "u.pid"), os.path.join(sockdir, "u.log")
    args = [f"--pidfile={pidfile}", f"--logfile={logfile}", "udsproxy", "--config", cfg]
    started = subprocess.run(
        TWISTD + args, capture_output=True, text=True, timeout=30, env=child_env(), cwd=sockdir
    )
    assert started.returncode == 0, started.stderr
    with open(pidfile) as f:
        pid = int(f.read())
    try:
        wait_connectable(f"unix@{sockdir}/fe.sock")
        assert http_request(f"unix@{sockdir}/fe.sock", "GET", "/").status == 200
        wait_file_has(logfile, '"GET / HTTP/1.1"')
        wait_file_has(logfile, "SIGUSR1 left to twistd (log rotation)")
        os.kill(pid, signal.SIGUSR1)
        rotated = wait_file_has(f"{logfile}.1", '"GET / HTTP/1.1"')
        assert http_request(f"unix@{sockdir}/fe.sock", "GET", "/?rotated").status == 200
        after = wait_file_has(logfile, '"GET /?rotated HTTP/1.1"')
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while os.path.exists(pidfile) and time.monotonic() < deadline:
            time.sleep(0.02)
    assert " f b/a " in rotated and '"GET / HTTP/1.1"' in rotated, rotated
    assert rotated.count("running as a daemon, so these log lines go to twistd's log file") == 1
    assert logfile in rotated
    assert '"GET /?rotated HTTP/1.1"' in after and '"GET / HTTP/1.1"' not in after, after
    assert not os.path.exists(pidfile)  # stopped: SIGUSR1 did not stop it, SIGTERM did


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to drop privileges")
def test_no_pid_file_warning_after_dropping_privileges(
    sockdir: str, start_proxy: StartProxy
) -> None:
    """user nobody, with the pid file, the frontend and the stats socket in a root-owned
    directory: what will stay after stop is said once at start, nothing is warned at stop,
    and the next start replaces the stale socket files."""
    os.chmod(sockdir, 0o755)
    pidfile, fe, admin = (
        os.path.join(sockdir, name) for name in ("u.pid", "fe.sock", "admin.sock")
    )
    config = app_config(
        sockdir, f"    user nobody\n    group nogroup\n    stats socket {admin} mode 600"
    )
    for _ in range(2):  # the second start replaces the stale socket files of the first
        proxy = start_proxy(config, ready=f"unix@{fe}", twistd_args=["-n", f"--pidfile={pidfile}"])
        # The socket accepts once bound, before start-up is logged: wait for the lines.
        proxy.wait_log(f"pid file {pidfile} will stay after stop")
        proxy.wait_log(f"socket files {admin}, {fe} will stay after stop: user nobody (uid 65534")
        # An answer on the stats socket: the reactor runs, our signal handlers are in place.
        assert stats_answer(admin, "show info").startswith("Name: udsproxy")
        assert proxy.stop() == 0
        out = proxy.log()
        assert "every connection has finished: exiting" in out, out
        assert "No permission to delete pid file" not in out and "Traceback" not in out, out
        assert out.count("will stay after stop") == 2, out
        assert os.path.exists(fe) and os.path.exists(admin)  # as HAProxy's stats socket


@pytest.mark.skipif(os.getuid() != 0, reason="root bypasses permissions: the proxy drops to nobody")
def test_eacces_on_a_socket_file_names_user_owner_mode_and_fix(
    sockdir, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """A server socket owned by root with mode 0644, the proxy running as nobody: the client
    gets a 503 and the log names the errno, the socket's owner, group and mode, who the proxy
    runs as, and the fix; ``--check`` (run as root) warns with the same text."""
    os.chmod(sockdir, 0o755)
    start_backend("a", f"{sockdir}/a.sock")
    os.chmod(f"{sockdir}/a.sock", 0o644)
    proxy = start_proxy(
        app_config(sockdir, "    user nobody\n    group nogroup"), ready=f"unix@{sockdir}/fe.sock"
    )
    assert http_request(f"unix@{sockdir}/fe.sock", "GET", "/").status == 503
    log = proxy.wait_log("[EACCES]")
    text = (
        f"server b/a: connect to unix@{sockdir}/a.sock: permission denied [EACCES] "
        f"(no write permission on socket file {sockdir}/a.sock (owner root, group root, "
        "mode 0644) for user nobody (uid 65534, groups nogroup); fix: add user nobody to "
        "group root and set the server's socket mode to 0660)"
    )
    assert text in log, log
    check = subprocess.run(
        [*TWISTD, "udsproxy", "--config", proxy.cfg_path, "--check"],
        capture_output=True,
        text=True,
        timeout=30,
        env=child_env(),
    )
    assert check.returncode == 0, check.stderr
    with open(proxy.cfg_path) as f:
        lineno = 1 + next(n for n, line in enumerate(f) if line.strip().startswith("server a "))
    assert f"[WARNING] {proxy.cfg_path}:{lineno}: {text}\n" in check.stdout, check.stdout


@pytest.mark.skipif(shutil.which("thin") is None, reason="thin is not installed")
def test_the_readmes_thin_workers_serve_etc_app_cfg(sockdir, start_proxy: StartProxy) -> None:  # type: ignore[no-untyped-def]
    """README's ``thin start -R config.ru --socket /tmp/app/thin.sock -s 4 -d`` makes the
    four socket files etc/app.cfg names, and the proxy serves through them (paths and port
    moved to this test's directory)."""
    from tests.integration.backends import THIN_CONFIG_RU

    app = os.path.join(sockdir, "app")
    os.mkdir(app)
    with open(os.path.join(app, "config.ru"), "w") as f:
        f.write(THIN_CONFIG_RU % {"name": "app"})
    with open(os.path.join(REPO_ROOT, "etc", "app.cfg")) as f:
        config = f.read()
    servers = re.findall(r"server \w+ unix@(\S+)", config)
    port = free_port()
    config = config.replace("/tmp/app/", f"{app}/").replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    config = config.replace("/tmp/udsproxy-app.stats", f"{sockdir}/app.stats")
    readme = ["thin", "start", "-R", "config.ru", "--socket", f"{app}/thin.sock", "-s", "4", "-d"]
    try:
        started = subprocess.run(readme, cwd=app, capture_output=True, text=True, timeout=60)
        assert started.returncode == 0, started.stdout + started.stderr
        sockets = [path.replace("/tmp/app/", f"{app}/") for path in servers]
        # thin -d returns before its daemonized workers bind: poll for the four files.
        deadline = time.monotonic() + 30
        while sorted(glob.glob(f"{app}/thin.*.sock")) != sorted(sockets):
            assert time.monotonic() < deadline, glob.glob(f"{app}/thin.*.sock")
            time.sleep(0.05)
        for path in sockets:  # daemonized: each accepts once it has started
            wait_connectable(f"unix@{path}", timeout=30)
        start_proxy(config, ready=("127.0.0.1", port))
        for _ in range(8):
            response = http_request(("127.0.0.1", port), "GET", "/")
            assert response.status == 200 and response.body == b"hello from app\n"
    finally:
        for pidfile in glob.glob(f"{app}/tmp/pids/thin.*.pid"):
            with open(pidfile) as f:
                pid = int(f.read())
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 10
            while os.path.exists(pidfile) and time.monotonic() < deadline:
                time.sleep(0.02)
