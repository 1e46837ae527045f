"""Running udsproxy for real in integration tests: ``twistd -n udsproxy`` as a child process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from tests.integration.backends import stop_process, wait_connectable

REPO_ROOT = str(Path(__file__).resolve().parents[2])
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def child_env() -> dict[str, str]:
    """The repo first on sys.path, so twistd finds this checkout's plugin and package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ProxyProc:
    """A running ``twistd -n udsproxy`` and the file its log goes to."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: str, cfg_path: str) -> None:
        self.proc = proc
        self.log_path = log_path
        self.cfg_path = cfg_path

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_log(self, needle: str, timeout: float = 5.0) -> str:
        """Poll the log until ``needle`` appears; returns the log."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            if needle in text:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not in the proxy log:\n{text}")
            if self.proc.poll() is not None:
                raise AssertionError(f"proxy exited ({self.proc.returncode}):\n{text}")
            time.sleep(0.02)

    def stop(self) -> Optional[int]:
        return stop_process(self.proc)


def spawn_proxy(
    config: str,
    workdir: str,
    ready: Optional[object] = None,
    extra_args: Optional[List[str]] = None,
    timeout: float = 15.0,
    prefix: Optional[List[str]] = None,
    env: Optional[Dict[str, str]] = None,
    pass_fds: Sequence[int] = (),
    twistd_args: Sequence[str] = ("-n", "--pidfile="),
) -> ProxyProc:
    """Write ``config`` to workdir, start twistd on it, wait until ``ready`` accepts.

    ``prefix``: a command twistd runs under (``prlimit --nofile=256 --``); ``env``: added
    to the environment; ``pass_fds``: descriptors the child inherits (socket activation);
    ``twistd_args``: twistd's own options, before ``udsproxy``."""
    cfg_path = os.path.join(workdir, f"proxy-{time.monotonic_ns()}.cfg")
    with open(cfg_path, "w") as f:
        f.write(textwrap.dedent(config))
    log_path = cfg_path[:-4] + ".log"
    argv = [*(prefix or []), *TWISTD, *twistd_args, "udsproxy", "--config", cfg_path]
    argv += extra_args or []
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**child_env(), **(env or {})},
            cwd=workdir,
            pass_fds=pass_fds,
        )
    proxy = ProxyProc(proc, log_path, cfg_path)
    if ready is not None:
        try:
            wait_connectable(ready, timeout=timeout, proc=proc)  # type: ignore[arg-type]
        except BaseException:
            stop_process(proc)
            raise AssertionError(f"proxy did not start:\n{proxy.log()}") from None
    return proxy


StartProxy = Callable[..., ProxyProc]
