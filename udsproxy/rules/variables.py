"""Variables: ``set-var``/``set-var-fmt``/``unset-var`` and the ``var()`` fetch, by scope.

A variable is ``<scope>.<name>`` (HAProxy 2.6, configuration.txt "set-var"): ``proc``
lives as long as the process, ``sess`` as long as the client connection (across its
keep-alive requests), ``txn`` for one request and its response, ``req`` while the request
is processed and ``res`` while the response is. ``txn``/``req``/``res`` live in the
request's :class:`~.context.RuleContext` (``vars``, by full name; ``req.*`` are dropped
when the response rules start), ``sess`` in the connection's
:class:`~.context.ConnInfo`, ``proc`` in :data:`PROC_VARS`.

Values keep their type (an ``int(5)`` stays an integer for ``ifgt``/``iflt``); ``var()``
gives them as text, or its default when the variable is not set. ``unset-var`` leaves the
variable existing but not set (``ifexists`` still holds, ``ifset`` does not).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from .context import Need, RuleContext
from .sample import STR, Arg, FetchDef, Origin, did_you_mean, register_fetch, to_text

SCOPES = ("proc", "sess", "txn", "req", "res")
CONDITIONS = (
    "ifexists",
    "ifnotexists",
    "ifempty",
    "ifnotempty",
    "ifset",
    "ifnotset",
    "ifgt",
    "iflt",
)
_NAME = re.compile(r"[A-Za-z0-9._]+")

PROC_VARS: Dict[str, Any] = {}  # proc.* variables: the process's, kept across reloads


class Unset:
    """The value of a variable ``unset-var`` cleared: it exists, it is not set."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset()
Store = Callable[[RuleContext, bool], Optional[Dict[str, Any]]]


def parse_name(text: str, origin: Origin) -> Tuple[str, str]:
    """(scope, full name) of ``<scope>.<name>``; a ConfigError names what is wrong."""
    scope, dot, name = text.partition(".")
    if not dot or scope not in SCOPES:
        guess = did_you_mean(scope, SCOPES)
        raise origin.error(
            f"variable '{text}' has no valid scope",
            hint=(guess + " " if guess else "")
            + "a variable is <scope>.<name>, scope one of: "
            + ", ".join(SCOPES),
        )
    if not _NAME.fullmatch(name):
        raise origin.error(
            f"invalid variable name '{text}'",
            hint="after the scope: letters, digits, '.' and '_' only",
        )
    return scope, text


def store_of(scope: str) -> Store:
    """How to reach the dict of ``scope`` from a request (``create``: make it if missing)."""
    if scope == "proc":
        return lambda ctx, create: PROC_VARS
    if scope == "sess":

        def sess(ctx: RuleContext, create: bool) -> Optional[Dict[str, Any]]:
            conn = ctx.conn
            if conn.vars is None and create:
                conn.vars = {}
            return conn.vars

        return sess

    def txn(ctx: RuleContext, create: bool) -> Optional[Dict[str, Any]]:
        if ctx.vars is None and create:
            ctx.vars = {}
        return ctx.vars

    return txn


def drop_request_vars(ctx: RuleContext) -> None:
    """The response starts: ``req.*`` variables end (HAProxy's request scope)."""
    variables = ctx.vars
    if variables:
        for name in [n for n in variables if n.startswith("req.")]:
            del variables[name]


# ----------------------------------------------------------------- the fetch
def _var(origin: Origin, text: str, default: Optional[str] = None) -> Callable[[RuleContext], Any]:
    scope, name = parse_name(text, origin)
    store = store_of(scope)

    def var(ctx: RuleContext) -> Any:
        variables = store(ctx, False)
        value = variables.get(name, UNSET) if variables is not None else UNSET
        if value is UNSET:
            return default
        return to_text(value)

    return var


register_fetch(
    FetchDef(
        "var",
        STR,
        Need.L4,
        _var,
        (Arg("<scope>.<name>"), Arg("<default>")),
        1,
        help="a variable set by set-var (its default, or nothing, when not set)",
    )
)


# ----------------------------------------------------------------- the actions
def check_conditions(words: Sequence[str], origin: Origin) -> Tuple[str, ...]:
    """The ``set-var(<name>,<cond>...)`` conditions: at most four, each a known one."""
    if len(words) > 4:
        raise origin.error("at most four set-var conditions", hint=", ".join(CONDITIONS))
    for word in words:
        if word not in CONDITIONS:
            guess = did_you_mean(word, CONDITIONS)
            raise origin.error(
                f"unknown set-var condition '{word}'",
                hint=guess or "one of " + ", ".join(CONDITIONS),
            )
    return tuple(words)


def _empty(value: Any) -> bool:
    # Scalars are never empty (HAProxy): only strings and binary data can be.
    return isinstance(value, (str, bytes)) and not value


def _allowed(conditions: Tuple[str, ...], old: Any, new: Any, proc: bool) -> bool:
    for cond in conditions:
        if cond == "ifexists":
            ok = proc or old is not None
        elif cond == "ifnotexists":
            ok = not proc and old is None
        elif cond == "ifset":
            ok = old is not None and old is not UNSET
        elif cond == "ifnotset":
            ok = old is None or old is UNSET
        elif cond == "ifempty":
            ok = _empty(new)
        elif cond == "ifnotempty":
            ok = not _empty(new)
        else:  # ifgt / iflt: only between two integers, else true
            if type(old) is int and type(new) is int:
                ok = old > new if cond == "ifgt" else old < new
            else:
                ok = True
        if not ok:
            return False
    return True


def set_var(
    scope: str, name: str, conditions: Tuple[str, ...], value: Callable[[RuleContext], Any]
) -> Callable[[RuleContext], None]:
    """The action setting ``name`` to ``value(ctx)`` (nothing when the value is missing)."""
    store = store_of(scope)
    proc = scope == "proc"

    if not conditions:

        def set_plain(ctx: RuleContext) -> None:
            new = value(ctx)
            if new is not None:
                store(ctx, True)[name] = new  # type: ignore[index]

        return set_plain

    def set_checked(ctx: RuleContext) -> None:
        new = value(ctx)
        if new is None:
            return
        variables = store(ctx, True)
        assert variables is not None
        if _allowed(conditions, variables.get(name), new, proc):
            variables[name] = new

    return set_checked


def unset_var(scope: str, name: str) -> Callable[[RuleContext], None]:
    store = store_of(scope)

    def unset(ctx: RuleContext) -> None:
        variables = store(ctx, False)
        if variables is not None and name in variables:
            variables[name] = UNSET

    return unset
