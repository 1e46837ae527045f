"""HTTP Basic authentication against ``userlist`` sections: the ``http_auth*`` fetches.

``http_auth(<userlist>)`` is true when the request's ``Authorization: Basic`` credentials
name a user of the userlist with the right password; ``http_auth_group(<userlist>)`` gives
that user's name, and in an ACL matches its groups (``acl admins http_auth_group(L) adm``);
``http_auth_user``, ``http_auth_pass`` and ``http_auth_type`` give what was sent, unchecked
(HAProxy 2.6, configuration.txt §7.3.6). A request's credentials are decoded and checked
once, whatever the number of fetches that read them.

Userlists are sections of their own and may come after the rules that name them: a fetch
compiled while the parser collects references (:func:`collect_references`) records a
:class:`UserlistRef` that the parser binds once the file is read (an unknown name is then
a config error at the rule's line).

Passwords are either ``insecure-password`` (compared as written) or ``password`` hashes
checked with crypt(3), as HAProxy does: Python's ``crypt`` module while it exists
(deprecated since 3.11, removed in 3.13: its import warning is silenced here, on purpose,
once), else the C library's ``crypt`` through ctypes. Without either, ``password`` lines are
a config error that says so; ``insecure-password`` always works.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import ctypes.util
import functools
import hmac
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, List, Mapping, Optional, Tuple

from .context import Need, RuleContext
from .sample import BOOL, STR, Arg, FetchDef, Origin, register_fetch

Crypt = Callable[[str, str], Optional[str]]


# ----------------------------------------------------------------- crypt(3)
def _module_crypt() -> Optional[Crypt]:
    try:
        with warnings.catch_warnings():
            # Deprecated (PEP 594) and removed in 3.13; the C library stays (see _libc_crypt).
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt as module
    except ImportError:
        return None

    def run(password: str, setting: str) -> Optional[str]:
        try:
            return module.crypt(password, setting)
        except OSError:
            return None

    return run


def _libc_crypt() -> Optional[Crypt]:
    for name in (ctypes.util.find_library("crypt"), ctypes.util.find_library("c")):
        if not name:
            continue
        try:
            fn = ctypes.CDLL(name).crypt
        except (OSError, AttributeError):
            continue
        fn.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
        fn.restype = ctypes.c_char_p

        def run(password: str, setting: str, fn: Any = fn) -> Optional[str]:
            out = fn(password.encode("utf-8", "surrogateescape"), setting.encode("latin-1"))
            return None if out is None else out.decode("latin-1")

        return run
    return None


@functools.cache
def crypt_function() -> Optional[Crypt]:
    """crypt(3), or None when this Python can reach none."""
    return _module_crypt() or _libc_crypt()


def hash_problem(setting: str) -> str:
    """Why ``setting`` cannot be checked by crypt(3) here, or ''."""
    fn = crypt_function()
    if fn is None:
        return (
            "crypt(3) is not available to this Python (its crypt module was removed in "
            "3.13 and no C library crypt was found)"
        )
    out = fn("", setting)
    if not out or out.startswith("*"):
        return f"'{setting}' is not a hash this system's crypt(3) knows"
    return ""


def password_matches(user: Any, password: str) -> bool:
    """Whether ``password`` is ``user``'s (a ``config.model.User``)."""
    if user.insecure:
        return hmac.compare_digest(user.password.encode(), password.encode())
    fn = crypt_function()
    hashed = fn(password, user.password) if fn is not None else None
    return hashed is not None and hmac.compare_digest(hashed.encode(), user.password.encode())


# ----------------------------------------------------------------- userlist references
class UserlistRef:
    """A userlist named by a fetch; ``users`` (by name) once the parser bound it."""

    __slots__ = ("name", "filename", "lineno", "users")

    def __init__(self, name: str, filename: str, lineno: int) -> None:
        self.name = name
        self.filename = filename
        self.lineno = lineno
        self.users: Mapping[str, Any] = {}


_collected: Optional[List[UserlistRef]] = None


@contextmanager
def collect_references() -> Iterator[List[UserlistRef]]:
    """Record every userlist reference compiled meanwhile (one config file's parse)."""
    global _collected
    outer = _collected
    refs: List[UserlistRef] = []
    _collected = refs
    try:
        yield refs
    finally:
        _collected = outer


def _reference(origin: Origin, name: str) -> UserlistRef:
    if not name:
        raise origin.error("a userlist name is needed", hint="e.g. http_auth(admins)")
    ref = UserlistRef(name, origin.filename, origin.lineno)
    if _collected is not None:
        _collected.append(ref)
    return ref


def bind(refs: Iterable[UserlistRef], userlists: Mapping[str, Any]) -> List[UserlistRef]:
    """Give each reference its userlist's users; the references to no userlist."""
    missing = []
    for ref in refs:
        found = userlists.get(ref.name)
        if found is None:
            missing.append(ref)
        else:
            ref.users = {u.name: u for u in found.users}
    return missing


# ----------------------------------------------------------------- credentials
def credentials(ctx: RuleContext) -> Optional[Tuple[str, str, str]]:
    """(scheme, user, password) of the first Authorization field; None without one or
    when it is not Basic with valid base64 (the scheme alone for another scheme)."""
    memo = ctx.memo
    if "auth" in memo:
        return memo["auth"]
    found: Optional[Tuple[str, str, str]] = None
    values = ctx.full_header_values(b"authorization")
    if values:
        scheme, _, data = values[0].partition(" ")
        if scheme.lower() != "basic":
            found = (scheme, "", "")
        else:
            try:
                decoded = base64.b64decode(data.strip(), validate=True).decode("latin-1")
            except (binascii.Error, ValueError):
                decoded = ""
            user, colon, password = decoded.partition(":")
            if colon:
                found = (scheme, user, password)
    memo["auth"] = found
    return found


def authenticated(ref: UserlistRef, ctx: RuleContext) -> Optional[Any]:
    """The user of ``ref``'s userlist the request authenticates as, or None (checked once
    per request and userlist: crypt(3) is slow on purpose)."""
    key = "auth:" + ref.name
    memo = ctx.memo
    if key in memo:
        return memo[key]
    user = None
    creds = credentials(ctx)
    if creds is not None and creds[1]:
        candidate = ref.users.get(creds[1])
        if candidate is not None and password_matches(candidate, creds[2]):
            user = candidate
    memo[key] = user
    return user


def _http_auth(origin: Origin, name: str) -> Callable[[RuleContext], Any]:
    ref = _reference(origin, name)
    return lambda ctx: authenticated(ref, ctx) is not None


def _auth_user(origin: Origin, name: str) -> Callable[[RuleContext], Any]:
    ref = _reference(origin, name)

    def user(ctx: RuleContext) -> Optional[str]:
        found = authenticated(ref, ctx)
        return None if found is None else found.name

    return user


def _auth_groups(origin: Origin, name: str) -> Callable[[RuleContext], Iterable[str]]:
    ref = _reference(origin, name)

    def groups(ctx: RuleContext) -> Iterable[str]:
        found = authenticated(ref, ctx)
        return () if found is None else found.groups

    return groups


def _part(index: int) -> Callable[..., Callable[[RuleContext], Any]]:
    def make(origin: Origin) -> Callable[[RuleContext], Any]:
        def part(ctx: RuleContext) -> Optional[str]:
            creds = credentials(ctx)
            return None if creds is None else creds[index]

        return part

    return make


R = Need.REQUEST
LIST = (Arg("<userlist>"),)
register_fetch(
    FetchDef(
        "http_auth", BOOL, R, _http_auth, LIST, 1, help="valid Basic credentials of the userlist"
    )
)
register_fetch(
    FetchDef(
        "http_auth_group",
        STR,
        R,
        _auth_user,
        LIST,
        1,
        make_all=_auth_groups,
        help="the authenticated user (in ACLs: its groups)",
    )
)
register_fetch(FetchDef("http_auth_type", STR, R, _part(0), help="the Authorization scheme sent"))
register_fetch(FetchDef("http_auth_user", STR, R, _part(1), help="the Basic user sent (unchecked)"))
register_fetch(
    FetchDef("http_auth_pass", STR, R, _part(2), help="the Basic password sent (unchecked)")
)
