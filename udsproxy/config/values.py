"""Parsers for the value types of config words: times, integers, octal modes, users, groups."""

from __future__ import annotations

import grp
import pwd
import re
from typing import Optional

from ..errors import ConfigError

_TIME = re.compile(r"(\d+)(us|ms|s|m|h|d)?")
_TIME_UNITS_MS = {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_time(word: str) -> int:
    """A HAProxy time: a number with an optional unit (us ms s m h d); no unit means ms."""
    match = _TIME.fullmatch(word)
    if not match:
        raise ConfigError(
            f"invalid time '{word}'",
            hint="write a number with an optional unit: us, ms, s, m, h or d (e.g. 5s, 500ms)",
        )
    value = int(match.group(1)) * _TIME_UNITS_MS[match.group(2) or "ms"]
    # HAProxy rounds microseconds up to the next millisecond.
    return int(value) if value == int(value) else int(value) + 1


def parse_int(word: str, what: str, lo: int = 0, hi: Optional[int] = None) -> int:
    """A decimal integer in [lo, hi]."""
    try:
        value = int(word, 10)
    except ValueError:
        raise ConfigError(f"{what} expects an integer, got '{word}'") from None
    if value < lo or (hi is not None and value > hi):
        upper = f" and {hi}" if hi is not None else ""
        rng = f"between {lo}{upper}" if hi is not None else f"at least {lo}"
        raise ConfigError(f"{what} must be {rng}, got {value}")
    return value


def parse_mode(word: str) -> int:
    """An octal permission mode such as 660 or 0600."""
    if not re.fullmatch(r"[0-7]{1,4}", word):
        raise ConfigError(f"invalid mode '{word}'", hint="write octal permission bits, e.g. 660")
    return int(word, 8)


def parse_user(word: str) -> int:
    """A user name resolved to its uid (looked up now, as HAProxy does at parse time)."""
    try:
        return pwd.getpwnam(word).pw_uid
    except KeyError:
        raise ConfigError(
            f"unknown user '{word}'", hint="create the user or give a numeric 'uid'"
        ) from None


def parse_group(word: str) -> int:
    """A group name resolved to its gid."""
    try:
        return grp.getgrnam(word).gr_gid
    except KeyError:
        raise ConfigError(
            f"unknown group '{word}'", hint="create the group or give a numeric 'gid'"
        ) from None
