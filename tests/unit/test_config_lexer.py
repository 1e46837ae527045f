"""Lexer: words, quotes, escapes, environment variables, comments and continuations."""

from __future__ import annotations

import pytest

from udsproxy.config.lexer import Line, lex, split_words
from udsproxy.errors import ConfigError


def words(text: str, env: dict[str, str] | None = None) -> list[str]:
    return split_words(text, env or {})


def test_spaces_and_tabs_separate_words() -> None:
    """Runs of spaces and tabs split words."""
    assert words("server  a\t /s.sock   check") == ["server", "a", "/s.sock", "check"]


def test_comment_ends_line_outside_quotes() -> None:
    """'#' starts a comment unless quoted or escaped."""
    assert words("log stdout local0 # trailing") == ["log", "stdout", "local0"]
    assert words('description "a # b"') == ["description", "a # b"]
    assert words("description a\\#b") == ["description", "a#b"]


def test_double_quotes_expand_env_and_escapes() -> None:
    """Double quotes keep spaces, expand $VAR, ${VAR} and ${VAR-default}, and honour escapes."""
    env = {"SOCK": "/run/app.sock", "N": "3"}
    assert words('server a "${SOCK}"', env) == ["server", "a", "/run/app.sock"]
    assert words('x "$N-x"', env) == ["x", "3-x"]
    assert words('x "${MISSING-dflt}"', env) == ["x", "dflt"]
    assert words('x "${MISSING}"', env) == ["x", ""]
    assert words('x "a\\"b"', env) == ["x", 'a"b']


def test_single_quotes_are_literal() -> None:
    """Single quotes keep '$' and backslashes as written."""
    assert words("x '$HOME \\n'", {"HOME": "/root"}) == ["x", "$HOME \\n"]


def test_escape_sequences() -> None:
    """Backslash escapes: space, hex, tab."""
    assert words("x a\\ b \\x41\\t") == ["x", "a b", "A\t"]


def test_backslash_before_other_characters_is_kept() -> None:
    """As HAProxy's parse_line: ``\\1`` and ``\\.`` keep their backslash (regexes and
    back-references reach the keyword); ``\\$`` is an escape only inside double quotes."""
    assert words("x ^a(.*)\\.b$ A\\1\\q") == ["x", "^a(.*)\\.b$", "A\\1\\q"]
    assert words('x a\\$b "a\\$b\\1\\ c"') == ["x", "a\\$b", "a$b\\1 c"]
    assert words("x a\\\"b\\'c\\#d") == ["x", "a\"b'c#d"]


def test_env_is_not_expanded_unquoted() -> None:
    """HAProxy expands variables only inside double quotes."""
    assert words("x $HOME", {"HOME": "/root"}) == ["x", "$HOME"]


@pytest.mark.parametrize(
    "text, message",
    [
        ('x "open', "unterminated double quote"),
        ("x 'open", "unterminated single quote"),
        ("x \\xZZ", "invalid hex escape"),
        ('x "${NAME"', "unterminated '\\$\\{'"),
    ],
)
def test_lexer_errors(text: str, message: str) -> None:
    """Broken quoting is an error naming what is wrong."""
    with pytest.raises(ConfigError, match=message):
        split_words(text, {})


def test_trailing_backslash_continues_the_line() -> None:
    """A trailing backslash joins physical lines into one logical line (udsproxy extension)."""
    text = "backend b\n    server a /s.sock \\\n        check \\\n        maxconn 5\nlisten x\n"
    lines = [item for item in lex(text, "f", {}) if isinstance(item, Line)]
    assert lines[1].words == ("server", "a", "/s.sock", "check", "maxconn", "5")
    assert lines[1].continued and lines[1].lineno == 2
    assert lines[2].words == ("listen", "x") and lines[2].lineno == 5


def test_escaped_backslash_does_not_continue() -> None:
    """An even number of trailing backslashes is an escaped backslash, not a continuation."""
    lines = [item for item in lex("x a\\\\\ny b\n", "f", {}) if isinstance(item, Line)]
    assert [line.words for line in lines] == [("x", "a\\"), ("y", "b")]
