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
