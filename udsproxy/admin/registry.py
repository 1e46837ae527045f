"""The stats socket's command table: words, level, help line and handler per command.

As HAProxy's cli.c keyword lists: a command is found by its leading words (the longest
registered match wins), ``help`` is generated from the table, and a command below the
session's level answers ``Permission denied.`` Handlers are pure: they read and change the
runtime model through an :class:`AdminContext` and return the reply text; a refused or
malformed command raises :class:`CommandError` with HAProxy's message.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

PERMISSION_DENIED = "Permission denied"


class Level(enum.IntEnum):
    """A stats socket's access level (``stats socket ... level``); higher may do more."""

    USER = 0
    OPERATOR = 1
    ADMIN = 2

    @classmethod
    def parse(cls, name: str) -> Level:
        return cls[name.upper()]

    @property
    def word(self) -> str:
        return self.name.lower()


class CommandError(Exception):
    """A command's error reply (HAProxy's wording)."""


@dataclass
class CliSession:
    """One stats socket client: its level can be lowered by ``operator`` / ``user``."""

    level: Level
    interactive: bool = False


Handler = Callable[[Any, List[str], CliSession], str]


@dataclass(frozen=True)
class Command:
    """One registered command."""

    words: Tuple[str, ...]
    level: Level
    usage: str  # the left column of ``help``
    help: str
    handler: Handler = field(compare=False)

    def help_line(self) -> str:
        return f"  {self.usage:<40}: {self.help}"


# Always listed last by ``help``, handled by the protocol (``help`` by the registry).
FRAMING_HELP = (
    ("help [<command>]", "list matching or all commands"),
    ("prompt", "toggle interactive mode with prompt"),
    ("quit", "disconnect"),
)


class Registry:
    """The command table and its dispatcher."""

    def __init__(self) -> None:
        self.commands: List[Command] = []

    def register(
        self, words: str, level: Level, usage: str, help: str
    ) -> Callable[[Handler], Handler]:
        """Decorator: register ``handler`` for the leading ``words``."""

        def wrap(handler: Handler) -> Handler:
            self.commands.append(Command(tuple(words.split()), level, usage, help, handler))
            return handler

        return wrap

    def find(self, args: Sequence[str]) -> Optional[Command]:
        """The command whose words lead ``args``, the longest match first."""
        best: Optional[Command] = None
        for cmd in self.commands:
            n = len(cmd.words)
            if tuple(args[:n]) == cmd.words and (best is None or n > len(best.words)):
                best = cmd
        return best

    def help(self, prefix: Sequence[str] = ()) -> str:
        """HAProxy's ``help``: every command (sorted), then help/prompt/quit."""
        lines = ["The following commands are valid at this level:"]
        lines += self._lines(prefix)
        return "\n".join(lines)

    def _lines(self, prefix: Sequence[str]) -> List[str]:
        chosen = [c for c in self.commands if tuple(c.words[: len(prefix)]) == tuple(prefix)]
        out = [c.help_line() for c in sorted(chosen, key=lambda c: c.usage)]
        out += [f"  {usage:<40}: {text}" for usage, text in FRAMING_HELP]
        return out

    def unknown(self, args: Sequence[str]) -> str:
        """The reply to an unknown command: the commands sharing its first word, if any."""
        lines = ["Unknown command, but maybe one of the following ones is a better match:"]
        near = self._lines(args[:1])
        if len(near) == len(FRAMING_HELP):
            near = self._lines(())
        return "\n".join(lines + near)

    def dispatch(self, ctx: Any, args: List[str], session: CliSession) -> str:
        """Run one command: its reply, an error message, or ``Permission denied``."""
        if args[0] == "help":
            prefix = args[1:]
            if prefix and len(self._lines(prefix)) == len(FRAMING_HELP):
                prefix = []  # nothing matches: everything, as HAProxy
            return self.help(prefix)
        cmd = self.find(args)
        if cmd is None:
            return self.unknown(args)
        if session.level < cmd.level:
            return PERMISSION_DENIED
        try:
            return cmd.handler(ctx, args, session)
        except CommandError as exc:
            return str(exc)

    def names(self) -> Iterable[Tuple[str, ...]]:
        return (c.words for c in self.commands)


def table(registry: Registry) -> Dict[Tuple[str, ...], Command]:
    """The commands by their words (for tests and docs)."""
    return {c.words: c for c in registry.commands}
