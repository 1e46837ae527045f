"""Integration fixtures: a short socket directory and factories for backend processes."""

from __future__ import annotations

import shutil
import tempfile
from typing import Callable, Iterator, List, Optional, Sequence, Union

import pytest

from tests.integration.backends import (
    BackendProc,
    ThinProc,
    spawn_backend,
    spawn_thin,
    thin_path,
)
from tests.integration.proxy import ProxyProc, StartProxy, spawn_proxy

StartBackend = Callable[..., BackendProc]
StartThin = Callable[[str, str], ThinProc]


@pytest.fixture
def sockdir() -> Iterator[str]:
    """A fresh directory directly under /tmp: socket paths must stay under 108 bytes."""
    path = tempfile.mkdtemp(prefix="udsp-", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def start_backend(sockdir: str) -> Iterator[StartBackend]:
    """Factory: ``start_backend(name, path_or_paths, mode="http") -> BackendProc``.

    Every process started is terminated and reaped at teardown, pass or fail.
    """
    procs: List[BackendProc] = []

    def start(
        name: str, path: Union[str, Sequence[str]], mode: str = "http", timeout: float = 15.0
    ) -> BackendProc:
        backend = spawn_backend(name, path, mode, log_dir=sockdir, timeout=timeout)
        procs.append(backend)
        return backend

    try:
        yield start
    finally:
        for backend in reversed(procs):
            backend.stop()


@pytest.fixture
def thin_backend(sockdir: str) -> Iterator[StartThin]:
    """Factory: ``thin_backend(name, path) -> ThinProc``; skips when thin is not installed."""
    if thin_path() is None:
        pytest.skip("thin is not installed")
    procs: List[ThinProc] = []

    def start(name: str, path: str) -> ThinProc:
        server = spawn_thin(name, path, sockdir)
        procs.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(procs):
            server.stop()


@pytest.fixture
def start_proxy(sockdir: str) -> Iterator[StartProxy]:
    """Factory: ``start_proxy(config_text, ready=address) -> ProxyProc``; stopped at teardown."""
    procs: List[ProxyProc] = []

    def start(config: str, ready: Optional[object] = None, **kwargs: object) -> ProxyProc:
        proxy = spawn_proxy(config, sockdir, ready, **kwargs)  # type: ignore[arg-type]
        procs.append(proxy)
        return proxy

    try:
        yield start
    finally:
        for proxy in reversed(procs):
            proxy.stop()
