"""The ``udsproxy`` command: twistd's command line, with udsproxy as its only command."""

from __future__ import annotations

from typing import List

import pytest
from twisted.application import service

from udsproxy.command import ServerOptions, arrange
from udsproxy.tap import Options


def twistd_line(*argv: str) -> List[str]:
    return arrange(list(argv), ServerOptions(), Options())


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--config", "a.cfg", "--check"], ["udsproxy", "--config", "a.cfg", "--check"]),
        (
            ["--config", "a.cfg", "-n", "--pidfile", "u.pid"],
            ["-n", "--pidfile", "u.pid", "udsproxy", "--config", "a.cfg"],
        ),
        (
            ["-n", "--pidfile=", "--config=a.cfg"],
            ["-n", "--pidfile=", "udsproxy", "--config=a.cfg"],
        ),
        # -f and -c are udsproxy's; a cluster goes with its first letter, whose value follows
        (["-cf", "a.cfg", "-nl", "u.log"], ["-nl", "u.log", "udsproxy", "-cf", "a.cfg"]),
        (["-fa.cfg", "-nlu.log"], ["-nlu.log", "udsproxy", "-fa.cfg"]),
        # getopt's abbreviations, as twistd and udsproxy each accept them
        (["--conf", "a.cfg", "--nod"], ["--nod", "udsproxy", "--conf", "a.cfg"]),
        (["-u", "1000", "--config", "a.cfg"], ["-u", "1000", "udsproxy", "--config", "a.cfg"]),
        # twistd's form, with the command word, works too
        (["-n", "udsproxy", "--config", "a.cfg"], ["-n", "udsproxy", "--config", "a.cfg"]),
        (["--help"], ["--help", "udsproxy"]),
        (["--version"], ["--version", "udsproxy"]),
        # what neither knows is udsproxy's to refuse
        (["--bogus", "-n"], ["-n", "udsproxy", "--bogus"]),
        (["--config", "a.cfg", "extra"], ["udsproxy", "--config", "a.cfg", "extra"]),
        (["-n", "--", "--check"], ["-n", "udsproxy", "--check"]),
    ],
)
def test_arguments_are_split_between_twistd_and_udsproxy(
    argv: List[str], expected: List[str]
) -> None:
    """Each option goes to the parser that knows its name, in any order."""
    assert twistd_line(*argv) == expected


def test_options_parse_as_twistds_with_the_udsproxy_command(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Parsed, the mixed line is twistd's options with udsproxy's as its sub-options."""
    cfg = tmp_path / "a.cfg"
    cfg.write_text(f"frontend f\n    bind {tmp_path}/fe.sock\n")
    options = ServerOptions()
    options.parseOptions(["--config", str(cfg), "-n", "--pidfile="])
    assert options.subCommand == "udsproxy"
    assert options["nodaemon"] and options["pidfile"] == ""
    assert options.subOptions["config"] == str(cfg)
    assert options.subOptions.parsed is not None
    assert service.IServiceMaker.providedBy(options.loadedPlugins["udsproxy"])


def test_no_plugin_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command never calls Twisted's plugin scan (the one that rewrites dropin.cache)."""
    import twisted.plugin

    def scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("getCache called")

    monkeypatch.setattr(twisted.plugin, "getCache", scan)
    options = ServerOptions()
    options.parseOptions(["-n", "--demo-port", "8081"])
    assert options.subCommand == "udsproxy" and options.subOptions["demo-port"] == "8081"


def test_usage_lists_both_option_sets() -> None:
    """--help shows twistd's options and udsproxy's, and no twistd command list."""
    text = str(ServerOptions())
    assert "--pidfile=" in text and "--config=" in text and "--check" in text
    assert "Commands:" not in text
    assert "Usage: udsproxy [twistd options] [udsproxy options]" in text
