"""Handlers of the rule keywords: ``acl``, ``use_backend``, ``use-server``, ``tcp-request``.

Each compiles its expressions at its own line with the rules engine (:mod:`udsproxy.rules`),
so a bad fetch, pattern or ACL name is reported at that line with the other errors of the
file. Conditions are compiled for the place they run at: ``use_backend`` and
``use-server`` in HTTP mode as request rules, in TCP mode as content rules (``src``,
``dst_port``, ``req.len``); ``tcp-request connection`` with layer-4 fetches only. What
depends on the whole file (a backend or server named by a rule exists, the proxy's final
mode is the one its rules were read for) is checked by the parser once the file is read.
"""

from __future__ import annotations

from typing import List, Optional, Union

from ..errors import ConfigError
from ..rules import Condition, Sample, Where, compile_condition, compile_sample, find_sample_end
from ..rules import split_condition as split
from .builders import Context, need
from .model import NameFormat, TcpAction, TcpRule, UseBackend, UseServer
from .values import parse_time

TCP_ACTIONS = tuple(a.value for a in TcpAction)


def rule_where(ctx: Context) -> Where:
    """Where a routing condition of this proxy runs, by its mode so far."""
    mode = str(ctx.px.fields.get("mode", "tcp"))
    where = Where.HTTP_REQUEST if mode == "http" else Where.TCP_CONTENT
    ctx.px.rule_modes.append((ctx.lineno, mode))
    return where


def condition(ctx: Context, words: List[str], where: Where) -> Optional[Condition]:
    if not words:
        return None
    return compile_condition(
        words, ctx.px.acls, where=where, filename=ctx.filename, lineno=ctx.lineno
    )


def p_acl(ctx: Context, args: List[str]) -> None:
    usage = "acl <name> <criterion> [flags] [patterns]"
    need(args, 2, usage)
    ctx.px.acls.define(args[0], args[1:], ctx.filename, ctx.lineno)


def p_use_backend(ctx: Context, args: List[str]) -> None:
    usage = "use_backend <backend> [if|unless <condition>]"
    need(args, 1, usage)
    head, cond_words = split(args)
    if len(head) != 1:
        raise ConfigError(
            f"unexpected word '{head[1]}'" if head else "missing backend name",
            hint=f"usage: {usage}",
        )
    where = rule_where(ctx)
    name = head[0]
    backend: Union[str, NameFormat] = name
    if "%" in name:
        backend = name_format(name, where, ctx)
    ctx.px.use_backends.append(UseBackend(backend, condition(ctx, cond_words, where), ctx.lineno))


def name_format(text: str, where: Where, ctx: Context) -> NameFormat:
    """``be_%[expr]``: literal text and ``%[...]`` samples (``%%`` is a percent sign)."""
    parts: List[Union[str, Sample]] = []
    literal: List[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "%":
            literal.append(c)
            i += 1
            continue
        if text[i + 1 : i + 2] == "%":
            literal.append("%")
            i += 2
            continue
        if text[i + 1 : i + 2] != "[":
            raise ConfigError(
                f"'{text[i : i + 3]}': only %[<expression>] may compute a backend name",
                hint="e.g. use_backend %[req.hdr(host),lower,map(/etc/udsproxy/hosts.map)]",
            )
        end = find_sample_end(text, i + 2)
        if end < 0:
            raise ConfigError(f"missing ']' in '{text}'", hint="write %[<fetch>[,<converter>...]]")
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(
            compile_sample(text[i + 2 : end], where=where, filename=ctx.filename, lineno=ctx.lineno)
        )
        i = end + 1
    if literal:
        parts.append("".join(literal))
    return NameFormat(text, tuple(parts))


def p_use_server(ctx: Context, args: List[str]) -> None:
    usage = "use-server <server> if|unless <condition>"
    head, cond_words = split(args)
    if len(head) != 1 or not cond_words:
        raise ConfigError(
            "missing condition"
            if len(head) == 1
            else "missing server name"
            if not head
            else f"unexpected word '{head[1]}'",
            hint=f"usage: {usage}",
        )
    if "%" in head[0]:
        raise ConfigError(
            f"'{head[0]}': a server name computed per request is not supported",
            hint="name the server; one use-server line per server",
        )
    cond = condition(ctx, cond_words, rule_where(ctx))
    assert cond is not None
    ctx.px.use_servers.append(UseServer(head[0], cond, ctx.lineno))


def p_tcp_request(ctx: Context, args: List[str]) -> None:
    usage = (
        "tcp-request connection|content accept|reject [if|unless <condition>]  |  "
        "tcp-request inspect-delay <time>"
    )
    need(args, 1, usage)
    kind = args[0]
    if kind == "inspect-delay":
        if ctx.section == "backend":
            raise _backend_rules()
        if len(args) != 2:
            raise ConfigError("expects one time", hint="usage: tcp-request inspect-delay <time>")
        ctx.px.fields["inspect-delay"] = parse_time(args[1])
        return
    if kind not in ("connection", "content"):
        raise ConfigError(
            f"unknown tcp-request rule set '{kind}'",
            keyword=f"tcp-request {kind}",
            hint="udsproxy has tcp-request connection, content and inspect-delay"
            + ("; 'session' rules are not supported" if kind == "session" else ""),
        )
    keyword = f"tcp-request {kind}"
    if ctx.section == "defaults":
        raise ConfigError(
            f"'{keyword}' rules are not supported in a defaults section",
            keyword=keyword,
            hint="write them in each frontend or listen section",
        )
    if ctx.section == "backend":
        raise _backend_rules(keyword)
    head, cond_words = split(args[1:])
    if len(head) != 1 or head[0] not in TCP_ACTIONS:
        action = head[0] if head else ""
        raise ConfigError(
            f"unsupported action '{action}'" if action else "missing action",
            keyword=keyword,
            hint=f"udsproxy supports: {keyword} accept|reject [if|unless <condition>]",
        )
    if kind == "connection":
        where = Where.TCP_CONNECTION
        rules = ctx.px.tcp_connection
    else:
        where = rule_where(ctx)
        rules = ctx.px.tcp_content
    try:
        cond = condition(ctx, cond_words, where)
    except ConfigError as exc:
        exc.keyword = exc.keyword or keyword
        raise
    rules.append(TcpRule(TcpAction(head[0]), cond, ctx.lineno))


def _backend_rules(keyword: str = "tcp-request inspect-delay") -> ConfigError:
    return ConfigError(
        f"'{keyword}' in a backend section is not supported",
        keyword=keyword,
        hint="inspect in the frontend (or listen section) that routes to it",
    )
