"""Helpers shared by the net integration tests: short socket dirs, polling, forked checks.

Not a conftest.py on purpose: tests import what they need explicitly.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import traceback
from typing import Any, Callable, Iterator, List, Optional

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import Factory, Protocol

NOBODY = 65534


def make_sockdir() -> Iterator[str]:
    """A short directory under /tmp (pytest's tmp_path can exceed the sun_path limit)."""
    path = tempfile.mkdtemp(prefix="udsp-", dir="/tmp")
    os.chmod(path, 0o755)  # forked non-root checks must be able to enter it
    try:
        yield path
    finally:
        for root, dirs, _ in os.walk(path):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
        shutil.rmtree(path, ignore_errors=True)


class Recorder(Protocol):
    """Records its lifecycle and received bytes; optionally greets the peer."""

    greeting = b""

    def __init__(self) -> None:
        self.made = False
        self.lost = False
        self.data = b""

    def connectionMade(self) -> None:
        self.made = True
        if self.greeting:
            self.transport.write(self.greeting)  # type: ignore[attr-defined]

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Any = None) -> None:
        self.lost = True


class RecordingFactory(Factory):
    """A factory that keeps every protocol it built."""

    protocol = Recorder

    def __init__(self, greeting: bytes = b"") -> None:
        self.built: List[Recorder] = []
        self.greeting = greeting
        self.starts = 0
        self.stops = 0

    def startFactory(self) -> None:
        self.starts += 1

    def stopFactory(self) -> None:
        self.stops += 1

    def buildProtocol(self, addr: Any) -> Recorder:
        proto = Recorder()
        proto.greeting = self.greeting
        proto.factory = self
        self.built.append(proto)
        return proto


@inlineCallbacks
def wait_for(predicate: Callable[[], Any], timeout: float = 2.0) -> Iterator[Deferred]:
    """Poll ``predicate`` while the reactor runs; fail after ``timeout`` seconds."""
    deadline = reactor.seconds() + timeout  # type: ignore[attr-defined]
    while not predicate():
        if reactor.seconds() > deadline:  # type: ignore[attr-defined]
            raise AssertionError(f"condition not met within {timeout}s")
        yield task.deferLater(reactor, 0.005, lambda: None)


def spin(seconds: float) -> Deferred:
    """Let the reactor run for a while (to show that something does *not* happen)."""
    return task.deferLater(reactor, seconds, lambda: None)


def run_forked(func: Callable[[], Any], as_nobody: bool = True) -> Any:
    """Run ``func`` in a forked child (as uid/gid 65534 when we are root); return its result.

    Root bypasses file permission checks, so EACCES can only be observed as another user;
    the child drops privileges and sends back a JSON-able result (or the exception text).
    """
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            os.close(rfd)
            if as_nobody and os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            result = {"ok": func()}
        except BaseException as e:
            result = {"error": f"{type(e).__name__}: {e}", "tb": traceback.format_exc()}
            code = 1
        try:
            os.write(wfd, json.dumps(result).encode())
        finally:
            os._exit(code)
    os.close(wfd)
    chunks = []
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(rfd)
    os.waitpid(pid, 0)
    result = json.loads(b"".join(chunks).decode() or "{}")
    if "ok" not in result:
        raise AssertionError(f"child failed: {result}")
    return result["ok"]


def open_fds() -> Optional[set]:
    """This process's open descriptors (Linux), to check that nothing leaked."""
    try:
        return set(os.listdir("/proc/self/fd"))
    except OSError:
        return None
