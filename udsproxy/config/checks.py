"""Health-check settings: ``option httpchk``, ``http-check`` rules and the check server options.

Parsed into typed, frozen values (``model.Check``, ``model.HttpCheck``) with HAProxy's
defaults and checks; :mod:`udsproxy.health` uses them.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from typing import Callable, Dict, List, Tuple

from ..errors import ConfigError
from .builders import Context, need, no_more
from .model import (
    ExpectMatch,
    HttpCheck,
    HttpCheckExpect,
    HttpCheckOther,
    HttpCheckSend,
    Observe,
    OnError,
)
from .values import parse_int, parse_time

HTTP_CHECK_ACTIONS = (
    "comment",
    "connect",
    "disable-on-404",
    "expect",
    "send",
    "send-state",
    "set-var",
    "unset-var",
)
MATCH_METHODS = ("str", "beg", "end", "sub", "reg")
OK_STATUSES = ("L7OK", "L7OKC", "L6OK", "L4OK")
ERROR_STATUSES = ("L7OKC", "L7RSP", "L7STS", "L6RSP", "L4CON")
TOUT_STATUSES = ("L7TOUT", "L6TOUT", "L4TOUT")
_STATUS_CODES = re.compile(r"[0-9]{3}(?:-[0-9]{3})?(?:,[0-9]{3}(?:-[0-9]{3})?)*")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


# --------------------------------------------------------------------------- server options


def check_interval(word: str) -> Callable[[str], int]:
    """A value parser for ``inter``, ``fastinter`` and ``downinter``: a time above zero."""

    def parse(value: str) -> int:
        ms = parse_time(value)
        if ms <= 0:
            raise ConfigError(
                f"'{word}' must be a positive time, got '{value}'",
                hint=f"e.g. {word} 2s; an interval of 0 would check without pause",
            )
        return ms

    return parse


def parse_check_addr(value: str) -> str:
    """``addr <ipv4|ipv6>``: where checks connect instead of the server's address."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(
            f"'addr' expects an IPv4 or IPv6 address, got '{value}'",
            hint="e.g. addr 127.0.0.1 (host names are not resolved)",
        ) from None
    return value


def parse_observe(value: str) -> Observe:
    """``observe layer4|layer7`` (``none``: HAProxy's default, accepted as such)."""
    try:
        return Observe(value)
    except ValueError:
        raise ConfigError(f"unknown observe mode '{value}'", hint="use layer4 or layer7") from None


def parse_on_error(value: str) -> OnError:
    """``on-error fastinter|fail-check|sudden-death|mark-down``."""
    try:
        return OnError(value)
    except ValueError:
        modes = ", ".join(m.value for m in OnError)
        raise ConfigError(f"unknown on-error mode '{value}'", hint=f"use one of {modes}") from None


# --------------------------------------------------------------------------- option httpchk


def o_httpchk(ctx: Context, args: List[str]) -> None:
    """``option httpchk``, ``<uri>``, ``<method> <uri>`` or ``<method> <uri> <version>``."""
    usage = "option httpchk [<method>] [<uri>] [<version>]"
    ctx.px.options["httpchk"] = not ctx.negated
    if ctx.negated:
        return
    no_more(args, 3, usage)
    method, uri, version = "OPTIONS", "/", "HTTP/1.0"
    if len(args) == 1:
        uri = args[0]
    elif len(args) >= 2:
        method, uri = args[0], args[1]
        if len(args) == 3:
            version = args[2]
    _check_method(method, usage)
    _check_version(version, usage)
    ctx.px.fields["httpchk"] = HttpCheck(method=method, uri=uri, version=version)


def _check_method(method: str, usage: str) -> None:
    if not _TOKEN.fullmatch(method):
        raise ConfigError(f"'{method}' is not an HTTP method", hint=f"usage: {usage}")


def _check_version(version: str, usage: str) -> None:
    if not re.fullmatch(r"HTTP/[0-9]\.[0-9]", version):
        raise ConfigError(
            f"'{version}' is not an HTTP version",
            hint=f"write HTTP/1.0 or HTTP/1.1 (add headers with 'http-check send'); usage: {usage}",
        )


# --------------------------------------------------------------------------- http-check


def p_http_check(ctx: Context, args: List[str]) -> None:
    """``http-check <action> ...``: one rule, appended in order."""
    need(args, 1, "http-check send|expect|... <options>")
    action, rest = args[0], args[1:]
    if action == "send":
        rule: object = _send(rest)
    elif action == "expect":
        rule = _expect(rest)
    elif action in HTTP_CHECK_ACTIONS:
        rule = HttpCheckOther(action, tuple(rest))
    else:
        close = difflib.get_close_matches(action, HTTP_CHECK_ACTIONS, n=1)
        raise ConfigError(
            f"unknown 'http-check {action}'",
            hint=f"did you mean 'http-check {close[0]}'?"
            if close
            else "known: " + ", ".join(HTTP_CHECK_ACTIONS),
        )
    ctx.px.http_check_rules.append(rule)  # type: ignore[arg-type]


def _pairs(words: List[str], usage: str) -> List[Tuple[str, str]]:
    """``<word> <value>`` pairs; a word without its value is an error."""
    out = []
    i = 0
    while i < len(words):
        if i + 1 >= len(words):
            raise ConfigError(f"'{words[i]}' needs a value", hint=f"usage: {usage}")
        out.append((words[i], words[i + 1]))
        i += 2
    return out


def _send(words: List[str]) -> HttpCheckSend:
    usage = (
        "http-check send [meth <method>] [uri <uri>|uri-lf <fmt>] [ver <version>] "
        "[hdr <name> <fmt>]* [body <string>|body-lf <fmt>] [comment <msg>]"
    )
    fields: Dict[str, object] = {}
    headers: List[Tuple[str, str]] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "hdr":
            if i + 2 >= len(words):
                raise ConfigError("'hdr' needs a name and a value", hint=f"usage: {usage}")
            name = words[i + 1]
            if not _TOKEN.fullmatch(name):
                raise ConfigError(f"'{name}' is not a header field name", hint=f"usage: {usage}")
            headers.append((name, words[i + 2]))
            i += 3
            continue
        if word not in ("meth", "uri", "uri-lf", "ver", "body", "body-lf", "comment"):
            raise ConfigError(f"unknown 'http-check send' option '{word}'", hint=f"usage: {usage}")
        if i + 1 >= len(words):
            raise ConfigError(f"'{word}' needs a value", hint=f"usage: {usage}")
        value = words[i + 1]
        if word == "meth":
            _check_method(value, usage)
            fields["method"] = value
        elif word in ("uri", "uri-lf"):
            fields["uri"], fields["uri_lf"] = value, word == "uri-lf"
        elif word == "ver":
            _check_version(value, usage)
            fields["version"] = value
        elif word in ("body", "body-lf"):
            fields["body"], fields["body_lf"] = value, word == "body-lf"
        else:
            fields["comment"] = value
        i += 2
    return HttpCheckSend(headers=tuple(headers), **fields)  # type: ignore[arg-type]


def _expect(words: List[str]) -> HttpCheckExpect:
    usage = "http-check expect [min-recv <n>] [comment <msg>] [<option> <value>]... [!] <match> <pattern>"
    options = {
        "min-recv": "min_recv",
        "comment": "comment",
        "ok-status": "ok_status",
        "error-status": "error_status",
        "tout-status": "tout_status",
        "on-success": "on_success",
        "on-error": "on_error",
        "status-code": "status_code",
    }
    fields: Dict[str, object] = {}
    i = 0
    while i < len(words) and words[i] in options:
        word = words[i]
        if i + 1 >= len(words):
            raise ConfigError(f"'{word}' needs a value", hint=f"usage: {usage}")
        value = words[i + 1]
        if word == "min-recv":
            fields["min_recv"] = parse_int(value, "min-recv", -1)
        else:
            allowed = {
                "ok-status": OK_STATUSES,
                "error-status": ERROR_STATUSES,
                "tout-status": TOUT_STATUSES,
            }.get(word)
            if allowed is not None and value not in allowed:
                raise ConfigError(
                    f"invalid {word} '{value}'", hint="use one of " + ", ".join(allowed)
                )
            fields[options[word]] = value
        i += 2
    rest = words[i:]
    negate = False
    if rest and rest[0].startswith("!"):
        negate = True
        rest = [rest[0][1:]] + rest[1:] if rest[0] != "!" else rest[1:]
    if not rest:
        raise ConfigError("missing match", hint=f"usage: {usage}")
    try:
        match = ExpectMatch(rest[0])
    except ValueError:
        matches = ", ".join(m.value for m in ExpectMatch)
        raise ConfigError(
            f"unknown 'http-check expect' match '{rest[0]}'", hint=f"use one of {matches}"
        ) from None
    if match in (ExpectMatch.HDR, ExpectMatch.FHDR):
        fields.update(_expect_header(match, rest[1:]))
    else:
        pattern_usage = f"http-check expect [!] {match} <pattern>"
        need(rest, 2, pattern_usage)
        no_more(rest, 2, pattern_usage)
        pattern = rest[1]
        if match == ExpectMatch.STATUS and not _STATUS_CODES.fullmatch(pattern):
            raise ConfigError(
                f"invalid status codes '{pattern}'",
                hint="write codes or ranges separated by commas, e.g. 200,300-399",
            )
        if match in (ExpectMatch.RSTATUS, ExpectMatch.RSTRING):
            _check_regex(pattern)
        fields["pattern"] = pattern
    return HttpCheckExpect(match=match, negate=negate, **fields)  # type: ignore[arg-type]


def _check_regex(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"invalid regex '{pattern}': {exc}", hint="escape special characters with '\\'"
        ) from None


def _expect_header(match: ExpectMatch, words: List[str]) -> Dict[str, object]:
    """``{name|name-lf} [-m <meth>] <name> [{value|value-lf} [-m <meth>] <value>]``."""
    usage = f"http-check expect [!] {match} name [-m <meth>] <name> [value [-m <meth>] <value>]"
    fields: Dict[str, object] = {}
    for part in ("name", "value"):
        if not words:
            if part == "name":
                raise ConfigError(f"'{match}' needs 'name <name>'", hint=f"usage: {usage}")
            break
        if words[0] not in (part, f"{part}-lf"):
            raise ConfigError(
                f"unexpected word '{words[0]}'", hint=f"expected '{part}'; usage: {usage}"
            )
        is_lf = words[0].endswith("-lf")
        words = words[1:]
        method = "str"
        if words[:1] == ["-m"]:
            if len(words) < 2 or words[1] not in MATCH_METHODS:
                raise ConfigError(
                    "'-m' expects a matching method", hint="use one of " + ", ".join(MATCH_METHODS)
                )
            method = words[1]
            words = words[2:]
        if not words:
            raise ConfigError(f"'{part}' needs a pattern", hint=f"usage: {usage}")
        if method == "reg":
            if is_lf:
                raise ConfigError(
                    f"'{part}-lf' cannot be used with '-m reg'", hint=f"usage: {usage}"
                )
            _check_regex(words[0])
        key = "pattern" if part == "name" else "value"
        fields[key] = words[0]
        fields[f"{part}_method"] = method
        fields[f"{part}_lf"] = is_lf
        words = words[1:]
    if words:
        raise ConfigError(f"unexpected word '{words[0]}'", hint=f"usage: {usage}")
    return fields
