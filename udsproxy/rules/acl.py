"""ACLs: ``acl <name> <criterion>[,conv...] [flags] [patterns...]`` compiled into tests.

An :class:`AclExpr` is one ACL line (or one anonymous ``{ ... }`` block): a sample, a
match method and its patterns, compiled into ``test(ctx) -> bool``. An :class:`Acl` is a
name and its lines (several lines with one name are ORed, and a line added after a
condition used the name still counts, as HAProxy). An :class:`AclTable` holds one proxy's
ACLs; names must be declared before a condition uses them (HAProxy: "no such ACL").

Criteria are sample fetches or their ACL declinations (``path_beg``, ``hdr_dom(host)``,
``urlp_reg(id)`` ...: the fetch plus a match method, ignored once a converter follows, as
HAProxy). Flags: ``-i`` (ignore case for the patterns after it), ``-f <file>`` (patterns
from a file), ``-m <method>``, ``-n``, ``-M``, ``-u <id>``, ``--``. The predefined ACLs
(``TRUE``, ``METH_GET``, ``LOCALHOST``, ``HTTP_1.1`` ...) exist without declaration.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import ConfigError
from .codegen import Emitter
from .context import Need, RuleContext, Where
from .patterns import (
    DEFAULT_METHOD,
    METHODS,
    Entry,
    bad_method,
    compile_matcher,
    inline_match,
    read_pattern_file,
)
from .sample import (
    BIN,
    BOOL,
    FETCHES,
    INT,
    IP,
    FetchDef,
    Origin,
    Parsed,
    apply_chain,
    chain,
    check_place,
    did_you_mean,
    parse_expr,
)

Test = Callable[[RuleContext], bool]

# Tri-state results for rules that may wait for more data (HAProxy's ACL_TEST_*):
# AND is ``&``, OR is ``|``, and NOT swaps PASS and FAIL.
FAIL, MISS, PASS = 0, 1, 3

_SUFFIXES = {
    "_beg": "beg",
    "_dir": "dir",
    "_dom": "dom",
    "_end": "end",
    "_len": "len",
    "_reg": "reg",
    "_sub": "sub",
}
# ACL declination prefix -> the fetch it declines.
_DECLINED = {
    "path": "path",
    "url": "url",
    "base": "base",
    "hdr": "req.hdr",
    "req.hdr": "req.hdr",
    "req.fhdr": "req.fhdr",
    "urlp": "url_param",
    "cook": "req.cook",
    "req.cook": "req.cook",
    "shdr": "res.hdr",
    "res.hdr": "res.hdr",
}
DERIVED: Dict[str, Tuple[str, str]] = {
    prefix + suffix: (fetch, method)
    for prefix, fetch in _DECLINED.items()
    for suffix, method in _SUFFIXES.items()
}

PREDEFINED: Dict[str, str] = {
    "TRUE": "always_true",
    "FALSE": "always_false",
    "HTTP": "req.proto_http",
    "HTTP_1.0": "req.ver 1.0",
    "HTTP_1.1": "req.ver 1.1",
    "HTTP_2.0": "req.ver 2.0",
    "HTTP_CONTENT": "req.hdr_val(content-length) gt 0",
    "HTTP_URL_ABS": "url_reg ^[^/:]*://",
    "HTTP_URL_SLASH": "url_beg /",
    "HTTP_URL_STAR": "url *",
    "LOCALHOST": "src 127.0.0.1/8 ::1",
    "METH_CONNECT": "method CONNECT",
    "METH_DELETE": "method DELETE",
    "METH_GET": "method GET HEAD",
    "METH_HEAD": "method HEAD",
    "METH_OPTIONS": "method OPTIONS",
    "METH_POST": "method POST",
    "METH_PUT": "method PUT",
    "METH_TRACE": "method TRACE",
    "REQ_CONTENT": "req.len gt 0",
}

_METHOD_TYPES = {
    "bool": (BOOL, INT, "str"),
    "ip": (IP, "str", BIN),
    "int": (BOOL, INT, IP, "str"),
}


class AclExpr:
    """One ACL line compiled: ``test(ctx)`` is True when a value matches a pattern.

    ``inline`` (value expression, match template, constant) lets a generated condition
    test it without a call (see :mod:`.codegen`); None: ``emit`` calls ``test``.
    """

    __slots__ = ("text", "test", "need", "volatile", "fetch", "key", "inline", "settled")

    def __init__(
        self,
        text: str,
        test: Test,
        need: Need,
        volatile: bool,
        fetch: FetchDef,
        key: Any,
        inline: Optional[Tuple[str, str, Any]] = None,
        settled: Optional[Test] = None,
    ) -> None:
        self.text = text
        self.test = test
        self.need = need
        self.volatile = volatile
        self.fetch = fetch
        self.key = key
        self.inline = inline
        self.settled = settled  # True when the volatile value can no longer change

    def emit(self, em: Emitter) -> str:
        """This test as a Python expression over ``ctx`` in ``em``'s function."""
        if self.inline is None:
            return f"{em.const(self.test)}(ctx)"
        value, template, const = self.inline
        load, v = em.fetch(value)
        match = template.format(v=v, k=em.const(const))
        return f"({load} is not None and {match})"

    def test3(self, ctx: RuleContext) -> int:
        """PASS/FAIL, or MISS when it failed on a value that may still change (``req.len``;
        ``req.payload(0,4)`` only while fewer than 4 bytes came): as HAProxy, decided at once
        on a value that is complete."""
        if self.test(ctx):
            return PASS
        if not self.volatile or ctx.final:
            return FAIL
        settled = self.settled
        return FAIL if settled is not None and settled(ctx) else MISS


def _split_criterion(word: str, origin: Origin) -> Tuple[str, Optional[str]]:
    """The criterion with an ACL declination replaced by its fetch, and its method."""
    end = 0
    while end < len(word) and word[end] not in "(,":
        end += 1
    name = word[:end]
    derived = DERIVED.get(name)
    if derived is None:
        return word, None
    fetch, method = derived
    return fetch + word[end:], method


def compile_acl_expr(words: List[str], origin: Origin) -> AclExpr:
    """Compile ``<criterion> [flags] [patterns]`` for evaluation at ``origin.where``."""
    if not words:
        raise origin.error("an ACL needs a criterion", hint="e.g. path_beg /api")
    criterion, derived_method = _split_criterion(words[0], origin)
    name = criterion.split("(", 1)[0].split(",", 1)[0]
    if name not in FETCHES:
        raise origin.error(
            f"unknown fetch '{name}'",
            hint=did_you_mean(name, [*FETCHES, *DERIVED]) or "see section 7.3 of HAProxy's manual",
        )
    parsed: Parsed = parse_expr(criterion, origin)
    check_place(parsed.fetch, origin)
    if parsed.converters:
        derived_method = None  # HAProxy: the last converter's type decides
    method: Optional[str] = None
    icase = False
    entries: List[Entry] = []
    i = 1
    while i < len(words) and words[i].startswith("-"):
        flag = words[i]
        if flag == "--":
            i += 1
            break
        if flag == "-i":
            icase = True
        elif flag == "-n":
            pass  # no DNS resolution: udsproxy never resolves names in patterns
        elif flag in ("-f", "-m", "-u", "-M"):
            if flag != "-M":
                if i + 1 >= len(words):
                    raise origin.error(f"'{flag}' needs a value", hint=_FLAG_HINTS[flag])
                value = words[i + 1]
                i += 1
                if flag == "-m":
                    if entries:
                        raise origin.error(
                            "'-m' must come before '-f'", hint="write -m <method> -f <file>"
                        )
                    if value not in METHODS:
                        raise bad_method(value, origin)
                    method = value
                elif flag == "-f":
                    for n, line in read_pattern_file(value, origin):
                        entries.append((line, icase, f" ({value}:{n})"))
        else:
            raise origin.error(
                f"'{flag}' is not a valid ACL flag",
                hint="flags: -i -f -m -n -M -u --; write '--' before a pattern starting with '-'",
            )
        i += 1
    entries.extend((w, icase, "") for w in words[i:])
    fetch_fn = parsed.fetch.make(origin, *parsed.fetch_args)
    steps, out = chain(parsed, origin)
    if method is None:
        method = derived_method or DEFAULT_METHOD.get(out)
        if method is None:
            raise origin.error(
                f"'{words[0]}' gives {'binary data' if out == BIN else 'values'} with no "
                "default match method",
                hint="add -m <method>, e.g. -m bin, -m sub or -m found",
            )
    allowed = _METHOD_TYPES.get(method)
    if allowed is not None and out not in allowed:
        raise origin.error(
            f"match method '{method}' cannot apply to '{words[0]}'",
            hint="match it as a string (-m str, -m sub ...) or convert it first",
        )
    match = compile_matcher(method, out, entries, origin)
    make_all = parsed.fetch.make_all
    test: Test
    if make_all is not None:
        values = make_all(origin, *parsed.fetch_args)
        convert = apply_chain(steps, lambda v: v) if steps else None

        def test_all(ctx: RuleContext) -> bool:
            for v in values(ctx):
                if convert is not None:
                    v = convert(v)
                    if v is None:
                        continue
                if match(v):
                    return True
            return False

        test = test_all
    else:
        fn = apply_chain(steps, fetch_fn)
        test = _single(fn, match)
    inline = None
    if make_all is None and not steps and parsed.fetch.inline:
        template, const = inline_match(method, out, entries, match)
        inline = (parsed.fetch.inline, template, const)
    text = " ".join(words)
    settled = parsed.fetch.settled
    return AclExpr(
        text,
        test,
        parsed.fetch.need,
        parsed.fetch.volatile,
        parsed.fetch,
        (text, tuple(origin.files)),
        inline,
        None if settled is None else settled(origin, *parsed.fetch_args),
    )


def _single(fn: Callable[[RuleContext], Any], match: Callable[[Any], bool]) -> Test:
    def test(ctx: RuleContext) -> bool:
        v = fn(ctx)
        return v is not None and match(v)

    return test


_FLAG_HINTS = {
    "-f": "-f <file>: one pattern per line",
    "-m": "-m str|beg|end|sub|dir|dom|reg|len|int|ip|bin|bool|found",
    "-u": "-u <id>",
}


class Acl:
    """A named ACL: its lines, ORed; compiled per place where a condition uses it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: List[Tuple[List[str], Origin]] = []
        self.compiled: Dict[Where, List[AclExpr]] = {}
        self.users: List[Any] = []  # conditions to rebuild when a line is added after use
        self.keys: List[Any] = []  # each line's text and the files it read

    def exprs(self, where: Where, use: Origin) -> List[AclExpr]:
        """The lines compiled for ``where``; a fetch not available there is an error at
        the line that uses the ACL."""
        found = self.compiled.get(where)
        if found is None:
            found = []
            for words, origin in self.lines:
                here = Origin(where, origin.filename, origin.lineno)
                try:
                    found.append(compile_acl_expr(words, here))
                except ConfigError as exc:
                    line = f" (line {origin.lineno})" if origin.lineno else ""
                    raise use.error(
                        f"ACL '{self.name}'{line}: {exc.message}", hint=exc.hint
                    ) from None
            self.compiled[where] = found
        return found

    @property
    def key(self) -> Any:
        """What the ACL says: its lines and the contents of the files they read."""
        return (self.name, tuple(self.keys) or tuple(" ".join(w) for w, _ in self.lines))


class AclTable:
    """One proxy's named ACLs, in declaration order."""

    def __init__(self) -> None:
        self.acls: Dict[str, Acl] = {}

    def define(self, name: str, words: List[str], filename: str = "", lineno: int = 0) -> None:
        """An ``acl`` line: checked now (every place), compiled where it is used."""
        origin = Origin(Where.ANYWHERE, filename, lineno)
        if not name or any(not (c.isalnum() or c in "-_.:") for c in name):
            raise origin.error(
                f"invalid ACL name '{name}'",
                hint="ACL names are letters, digits, '-', '_', '.' and ':'",
            )
        checked = compile_acl_expr(words, origin)
        acl = self.acls.get(name)
        if acl is None:
            acl = self.acls[name] = Acl(name)
        acl.lines.append((list(words), origin))
        acl.keys.append(checked.key)
        acl.compiled.clear()
        for user in acl.users:
            user.rebuild()

    def get(self, name: str) -> Optional[Acl]:
        acl = self.acls.get(name)
        if acl is None and name in PREDEFINED:
            acl = Acl(name)
            acl.lines.append((PREDEFINED[name].split(" "), Origin(Where.ANYWHERE)))
        return acl

    def names(self) -> List[str]:
        return list(self.acls) + list(PREDEFINED)


def unknown_acl(name: str, table: AclTable, origin: Origin) -> ConfigError:
    hint = did_you_mean(name, table.names())
    if not hint:
        fetch = name.split("(", 1)[0]
        known = list(FETCHES) + list(DERIVED)
        if fetch in known:
            hint = f"to test a fetch in place write {{ {name} <pattern> }}"
        elif did_you_mean(fetch, known):
            hint = f"no ACL by that name; as a fetch, {did_you_mean(fetch, known)}"
    return origin.error(
        f"no such ACL: '{name}'",
        hint=hint or "declare it above with 'acl <name> <criterion> <patterns>'",
    )
