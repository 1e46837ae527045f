"""The config model compares by meaning: what a reload diffs against the running config."""

from __future__ import annotations

from udsproxy.config.parser import parse_text

CONFIG = """\
global
    log stdout format raw local0
    stats socket /run/udsproxy/admin.sock mode 600 level admin
defaults
    mode http
    log global
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind unix@/run/fe.sock mode 660
    default_backend be
backend be
    balance roundrobin
    server a /run/a.sock weight 3 check inter 5s
    server b /run/b.sock weight 1
"""


def shifted(text: str) -> str:
    """The same config with blank and comment lines before every line."""
    return "".join(f"\n# comment {i}\n{line}" for i, line in enumerate(text.splitlines(True)))


def test_same_meaning_from_another_file_and_other_lines_is_equal() -> None:
    """File names and line numbers are kept for messages but do not make configs differ."""
    one = parse_text(CONFIG, "one.cfg", {})
    two = parse_text(shifted(CONFIG), "/etc/udsproxy/two.cfg", {})
    be1, be2 = one.proxy("be"), two.proxy("be")
    assert be1 is not None and be2 is not None
    assert be1.servers[0].lineno != be2.servers[0].lineno  # the lines did move
    assert (one.filename, two.filename) == ("one.cfg", "/etc/udsproxy/two.cfg")
    assert one == two
    assert hash(one) == hash(two)


def test_a_changed_server_weight_is_unequal() -> None:
    """A changed value is a different config, down to the server that changed."""
    one = parse_text(CONFIG, "a.cfg", {})
    two = parse_text(CONFIG.replace("weight 1", "weight 2"), "a.cfg", {})
    assert one != two
    be1, be2 = one.proxy("be"), two.proxy("be")
    assert be1 is not None and be2 is not None
    assert be1.servers[0] == be2.servers[0]
    assert be1.servers[1] != be2.servers[1]
