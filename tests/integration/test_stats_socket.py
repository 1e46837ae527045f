"""The stats socket through real socat against a real twistd: both modes, big answers, load."""

from __future__ import annotations

import os
import subprocess
import threading
from typing import Callable, Dict, List

import pytest

from tests.integration.backends import http_request
from tests.unit.test_admin_commands import HAPROXY_26_HEADER

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "socat"], capture_output=True).returncode != 0,
    reason="socat is not installed",
)


def socat(sock: str, text: str, timeout: float = 10.0) -> str:
    """``echo text | socat stdio UNIX-CONNECT:sock``: the whole answer."""
    done = subprocess.run(
        ["socat", "stdio", f"UNIX-CONNECT:{sock}"],
        input=text.encode(),
        capture_output=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def config(sockdir: str, servers: int = 2, extra: str = "") -> str:
    lines = "\n".join(f"    server s{i} {sockdir}/b{i % 2}.sock" for i in range(servers))
    return f"""
        global
            stats socket {sockdir}/admin.sock level admin
            stats socket {sockdir}/user.sock level user
        defaults
            mode http
            timeout connect 2s
            timeout client 10s
            timeout server 10s
            retries 3
            option redispatch
        frontend web
            bind {sockdir}/web.sock
            default_backend app
        backend app
            balance roundrobin
{lines}
        {extra}
        """


def csv_rows(text: str) -> List[Dict[str, str]]:
    lines = [line for line in text.splitlines() if line]
    names = lines[0][2:-1].split(",")
    return [dict(zip(names, line[:-1].split(","))) for line in lines[1:]]


@pytest.fixture
def proxy(sockdir: str, start_backend: Callable[..., object], start_proxy: Callable[..., object]):  # type: ignore[no-untyped-def]
    start_backend("b0", f"{sockdir}/b0.sock")
    start_backend("b1", f"{sockdir}/b1.sock")
    return start_proxy(config(sockdir), ready=f"{sockdir}/admin.sock")


def test_one_shot_commands_and_csv_against_haproxy_header(sockdir: str, proxy: object) -> None:
    """echo 'show stat' | socat: HAProxy 2.6's header; ';' runs several; counters move."""
    for _ in range(3):
        assert http_request(f"{sockdir}/web.sock", "GET", "/").status == 200
    admin = f"{sockdir}/admin.sock"
    text = socat(admin, "show stat\n")
    assert text.splitlines()[0] == HAPROXY_26_HEADER
    assert text.endswith("\n\n")
    rows = {(r["pxname"], r["svname"]): r for r in csv_rows(text)}
    assert rows[("web", "FRONTEND")]["req_tot"] == "3"
    assert rows[("app", "BACKEND")]["hrsp_2xx"] == "3"
    both = socat(admin, "show backend; get weight app/s0\n")
    assert both == "# name\napp\n\n1 (initial 1)\n\n"
    assert socat(f"{sockdir}/user.sock", "set weight app/s0 0\n") == "Permission denied\n\n"


def test_prompt_mode(sockdir: str, proxy: object) -> None:
    """prompt: '> ' after each answer, the connection stays until quit."""
    out = socat(f"{sockdir}/admin.sock", "prompt\nshow cli level\nuser\nshow cli level\nquit\n")
    assert out == "> admin\n\n> \n> user\n\n> "


def test_answer_bigger_than_the_socket_buffer(
    sockdir: str, start_backend: Callable[..., object], start_proxy: Callable[..., object]
) -> None:
    """A show stat of 400 servers (~80 KB, over a socket buffer) arrives whole after a FIN."""
    start_backend("b0", f"{sockdir}/b0.sock")
    start_backend("b1", f"{sockdir}/b1.sock")
    start_proxy(config(sockdir, servers=400), ready=f"{sockdir}/admin.sock")
    text = socat(f"{sockdir}/admin.sock", "show stat")  # no newline: FIN ends the command
    assert len(text) > 70_000
    assert len(csv_rows(text)) == 402 and text.endswith("\n\n")


def test_add_and_del_server_under_load(sockdir: str, proxy: object) -> None:
    """Servers added, enabled, drained and deleted while clients run: no request fails."""
    admin = f"{sockdir}/admin.sock"
    failures: List[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                status = http_request(f"{sockdir}/web.sock", "GET", "/").status
                if status != 200:
                    failures.append(str(status))
            except Exception as exc:  # noqa: BLE001 - any failure counts
                failures.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(5):
            name = f"app/dyn{i}"
            assert socat(admin, f"add server {name} {sockdir}/b{i % 2}.sock\n") == (
                "New server registered.\n\n"
            )
            socat(admin, f"enable server {name}\n")
            socat(admin, f"set server {name} state drain\n")
            socat(admin, f"set server {name} state maint\n")
            reply = ""
            for _ in range(200):  # until its last stream ended: a readiness poll
                reply = socat(admin, f"del server {name}\n")
                if reply == "Server deleted.\n\n":
                    break
            assert reply == "Server deleted.\n\n"
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    rows = csv_rows(socat(admin, "show stat -1 4 -1\n"))
    assert [r["svname"] for r in rows] == ["s0", "s1"]
    assert os.path.exists(admin)


HEALTH_CONFIG = """
    global
        log stdout format raw local0
        stats socket {d}/admin.sock level admin
    defaults
        mode http
        log global
        timeout connect 1s
        timeout client 10s
        timeout server 10s
    frontend web
        bind {d}/web.sock
        default_backend app
    backend app
        server a {d}/b0.sock check inter 200ms rise 2 fall 2
        server b {d}/b1.sock
    """


def test_checked_server_columns_follow_its_backend_down_and_back(
    sockdir: str, start_backend: Callable[..., object], start_proxy: Callable[..., object]
) -> None:
    """show stat / show servers state through socat while a checked backend dies and returns:
    the columns HAProxy 2.6 shows (SOCKERR, its info, chkfail/chkdown, DOWN, then L4OK/UP)."""
    import time

    a = start_backend("b0", f"{sockdir}/b0.sock")
    start_backend("b1", f"{sockdir}/b1.sock")
    proxy = start_proxy(HEALTH_CONFIG.format(d=sockdir), ready=f"{sockdir}/admin.sock")
    admin = f"{sockdir}/admin.sock"

    def server(name: str) -> Dict[str, str]:
        rows = {r["svname"]: r for r in csv_rows(socat(admin, "show stat\n"))}
        return rows[name]

    def wait(name: str, status: str) -> Dict[str, str]:
        deadline = time.monotonic() + 5
        while True:
            row = server(name)
            if row["status"] == status:
                return row
            assert time.monotonic() < deadline, row
            time.sleep(0.05)

    up = wait("a", "UP")
    assert (up["check_status"], up["check_desc"], up["check_health"]) == (
        "L4OK",
        "Layer4 check passed",
        "3",
    )
    assert (up["chkfail"], up["chkdown"], up["check_rise"], up["check_fall"]) == (
        "0",
        "0",
        "2",
        "2",
    )
    assert server("b")["status"] == "no check" and server("b")["check_status"] == ""
    a.stop()  # type: ignore[attr-defined]
    down = wait("a", "DOWN")
    assert down["check_status"] == "SOCKERR" and down["check_desc"] == "Socket error"
    assert down["last_chk"] == "General socket error (No such file or directory)"
    assert (down["chkfail"], down["chkdown"], down["check_health"]) == ("2", "1", "0")
    state = socat(admin, "show servers state app\n").splitlines()[2].split()
    assert state[3] == "a" and state[5:7] == ["0", "0"] and state[10:14] == ["5", "2", "0", "6"]
    start_backend("b0", f"{sockdir}/b0.sock")
    back = wait("a", "UP")
    assert back["check_status"] == "L4OK" and back["chkdown"] == "1"
    assert int(back["downtime"]) >= 0 and back["last_chk"] == ""
    assert socat(admin, "set server app/a state maint\n") == "\n"
    assert server("a")["status"] == "MAINT" and server("a")["check_status"] == ""
    socat(admin, "set server app/a state ready\n")
    proxy.wait_log("Server app/a is UP/READY (leaving forced maintenance).", timeout=5)  # type: ignore[attr-defined]
    assert "Server app/a is going DOWN for maintenance. 1 active and 0 backup servers left." in (
        proxy.log()  # type: ignore[attr-defined]
    )
