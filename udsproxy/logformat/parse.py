"""The syntax of a log-format string: text, ``%var``, ``%{flags}var``, ``%[expr]``, ``%%``.

:func:`parse` follows HAProxy's ``parse_logformat_string`` (log.c, 2.6) token by token: a
variable name is a letter followed by letters and digits; ``%{+Q,-X}`` flags apply to the
variable after them; ``%o`` changes the flags of every variable after it; a ``%`` before
a character that cannot start a name is dropped (``%!`` is ``!``), ``%%`` is one ``%``;
with ``merge_spaces`` (log lines, unique IDs) each space is a separator and runs of them
print as one. Unknown flag names are ignored, as HAProxy does (:func:`parse` returns them
as warnings). Errors carry HAProxy's wording and a hint.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import List, Tuple, Union

from ..errors import ConfigError
from ..rules.sample import find_sample_end


class Flag(enum.IntFlag):
    """A variable's flags (HAProxy's LOG_OPT_*)."""

    NONE = 0
    MANDATORY = 1  # M: an empty value prints "-" (on in log lines)
    QUOTE = 2  # Q: quote a string
    HEXA = 4  # X: addresses, ports and some numbers in hexadecimal
    ESCAPE = 8  # E: '"', '\' and ']' get a backslash (RFC 5424 structured data)


FLAG_LETTERS = {"M": Flag.MANDATORY, "Q": Flag.QUOTE, "X": Flag.HEXA, "E": Flag.ESCAPE}


@dataclass(frozen=True)
class Text:
    """Literal text."""

    value: str


@dataclass(frozen=True)
class Sep:
    """One unescaped space where spaces merge: prints as one space after printed output."""


@dataclass(frozen=True)
class Var:
    """``%name`` with its flags; ``position`` is the offset of its ``%``."""

    name: str
    flags: Flag
    position: int


@dataclass(frozen=True)
class Expr:
    """``%[<sample expression>]`` with its flags; ``text`` is what is between the brackets."""

    text: str
    flags: Flag
    position: int


Node = Union[Text, Sep, Var, Expr]


def apply_flags(arg: str, flags: Flag, warnings: List[str]) -> Flag:
    """Flags after ``%{<arg>}``: comma-separated ``+X`` / ``-X`` (HAProxy ignores the rest)."""
    for token in arg.split(","):
        # As HAProxy: the last '+' or '-' of a token says what the letters after it do.
        cut = max(token.rfind("+"), token.rfind("-"))
        if cut < 0:
            if token:
                warnings.append(f"flag '{token}' in '%{{{arg}}}' has no '+' or '-': ignored")
            continue
        flag = FLAG_LETTERS.get(token[cut + 1 :])
        if flag is None:
            warnings.append(
                f"unknown flag '{token[cut + 1 :]}' in '%{{{arg}}}' ignored (flags: "
                "+Q quote, +X hexadecimal, +E escape, +M '-' for empty values)"
            )
        elif token[cut] == "+":
            flags |= flag
        else:
            flags &= ~flag
    return flags


def _name_end(fmt: str, i: int) -> int:
    while i < len(fmt) and fmt[i].isascii() and fmt[i].isalnum():
        i += 1
    return i


def parse(fmt: str, flags: Flag, merge_spaces: bool) -> Tuple[List[Node], List[str]]:
    """The nodes of ``fmt`` (adjacent text joined) and warnings; ConfigError if invalid.

    ``flags`` are those every variable starts with (``%o`` changes them from there on).
    """
    nodes: List[Node] = []
    warnings: List[str] = []
    text: List[str] = []

    def flush() -> None:
        if text:
            nodes.append(Text("".join(text)))
            text.clear()

    i, n = 0, len(fmt)
    while i < n:
        c = fmt[i]
        if c == " " and merge_spaces:
            flush()
            nodes.append(Sep())
            i += 1
            continue
        if c != "%":
            text.append(c)
            i += 1
            continue
        start = i
        if i + 1 >= n:
            raise ConfigError("truncated line after '%'", hint="write '%%' for a literal '%'")
        d = fmt[i + 1]
        if d == "%":
            text.append("%")
            i += 2
            continue
        if d.isascii() and (d.isdigit() or d in " \t"):
            raise ConfigError(
                f"unexpected variable name near '{d}' at position {i + 1} line : '{fmt}'",
                hint="write '%%' for a literal '%'",
            )
        if d not in "{[" and not (d.isascii() and d.isalpha()):
            i += 1  # HAProxy drops a '%' that starts no name: '%!' prints '!'
            continue
        var_flags = flags
        j = i + 1
        if d == "{":
            close = fmt.find("}", j + 1)
            if close < 0:
                raise ConfigError(
                    f"truncated line after '{fmt[j + 1 :]}'", hint="close the flags with '}'"
                )
            arg = fmt[j + 1 : close]
            j = close + 1
            if j >= n or not (fmt[j] == "[" or (fmt[j].isascii() and fmt[j].isalnum())):
                raise ConfigError(
                    f"parse argument modifier without variable name near '%{{{arg}}}'",
                    hint="write the variable right after the flags, e.g. '%{+Q}r'",
                )
            var_flags = apply_flags(arg, flags, warnings)
        flush()
        if fmt[j] == "[":
            end = find_sample_end(fmt, j + 1)
            if end < 0:
                raise ConfigError(
                    f"missing ']' after '{fmt[j + 1 :]}'", hint="end the expression with ']'"
                )
            body = fmt[j + 1 : end]
            if not body.strip():
                raise ConfigError(
                    "empty sample expression '%[]'", hint="name a fetch, e.g. '%[src]'"
                )
            nodes.append(Expr(body, var_flags, start))
            i = end + 1
            continue
        end = _name_end(fmt, j)
        name = fmt[j:end]
        if name == "o":
            flags = var_flags  # %o: the flags of every variable from here on
        else:
            nodes.append(Var(name, var_flags, start))
        i = end
    flush()
    return nodes, warnings
