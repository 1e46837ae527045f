"""The operator's first hour (issue 17), side by side with HAProxy 2.6 where it runs here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import pytest

from tests.integration.backends import http_request, stop_process, wait_connectable
from tests.integration.proxy import StartProxy

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
