"""Handlers of the global section's keywords (users, unix-bind, stats, tune.*, twistd-owned)."""

from __future__ import annotations

from typing import List

from ..errors import ConfigError
from .address import parse_address
from .builders import Context, Handler, need, no_more, perm_options
from .model import ABNS, ABNSZ, Bind, StatsSocket
from .values import parse_group, parse_int, parse_time, parse_user


def g_user(ctx: Context, args: List[str]) -> None:
    need(args, 1, "user <name>")
    no_more(args, 1, "user <name>")
    ctx.glob.fields["uid"] = parse_user(args[0])
    ctx.glob.fields["user"] = args[0]


def g_group(ctx: Context, args: List[str]) -> None:
    need(args, 1, "group <name>")
    no_more(args, 1, "group <name>")
    ctx.glob.fields["gid"] = parse_group(args[0])


def g_unix_bind(ctx: Context, args: List[str]) -> None:
    usage = "unix-bind [prefix <p>] [mode <m>] [user <u>] [uid <n>] [group <g>] [gid <n>]"
    perms, other = perm_options(args, usage, extra=("prefix",))
    ctx.glob.unix_bind_perms = perms
    if "prefix" in other:
        ctx.glob.fields["unix_bind_prefix"] = other["prefix"]


def g_stats(ctx: Context, args: List[str]) -> None:
    need(args, 1, "stats socket|timeout|maxconn ...")
    sub, rest = args[0], args[1:]
    if sub == "socket":
        usage = "stats socket <path> [mode <m>] [user <u>] [group <g>] [level user|operator|admin]"
        need(rest, 1, usage)
        addrs = parse_address(rest[0], for_bind=True)
        if len(addrs) != 1 or not addrs[0].is_unix:
            raise ConfigError(
                f"stats socket '{rest[0]}' must be a unix socket",
                hint="write a path such as /run/udsproxy/admin.sock",
            )
        opts = rest[1:]
        level = "operator"
        perm_words: List[str] = []
        i = 0
        while i < len(opts):
            word = opts[i]
            if word == "level":
                if i + 1 >= len(opts) or opts[i + 1] not in ("user", "operator", "admin"):
                    raise ConfigError(
                        "'level' expects user, operator or admin", hint=f"usage: {usage}"
                    )
                level = opts[i + 1]
                i += 2
            elif word == "expose-fd":
                if i + 1 >= len(opts) or opts[i + 1] != "listeners":
                    raise ConfigError("'expose-fd' expects 'listeners'")
                ctx.warnings.append(
                    "'expose-fd listeners' has no effect: a reload (SIGHUP) keeps the listeners in-process"
                )
                i += 2
            elif word in ("process", "thread"):
                ctx.warnings.append(f"'{word}' ignored: udsproxy runs one reactor")
                i += 2
            else:
                perm_words.extend(opts[i : i + 2])
                i += 2
        if level == "admin" and addrs[0].family in (ABNS, ABNSZ):
            # An abstract socket has no file permissions: anyone on the host could connect.
            raise ConfigError(
                f"stats socket '{rest[0]}' at level admin: an abstract socket has no file "
                "permissions, so any local user could drive the proxy",
                hint="use a socket file (mode 660) for level admin; abns@ is fine at level user",
            )
        perms, _ = perm_options(perm_words, usage)
        ctx.glob.stats_sockets.append(
            StatsSocket(Bind(addrs[0], perms, lineno=ctx.lineno), level=level, lineno=ctx.lineno)
        )
    elif sub == "timeout":
        need(rest, 1, "stats timeout <time>")
        ctx.glob.fields["stats_timeout"] = parse_time(rest[0])
    elif sub == "maxconn":
        need(rest, 1, "stats maxconn <n>")
        ctx.glob.fields["stats_maxconn"] = parse_int(rest[0], "stats maxconn", 1)
    else:
        raise ConfigError(
            f"unknown 'stats {sub}' in global",
            hint="global accepts 'stats socket', 'stats timeout' and 'stats maxconn'",
        )


def twistd_owned(equivalent: str) -> Handler:
    def handle(ctx: Context, args: List[str]) -> None:
        ctx.warnings.append(f"accepted but owned by twistd: {equivalent}")

    return handle


def refuse(message: str, hint: str) -> Handler:
    def handle(ctx: Context, args: List[str]) -> None:
        raise ConfigError(message, hint=hint)

    return handle


def planned_global(words: str) -> Handler:
    def handle(ctx: Context, args: List[str]) -> None:
        pass

    return handle


def g_tune_int(name: str, lo: int, hi: int) -> Handler:
    def handle(ctx: Context, args: List[str]) -> None:
        need(args, 1, f"{name} <number>")
        ctx.glob.fields[name] = parse_int(args[0], name, lo, hi)

    return handle


def g_spread_checks(ctx: Context, args: List[str]) -> None:
    """``spread-checks <0..50>``: percent of random spread added to check intervals."""
    need(args, 1, "spread-checks <0..50>")
    no_more(args, 1, "spread-checks <0..50>")
    ctx.glob.fields["spread-checks"] = parse_int(args[0], "spread-checks", 0, 50)


def g_hard_stop_after(ctx: Context, args: List[str]) -> None:
    """``hard-stop-after <time>``: the longest a soft stop may last."""
    need(args, 1, "hard-stop-after <time>")
    no_more(args, 1, "hard-stop-after <time>")
    ctx.glob.fields["hard-stop-after"] = parse_time(args[0])


def g_server_state_file(ctx: Context, args: List[str]) -> None:
    """``server-state-file <file>``: where server states are kept across a reload."""
    need(args, 1, "server-state-file <file>")
    no_more(args, 1, "server-state-file <file>")
    ctx.glob.fields["server-state-file"] = args[0]
