"""Rules: sample fetches, converters, ACLs and conditions, compiled once and pure (no I/O).

One engine for everything that reads a request: ``use_backend``, ``use-server``,
``tcp-request`` and ``http-request``/``http-response`` rules, ``log-format`` ``%[...]``
expressions. Config keywords compile their expressions at load; the data path only calls
the compiled functions with a :class:`RuleContext` — nothing is parsed, looked up by name
or compiled (no regex) per request.

Public API (stable: extend it, do not rename it):

- :class:`ConnInfo` ``(src, src_port, dst, dst_port, frontend, listener_id)``: one client
  connection (``src``/``dst`` None for unix sockets), made once per connection.
- :class:`RuleContext` ``(conn, method, target, version, headers)``: one request (or TCP
  session); the data path sets ``backend``, ``server``, ``unique_id``, ``status``,
  ``res_headers``, ``payload``/``final``, ``vars`` as they become known. Derived values
  (``path``, ``query`` ...) are computed on first use and kept.
- :class:`Where`: the place an expression is evaluated (``TCP_CONNECTION``,
  ``TCP_CONTENT``, ``HTTP_REQUEST``, ``HTTP_RESPONSE``, ``LOG``); a fetch needing what
  the place does not have is a config error.
- :func:`compile_sample` ``(text, *, where, filename, lineno) -> Sample``: ``fetch[(args)]
  [,conv[(args)]]...``; ``sample(ctx)`` (or ``sample.fn(ctx)`` on hot paths) gives the value
  or None; ``sample.text_of(ctx)`` gives it as text; :func:`to_text` converts any value.
  :func:`find_sample_end` finds the ``]`` closing a ``%[`` (quotes and parentheses
  respected).
- :class:`AclTable`: one proxy's named ACLs; ``table.define(name, words, filename, lineno)``
  for an ``acl`` line.
- :func:`compile_condition` ``(words, acls, *, where, filename, lineno) -> Condition``:
  ``words`` start with ``if``/``unless``; ``cond(ctx) -> bool`` (``cond.fn`` on hot paths),
  ``cond.eval3(ctx)`` tri-state (PASS/FAIL/MISS) for rules that wait for data.
  :func:`split_condition` splits a rule's words at its ``if``/``unless``.
- :func:`register_fetch` / :func:`register_converter` add entries (:class:`FetchDef`,
  :class:`ConverterDef`) to the tables, e.g. ``var()`` from the rules that set variables.
- Actions (:mod:`.actions`): what ``http-request``/``http-response``/``redirect`` rules do,
  each compiled into a function of the RuleContext; :func:`compile_lf` (:mod:`.lfvalue`)
  compiles their log-format values; :mod:`.variables` the ``set-var`` scopes and ``var()``;
  :mod:`.auth` userlists and the ``http_auth*`` fetches.
- Errors: every compile function raises :class:`udsproxy.errors.ConfigError` with the
  file, line, the offending token in the message and a hint (did-you-mean for names); the
  config parser adds the keyword and lists it with every other error of the file.

Values are ``str`` (latin-1: bytes map one to one), ``int``, ``bool``, ``ipaddress``
addresses or ``bytes``; ``src`` of a unix-socket client is the string ``"unix"``.
"""

from __future__ import annotations

# Importing these modules fills the fetch and converter tables.
from .acl import DERIVED, FAIL, MISS, PASS, PREDEFINED, Acl, AclExpr, AclTable
from .auth import UserlistRef
from .condition import Condition, compile_condition, split_condition
from .context import ConnInfo, Need, RuleContext, Where
from .converters import MAP_METHODS
from .fetches import UNIX
from .patterns import METHODS
from .sample import (
    CONVERTERS,
    FETCHES,
    ConverterDef,
    FetchDef,
    Sample,
    compile_sample,
    find_sample_end,
    register_converter,
    register_fetch,
    to_text,
)
from .variables import SCOPES

__all__ = [
    "Acl",
    "AclExpr",
    "AclTable",
    "CONVERTERS",
    "Condition",
    "ConnInfo",
    "ConverterDef",
    "DERIVED",
    "FAIL",
    "FETCHES",
    "FetchDef",
    "MAP_METHODS",
    "METHODS",
    "MISS",
    "Need",
    "PASS",
    "PREDEFINED",
    "RuleContext",
    "Sample",
    "UNIX",
    "Where",
    "compile_condition",
    "compile_sample",
    "find_sample_end",
    "register_converter",
    "register_fetch",
    "split_condition",
    "to_text",
    "UserlistRef",
    "SCOPES",
]
