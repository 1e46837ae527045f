"""A string enum that prints as its value on every Python we support (3.9 to 3.12+).

``class X(str, enum.Enum)`` formats as ``X.A`` on CPython 3.11 but as its value on 3.9
(PyPy); members of our enums end up in log lines and stats output, so they must print
the same everywhere. Members compare equal to their value (``X.A == "a"``) and hash as
it, so a dict keyed by the word finds the member (``enum.Enum`` hashes by member name).
"""

from __future__ import annotations

import enum


class StrEnum(str, enum.Enum):
    """Members are strings: ``str()``, ``format()`` and f-strings give the value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    def __hash__(self) -> int:
        return hash(self.value)
