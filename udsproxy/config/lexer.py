"""The config lexer: text -> logical lines of words, with HAProxy's quoting, escapes and ``${ENV}``.

Rules (HAProxy 2.6, configuration.txt §2.2-2.3), plus one udsproxy extension:

- words are separated by spaces and tabs; ``#`` starts a comment outside quotes;
- ``\\`` escapes ``\\ ``, ``\\#``, ``\\\\``, ``\\"``, ``\\'``, ``\\r``, ``\\n``, ``\\t``,
  ``\\xNN`` outside single quotes, and ``\\$`` inside double quotes; before anything else
  the backslash is kept (``\\1``, ``\\.`` reach regexes as written);
- double quotes keep spaces and allow escapes and environment variables (``$NAME``,
  ``${NAME}``, ``${NAME-default}``); an unset variable expands to nothing, as HAProxy;
- single quotes keep everything literally;
- extension (not HAProxy): a ``\\`` that ends a physical line continues the logical line on
  the next one. Each such continuation is reported so the parser can say it is not portable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, List, Mapping, Tuple

from ..errors import ConfigError

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SIMPLE_ESCAPES = {"r": "\r", "n": "\n", "t": "\t"}
# What a backslash escapes (anywhere but in single quotes); "$" only in double quotes.
_ESCAPED = frozenset(" \\#\"'rnt")


@dataclass(frozen=True)
class Line:
    """One logical line: its words, where it starts, and the physical lines it spans."""

    words: Tuple[str, ...]
    lineno: int
    text: str
    continued: bool = False  # joined from several physical lines with a trailing backslash
    indented: bool = False  # the first physical line started with whitespace


def _expand_env(
    text: str, pos: int, env: Mapping[str, str], where: Tuple[str, int]
) -> Tuple[str, int]:
    """Expand the variable at ``text[pos] == '$'``; return (value, position after it)."""
    if pos + 1 < len(text) and text[pos + 1] == "{":
        end = text.find("}", pos + 2)
        if end < 0:
            raise ConfigError(
                "unterminated '${' in environment variable",
                where[0],
                where[1],
                hint="write ${NAME} with a closing brace",
            )
        inner = text[pos + 2 : end]
        name, sep, default = inner.partition("-")
        if not _ENV_NAME.fullmatch(name):
            raise ConfigError(
                f"invalid environment variable name '{name}'",
                where[0],
                where[1],
                hint="names are letters, digits and '_'",
            )
        value = env.get(name)
        if value is None:
            value = default if sep else ""
        return value, end + 1
    match = _ENV_NAME.match(text, pos + 1)
    if not match:
        return "$", pos + 1
    return env.get(match.group(0), ""), match.end()


def split_words(
    text: str, env: Mapping[str, str], filename: str = "", lineno: int = 0
) -> List[str]:
    """Split one logical line into words, applying quotes, escapes and variables."""
    words: List[str] = []
    current: List[str] = []
    in_word = False
    quote = ""
    i = 0
    n = len(text)
    where = (filename, lineno)
    while i < n:
        c = text[i]
        if quote == "'":
            if c == "'":
                quote = ""
            else:
                current.append(c)
            i += 1
            continue
        if c == "\\":
            if i + 1 >= n:
                raise ConfigError(
                    "a backslash at the end of the line escapes nothing", filename, lineno
                )
            nxt = text[i + 1]
            if nxt == "x":
                hexa = text[i + 2 : i + 4]
                if not re.fullmatch(r"[0-9A-Fa-f]{2}", hexa):
                    raise ConfigError(
                        f"invalid hex escape '\\x{hexa}'",
                        filename,
                        lineno,
                        hint="write two hex digits, e.g. \\x41",
                    )
                current.append(chr(int(hexa, 16)))
                i += 4
            elif nxt in _ESCAPED or (nxt == "$" and quote == '"'):
                current.append(_SIMPLE_ESCAPES.get(nxt, nxt))
                i += 2
            else:
                # Not an escape (HAProxy's parse_line): the backslash stays, so that
                # regexes (\.) and back-references (\1) reach their keyword.
                current.append(c)
                i += 1
            in_word = True
            continue
        if quote == '"':
            if c == '"':
                quote = ""
                i += 1
            elif c == "$":
                value, i = _expand_env(text, i, env, where)
                current.append(value)
            else:
                current.append(c)
                i += 1
            continue
        if c in "\"'":
            quote = c
            in_word = True
            i += 1
            continue
        if c == "#":
            break
        if c in " \t":
            if in_word:
                words.append("".join(current))
                current = []
                in_word = False
            i += 1
            continue
        current.append(c)
        in_word = True
        i += 1
    if quote:
        raise ConfigError(
            f"unterminated {'double' if quote == chr(34) else 'single'} quote",
            filename,
            lineno,
            hint="close the quote on the same line",
        )
    if in_word:
        words.append("".join(current))
    return words


def _ends_with_continuation(raw: str) -> bool:
    """True when the line ends with an unescaped backslash outside a comment."""
    stripped = raw.rstrip(" \t")
    if not stripped.endswith("\\"):
        return False
    backslashes = len(stripped) - len(stripped.rstrip("\\"))
    if backslashes % 2 == 0:
        return False
    # A backslash inside a comment is part of the comment.
    body = stripped[:-1]
    return "#" not in _strip_quoted(body)


def _strip_quoted(text: str) -> str:
    """The text with quoted parts and escaped characters removed (to look for '#')."""
    out: List[str] = []
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and quote != "'":
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        else:
            out.append(c)
        i += 1
    return "".join(out)


def lex(text: str, filename: str, env: Mapping[str, str]) -> Iterator[Line | ConfigError]:
    """Yield each non-empty logical line (or the error found in it), in file order."""
    physical = text.splitlines()
    i = 0
    while i < len(physical):
        start = i
        raw = physical[i]
        parts = [raw]
        continued = False
        while _ends_with_continuation(parts[-1]) and i + 1 < len(physical):
            parts[-1] = parts[-1].rstrip(" \t")[:-1]
            i += 1
            parts.append(physical[i])
            continued = True
        i += 1
        joined = " ".join(parts)
        try:
            words = split_words(joined, env, filename, start + 1)
        except ConfigError as exc:
            yield exc
            continue
        if words:
            yield Line(
                tuple(words),
                start + 1,
                joined.strip(),
                continued=continued,
                indented=raw[:1] in (" ", "\t"),
            )
