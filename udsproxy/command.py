"""The ``udsproxy`` command: twistd with udsproxy as its only command, and no plugin scan.

``udsproxy [twistd options] [udsproxy options]`` runs what ``twistd [twistd options] udsproxy
[udsproxy options]`` runs; the options may come in any order (``-f`` is udsproxy's
``--config``; twistd's own ``-f`` is still ``--file``).

Why not plain twistd: twistd finds its commands with Twisted's plugin scan
(``twisted.plugin.getCache``), which rewrites ``twisted/plugins/dropin.cache`` whenever the
file is missing or older than a plugin module, as it is after ``pip install``. A user who
may not write there (root installed, ``User=udsproxy`` runs) gets ``Unable to write to plugin
cache ...: error number 13`` at every start. This command takes udsproxy's ``ServiceMaker``
from its plugin module instead, so it neither reads nor writes the caches, in a wheel or an
editable install alike. Run by a user who may write every plugin directory (root after a
root install), it first brings the caches up to date with Twisted's own ``getCache``, as
any twistd run by that user would, so that later ``twistd udsproxy`` starts by any user find
them fresh.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Iterator, List, Optional, Sequence, Tuple

from twisted.python import usage
from twisted.scripts import twistd

from .tap import Options


def service_maker() -> Any:
    """udsproxy's ``ServiceMaker``, from its plugin module: the one twistd lists."""
    from twisted.plugins.udsproxy_plugin import udsproxy

    return udsproxy


def refresh_plugin_caches() -> bool:
    """Update Twisted's ``dropin.cache`` files if this user may write every plugin directory.

    Twisted's own ``getCache`` writes them (each lists every plugin beside it, Twisted's
    included); nothing is tried when one directory is not writable, since Twisted would log
    the failure. True when the caches were brought up to date."""
    from twisted.plugin import getCache

    import twisted.plugins

    from .net.connect import effective_access

    directories = [path for path in twisted.plugins.__path__ if os.path.isdir(path)]
    if not all(effective_access(path, os.W_OK | os.X_OK) for path in directories):
        return False
    getCache(twisted.plugins)
    return True


def _option(
    arg: str, parsers: Sequence[usage.Options]
) -> Tuple[Optional[usage.Options], bool, bool]:
    """(the parser that owns option word ``arg``, whether it takes a value, whether the value is
    in ``arg`` already). Earlier parsers win a name both know; long names may be abbreviated
    as getopt allows. (None, False, False) for a word no parser knows."""
    if arg.startswith("--"):
        name, equals, _ = arg[2:].partition("=")
        for exact in (True, False):
            for parser in parsers:
                for long in parser.longOpt:
                    word = long.rstrip("=")
                    if word == name or (not exact and word.startswith(name)):
                        return parser, long.endswith("="), bool(equals)
        return None, False, False
    for parser in parsers:
        # A cluster (-nl FILE) belongs to its first letter's parser; the first letter that
        # takes a value takes the rest of the word, or the next word.
        if arg[1] == ":" or arg[1] not in parser.shortOpt:
            continue
        for at, letter in enumerate(arg[1:], start=2):
            found = parser.shortOpt.find(letter)
            if letter != ":" and found >= 0 and parser.shortOpt[found + 1 : found + 2] == ":":
                return parser, True, at < len(arg)
        return parser, False, False
    return None, False, False


def arrange(argv: Sequence[str], server: usage.Options, ours: usage.Options) -> List[str]:
    """twistd's command line for ``argv``: twistd's options, ``udsproxy``, then udsproxy's.

    A word neither knows (or anything after ``--``) goes to udsproxy's options, which name
    it in their error. ``--help`` and ``--version`` are twistd's. The word ``udsproxy``
    itself may stay where twistd's form has it (``udsproxy -n udsproxy --config FILE``)."""
    tapname = service_maker().tapname
    theirs: List[str] = []
    mine: List[str] = []
    words = list(argv)
    while words:
        arg = words.pop(0)
        if arg == "--":
            mine.extend(words)
            break
        if not arg.startswith("-") or arg == "-":
            if arg != tapname or mine:
                mine.append(arg)
            continue
        parsers = (server,) if arg in ("--help", "--version") else (ours, server)
        parser, takes, inline = _option(arg, parsers)
        target = theirs if parser is server else mine
        target.append(arg)
        if takes and not inline and words:
            target.append(words.pop(0))
    return [*theirs, tapname, *mine]


class ServerOptions(twistd.ServerOptions):
    """twistd's options, with udsproxy as the one command, found without a plugin scan."""

    synopsis = "Usage: udsproxy [twistd options] [udsproxy options]  (-f is udsproxy's --config)"
    longdesc = "The same as: twistd [twistd options] udsproxy [udsproxy options]"

    @property
    def subCommands(self) -> Iterator[Tuple[str, None, Any, str]]:
        maker = service_maker()
        self.loadedPlugins = {maker.tapname: maker}
        yield (maker.tapname, None, maker.options, maker.description)

    def parseOptions(self, options: Optional[Sequence[str]] = None) -> None:
        if options is None:
            options = sys.argv[1:] or ["--help"]
        super().parseOptions(arrange(options, self, Options()))

    def opt_version(self) -> None:
        from . import __version__

        print(f"udsproxy {__version__}")
        super().opt_version()

    def getUsage(self, width: Optional[int] = None) -> str:
        # twistd's usage lists its commands; this one has udsproxy's options instead.
        twistd_part = super().getUsage(width).split("Commands:")[0].rstrip()
        return f"{twistd_part}\n\nudsproxy options:\n{Options().getUsage(width)}"


def main() -> None:
    """The ``udsproxy`` console script (and ``python -m udsproxy``)."""
    from twisted.application import app

    refresh_plugin_caches()
    app.run(twistd.runApp, ServerOptions)
