"""The README's keyword reference is generated from the keyword tables and kept current."""

from __future__ import annotations

from pathlib import Path

from udsproxy.config import keywords as kw
from udsproxy.config.builders import IMPLEMENTED
from udsproxy.config.docs import render, splice
from udsproxy.config.servers import SERVER_OPTIONS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_reference_is_current() -> None:
    """README.md holds exactly what the tables generate (run python -m udsproxy.config.docs --write README.md)."""
    text = README.read_text(encoding="utf-8")
    assert splice(text) == text


def test_every_keyword_is_listed_with_its_status() -> None:
    """Each keyword and option appears once with 'yes' or its planned area."""
    block = render()
    for k in kw.KEYWORDS:
        expected = "yes" if k.status == IMPLEMENTED else f"planned: {k.status}"
        assert f"| `{k.words}` |" in block and expected in block
    for name in SERVER_OPTIONS:
        assert f"| `{name}` |" in block


def test_issue_fetches_and_converters_are_listed() -> None:
    """The reference lists the fetches, converters and match methods routing rules use."""
    block = render()
    for fetch in (
        "path", "url", "query", "url_param(", "method", "req.ver", "hdr(", "req.hdr(",
        "hdr_cnt", "req.cook(", "base", "status", "res.hdr(", "src", "src_port", "dst",
        "dst_port", "fe_name", "be_name", "srv_name", "unique-id",
    ):  # fmt: skip
        assert f"| `{fetch}" in block or f"`{fetch.rstrip('(')}`" in block, fetch
    for conv in (
        "lower", "upper", "map`", "map_beg(", "map_dom(", "map_reg(", "regsub(", "field(",
        "word(", "base64", "hex", "ipmask(", "length", "bool", "not",
    ):  # fmt: skip
        assert f"`{conv}" in block, conv
    for word in ("path_beg", "hdr_dom", "|str|beg|", "METH_GET", "`tcp-request`", "`use-server`"):
        assert word in block, word
    assert "routing" not in block  # no "planned: routing" left
