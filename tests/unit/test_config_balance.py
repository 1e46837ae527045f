"""Parser: ``balance uri|url_param|hdr()`` options and their errors, as HAProxy checks them."""

from __future__ import annotations

import pytest

from tests.unit.test_config_parser import one_error, parse
from udsproxy.config.model import Algorithm, Balance, HashFunction, HashType, UriOptions


@pytest.mark.parametrize(
    "line, expected",
    [
        ("balance uri", Balance(algorithm=Algorithm.URI)),
        (
            "balance uri len 12 depth 2 whole path-only",
            Balance(algorithm=Algorithm.URI, uri=UriOptions(12, 2, True, True)),
        ),
        ("balance uri depth 3", Balance(algorithm=Algorithm.URI, uri=UriOptions(depth=3))),
        ("balance url_param user", Balance(algorithm=Algorithm.URL_PARAM, url_param="user")),
        (
            "balance url_param user check_post",
            Balance(algorithm=Algorithm.URL_PARAM, url_param="user", check_post=True),
        ),
        (
            "balance url_param sid check_post 64",
            Balance(
                algorithm=Algorithm.URL_PARAM,
                url_param="sid",
                check_post=True,
                check_post_max_wait=64,
            ),
        ),
        ("balance hdr(X-User)", Balance(algorithm=Algorithm.HDR, header="X-User")),
        (
            "balance hdr(host) use_domain_only",
            Balance(algorithm=Algorithm.HDR, header="host", use_domain_only=True),
        ),
        ("balance random", Balance(algorithm=Algorithm.RANDOM, draws=2)),
        ("balance random(5)", Balance(algorithm=Algorithm.RANDOM, draws=5)),
        ("balance static-rr", Balance(algorithm=Algorithm.STATIC_RR)),
    ],
)
def test_balance_lines_parse_into_typed_fields(line: str, expected: Balance) -> None:
    """Each option of a balance line lands in its own typed field, and is not announced as planned."""
    cfg = parse(f"backend b\n    mode http\n    {line}\n    server a /a.sock\n")
    be = cfg.proxy("b")
    assert be is not None
    assert be.balance == expected
    assert isinstance(be.balance.algorithm, Algorithm)
    assert not be.planned
    assert not any("not active yet" in n.text for n in cfg.notices)


def test_algorithm_is_a_word() -> None:
    """The enums compare, hash and print as the config word, so tables keyed by it still work."""
    assert Algorithm.SOURCE == "source" and str(Algorithm.URL_PARAM) == "url_param"
    assert {"consistent": 1}[HashType.CONSISTENT] == 1
    assert f"{HashFunction.DJB2}" == "djb2"
    assert Balance(algorithm=Algorithm.HDR, header="Host").spelling == "hdr(Host)"


def test_hash_type_is_kept_across_balance_lines_and_options_are_not() -> None:
    """hash-type survives a later balance line; the previous line's options do not."""
    cfg = parse(
        "defaults\n    hash-type consistent wt6 avalanche\n    balance hdr(host) use_domain_only\n"
        "backend b\n    mode http\n    balance uri whole\n"
    )
    be = cfg.proxy("b")
    assert be is not None
    assert be.balance == Balance(
        algorithm=Algorithm.URI,
        uri=UriOptions(whole=True),
        hash_type=HashType.CONSISTENT,
        hash_function=HashFunction.WT6,
        avalanche=True,
    )


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
