"""The converters: ``lower``, ``upper``, the ``map`` family, ``regsub``, ``field``, ``word``,
``base64``, ``hex``, ``ipmask``, ``length``, ``bool``, ``not``.

Each is made once from its arguments (a regex compiled, a map file read and indexed) and
applied to values as ``fn(value) -> value or None`` (None: the conversion failed, the
sample is missing), with HAProxy 2.6's semantics (configuration.txt §7.3.1).
"""

from __future__ import annotations

import base64
import ipaddress
import re
from typing import Any, Callable, List, Optional, Tuple

from .patterns import compile_regex, map_lookup, read_map_file
from .sample import (
    BIN,
    BOOL,
    INT,
    IP,
    STR,
    Arg,
    ConverterDef,
    ConvFn,
    Origin,
    register_converter,
    str_to_int,
)

register_converter(ConverterDef("lower", STR, STR, lambda origin: str.lower, help="lower case"))
register_converter(ConverterDef("upper", STR, STR, lambda origin: str.upper, help="upper case"))
register_converter(ConverterDef("length", STR, INT, lambda origin: len, help="the length"))
register_converter(ConverterDef("bool", INT, BOOL, lambda origin: bool, help="non-zero"))
register_converter(ConverterDef("not", INT, BOOL, lambda origin: lambda v: not v, help="zero"))
register_converter(
    ConverterDef(
        "base64",
        BIN,
        STR,
        lambda origin: lambda v: base64.b64encode(v).decode("ascii"),
        help="base64 of binary data",
    )
)
register_converter(
    ConverterDef(
        "hex", BIN, STR, lambda origin: lambda v: v.hex().upper(), help="hex digits (upper case)"
    )
)


# ----------------------------------------------------------------- maps
MAP_METHODS = ("str", "beg", "sub", "dir", "dom", "end", "reg", "int", "ip")
_MAP_INPUT = {"int": INT, "ip": IP}
_MAP_OUTPUT = {"str": STR, "int": INT, "ip": IP}


def _map_maker(method: str, out: str) -> Callable[..., ConvFn]:
    def make(origin: Origin, path: str, default: Optional[str] = None) -> ConvFn:
        entries = read_map_file(path, origin)
        lookup = map_lookup(method, entries, path, origin)
        if out == STR:
            if default is None:
                return lookup
            fallback_text = default

            def with_default(v: Any) -> Optional[str]:
                found = lookup(v)
                return fallback_text if found is None else found

            return with_default
        typed = _typed_values(entries, out, path, origin)
        fallback = _typed_default(default, out, origin)
        return lambda v: typed.get(lookup(v), fallback)

    return make


def _typed_values(entries: List[Tuple[int, str, str]], out: str, path: str, origin: Origin) -> Any:
    typed = {}
    for n, _, value in entries:
        v = _typed(value, out)
        if v is None:
            raise origin.error(
                f"map value '{value}' is not {'an integer' if out == INT else 'an address'} "
                f"({path}:{n})",
                hint="map_*_int maps to integers, map_*_ip to addresses",
            )
        typed[value] = v
    return typed


def _typed(value: str, out: str) -> Any:
    if out == INT:
        return str_to_int(value)
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _typed_default(default: Optional[str], out: str, origin: Origin) -> Any:
    if default is None:
        return None
    v = _typed(default, out)
    if v is None:
        raise origin.error(f"map default '{default}' is not of the map's output type")
    return v


for _method in MAP_METHODS:
    for _out in _MAP_OUTPUT:
        _name = f"map_{_method}" + ("" if _out == STR else f"_{_out}")
        register_converter(
            ConverterDef(
                _name,
                _MAP_INPUT.get(_method, STR),
                _MAP_OUTPUT[_out],
                _map_maker(_method, _out),
                (Arg("<map_file>"), Arg("<default_value>")),
                1,
                help=f"look the value up in a map file ({_method} match)",
            ),
            *(("map",) if _name == "map_str" else ()),
        )


# ----------------------------------------------------------------- regsub
_BACKREF = re.compile(r"\\([0-9])")


def _regsub(origin: Origin, regex: str, subst: str, flags: str = "") -> ConvFn:
    bad = set(flags) - set("gi")
    if bad:
        raise origin.error(
            f"regsub: unknown flag '{''.join(sorted(bad))}'", hint="flags: g (global), i (case)"
        )
    compiled = compile_regex(regex, "i" in flags, "", origin)
    count = 0 if "g" in flags else 1
    # HAProxy's substitution: \0..\9 are groups, everything else is literal.
    parts: List[Any] = []
    pos = 0
    for m in _BACKREF.finditer(subst):
        parts.append(subst[pos : m.start()])
        group = int(m.group(1))
        if group > compiled.groups:
            raise origin.error(
                f"regsub: \\{group} names a group the regex does not have",
                hint=f"the regex has {compiled.groups} group(s)",
            )
        parts.append(group)
        pos = m.end()
    parts.append(subst[pos:])
    if len(parts) == 1:
        literal = parts[0]

        def replace_literal(v: str) -> str:
            return compiled.sub(lambda m: literal, v, count)

        return replace_literal

    def expand(m: re.Match[str]) -> str:
        return "".join(p if isinstance(p, str) else (m.group(p) or "") for p in parts)

    return lambda v: compiled.sub(expand, v, count)


register_converter(
    ConverterDef(
        "regsub",
        STR,
        STR,
        _regsub,
        (Arg("<regex>"), Arg("<subst>"), Arg("<flags>")),
        2,
        help="sed-like substitution (flags: g, i)",
    )
)


# ----------------------------------------------------------------- field / word
def _check_index(origin: Origin, name: str, index: int, delims: str, count: int) -> None:
    if index == 0:
        raise origin.error(f"{name}: index 0 does not exist", hint="1 is the first, -1 the last")
    if not delims:
        raise origin.error(f"{name}: a delimiter is needed", hint=f"e.g. {name}(1,/)")
    if count < 0:
        raise origin.error(f"{name}: the count cannot be negative", hint="0 means all the rest")


def _split(v: str, delims: str) -> List[str]:
    if len(delims) == 1:
        return v.split(delims)
    return re.split("[" + re.escape(delims) + "]", v)


def _join_span(v: str, parts: List[str], first: int, last: int) -> str:
    """The text from field ``first`` to field ``last`` (inclusive), delimiters kept."""
    start = sum(len(p) + 1 for p in parts[:first])
    end = sum(len(p) + 1 for p in parts[: last + 1]) - 1
    return v[start:end]


def _span(index: int, count: int, n: int) -> Optional[Tuple[int, int]]:
    """The first and last of ``n`` items that ``index`` (1-based, negative from the end)
    and ``count`` (0: all the rest) select, or None."""
    if index > 0:
        first = index - 1
        if first >= n:
            return None
        return first, n - 1 if count == 0 else min(n - 1, first + count - 1)
    last = n + index
    if last < 0:
        return None
    return (0 if count == 0 else max(0, last - count + 1)), last


def _field(origin: Origin, index: int, delims: str, count: int = 1) -> ConvFn:
    _check_index(origin, "field", index, delims, count)

    def field(v: str) -> Optional[str]:
        parts = _split(v, delims)
        span = _span(index, count, len(parts))
        return None if span is None else _join_span(v, parts, span[0], span[1])

    return field


def _word(origin: Origin, index: int, delims: str, count: int = 1) -> ConvFn:
    _check_index(origin, "word", index, delims, count)

    def word(v: str) -> Optional[str]:
        parts = _split(v, delims)
        # Words are the non-empty fields; a span keeps what lies between its words.
        spots = [i for i, p in enumerate(parts) if p]
        span = _span(index, count, len(spots))
        return None if span is None else _join_span(v, parts, spots[span[0]], spots[span[1]])

    return word


FIELD_ARGS = (Arg("<index>", INT), Arg("<delimiters>"), Arg("<count>", INT))
register_converter(ConverterDef("field", STR, STR, _field, FIELD_ARGS, 2, help="the nth field"))
register_converter(ConverterDef("word", STR, STR, _word, FIELD_ARGS, 2, help="the nth word"))


# ----------------------------------------------------------------- ipmask
def _mask(text: str, bits: int, origin: Origin) -> int:
    try:
        if text.isdigit():
            n = int(text)
            if not 0 <= n <= bits:
                raise ValueError
            return ((1 << bits) - 1) ^ ((1 << (bits - n)) - 1)
        if bits == 32:
            return int(ipaddress.IPv4Address(text))
        return int(ipaddress.IPv6Address(text))
    except ValueError:
        raise origin.error(
            f"ipmask: '{text}' is not an {'IPv4' if bits == 32 else 'IPv6'} mask",
            hint="a bit count (24, 64) or a dotted/colon mask",
        ) from None


def _ipmask(origin: Origin, mask4: str, mask6: str = "") -> ConvFn:
    m4 = _mask(mask4, 32, origin)
    m6 = _mask(mask6, 128, origin) if mask6 else None

    def ipmask(v: Any) -> Any:
        if isinstance(v, ipaddress.IPv4Address):
            return ipaddress.IPv4Address(int(v) & m4)
        if isinstance(v, ipaddress.IPv6Address) and m6 is not None:
            return ipaddress.IPv6Address(int(v) & m6)
        return None

    return ipmask


register_converter(
    ConverterDef(
        "ipmask", IP, IP, _ipmask, (Arg("<mask4>"), Arg("<mask6>")), 1, help="mask an address"
    )
)
