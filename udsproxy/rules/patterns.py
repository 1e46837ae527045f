"""Match methods (``-m str|beg|end|sub|dir|dom|reg|len|int|ip|bin|bool|found``) and patterns.

Patterns are parsed and compiled once, at config load, into one matcher per ACL line:
``matcher(value) -> bool``. Exact strings go into a set, prefixes and suffixes into the
tuple ``str.startswith`` takes, word matches (``dir``, ``dom``) and regexes into compiled
regexes, integers into ranges, addresses into (network, mask) integers — so a request
costs a set lookup or one C-level call per ACL line, whatever the number of patterns.

``-i`` applies to the patterns after it (HAProxy: to later ``-f`` files too); each pattern
keeps its own case flag. Pattern and map files are read here too: one pattern per line,
leading blanks stripped, empty lines and ``#`` comments skipped; map lines are a key, blanks,
then the value.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import ConfigError
from .sample import BOOL, INT, IP, STR, Origin, str_to_int, to_text

Matcher = Callable[[Any], bool]
Entry = Tuple[str, bool, str]  # pattern text, ignore case, where it comes from (for errors)

STRING_METHODS = ("str", "beg", "end", "sub", "dir", "dom", "reg", "len", "bin")
METHODS = ("found", "bool", "int", "ip") + STRING_METHODS
DEFAULT_METHOD = {BOOL: "bool", INT: "int", IP: "ip", STR: "str"}
INT_OPERATORS = ("eq", "ge", "gt", "le", "lt")
_DOM_DELIMS = "/?.:"
INF = float("inf")


def read_lines(path: str, origin: Origin, what: str) -> List[Tuple[int, str]]:
    """(line number, text) of each useful line of a pattern or map file."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read()
    except OSError as exc:
        raise origin.error(
            f"cannot read {what} file '{path}': {exc.strerror}",
            hint="check the path (relative paths start from the working directory)",
        ) from None
    out: List[Tuple[int, str]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.lstrip(" \t").rstrip("\r")
        if not line or line.startswith("#"):
            continue
        out.append((n, line))
    origin.files.append((path, tuple(out)))
    return out


def read_pattern_file(path: str, origin: Origin) -> List[Tuple[int, str]]:
    return read_lines(path, origin, "pattern")


def read_map_file(path: str, origin: Origin) -> List[Tuple[int, str, str]]:
    """(line number, key, value) of each entry of a map file."""
    out: List[Tuple[int, str, str]] = []
    for n, line in read_lines(path, origin, "map"):
        parts = line.split(None, 1)
        key = parts[0]
        value = parts[1].rstrip(" \t") if len(parts) > 1 else ""
        out.append((n, key, value))
    return out


# ----------------------------------------------------------------- integers
def parse_int_patterns(entries: Sequence[Entry], origin: Origin) -> List[Tuple[float, float]]:
    """Integer patterns as inclusive (low, high) ranges; ``eq|ge|gt|le|lt`` apply to every
    value after them (HAProxy keeps the operator), ``a:b``, ``a:``, ``:b`` are ranges."""
    ranges: List[Tuple[float, float]] = []
    op = "eq"
    for text, _, src in entries:
        if text in INT_OPERATORS:
            op = text
            continue
        if ":" in text:
            lo_s, _, hi_s = text.partition(":")
            lo = _int(lo_s, src, origin) if lo_s else -INF
            hi = _int(hi_s, src, origin) if hi_s else INF
            ranges.append((lo, hi))
            continue
        v = _int(text, src, origin)
        ranges.append(
            {
                "eq": (v, v),
                "ge": (v, INF),
                "gt": (v + 1, INF),
                "le": (-INF, v),
                "lt": (-INF, v - 1),
            }[op]
        )
    return ranges


def _int(text: str, src: str, origin: Origin) -> int:
    try:
        return int(text)
    except ValueError:
        raise origin.error(
            f"'{text}' is not an integer{src}",
            hint="integer patterns: 80, 1024:65535, ge 10 (operators eq ge gt le lt)",
        ) from None


def int_matcher(ranges: List[Tuple[float, float]]) -> Matcher:
    if len(ranges) == 1:
        lo, hi = ranges[0]
        return lambda v: lo <= v <= hi
    exact = frozenset(int(lo) for lo, hi in ranges if lo == hi)
    spans = tuple((lo, hi) for lo, hi in ranges if lo != hi)
    if not spans:
        return exact.__contains__

    def match(v: int) -> bool:
        if v in exact:
            return True
        for lo, hi in spans:
            if lo <= v <= hi:
                return True
        return False

    return match


# ----------------------------------------------------------------- addresses
Net = Tuple[int, int, int]  # version, network as an int, mask as an int


def parse_network(text: str, src: str, origin: Origin) -> Net:
    """An IPv4/IPv6 address or network; IPv4 also in HAProxy's short form (``10.12/8``)."""
    addr, slash, mask = text.partition("/")
    try:
        if ":" in addr:
            net6 = ipaddress.IPv6Network(text, strict=False)
            return 6, int(net6.network_address), int(net6.netmask)
        parts = addr.split(".")
        if 1 <= len(parts) < 4 and all(p.isdigit() for p in parts):
            # HAProxy's abbreviated dotted form is inet_aton's: the last number fills the
            # remaining bytes (192.168.1 is 192.168.0.1, 10.12/8 is 10.0.0.12/8).
            try:
                addr = socket.inet_ntoa(socket.inet_aton(addr))
            except OSError:
                raise ValueError(addr) from None
        if slash and "." in mask:
            net4 = ipaddress.IPv4Network(f"{addr}/{mask}", strict=False)
        else:
            net4 = ipaddress.IPv4Network(f"{addr}/{mask or 32}", strict=False)
        return 4, int(net4.network_address), int(net4.netmask)
    except ValueError:
        raise origin.error(
            f"'{text}' is not an IP address or network{src}",
            hint="e.g. 10.0.0.0/8, 192.168.1.1, ::1, 2001:db8::/32 (host names are not resolved)",
        ) from None


_V4_IN_V6 = (
    (0xFFFF << 32, (1 << 128) - (1 << 32)),  # ::ffff:a.b.c.d
    (0, (1 << 128) - (1 << 32)),  # ::a.b.c.d
)


def ip_matcher(nets: List[Net]) -> Matcher:
    """HAProxy's mixed matching: an IPv6 value matches IPv4 patterns through ::ffff:v4,
    ::v4 and 2002:v4::; an IPv4 value matches IPv6 patterns as ::ffff:v4."""
    v4 = tuple((net, mask) for ver, net, mask in nets if ver == 4)
    v6 = tuple((net, mask) for ver, net, mask in nets if ver == 6)

    def match(value: Any) -> bool:
        if isinstance(value, ipaddress.IPv4Address):
            n = int(value)
            for net, mask in v4:
                if n & mask == net:
                    return True
            if v6:
                n6 = (0xFFFF << 32) | n
                for net, mask in v6:
                    if n6 & mask == net:
                        return True
            return False
        if isinstance(value, ipaddress.IPv6Address):
            n = int(value)
            for net, mask in v6:
                if n & mask == net:
                    return True
            if v4:
                embedded = _embedded_v4(n)
                if embedded is not None:
                    for net, mask in v4:
                        if embedded & mask == net:
                            return True
            return False
        if isinstance(value, str):  # a string sample matched as an address
            try:
                return match(ipaddress.ip_address(value))
            except ValueError:
                return False
        return False

    return match


def _embedded_v4(n: int) -> Optional[int]:
    for prefix, mask in _V4_IN_V6:
        if n & mask == prefix:
            return n & 0xFFFFFFFF
    if n >> 112 == 0x2002:  # 6to4
        return (n >> 80) & 0xFFFFFFFF
    return None


# ----------------------------------------------------------------- strings
def _word_regex(patterns: List[str], delims: str, icase: bool) -> Optional[re.Pattern[str]]:
    """``-m dir``/``-m dom``: a pattern between delimiters; None when none is left (a pattern
    made only of delimiters, ``path_dir /``, matches nothing in HAProxy)."""
    words = [w for w in (p.strip(delims) for p in patterns) if w]
    if not words:
        return None
    d = re.escape(delims)
    alts = "|".join(re.escape(w) for w in words)
    return re.compile(f"(?:^|[{d}])(?:{alts})(?:[{d}]|$)", re.IGNORECASE if icase else 0)


def compile_regex(text: str, icase: bool, src: str, origin: Origin) -> re.Pattern[str]:
    try:
        return re.compile(text, re.IGNORECASE if icase else 0)
    except re.error as exc:
        raise origin.error(
            f"regex '{text}' does not compile{src}: {exc}",
            hint="check brackets and escapes; quote the regex on the config line",
        ) from None


def _split_case(entries: Sequence[Entry]) -> Tuple[List[str], List[str]]:
    cs = [t for t, i, _ in entries if not i]
    ci = [t.lower() for t, i, _ in entries if i]
    return cs, ci


def string_matcher(method: str, entries: Sequence[Entry], origin: Origin) -> Matcher:
    """A matcher over str values for the string methods (``str beg end sub dir dom reg``)."""
    cs, ci = _split_case(entries)
    if method == "str":
        s_cs, s_ci = frozenset(cs), frozenset(ci)
        if not s_ci:
            return s_cs.__contains__
        if not s_cs:
            return lambda v: v.lower() in s_ci
        return lambda v: v in s_cs or v.lower() in s_ci
    if method in ("beg", "end"):
        t_cs, t_ci = tuple(cs), tuple(ci)
        if method == "beg":
            if not t_ci:
                return lambda v: v.startswith(t_cs)
            return lambda v: v.startswith(t_cs) or v.lower().startswith(t_ci)
        if not t_ci:
            return lambda v: v.endswith(t_cs)
        return lambda v: v.endswith(t_cs) or v.lower().endswith(t_ci)
    if method == "sub":
        l_cs, l_ci = tuple(cs), tuple(ci)

        def sub(v: str) -> bool:
            for p in l_cs:
                if p in v:
                    return True
            if l_ci:
                low = v.lower()
                for p in l_ci:
                    if p in low:
                        return True
            return False

        return sub
    if method in ("dir", "dom"):
        delims = "/" if method == "dir" else _DOM_DELIMS
        regexes = [
            r
            for r in (
                _word_regex(cs, delims, False) if cs else None,
                _word_regex(ci, delims, True) if ci else None,
            )
            if r is not None
        ]
        return _any_search(regexes)
    if method == "reg":
        return _any_search([compile_regex(t, i, src, origin) for t, i, src in entries])
    raise AssertionError(method)


def _any_search(regexes: List[re.Pattern[str]]) -> Matcher:
    if len(regexes) == 1:
        search = regexes[0].search
        return lambda v: search(v) is not None
    searches = tuple(r.search for r in regexes)

    def match(v: str) -> bool:
        for search in searches:
            if search(v) is not None:
                return True
        return False

    return match


def bin_matcher(entries: Sequence[Entry], origin: Origin) -> Matcher:
    blocks = set()
    for text, _, src in entries:
        try:
            blocks.add(bytes.fromhex(text))
        except ValueError:
            raise origin.error(
                f"'{text}' is not a hex block{src}", hint="an even number of hex digits"
            ) from None
    frozen = frozenset(blocks)
    return lambda v: (v if isinstance(v, bytes) else str(v).encode("latin-1")) in frozen


# ----------------------------------------------------------------- one ACL line
def compile_matcher(
    method: str, sample_type: str, entries: Sequence[Entry], origin: Origin
) -> Matcher:
    """The matcher of one ACL line: ``method`` over values of ``sample_type``.

    Values reach it as the sample gives them; the matcher casts what the method needs
    (a string method over an integer sample compares its decimal text, as HAProxy).
    """
    if method == "found":
        return lambda v: True
    if method == "bool":
        if sample_type == STR:
            return lambda v: bool(to_int(v))
        return bool
    if method in ("int", "len"):
        match = int_matcher(parse_int_patterns(entries, origin))
        if not entries:
            return lambda v: False
        if method == "len":
            return lambda v: match(len(v if isinstance(v, (str, bytes)) else to_text(v) or ""))
        if sample_type in (INT, BOOL):
            return match

        def as_int(v: Any) -> bool:
            n = to_int(v)
            return n is not None and match(n)

        return as_int
    if method == "ip":
        return ip_matcher([parse_network(t, src, origin) for t, _, src in entries])
    if method == "bin":
        return bin_matcher(entries, origin)
    if not entries:
        return lambda v: False
    match = string_matcher(method, entries, origin)
    if sample_type == STR:
        return match

    def as_text(v: Any) -> bool:
        t = v if isinstance(v, str) else to_text(v)
        return t is not None and match(t)

    return as_text


def inline_match(
    method: str, sample_type: str, entries: Sequence[Entry], matcher: Matcher
) -> Tuple[str, Any]:
    """The match as an expression template over ``{v}`` (a value, not None) and ``{k}``
    (its constant), for generated conditions: the common string methods are C-level
    calls on a set or a tuple; anything else calls the compiled matcher."""
    if sample_type == STR and entries and method in ("str", "beg", "end"):
        cs, ci = _split_case(entries)
        if not (cs and ci):
            value = "{v}.lower()" if ci else "{v}"
            pats = ci or cs
            if method == "str":
                return value + " in {k}", frozenset(pats)
            op = "startswith" if method == "beg" else "endswith"
            return f"{value}.{op}({{k}})", tuple(pats)
    return "{k}({v})", matcher


def to_int(v: Any) -> Optional[int]:
    if isinstance(v, int):
        return int(v)
    if isinstance(v, (str, bytes)):
        return str_to_int(v if isinstance(v, str) else v.decode("latin-1"))
    return None


# ----------------------------------------------------------------- maps
MapLookup = Callable[[Any], Optional[str]]


def map_lookup(
    method: str, entries: List[Tuple[int, str, str]], path: str, origin: Origin
) -> MapLookup:
    """``key -> value`` for a map file matched with ``method`` (None: no entry matches).

    As HAProxy: exact strings and addresses are trees (an exact key, the longest prefix /
    most specific network wins); other methods keep the file order (the first match wins).
    """

    def src(n: int) -> str:
        return f" ({path}:{n})"

    if method == "str":
        table: Dict[str, str] = {}
        for _, key, value in entries:
            table.setdefault(key, value)
        return table.get
    if method == "beg":
        # Longest prefix first, then file order among equal lengths.
        ordered = sorted(enumerate(entries), key=lambda e: (-len(e[1][1]), e[0]))
        pairs = tuple((key, value) for _, (_, key, value) in ordered)

        def beg(v: str) -> Optional[str]:
            for key, value in pairs:
                if v.startswith(key):
                    return value
            return None

        return beg
    if method == "int":
        ranged = [
            (parse_int_patterns([(key, False, src(n))], origin)[0], value)
            for n, key, value in entries
        ]

        def by_int(v: Any) -> Optional[str]:
            n = to_int(v)
            if n is None:
                return None
            for (lo, hi), value in ranged:
                if lo <= n <= hi:
                    return value
            return None

        return by_int
    if method == "ip":
        nets = [(parse_network(key, src(n), origin), value) for n, key, value in entries]
        nets.sort(key=lambda e: -bin(e[0][2]).count("1"))  # most specific first
        matchers = [(ip_matcher([net]), value) for net, value in nets]

        def by_ip(v: Any) -> Optional[str]:
            for match, value in matchers:
                if match(v):
                    return value
            return None

        return by_ip
    # sub, end, dir, dom, reg: the first entry of the file that matches.
    tests = [
        (string_matcher(method, [(key, False, src(n))], origin), value) for n, key, value in entries
    ]

    def first(v: str) -> Optional[str]:
        for match, value in tests:
            if match(v):
                return value
        return None

    return first


def bad_method(method: str, origin: Origin) -> ConfigError:
    import difflib

    close = difflib.get_close_matches(method, METHODS, n=1)
    return origin.error(
        f"unknown match method '{method}'",
        hint=f"did you mean '{close[0]}'?" if close else "known: " + ", ".join(METHODS),
    )
