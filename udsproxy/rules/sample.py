"""Sample expressions: ``fetch[(args)][,converter[(args)]]...`` compiled once into a callable.

A :class:`Sample` is evaluated as ``sample(ctx)`` and gives a value or None (nothing
fetched: a missing header, a failed conversion). Values are Python objects by type:
``str`` (strings, latin-1 decoded from the wire: bytes map one to one), ``int``, ``bool``,
an ``ipaddress`` address, or ``bytes`` (binary). Between a fetch and a converter, or two
converters, the value is cast as HAProxy casts (an int becomes its decimal string, a string
its leading integer ...); a cast that cannot exist is a config error.

The fetch and converter tables (:mod:`.fetches`, :mod:`.converters`) register their
entries here (:func:`register_fetch`, :func:`register_converter`); another concern may add
its own (``var()`` by the rules that set variables).
"""

from __future__ import annotations

import base64
import difflib
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from ..errors import ConfigError
from .context import NEED_NAMES, Need, RuleContext, Where

Value = Any  # str | int | bool | IPv4Address | IPv6Address | bytes
FetchFn = Callable[[RuleContext], Optional[Value]]
AllFn = Callable[[RuleContext], Iterable[Value]]
ConvFn = Callable[[Value], Optional[Value]]

# Sample types (HAProxy's SMP_T_*): what a fetch gives and a converter takes and gives.
STR, INT, BOOL, IP, BIN, ANY = "str", "int", "bool", "ip", "bin", "any"
TYPE_NAMES = {
    STR: "a string",
    INT: "an integer",
    BOOL: "a boolean",
    IP: "an address",
    BIN: "binary data",
    ANY: "any",
}


@dataclass(frozen=True)
class Origin:
    """Where an expression is written: for errors, relative paths and place checks."""

    where: Where
    filename: str = ""
    lineno: int = 0
    # Files read for this expression (path, what was read): part of its identity, so a
    # reload with a changed map file is a changed config.
    files: List[Tuple[str, Any]] = field(default_factory=list, compare=False)

    def error(self, message: str, hint: str = "") -> ConfigError:
        return ConfigError(message, self.filename, self.lineno, hint=hint)


@dataclass(frozen=True)
class Arg:
    """One argument of a fetch or converter: its name for messages and its type."""

    name: str
    kind: str = STR  # STR or INT


@dataclass(frozen=True)
class FetchDef:
    """A sample fetch: ``make(origin, *args)`` gives the function that fetches a value.

    ``make_all`` (when set) gives every value at once for ACLs (``hdr`` iterates over all
    occurrences there, HAProxy's ``SMP_F_NOT_LAST``); ``volatile`` fetches may give more as
    data arrives (``req.len``: tcp-request content waits on them). ``settled`` (when set)
    gives, from the same arguments, a test telling when a volatile fetch's value can no
    longer change (HAProxy's ``SMP_F_MAY_CHANGE`` cleared: ``req.payload(0,4)`` once 4
    bytes came); unset, a volatile value may change until the data is final.
    """

    name: str
    out: str
    need: Need
    make: Callable[..., FetchFn]
    args: Tuple[Arg, ...] = ()
    min_args: int = 0
    make_all: Optional[Callable[..., AllFn]] = None
    volatile: bool = False
    settled: Optional[Callable[..., Optional[Callable[[RuleContext], bool]]]] = None
    response_twin: str = ""  # the fetch this one means in http-response rules ("hdr")
    help: str = ""
    # The value as a Python expression over ``ctx`` for generated conditions (see
    # ``codegen``); "" when the fetch has arguments or needs a call.
    inline: str = ""

    def usage(self) -> str:
        return usage(self.name, self.args, self.min_args)


@dataclass(frozen=True)
class ConverterDef:
    """A converter: ``make(origin, *args)`` gives the function applied to each value."""

    name: str
    inp: str
    out: str
    make: Callable[..., ConvFn]
    args: Tuple[Arg, ...] = ()
    min_args: int = 0
    help: str = ""

    def usage(self) -> str:
        return usage(self.name, self.args, self.min_args)


def usage(name: str, args: Tuple[Arg, ...], min_args: int) -> str:
    """``name(<a>,<b>[,<c>])``: the required arguments, then the optional ones."""
    if not args:
        return name
    parts = [a.name for a in args]
    req = ",".join(parts[:min_args])
    opt = "".join(f"[,{p}]" for p in parts[min_args:])
    if not req:
        opt = opt.replace("[,", "[", 1)
    return f"{name}({req}{opt})"


FETCHES: Dict[str, FetchDef] = {}
CONVERTERS: Dict[str, ConverterDef] = {}


def register_fetch(fetch: FetchDef, *aliases: str) -> FetchDef:
    for name in (fetch.name, *aliases):
        FETCHES[name] = fetch
    return fetch


def register_converter(conv: ConverterDef, *aliases: str) -> ConverterDef:
    for name in (conv.name, *aliases):
        CONVERTERS[name] = conv
    return conv


# ----------------------------------------------------------------- casts
def str_to_int(v: str) -> Optional[int]:
    """HAProxy's c_str2int: an optional sign and the leading digits; None without digits."""
    s = v.strip()
    end = 1 if s[:1] in ("-", "+") else 0
    while end < len(s) and s[end].isdigit():
        end += 1
    digits = s[:end]
    if not digits or digits in ("-", "+"):
        return None
    return int(digits)


def _str_to_ip(v: str) -> Optional[Value]:
    try:
        return ipaddress.ip_address(v.strip())
    except ValueError:
        return None


def _ip_to_int(v: Value) -> Optional[int]:
    return int(v) if isinstance(v, ipaddress.IPv4Address) else None


def _to_str(v: Value) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, bytes):
        return v.decode("latin-1")
    return str(v)


CASTS: Dict[Tuple[str, str], Optional[ConvFn]] = {
    (BOOL, INT): int,
    (BOOL, STR): _to_str,
    (BOOL, BIN): lambda v: b"1" if v else b"0",
    (INT, BOOL): bool,
    (INT, STR): _to_str,
    (INT, BIN): lambda v: str(v).encode(),
    (INT, IP): lambda v: ipaddress.IPv4Address(v & 0xFFFFFFFF),
    (IP, STR): _to_str,
    (IP, BIN): lambda v: v.packed if not isinstance(v, str) else v.encode(),
    (IP, INT): _ip_to_int,
    (STR, INT): str_to_int,
    (STR, BOOL): lambda v: bool(str_to_int(v)),
    (STR, IP): _str_to_ip,
    (STR, BIN): lambda v: v.encode("latin-1"),
    (BIN, STR): _to_str,
    (BIN, INT): lambda v: str_to_int(v.decode("latin-1")),
    (BIN, IP): lambda v: _str_to_ip(v.decode("latin-1")),
}


def cast_fn(src: str, dst: str) -> Tuple[bool, Optional[ConvFn]]:
    """(possible, the function) casting a ``src`` value to ``dst``; None: no change."""
    if src == dst or dst == ANY or src == ANY:
        return True, None
    if (src, dst) in CASTS:
        return True, CASTS[(src, dst)]
    return False, None


def to_text(value: Optional[Value]) -> Optional[str]:
    """A sample as text (a header value, a log field, a backend name); None stays None."""
    if value is None or isinstance(value, str):
        return value
    return _to_str(value)


# ----------------------------------------------------------------- parsing
_ARG_ESCAPABLE = "\\,()'\" "


def _parse_args(text: str, pos: int, origin: Origin, name: str) -> Tuple[List[str], int]:
    """The arguments between ``text[pos] == '('`` and its ``)``; (args, position after).

    Commas separate arguments; single or double quotes protect commas, parentheses and
    spaces; a backslash escapes a quote, comma, parenthesis, space or backslash (as
    HAProxy's make_arg_list) and is kept before anything else.
    """
    args: List[str] = []
    cur: List[str] = []
    quote = ""
    i = pos + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and quote != "'" and i + 1 < len(text):
            # Escapes what would end or split an argument; any other backslash stays
            # (regex escapes such as \d and regsub's \1 reach the converter).
            nxt = text[i + 1]
            cur.append(nxt if nxt in _ARG_ESCAPABLE else c + nxt)
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
            else:
                cur.append(c)
        elif c in "'\"":
            quote = c
        elif c == ",":
            args.append("".join(cur))
            cur = []
        elif c == ")":
            args.append("".join(cur))
            return args, i + 1
        else:
            cur.append(c)
        i += 1
    raise origin.error(
        f"missing ')' after the arguments of '{name}'",
        hint="close the argument list, and quote arguments that hold ',' or ')'",
    )


def _name_at(text: str, pos: int) -> Tuple[str, int]:
    end = pos
    while end < len(text) and text[end] not in "(,":
        end += 1
    return text[pos:end].strip(), end


def _check_args(kind: str, d: Any, args: List[str], had_parens: bool, origin: Origin) -> List[Any]:
    if had_parens and args == [""] and d.min_args == 0:
        args = []  # "name()": no argument
    if len(args) < d.min_args or len(args) > len(d.args):
        want = f"{d.min_args}" if d.min_args == len(d.args) else f"{d.min_args} to {len(d.args)}"
        raise origin.error(
            f"{kind} '{d.name}' takes {want} argument{'s' if len(d.args) != 1 else ''}, "
            f"got {len(args)}",
            hint=f"usage: {d.usage()}",
        )
    out: List[Any] = []
    for spec, value in zip(d.args, args):
        if spec.kind == INT:
            try:
                out.append(int(value))
            except ValueError:
                raise origin.error(
                    f"{kind} '{d.name}': argument {spec.name} must be an integer, not '{value}'",
                    hint=f"usage: {d.usage()}",
                ) from None
        else:
            out.append(value)
    return out


def did_you_mean(word: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(names), n=1)
    return f"did you mean '{close[0]}'?" if close else ""


def check_place(fetch: FetchDef, origin: Origin) -> None:
    """A fetch used where what it reads does not exist is a config error."""
    missing = fetch.need & ~origin.where.available
    if missing:
        what = ", ".join(NEED_NAMES[n] for n in Need if n in missing)
        raise origin.error(
            f"fetch '{fetch.name}' cannot be used in {origin.where.label} rules: it needs "
            f"{what}, which is not available there",
            hint=_place_hint(fetch, origin.where),
        )


def _place_hint(fetch: FetchDef, where: Where) -> str:
    if fetch.need & Need.RESPONSE:
        return "response fetches (status, res.hdr ...) belong in http-response rules"
    if where is Where.TCP_CONNECTION:
        return (
            "tcp-request connection rules see the connection only (src, src_port, dst, "
            "dst_port); use tcp-request content or http-request rules"
        )
    if fetch.need & Need.REQUEST and where is Where.HTTP_RESPONSE:
        return "save it in http-request with set-var, then read var() in the response"
    if fetch.need & Need.REQUEST:
        return "HTTP fetches need 'mode http' (in this section or its defaults)"
    return f"use it in rules where {NEED_NAMES[fetch.need & ~where.available]} is known"


@dataclass
class Parsed:
    """A sample expression split into its fetch and converters, arguments checked."""

    fetch: FetchDef
    fetch_args: List[Any]
    converters: List[Tuple[ConverterDef, List[Any]]] = field(default_factory=list)
    name: str = ""  # the fetch name as written (an alias, or a derived ACL keyword)


def parse_expr(
    text: str,
    origin: Origin,
    lookup: Optional[Callable[[str], Optional[FetchDef]]] = None,
) -> Parsed:
    """Split and check ``fetch(args),conv(args)...``; unknown names are errors with a hint."""
    name, pos = _name_at(text, 0)
    if not name:
        raise origin.error(f"empty sample expression '{text}'", hint="e.g. path or hdr(host)")
    fetch = lookup(name) if lookup is not None else None
    if fetch is None:
        fetch = FETCHES.get(name)
    if fetch is not None and fetch.response_twin and origin.where is Where.HTTP_RESPONSE:
        fetch = FETCHES[fetch.response_twin]
    if fetch is None:
        raise origin.error(
            f"unknown fetch '{name}'",
            hint=did_you_mean(name, FETCHES) or "see section 7.3 of HAProxy's manual",
        )
    args, pos = _call_args("fetch", fetch, text, pos, origin)
    parsed = Parsed(fetch, args, name=name)
    while pos < len(text):
        if text[pos] != ",":
            raise origin.error(
                f"unexpected '{text[pos:]}' after '{text[:pos]}'",
                hint="converters follow a comma: fetch,conv1,conv2(arg)",
            )
        cname, pos = _name_at(text, pos + 1)
        conv = CONVERTERS.get(cname)
        if conv is None:
            raise origin.error(
                f"unknown converter '{cname}'",
                hint=did_you_mean(cname, CONVERTERS) or "see section 7.3.1 of HAProxy's manual",
            )
        cargs, pos = _call_args("converter", conv, text, pos, origin)
        parsed.converters.append((conv, cargs))
    return parsed


def _call_args(kind: str, d: Any, text: str, pos: int, origin: Origin) -> Tuple[List[Any], int]:
    """The checked arguments of the fetch or converter ``d`` whose name ends at ``pos``
    (none without parentheses), and the position after them."""
    args: List[str] = []
    parens = pos < len(text) and text[pos] == "("
    if parens:
        args, pos = _parse_args(text, pos, origin, d.name)
    return _check_args(kind, d, args, parens, origin), pos


def chain(parsed: Parsed, origin: Origin) -> Tuple[List[ConvFn], str]:
    """The converter functions (casts included) after the fetch, and the final type."""
    steps: List[ConvFn] = []
    current = parsed.fetch.out
    for conv, args in parsed.converters:
        ok, cast = cast_fn(current, conv.inp)
        if not ok:
            raise origin.error(
                f"converter '{conv.name}' takes {TYPE_NAMES[conv.inp]}, but gets "
                f"{TYPE_NAMES[current]}",
                hint="convert it first (e.g. ',hex' for binary data)",
            )
        if cast is not None:
            steps.append(cast)
        steps.append(conv.make(origin, *args))
        current = conv.out if conv.out != ANY else current
    return steps, current


def apply_chain(steps: Sequence[ConvFn], fetch: FetchFn) -> FetchFn:
    """One function: the fetch, then each step while the value is not None."""
    if not steps:
        return fetch
    if len(steps) == 1:
        (only,) = steps

        def one(ctx: RuleContext) -> Optional[Value]:
            v = fetch(ctx)
            return None if v is None else only(v)

        return one
    frozen = tuple(steps)

    def run(ctx: RuleContext) -> Optional[Value]:
        v = fetch(ctx)
        for step in frozen:
            if v is None:
                return None
            v = step(v)
        return v

    return run


class Sample:
    """A compiled sample expression: ``sample(ctx)`` is its value or None.

    ``text`` is the expression as written, ``type`` the type of its value, ``need`` what
    it reads, ``volatile`` whether it may change as more request data arrives. Two samples
    compare equal when written the same (for the frozen config model).
    """

    __slots__ = ("text", "type", "need", "volatile", "fn", "_key")

    def __init__(
        self, text: str, fn: FetchFn, type_: str, need: Need, volatile: bool, key: Any = None
    ) -> None:
        self.text = text
        self.type = type_
        self.need = need
        self.volatile = volatile
        self.fn = fn  # the compiled function: hot paths keep and call it directly
        self._key = key if key is not None else text

    def __call__(self, ctx: RuleContext) -> Optional[Value]:
        return self.fn(ctx)

    def text_of(self, ctx: RuleContext) -> Optional[str]:
        """The value as text (see :func:`to_text`)."""
        return to_text(self.fn(ctx))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sample) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"Sample({self.text!r})"


def compile_sample(text: str, *, where: Where, filename: str = "", lineno: int = 0) -> Sample:
    """Compile ``fetch[(args)][,conv[(args)]]...`` for evaluation at ``where``.

    Raises ConfigError (file, line, the unknown name and a did-you-mean hint) for an
    unknown fetch or converter, wrong arguments, a regex that does not compile, a map
    file that cannot be read, an impossible cast, or a fetch not available at ``where``.
    """
    origin = Origin(where, filename, lineno)
    parsed = parse_expr(text.strip(), origin)
    check_place(parsed.fetch, origin)
    fetch_fn = parsed.fetch.make(origin, *parsed.fetch_args)
    steps, out = chain(parsed, origin)
    return Sample(
        text.strip(),
        apply_chain(steps, fetch_fn),
        out,
        parsed.fetch.need,
        parsed.fetch.volatile,
        key=(text.strip(), tuple(origin.files)),
    )


def find_sample_end(text: str, start: int) -> int:
    """The index of the ``]`` closing a ``%[`` whose expression starts at ``start``, or -1.

    Quotes and parentheses protect a ``]`` inside arguments (``regsub('[0-9]+','')``).
    """
    depth = 0
    quote = ""
    i = start
    while i < len(text):
        c = text[i]
        if c == "\\" and quote != "'":
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth = max(0, depth - 1)
        elif c == "]" and depth == 0:
            return i
        i += 1
    return -1


def b64(v: bytes) -> str:
    return base64.b64encode(v).decode("ascii")
