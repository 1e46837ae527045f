"""``userlist`` sections: ``group`` and ``user`` lines, checked and frozen into ``model.Userlist``.

HAProxy 2.6 syntax (configuration.txt §3.4)::

    userlist <name>
        group <group> [users <user>,<user>,...]
        user <user> [password <crypt(3) hash> | insecure-password <text>] [groups <g>,...]

A user belongs to the groups its line names and to the groups whose line lists it; every
name a line refers to must be declared in the section (a group may be listed before its
``group`` line, as HAProxy checks once the section is read). ``password`` hashes are
checked with the system's crypt(3) when the line is read (see ``rules.auth``).
"""

from __future__ import annotations

import difflib
from typing import Callable, Dict, List, Tuple

from ..errors import ConfigError
from ..rules import auth
from . import model
from .builders import GLOBAL, Context, Handler, UserlistBuilder, need

USER_USAGE = "user <name> [password <hash>|insecure-password <text>] [groups <group>,...]"
GROUP_USAGE = "group <name> [users <user>,...]"


def by_section(global_handler: Handler, userlist_handler: Handler) -> Handler:
    """One keyword with two meanings: ``user``/``group`` in global and in a userlist."""

    def handle(ctx: Context, args: List[str]) -> None:
        (global_handler if ctx.section == GLOBAL else userlist_handler)(ctx, args)

    return handle


def _names(text: str, what: str) -> Tuple[str, ...]:
    names = tuple(n for n in text.split(","))
    if not all(names):
        raise ConfigError(f"empty {what} name in '{text}'", hint="separate names with ',' only")
    return names


def _section(ctx: Context) -> UserlistBuilder:
    assert ctx.userlist is not None
    return ctx.userlist


def p_group(ctx: Context, args: List[str]) -> None:
    need(args, 1, GROUP_USAGE)
    ul = _section(ctx)
    name = args[0]
    if name in ul.groups:
        raise ConfigError(
            f"group '{name}' is declared twice in userlist '{ul.name}' (first at line "
            f"{ul.groups[name][0]})",
            hint="one group line per group",
        )
    users: Tuple[str, ...] = ()
    rest = args[1:]
    if rest:
        if rest[0] != "users" or len(rest) != 2:
            raise ConfigError(f"unexpected word '{rest[0]}'", hint=f"usage: {GROUP_USAGE}")
        users = _names(rest[1], "user")
    ul.groups[name] = (ctx.lineno, users)


def p_user(ctx: Context, args: List[str]) -> None:
    need(args, 1, USER_USAGE)
    ul = _section(ctx)
    name = args[0]
    if name in ul.users:
        raise ConfigError(
            f"user '{name}' is declared twice in userlist '{ul.name}' (first at line "
            f"{ul.users[name].lineno})",
            hint="one user line per user",
        )
    password = ""
    insecure = True  # no password: nobody can authenticate as this user (see below)
    groups: Tuple[str, ...] = ()
    i = 1
    has_password = False
    while i < len(args):
        word = args[i]
        if i + 1 >= len(args):
            raise ConfigError(f"'{word}' needs a value", hint=f"usage: {USER_USAGE}")
        value = args[i + 1]
        if word in ("password", "insecure-password"):
            if has_password:
                raise ConfigError("two passwords for one user", hint=f"usage: {USER_USAGE}")
            has_password = True
            insecure = word == "insecure-password"
            if not insecure:
                problem = auth.hash_problem(value)
                if problem:
                    raise ConfigError(
                        f"user '{name}': {problem}",
                        hint="use a hash made by mkpasswd (e.g. -m sha-512), or "
                        "'insecure-password <text>'",
                    )
            password = value
        elif word == "groups":
            groups = _names(value, "group")
        else:
            raise ConfigError(f"unknown option '{word}'", hint=f"usage: {USER_USAGE}")
        i += 2
    if not has_password:
        # HAProxy lets such a user exist; no password ever matches it.
        password, insecure = "*", False
    ul.users[name] = model.User(name, password, insecure, groups, ctx.lineno)


def build(ul: UserlistBuilder, fail: Callable[[str, int, str, str], None]) -> model.Userlist:
    """The frozen userlist; ``fail(message, line, keyword, hint)`` for each bad reference."""
    members: Dict[str, List[str]] = {name: list(u.groups) for name, u in ul.users.items()}
    for user in ul.users.values():
        for group in user.groups:
            if group not in ul.groups:
                fail(
                    f"userlist '{ul.name}': user '{user.name}' is in group '{group}', which is "
                    "not declared",
                    user.lineno,
                    "user",
                    _guess(group, ul.groups) or f"add 'group {group}' to the userlist",
                )
    for group, (lineno, listed) in ul.groups.items():
        for name in listed:
            if name not in members:
                fail(
                    f"userlist '{ul.name}': group '{group}' lists user '{name}', which is not "
                    "declared",
                    lineno,
                    "group",
                    _guess(name, members) or f"add 'user {name} ...' to the userlist",
                )
            elif group not in members[name]:
                members[name].append(group)
    users = tuple(
        model.User(u.name, u.password, u.insecure, tuple(members[u.name]), u.lineno)
        for u in ul.users.values()
    )
    return model.Userlist(ul.name, users, tuple(ul.groups), ul.lineno)


def _guess(name: str, names: object) -> str:
    close = difflib.get_close_matches(name, list(names), n=1)  # type: ignore[call-overload]
    return f"did you mean '{close[0]}'?" if close else ""
