"""HAProxy 2.6's retry / redispatch decision after a failed connect (udsproxy.retry)."""

from __future__ import annotations

import pytest

from udsproxy.config.model import Proxy
from udsproxy.config.parser import parse_text
from udsproxy.retry import GIVE_UP, REDISPATCH, RETRY, after_connect_failure


def backend(lines: str) -> Proxy:
    text = "frontend f\n    bind :80\n    default_backend b\nbackend b\n"
    text += "".join(f"    {line}\n" for line in lines.splitlines())
    text += "    server a /a.sock\n    server c /c.sock\n"
    proxy = parse_text(text, "t.cfg").proxy("b")
    assert proxy is not None
    return proxy


def actions(proxy: Proxy, **kwargs: object) -> list:  # type: ignore[type-arg]
    """The decision after each failed attempt, until one is not RETRY."""
    steps = []
    for done in range(proxy.retries + 1):
        step = after_connect_failure(proxy, done, True, 1000, **kwargs)  # type: ignore[arg-type]
        steps.append(step.action)
        if step.action is not RETRY:
            break
    return steps


def test_round_robin_with_two_active_servers_redispatches_at_once() -> None:
    """Not a hash and more than one active server: the first failure goes back to balancing."""
    proxy = backend("retries 3\noption redispatch")
    assert actions(proxy, active_servers=2) == [REDISPATCH]


def test_without_redispatch_every_retry_stays() -> None:
    """No option redispatch: retries on the same server, then give up."""
    proxy = backend("retries 3")
    assert actions(proxy, active_servers=2, permanent=True) == [RETRY] * 3 + [GIVE_UP]


@pytest.mark.parametrize("algo", ["source", "uri", "url_param id", "hdr(host)"])
def test_hash_algorithms_keep_the_server_until_the_last_retry(algo: str) -> None:
    """A hash names its server: retried, redispatched on the last retry (interval -1)."""
    proxy = backend(f"retries 3\noption redispatch\nbalance {algo}")
    assert actions(proxy, active_servers=2) == [RETRY, RETRY, REDISPATCH]


def test_a_permanent_error_redispatches_at_once_even_with_a_hash() -> None:
    """No socket file / nobody listening: no retry can cure it, so balancing runs again now."""
    proxy = backend("retries 3\noption redispatch\nbalance uri")
    assert actions(proxy, active_servers=2, permanent=True) == [REDISPATCH]


def test_a_server_not_running_redispatches_at_once() -> None:
    """HAProxy: a failed server below RUNNING (DOWN, STARTING) is left at once."""
    proxy = backend("retries 3\noption redispatch\nbalance source")
    assert actions(proxy, active_servers=1, server_running=False) == [REDISPATCH]


def test_one_active_server_follows_the_interval() -> None:
    """A single active server: redispatch every Nth retry with option redispatch N."""
    proxy = backend("retries 4\noption redispatch 2")
    assert actions(proxy, active_servers=1) == [RETRY, REDISPATCH]
