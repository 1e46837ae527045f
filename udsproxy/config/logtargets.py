"""``log`` lines: targets, facilities, levels and formats, for the global section and proxies."""

from __future__ import annotations

from dataclasses import replace
from typing import List

from ..errors import ConfigError
from .builders import GLOBAL, Context, need
from .model import LogTarget
from .values import parse_int

LOG_FACILITIES = (
    "kern user mail daemon auth syslog lpr news uucp cron auth2 ftp ntp audit alert cron2 "
    "local0 local1 local2 local3 local4 local5 local6 local7"
).split()
LOG_LEVELS = "emerg alert crit err warning notice info debug".split()


def parse_log(args: List[str], usage: str) -> LogTarget:
    """``log <target> [len <n>] [format <fmt>] <facility> [<level> [<minlevel>]]``."""
    need(args, 2, usage)
    target = args[0]
    rest = args[1:]
    fmt = ""
    length = 1024
    while rest and rest[0] in ("len", "format", "sample"):
        if len(rest) < 2:
            raise ConfigError(f"'{rest[0]}' needs a value", hint=f"usage: {usage}")
        if rest[0] == "format":
            fmt = rest[1]
            if fmt not in (
                "raw",
                "rfc3164",
                "rfc5424",
                "short",
                "priority",
                "iso",
                "timed",
                "local",
            ):
                raise ConfigError(
                    f"unknown log format '{fmt}'",
                    hint="use raw, rfc3164, rfc5424, short, priority, iso, timed or local",
                )
        elif rest[0] == "len":
            length = parse_int(rest[1], "log len", 80, 65535)
        else:
            raise ConfigError("'sample' in log lines is not supported", hint="remove it")
        rest = rest[2:]
    if not rest:
        raise ConfigError("missing log facility", hint=f"usage: {usage}")
    facility = rest[0]
    if facility not in LOG_FACILITIES:
        raise ConfigError(
            f"unknown log facility '{facility}'", hint="use one of " + ", ".join(LOG_FACILITIES)
        )
    levels = rest[1:]
    if len(levels) > 2:
        raise ConfigError(f"unexpected word '{levels[2]}'", hint=f"usage: {usage}")
    for lvl in levels:
        if lvl not in LOG_LEVELS:
            raise ConfigError(
                f"unknown log level '{lvl}'", hint="use one of " + ", ".join(LOG_LEVELS)
            )
    from ..log.targets import parse_target

    try:
        parse_target(target)
    except ValueError as exc:
        raise ConfigError(
            f"invalid log target '{target}': {exc}",
            hint="use stdout, stderr, /dev/log, a unix datagram socket path, ip:port or fd@N",
        ) from None
    return LogTarget(
        target=target,
        facility=facility,
        level=levels[0] if levels else "debug",
        min_level=levels[1] if len(levels) > 1 else "",
        format=fmt or "local",
        length=length,
    )


def g_log(ctx: Context, args: List[str]) -> None:
    usage = "log <target> [len <n>] [format <fmt>] <facility> [<level> [<minlevel>]]"
    ctx.glob.logs.append(replace(parse_log(args, usage), lineno=ctx.lineno))


def p_log(ctx: Context, args: List[str]) -> None:
    if ctx.negated:
        ctx.px.logs = []
        ctx.px.log_global = False
        return
    if args == ["global"]:
        ctx.px.log_global = True
        return
    usage = "log global | log <target> [format <fmt>] <facility> [<level> [<minlevel>]]"
    target = replace(parse_log(args, usage), lineno=ctx.lineno)
    ctx.px.logs = list(ctx.px.logs or []) + [target]


def log_line(ctx: Context, args: List[str]) -> None:
    """``log ...`` in any section: a global target list, or a proxy's (with ``log global``)."""
    (g_log if ctx.section == GLOBAL else p_log)(ctx, args)
