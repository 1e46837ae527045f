"""Parser: ``balance uri|url_param|hdr()`` options and their errors, as HAProxy checks them."""

from __future__ import annotations

import pytest

from tests.unit.test_config_parser import one_error, parse


@pytest.mark.parametrize(
    "line, algorithm, args",
    [
        ("balance uri", "uri", ()),
        (
            "balance uri len 12 depth 2 whole path-only",
            "uri",
            ("len", "12", "depth", "2", "whole", "path-only"),
        ),
        ("balance url_param user", "url_param", ("user",)),
        ("balance url_param user check_post", "url_param", ("user", "check_post")),
        ("balance hdr(X-User)", "hdr(X-User)", ()),
        ("balance hdr(host) use_domain_only", "hdr(host)", ("use_domain_only",)),
    ],
)
def test_http_hash_algorithms_parse_and_are_active(
    line: str, algorithm: str, args: tuple[str, ...]
) -> None:
    """uri/url_param/hdr() lines keep their options and are no longer announced as planned."""
    cfg = parse(f"backend b\n    mode http\n    {line}\n    server a /a.sock\n")
    be = cfg.proxy("b")
    assert be is not None
    assert (be.balance.algorithm, be.balance.args) == (algorithm, args)
    assert not be.planned
    assert not any("not active yet" in n.text for n in cfg.notices)


def test_check_post_max_wait_is_accepted_and_ignored() -> None:
    """The legacy ``check_post <max_wait>`` parses, with a notice that it is ignored."""
    cfg = parse("backend b\n    mode http\n    balance url_param sid check_post 64\n")
    assert any("ignored" in n.text and n.lineno == 3 for n in cfg.notices)


def test_http_hash_in_tcp_mode_is_noticed() -> None:
    """As HAProxy warns, an L7 hash in a TCP backend falls back to round robin."""
    cfg = parse("backend b\n    mode tcp\n    balance uri\n    server a /a.sock\n")
    assert any("needs 'mode http'" in n.text and "round robin" in n.text for n in cfg.notices)


@pytest.mark.parametrize(
    "line, message, hint",
    [
        ("balance uri len 0", "must be at least 1", ""),
        ("balance uri depth -2", "must be at least 1", ""),
        ("balance uri len x", "expects an integer", ""),
        ("balance uri depth", "expects a positive integer", "depth <n>"),
        ("balance uri wole", "unknown 'balance uri' option 'wole'", "did you mean 'whole'"),
        ("balance uri query", "unknown 'balance uri' option", "usage: balance uri [len <n>]"),
        ("balance url_param", "missing argument", "url_param <param>"),
        ("balance url_param id check_pots", "only accepts 'check_post'", "usage"),
        ("balance url_param id check_post x", "expects an integer", ""),
        ("balance hdr()", "requires a header field name", "hdr(<name>)"),
        ("balance hdr(a b)", "requires a header field name", ""),
        ("balance hdr(x:y)", "is not a header field name", ""),
        ("balance hdr(host) domain_only", "only accepts 'use_domain_only'", "usage"),
        ("balance hdr(host) use_domain_only more", "unexpected word 'more'", "usage"),
    ],
)
def test_http_hash_option_errors(line: str, message: str, hint: str) -> None:
    """Bad uri/url_param/hdr() options are errors on their line, with a hint."""
    err = one_error(f"backend b\n    {line}\n")
    assert (err.lineno, err.keyword) == (2, "balance")
    assert message in err.message
    assert hint in err.hint
