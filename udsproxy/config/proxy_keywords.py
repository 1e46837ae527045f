"""Handlers of proxy keywords: mode, timeouts, retries, options, forwardfor, http-reuse, ids."""

from __future__ import annotations

import ipaddress
from typing import List

from ..errors import ConfigError
from .builders import SECTION_LETTERS, Context, Handler, need, no_more, record_planned
from .model import ForwardFor, LoadServerState, Redispatch
from .values import parse_int, parse_time

HTTP_REUSE_MODES = ("never", "safe", "aggressive", "always")
TIMEOUT_NAMES = {
    "connect": "connect",
    "client": "client",
    "server": "server",
    "queue": "queue",
    "tunnel": "tunnel",
    "client-fin": "client_fin",
    "server-fin": "server_fin",
    "http-request": "http_request",
    "http-keep-alive": "http_keep_alive",
    "check": "check",
    "tarpit": "tarpit",
}
TIMEOUT_SECTIONS = {
    "connect": "dbl",
    "server": "dbl",
    "queue": "dbl",
    "tunnel": "dbl",
    "server-fin": "dbl",
    "check": "dbl",
    "client": "dfl",
    "client-fin": "dfl",
    "http-request": "dfbl",
    "http-keep-alive": "dfbl",
    "tarpit": "dfbl",
}


def p_mode(ctx: Context, args: List[str]) -> None:
    need(args, 1, "mode tcp|http|unix")
    no_more(args, 1, "mode tcp|http|unix")
    if args[0] not in ("tcp", "http", "unix"):
        hint = "use tcp or http" + (
            " ('health' mode was removed from HAProxy; use 'monitor-uri')"
            if args[0] == "health"
            else ""
        )
        raise ConfigError(f"unknown mode '{args[0]}'", hint=hint)
    if args[0] == "unix":
        ctx.extensions.append("'mode unix'")
    ctx.px.fields["mode"] = args[0]


def p_timeout(ctx: Context, args: List[str]) -> None:
    need(args, 1, "timeout <name> <time>")
    name = args[0]
    key = TIMEOUT_NAMES.get(name)
    if key is None:
        import difflib

        close = difflib.get_close_matches(name, list(TIMEOUT_NAMES), n=1)
        raise ConfigError(
            f"unknown timeout '{name}'",
            keyword=f"timeout {name}",
            hint=f"did you mean 'timeout {close[0]}'?"
            if close
            else "known: " + ", ".join(TIMEOUT_NAMES),
        )
    letters = TIMEOUT_SECTIONS[name]
    if not any(SECTION_LETTERS[c] == ctx.section for c in letters):
        raise ConfigError(
            f"'timeout {name}' is not allowed in a {ctx.section} section",
            keyword=f"timeout {name}",
            hint="it belongs in " + ", ".join(SECTION_LETTERS[c] for c in letters),
        )
    need(args, 2, f"timeout {name} <time>")
    no_more(args, 2, f"timeout {name} <time>")
    ctx.px.timeouts[key] = parse_time(args[1])


def p_retries(ctx: Context, args: List[str]) -> None:
    need(args, 1, "retries <n>")
    ctx.px.fields["retries"] = parse_int(args[0], "retries", 0)


def bool_option(name: str) -> Handler:
    def handle(ctx: Context, args: List[str]) -> None:
        no_more(args, 0, f"option {name}")
        ctx.px.options[name] = not ctx.negated

    return handle


def o_redispatch(ctx: Context, args: List[str]) -> None:
    no_more(args, 1, "option redispatch [<interval>]")
    interval = -1
    if args:
        try:
            interval = int(args[0])
        except ValueError:
            raise ConfigError(
                "option redispatch expects an integer interval", hint="e.g. 1, -1"
            ) from None
    ctx.px.options["redispatch"] = not ctx.negated and interval != 0
    ctx.px.fields["redispatch"] = Redispatch(enabled=interval != 0, interval=interval)


def planned_option(words: str) -> Handler:
    def handle(ctx: Context, args: List[str]) -> None:
        ctx.px.options[words] = not ctx.negated
        if not ctx.negated:
            record_planned(ctx, f"option {words}", args)

    return handle


def o_forwardfor(ctx: Context, args: List[str]) -> None:
    usage = "option forwardfor [except <net>] [header <name>] [if-none]"
    ctx.px.options["forwardfor"] = not ctx.negated
    if ctx.negated:
        return
    header, except_net, if_none = "X-Forwarded-For", None, False
    words = list(args)
    while words:
        word = words.pop(0)
        if word == "if-none":
            if_none = True
        elif word in ("except", "header"):
            if not words:
                raise ConfigError(f"'{word}' needs a value", hint=f"usage: {usage}")
            value = words.pop(0)
            if word == "header":
                header = value
            else:
                try:
                    ipaddress.ip_network(value, strict=False)
                except ValueError:
                    raise ConfigError(
                        f"'{value}' is not a network", hint="e.g. except 127.0.0.0/8"
                    ) from None
                except_net = value
        else:
            raise ConfigError(f"unexpected word '{word}'", hint=f"usage: {usage}")
    ctx.px.fields["forwardfor"] = ForwardFor(header, except_net, if_none)


def p_http_reuse(ctx: Context, args: List[str]) -> None:
    usage = "http-reuse never|safe|aggressive|always"
    need(args, 1, usage)
    no_more(args, 1, usage)
    if args[0] not in HTTP_REUSE_MODES:
        raise ConfigError(f"unknown http-reuse mode '{args[0]}'", hint=f"usage: {usage}")
    ctx.px.fields["http-reuse"] = args[0]


def p_default_backend(ctx: Context, args: List[str]) -> None:
    need(args, 1, "default_backend <backend>")
    no_more(args, 1, "default_backend <backend>")
    ctx.px.fields["default_backend"] = args[0]


def p_id(ctx: Context, args: List[str]) -> None:
    need(args, 1, "id <n>")
    ctx.px.fields["id"] = parse_int(args[0], "id", 1)


def planned_proxy(words: str, min_args: int = 0, usage: str = "") -> Handler:
    def handle(ctx: Context, args: List[str]) -> None:
        if len(args) < min_args:
            raise ConfigError("missing argument", hint=f"usage: {usage or words}")
        record_planned(ctx, words, args)

    return handle


def p_load_server_state(ctx: Context, args: List[str]) -> None:
    """``load-server-state-from-file global|local|none``."""
    usage = "load-server-state-from-file global|local|none"
    need(args, 1, usage)
    no_more(args, 1, usage)
    try:
        value = LoadServerState(args[0])
    except ValueError:
        raise ConfigError(
            f"unknown load-server-state-from-file mode '{args[0]}'", hint=f"usage: {usage}"
        ) from None
    record_planned(ctx, "load-server-state-from-file", args)
    ctx.px.fields["load-server-state-from-file"] = value
