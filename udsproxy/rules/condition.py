"""Conditions: ``if|unless [!]acl [!]acl ... [|| [!]acl ...]`` compiled into one function.

HAProxy's disjunctive form (configuration.txt §7.2): terms side by side are ANDed, ``||``
(or ``or``) separates alternatives, ``!`` negates one term (``!!`` cancels), and a term is
a named ACL or an anonymous ``{ <criterion> [flags] [patterns] }``. Evaluation stops at
the first term that decides (a request that fails the first term of an AND never fetches
what the second one reads). ``unless`` negates the whole.

:meth:`Condition.__call__` is the boolean used by every rule; :meth:`Condition.eval3` is
the tri-state one of ``tcp-request content`` (a term over data that may still grow answers
MISS while more can come, and the rule waits).
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

from .acl import FAIL, MISS, PASS, Acl, AclExpr, AclTable, compile_acl_expr, unknown_acl
from .codegen import MERGEABLE, Emitter
from .context import Need, RuleContext, Where
from .sample import Origin

Test = Callable[[RuleContext], bool]
Term = Tuple[bool, Any]  # (negated, Acl | AclExpr)


class Condition:
    """A compiled ``if``/``unless`` condition: ``cond(ctx) -> bool``.

    ``fn`` is the compiled function itself (hot paths keep it); ``text`` the condition as
    written; ``need`` what its fetches read; ``volatile`` whether it reads data that may
    still grow. Conditions compare equal when written the same over the same ACL lines.
    """

    __slots__ = ("text", "unless", "suites", "where", "use", "fn", "need", "volatile", "key")

    def __init__(
        self, text: str, unless: bool, suites: List[List[Term]], where: Where, use: Origin
    ) -> None:
        self.text = text
        self.unless = unless
        self.suites = suites
        self.where = where
        self.use = use
        self.fn: Test = _never
        self.need = Need(0)
        self.volatile = False
        self.key: Any = None
        self.rebuild()

    def __call__(self, ctx: RuleContext) -> bool:
        return self.fn(ctx)

    def exprs(self, term: Term) -> List[AclExpr]:
        _, item = term
        return item.exprs(self.where, self.use) if isinstance(item, Acl) else [item]

    def rebuild(self) -> None:
        """(Re)compile from the terms: also when a named ACL gains a line after this use."""
        need = Need(0)
        volatile = False
        for suite in self.suites:
            for term in suite:
                for e in self.exprs(term):
                    need |= e.need
                    volatile = volatile or e.volatile
        em = Emitter()
        self.fn = em.function("condition", [f"return {self.emit(em)}"])
        self.need = need
        self.volatile = volatile
        self.key = (
            self.unless,
            tuple(tuple((neg, item.key) for neg, item in suite) for suite in self.suites),
        )

    def emit(self, em: Emitter) -> str:
        """The condition as one Python expression over ``ctx`` (``unless`` applied)."""
        alternatives = []
        for suite in self.suites:
            terms = []
            for term in suite:
                exprs = [e.emit(em) for e in self.exprs(term)]
                test = exprs[0] if len(exprs) == 1 else "(" + " or ".join(exprs) + ")"
                terms.append(f"(not {test})" if term[0] else test)
            alternatives.append("(" + " and ".join(terms) + ")")
        expr = " or ".join(alternatives)
        return f"(not ({expr}))" if self.unless else f"({expr})"

    def necessary(self) -> Optional[List[Tuple[Tuple[str, str], Any]]]:
        """Tests that hold whenever this condition holds (their OR is implied by it), as
        mergeable ``((value, template), constant)`` parts; None when there are none.

        Each alternative is implied by any of its plain terms; the first one whose lines
        are all inlined set/prefix/suffix tests stands for it (see ``codegen.first_match``).
        """
        if self.unless:
            return None
        parts: List[Tuple[Tuple[str, str], Any]] = []
        for suite in self.suites:
            for negated, _ in suite:
                if negated:
                    continue
                exprs = self.exprs((negated, _))
                found = [e.inline for e in exprs]
                if all(i is not None and i[1] in MERGEABLE for i in found):
                    parts.extend(((i[0], i[1]), i[2]) for i in found if i is not None)
                    break
            else:
                return None  # this alternative implies nothing mergeable
        return parts

    def eval3(self, ctx: RuleContext) -> int:
        """PASS, FAIL or MISS (needs more data); ``unless`` applied (MISS stays MISS)."""
        if not self.volatile:
            return PASS if self.fn(ctx) else FAIL
        result = FAIL
        for suite in self.suites:
            suite_res = PASS
            for term in suite:
                term_res = FAIL
                for e in self.exprs(term):
                    term_res |= e.test3(ctx)
                    if term_res == PASS:
                        break
                if term[0]:
                    term_res = _neg3(term_res)
                suite_res &= term_res
                if suite_res == FAIL:
                    break
            result |= suite_res
            if result == PASS:
                break
        return _neg3(result) if self.unless else result

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Condition) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"


def _neg3(result: int) -> int:
    return {PASS: FAIL, FAIL: PASS}.get(result, MISS)


def _never(ctx: RuleContext) -> bool:
    return False


def compile_condition(
    words: Sequence[str],
    acls: Optional[AclTable] = None,
    *,
    where: Where,
    filename: str = "",
    lineno: int = 0,
) -> Condition:
    """Compile ``if|unless <terms>`` for evaluation at ``where``.

    ``acls`` are the proxy's named ACLs (declared above the rule). Raises ConfigError (file,
    line, the token, a hint) for a missing keyword or term, an undefined ACL (with a
    did-you-mean), an unclosed ``{``, or any error of an anonymous ACL (unknown fetch or
    converter, bad pattern, regex that does not compile, fetch not available at ``where``).
    """
    origin = Origin(where, filename, lineno)
    table = acls if acls is not None else AclTable()
    if not words or words[0] not in ("if", "unless"):
        raise origin.error(
            f"a condition starts with 'if' or 'unless', not '{words[0] if words else ''}'",
            hint="e.g. if is_api !is_admin || { path_beg /static }",
        )
    unless = words[0] == "unless"
    suites: List[List[Term]] = [[]]
    i = 1
    negated = False
    while i < len(words):
        word = words[i]
        i += 1
        while word.startswith("!"):
            negated = not negated
            word = word[1:]
        if not word:
            continue  # a lone "!": applies to the next term
        if word in ("||", "or"):
            if negated or not suites[-1]:
                raise origin.error(f"'{word}' without a term before it", hint="write: if a || b")
            suites.append([])
            continue
        if word == "{":
            end = _closing(words, i)
            if end < 0:
                raise origin.error(
                    "missing '}' to close an anonymous ACL",
                    hint="braces are words of their own: if { path_beg /api }",
                )
            inner = list(words[i:end])
            if not inner:
                raise origin.error("empty anonymous ACL '{ }'", hint="e.g. { path_beg /api }")
            suites[-1].append((negated, compile_acl_expr(inner, origin)))
            i = end + 1
        elif word == "}":
            raise origin.error("'}' without its '{'", hint="if { path_beg /api }")
        elif word.startswith("{") or word.endswith("}"):
            raise origin.error(
                f"'{word}': braces must be words of their own",
                hint="put spaces around them: if { path_beg /api }",
            )
        else:
            acl = table.get(word)
            if acl is None:
                raise unknown_acl(word, table, origin)
            acl.exprs(where, origin)  # compile now: a fetch not usable here is an error
            suites[-1].append((negated, acl))
        negated = False
    if negated:
        raise origin.error("'!' at the end of the condition", hint="write: if !acl")
    if not suites[-1]:
        raise origin.error(
            f"'{words[0]}' needs a condition" if len(suites) == 1 else "nothing after '||'",
            hint="e.g. if is_api, if { path_beg /api } || METH_POST",
        )
    cond = Condition(" ".join(words), unless, suites, where, origin)
    for suite in suites:
        for _, item in suite:
            if isinstance(item, Acl) and item.name in table.acls:
                item.users.append(cond)
    return cond


def _closing(words: Sequence[str], start: int) -> int:
    for j in range(start, len(words)):
        if words[j] == "}":
            return j
    return -1


def split_condition(args: Sequence[str]) -> Tuple[List[str], List[str]]:
    """A rule's words before ``if``/``unless``, and the condition's (empty: none)."""
    for i, word in enumerate(args):
        if word in ("if", "unless"):
            return list(args[:i]), list(args[i:])
    return list(args), []
