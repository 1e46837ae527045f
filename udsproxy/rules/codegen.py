"""Compiled conditions as Python functions: each ACL test inlined, fetches read once.

A condition over twenty ACLs evaluated through nested closures costs a Python call per
term, per fetch and per match (about fifty calls for a typical edge config); generated as
one function it costs none of them: the fetch is an attribute read of the context's cached
value, the match a C-level ``str.startswith``/``frozenset`` test, and ``and``/``or``/``not``
short-circuit as Python's own operators do.

Only text produced here goes into the source: every value from the config (patterns,
matchers, routes) is a constant passed in the function's namespace and named ``k<n>``,
never spelled in the source. A term that cannot be inlined (a converter chain, a fetch
with several values, a file of regexes) is a call to its own compiled test.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .context import _UNSET

UNIX = "unix"


class Emitter:
    """Collects the constants and local names of one generated function."""

    def __init__(self) -> None:
        self.namespace: Dict[str, Any] = {"U": _UNSET, "UNIX": UNIX}
        self.count = 0
        self.fetched: Dict[str, str] = {}  # fetch expression -> its local variable

    def fetch(self, expression: str) -> Tuple[str, str]:
        """(load, name): ``load`` evaluates ``expression`` the first time the function
        needs it and keeps it in the local ``name`` (read as is afterwards)."""
        name = self.fetched.get(expression)
        if name is None:
            name = self.fetched[expression] = f"f{len(self.fetched)}"
        return f"({name} if {name} is not U else ({name} := {expression}))", name

    def const(self, value: Any) -> str:
        """A name bound to ``value`` in the generated function's namespace."""
        name = f"k{self.count}"
        self.count += 1
        self.namespace[name] = value
        return name

    def var(self) -> str:
        """A fresh local variable name."""
        name = f"v{self.count}"
        self.count += 1
        return name

    def function(self, name: str, body: List[str]) -> Callable[..., Any]:
        """``def <name>(ctx): <body>`` compiled in the collected namespace."""
        prologue = [f"{local} = U" for local in self.fetched.values()]
        source = f"def {name}(ctx):\n" + "".join(f"    {line}\n" for line in prologue + body)
        code = compile(source, f"<udsproxy.rules {name}>", "exec")
        exec(code, self.namespace)  # noqa: S102 - source from fixed templates only
        fn: Callable[..., Any] = self.namespace[name]
        fn.source = source  # type: ignore[attr-defined]  # for debugging and tests
        return fn


# Inlined tests whose constants merge: the union of several tests of one value is one test.
MERGEABLE: Dict[str, Callable[[Any, Any], Any]] = {
    "{v} in {k}": frozenset.union,
    "{v}.lower() in {k}": frozenset.union,
    "{v}.startswith({k})": lambda a, b: tuple(dict.fromkeys(a + b)),
    "{v}.lower().startswith({k})": lambda a, b: tuple(dict.fromkeys(a + b)),
    "{v}.endswith({k})": lambda a, b: tuple(dict.fromkeys(a + b)),
    "{v}.lower().endswith({k})": lambda a, b: tuple(dict.fromkeys(a + b)),
}


def first_match(
    rules: Sequence[Tuple[Optional[Any], Any, bool]], default: Any
) -> Callable[[Any], Any]:
    """``fn(ctx)``: the result of the first rule whose condition holds, else ``default``.

    Each rule is ``(condition or None, result, call)``; with ``call`` the result is a
    function of the context (a backend name computed per request) and its value is given.

    Consecutive rules are guarded together by what each of their conditions implies (see
    ``Condition.necessary``) merged into few tests: ten ``use_backend`` rules over path
    prefixes, suffixes and methods cost three C-level tests for a request none of them
    matches, instead of one per term.
    """
    em = Emitter()
    body: List[str] = []
    group: List[Tuple[Any, Any, bool]] = []
    parts: List[Tuple[Tuple[str, str], Any]] = []

    def flush() -> None:
        merged: Dict[Tuple[str, str], Any] = {}
        for key, const in parts:
            merged[key] = MERGEABLE[key[1]](merged[key], const) if key in merged else const
        guarded = len(group) > 1 and len(merged) < len(group)
        indent = "    " if guarded else ""
        if guarded:
            tests = []
            for (value, template), const in merged.items():
                load, v = em.fetch(value)
                tests.append(f"({load} is not None and {template.format(v=v, k=em.const(const))})")
            body.append(f"if {' or '.join(tests)}:")
        for cond, result, call in group:
            value = em.const(result)
            body.append(f"{indent}if {cond.emit(em)}:")
            body.append(
                f"{indent}    return {value}(ctx)" if call else f"{indent}    return {value}"
            )
        group.clear()
        parts.clear()

    for cond, result, call in rules:
        implied = cond.necessary() if cond is not None else None
        if implied is None:
            flush()
            if cond is None:
                value = em.const(result)
                body.append(f"return {value}(ctx)" if call else f"return {value}")
                return em.function("first_match", body)
            group.append((cond, result, call))
            flush()
            continue
        group.append((cond, result, call))
        parts.extend(implied)
    flush()
    body.append(f"return {em.const(default)}")
    return em.function("first_match", body)
