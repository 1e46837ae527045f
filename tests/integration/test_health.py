"""Health checks for real: backends that die, come back, answer 500, or cannot be reached."""

from __future__ import annotations

import os
import time

import pytest

from tests.integration.backends import http_request
from tests.integration.proxy import StartProxy

CONFIG = """\
global
    log stdout format raw local0
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    retries 3
    option redispatch
frontend fe
    bind unix@{d}/fe.sock
    default_backend be
backend be
{extra}    server a {d}/a.sock check inter 200ms fastinter 100ms rise 2 fall 2
    server b {d}/b.sock check inter 200ms fastinter 100ms rise 2 fall 2
"""


def test_killed_backend_goes_down_loses_no_request_and_comes_back(
    sockdir: str, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """a killed: DOWN within fall x inter, every request still 200 (retry + redispatch); back UP."""
    a = start_backend("a", f"{sockdir}/a.sock")
    start_backend("b", f"{sockdir}/b.sock")
    fe = f"{sockdir}/fe.sock"
    proxy = start_proxy(CONFIG.format(d=sockdir, extra=""), ready=f"unix@{fe}")
    a.stop()
    killed = time.monotonic()
    statuses = []
    while True:  # at least one request, even if the check saw a die first
        statuses.append(http_request(fe, "GET", "/").status)
        if "Server be/a is DOWN" in proxy.log():
            break
        assert time.monotonic() - killed < 5, proxy.log()
    assert time.monotonic() - killed < 2 * 0.2 + 1.0  # fall x inter, plus slack
    assert statuses and set(statuses) == {200}
    seen = {http_request(fe, "GET", "/").header("x-backend") for _ in range(10)}
    assert seen == {"b"}  # a DOWN gets no requests
    log = proxy.log()
    assert (
        'Server be/a is DOWN, reason: Socket error, info: "General socket error (No such file '
        f'or directory)", check duration: 0ms, address: unix@{sockdir}/a.sock. 1 active and 0 '
        "backup servers left." in log
    )
    start_backend("a", f"{sockdir}/a.sock")
    proxy.wait_log("Server be/a is UP, reason: Layer4 check passed", timeout=5)
    seen = {http_request(fe, "GET", "/").header("x-backend") for _ in range(10)}
    assert seen == {"a", "b"}


def test_httpchk_answered_500_marks_down(
    sockdir: str, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """option httpchk on /status?code=500: DOWN with Layer7 wrong status, code 500."""
    start_backend("a", f"{sockdir}/a.sock")
    start_backend("b", f"{sockdir}/b.sock")
    extra = "    option httpchk GET /status?code=500\n    http-check expect status 200\n"
    proxy = start_proxy(CONFIG.format(d=sockdir, extra=extra), ready=f"unix@{sockdir}/fe.sock")
    proxy.wait_log("Server be/a is DOWN, reason: Layer7 wrong status, code: 500", timeout=5)
    proxy.wait_log("backend 'be' has no server available!", timeout=5)


def test_unsearchable_directory_gives_the_eacces_cause(
    sockdir: str, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """A socket in a directory the proxy cannot search: the info names it and the user.

    As root the proxy drops to ``nobody`` (root may search any directory); otherwise the
    directory's mode is 000.
    """
    hidden = os.path.join(sockdir, "hidden")
    os.mkdir(hidden)
    start_backend("a", f"{hidden}/a.sock")
    cfg = CONFIG.format(d=sockdir, extra="").replace(f"{sockdir}/a.sock", f"{hidden}/a.sock")
    if os.geteuid() == 0:
        pytest.importorskip("pwd").getpwnam("nobody")
        os.chmod(sockdir, 0o711)
        os.chmod(hidden, 0o700)
        cfg = cfg.replace("global\n", "global\n    user nobody\n", 1)
    else:
        os.chmod(hidden, 0o000)
    try:
        proxy = start_proxy(cfg, ready=f"unix@{sockdir}/fe.sock")
        log = proxy.wait_log("Server be/a is DOWN", timeout=5)
        assert f"Permission denied: search permission missing on directory {hidden} (" in log
        assert "for user nobody (uid " in log or os.geteuid() != 0
        assert "; fix: " in log  # the same advice as a connect error's
    finally:
        os.chmod(hidden, 0o700)
