"""A root install started by another user: no ``Unable to write to plugin cache`` (issue 17).

Root installs udsproxy with pip, offline, into a venv of a system interpreter (a wheel
install and an editable one); user nobody, who may not write site-packages, then checks and
starts it. Twisted's plugin scan logs the warning at the start of a real run (``--check``
exits before twistd's log begins, so it alone would show nothing).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from tests.integration.backends import stop_process
from tests.integration.installs import NOBODY, build_wheelhouse, install, system_python

WARNING = "Unable to write to plugin cache"

pytestmark = [
    pytest.mark.skipif(os.getuid() != 0, reason="needs root to install as root and run as nobody"),
    pytest.mark.skipif(not shutil.which("setpriv"), reason="needs setpriv (util-linux)"),
    pytest.mark.skipif(
        sys.implementation.name == "pypy",
        reason="pip takes minutes under PyPy; packaging and Twisted's plugin scan are the "
        "same as on CPython, where this runs (it passed on PyPy 3.9 when written)",
    ),
]


@pytest.fixture(scope="module")
def install_root() -> Iterator[Path]:
    """A directory user nobody can search, removed after the module."""
    root = Path(tempfile.mkdtemp(prefix="udsproxy-install-"))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def python() -> str:
    found = system_python()
    if found is None:
        pytest.skip(
            f"no {sys.implementation.cache_tag} interpreter outside /root that user nobody can run"
        )
    return found


@pytest.fixture(scope="module")
def wheelhouse(install_root: Path) -> Path:
    reason = build_wheelhouse(install_root / "wheels")
    if reason is not None:
        pytest.skip(reason)
    return install_root / "wheels"


def nobody_env(home: Path) -> Dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "PYTHONUNBUFFERED": "1"}


def run_as_nobody(command: List[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NOBODY, *command],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=nobody_env(cwd),
    )


def start_as_nobody(command: List[str], cwd: Path) -> str:
    """Start ``command`` as nobody, wait for its READY=1 (sd_notify: serving, its signal
    handlers in place), stop it gracefully; its output."""
    out = cwd / "out.log"
    name = f"udsproxy-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(b"\0" + name.encode())
        notify.settimeout(30)
        with open(out, "wb") as log:
            proc = subprocess.Popen(
                [*NOBODY, *command],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env={**nobody_env(cwd), "NOTIFY_SOCKET": "@" + name},
            )
        try:
            ready = notify.recv(4096).decode()
        finally:
            status = stop_process(proc, timeout=20)
    text = out.read_text()
    assert ready.startswith("READY=1") and status == 0, text
    assert "every connection has finished: exiting" in text, text
    return text


@pytest.mark.timeout(300)
@pytest.mark.parametrize("editable", [False, True], ids=["wheel", "editable"])
def test_a_root_install_starts_as_another_user_without_cache_warning(
    editable: bool, python: str, wheelhouse: Path, install_root: Path
) -> None:
    """After root's pip install: the udsproxy command checks and starts as nobody with no
    cache warning (plain twistd warns); once root has run it, plain twistd is quiet too."""
    kind = "editable" if editable else "wheel"
    venv = install(python, wheelhouse, install_root / kind, editable)
    bin_dir = venv / "bin"
    run = install_root / f"{kind}-run"
    run.mkdir()
    os.chown(run, 65534, 65534)
    listener = run / "fe.sock"
    cfg = run / "app.cfg"
    cfg.write_text(
        "defaults\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
        f"frontend f\n    bind {listener}\n    default_backend b\n"
        f"backend b\n    server a {run}/a.sock\n"
    )
    (site,) = (venv / "lib").glob("*/site-packages")
    caches = [site / "twisted" / "plugins" / "dropin.cache"]
    if editable:
        caches.append(install_root / kind / "project" / "twisted" / "plugins" / "dropin.cache")
    assert not any(cache.exists() for cache in caches)  # as pip leaves them

    twistd = [str(bin_dir / "twistd"), "-n", "--pidfile=", "udsproxy", "--config", str(cfg)]
    ours = [str(bin_dir / "udsproxy"), "-n", "--config", str(cfg), "--pidfile="]
    # The row, for plain twistd: nobody may not write the caches pip left missing.
    assert WARNING in start_as_nobody(twistd, run)

    check = run_as_nobody([str(bin_dir / "udsproxy"), "--config", str(cfg), "--check"], run)
    assert check.returncode == 0 and f"Configuration file is valid: {cfg}" in check.stdout
    assert WARNING not in check.stdout + check.stderr
    assert WARNING not in start_as_nobody(ours, run)
    assert not any(cache.exists() for cache in caches)  # never scanned, so never written

    # The first-run step: root runs the command once, which writes the caches as twistd
    # would; from then on plain twistd finds them fresh, for any user.
    first = subprocess.run(
        [str(bin_dir / "udsproxy"), "--config", str(cfg), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=run,
    )
    assert first.returncode == 0, first.stderr
    assert all(cache.exists() for cache in caches)
    check = run_as_nobody([*twistd[:1], "udsproxy", "--config", str(cfg), "--check"], run)
    assert check.returncode == 0 and WARNING not in check.stdout + check.stderr
    assert WARNING not in start_as_nobody(twistd, run)
    assert WARNING not in start_as_nobody(ours, run)
