"""Handlers of ``http-request``, ``http-response`` and ``redirect``: each line parsed and compiled.

The words are checked here (every error names the token, with a hint) and the action is
built by the rules engine (:mod:`udsproxy.rules.actions`); values are lf-strings compiled
by :func:`udsproxy.rules.lfvalue.compile_lf`, conditions by :func:`udsproxy.rules.compile_condition`,
for the place the rule runs (request or response fetches). Files (``errorfile``, ``file``,
``lf-file``) are read when the line is read.

What a rule may not do to the message's framing is refused here (see
``udsproxy.rules.actions``): setting, adding, replacing or deleting Content-Length or a
hop-by-hop field, adding or deleting Host, a ``del-header`` pattern matching one of them,
a 1xx ``set-status``, a constant ``set-method`` that is not a method.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Callable, Dict, List, Optional, Pattern, Sequence, Tuple

from ..errors import ConfigError
from ..http import pages
from ..log.formats import LEVELS
from ..logformat.session import SILENT
from ..rules import (
    Condition,
    RuleContext,
    Where,
    compile_condition,
    compile_sample,
    split_condition,
    variables,
)
from ..rules import actions as act
from ..rules.lfvalue import LfValue, compile_lf
from ..rules.patterns import compile_regex
from ..rules.sample import Origin
from . import model
from .builders import FRONTEND, LISTEN, Context, need
from .errorfile import ERRORFILE_CODES, read_errorfile
from .logformat import add_slot, capture_length
from .values import parse_int

REQUEST_ACTIONS = (
    "add-header",
    "allow",
    "auth",
    "capture",
    "del-header",
    "deny",
    "redirect",
    "reject",
    "replace-header",
    "replace-path",
    "replace-pathq",
    "replace-uri",
    "replace-value",
    "return",
    "set-header",
    "set-log-level",
    "set-method",
    "set-path",
    "set-pathq",
    "set-query",
    "set-uri",
    "set-var",
    "set-var-fmt",
    "unset-var",
)
RESPONSE_ACTIONS = (
    "add-header",
    "allow",
    "capture",
    "del-header",
    "deny",
    "replace-header",
    "replace-value",
    "set-header",
    "set-log-level",
    "set-status",
    "set-var",
    "set-var-fmt",
    "unset-var",
)
# HAProxy actions udsproxy does not have (said so, rather than "unknown").
NOT_SUPPORTED = (
    "add-acl",
    "cache-store",
    "cache-use",
    "del-acl",
    "del-map",
    "disable-l7-retry",
    "do-resolve",
    "early-hint",
    "normalize-uri",
    "sc-inc-gpc",
    "sc-inc-gpc0",
    "sc-inc-gpc1",
    "sc-set-gpt",
    "sc-set-gpt0",
    "send-spoe-group",
    "set-dst",
    "set-dst-port",
    "set-map",
    "set-mark",
    "set-nice",
    "set-priority-class",
    "set-priority-offset",
    "set-src",
    "set-src-port",
    "set-timeout",
    "set-tos",
    "silent-drop",
    "strict-mode",
    "tarpit",
    "track-sc0",
    "track-sc1",
    "track-sc2",
    "use-service",
    "wait-for-body",
    "wait-for-handshake",
)
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_LITERAL = re.compile(r"[\r\n\x00]")
_TARGET_BAD = re.compile(r"[\x00-\x20\x7f]")
_REPLY_WORDS = (
    "status",
    "deny_status",
    "content-type",
    "errorfile",
    "errorfiles",
    "file",
    "lf-file",
    "string",
    "lf-string",
    "hdr",
)
REDIRECT_OPTIONS = (
    "location",
    "prefix",
    "scheme",
    "code",
    "drop-query",
    "append-slash",
    "ignore-empty",
    "set-cookie",
    "clear-cookie",
)


class Line:
    """One rule line being compiled: where it runs and its helpers."""

    def __init__(self, ctx: Context, keyword: str, where: Where) -> None:
        self.ctx = ctx
        self.keyword = keyword
        self.where = where
        self.response = where is Where.HTTP_RESPONSE
        self.files: List[Tuple[str, bytes]] = []
        self.record = False  # a value prints log-format variables

    def error(self, message: str, hint: str = "") -> ConfigError:
        return ConfigError(message, keyword=self.keyword, hint=hint)

    def origin(self) -> Origin:
        return Origin(self.where, self.ctx.filename, self.ctx.lineno)

    def lf(self, text: str, what: str) -> LfValue:
        value = compile_lf(
            text, where=self.where, filename=self.ctx.filename, lineno=self.ctx.lineno
        )
        if _BAD_LITERAL.search(value.literal):
            raise self.error(
                f"{what} {text!r} holds a CR, LF or NUL",
                hint="a header value is one line: no \\r, \\n or \\x00 escapes",
            )
        self.record = self.record or value.record
        self.ctx.warnings.extend(f"{what} {text!r}: {w}" for w in value.warnings)
        return value

    def header_name(self, name: str) -> bytes:
        if not _HEADER_NAME.match(name):
            raise self.error(
                f"'{name}' is not a header name",
                hint="letters, digits and !#$%&'*+-.^_`|~ (no ':' or blanks)",
            )
        return name.encode("latin-1")

    def unprotected(self, name: str, verb: str) -> None:
        """Refuse a rule on a field the proxy frames or manages per connection."""
        lower = name.lower().encode("latin-1")
        if lower in act.PROTECTED:
            raise self.error(
                f"'{verb} {name}': {name} is set by the proxy for each connection (body "
                "framing, keep-alive, upgrades); a rule may not change it",
                hint="udsproxy frames each hop itself; for keep-alive use 'option "
                "http-server-close' or 'option httpclose'",
            )

    def file(self, path: str) -> bytes:
        try:
            with open(path, "rb") as handle:
                data = handle.read(self.bufsize() + 1)
        except OSError as exc:
            raise self.error(
                f"cannot read '{path}': {exc.strerror}",
                hint="check the path and permissions (relative paths start at the current "
                "directory)",
            ) from None
        if len(data) > self.bufsize():
            raise self.error(
                f"'{path}' is larger than tune.bufsize ({self.bufsize()} bytes)",
                hint="a response the proxy makes must fit in one buffer",
            )
        self.files.append((path, data))
        return data

    def bufsize(self) -> int:
        raw = self.ctx.glob.fields.get("tune.bufsize")
        return raw if isinstance(raw, int) else model.Global.bufsize


# ----------------------------------------------------------------- the keywords
def p_http_request(ctx: Context, args: List[str]) -> None:
    _rule(ctx, args, "http-request", Where.HTTP_REQUEST, REQUEST_ACTIONS, ctx.px.http_request)
    if ctx.px.redirects:
        ctx.warnings.append(
            "an 'http-request' rule placed after a 'redirect' rule is still processed "
            "before it (as HAProxy)"
        )


def p_http_response(ctx: Context, args: List[str]) -> None:
    _rule(ctx, args, "http-response", Where.HTTP_RESPONSE, RESPONSE_ACTIONS, ctx.px.http_response)


def p_redirect(ctx: Context, args: List[str]) -> None:
    line = Line(ctx, "redirect", Where.HTTP_REQUEST)
    head, cond_words = split_condition(args)
    try:
        run = _redirect(line, head, lf_values=False)
        cond = _condition(line, cond_words)
    except ConfigError as exc:
        exc.keyword = exc.keyword or line.keyword
        raise
    ctx.px.redirects.append(model.HttpRule(act.Action(("redirect", *head), run), cond, ctx.lineno))


def _rule(
    ctx: Context,
    args: List[str],
    keyword: str,
    where: Where,
    allowed: Sequence[str],
    into: List[model.HttpRule],
) -> None:
    need(args, 1, f"{keyword} <action> [options...] [if|unless <condition>]")
    head, cond_words = split_condition(args)
    if not head:
        raise ConfigError("missing action", hint=f"one of: {', '.join(allowed)}")
    word = head[0]
    name, paren, inner = word.partition("(")
    line = Line(ctx, f"{keyword} {name}", where)
    if name not in allowed:
        raise _unknown_action(keyword, name, allowed)
    if paren and name not in ("set-var", "set-var-fmt", "unset-var"):
        raise line.error(f"'{name}' takes no '(...)'", hint=f"write '{keyword} {name} ...'")
    try:
        run = _BUILDERS[name](line, inner if paren else None, head[1:])
        cond = _condition(line, cond_words)
    except ConfigError as exc:  # the engine's errors: name the action too
        exc.keyword = exc.keyword or line.keyword
        raise
    action = act.Action(head, run, tuple(line.files), line.record)
    into.append(model.HttpRule(action, cond, ctx.lineno))


def _unknown_action(keyword: str, name: str, allowed: Sequence[str]) -> ConfigError:
    here = ", ".join(allowed)
    if name in NOT_SUPPORTED or (name in REQUEST_ACTIONS and keyword == "http-response"):
        return ConfigError(
            f"action '{name}' is not supported in {keyword} rules",
            keyword=f"{keyword} {name}",
            hint=f"udsproxy's {keyword} actions: {here}",
        )
    close = difflib.get_close_matches(name, allowed, n=1)
    return ConfigError(
        f"unknown action '{name}'",
        keyword=f"{keyword} {name}",
        hint=(f"did you mean '{close[0]}'? " if close else "") + f"{keyword} actions: {here}",
    )


def _condition(line: Line, words: List[str]) -> Optional[Condition]:
    if not words:
        return None
    return compile_condition(
        words,
        line.ctx.px.acls,
        where=line.where,
        filename=line.ctx.filename,
        lineno=line.ctx.lineno,
    )


Builder = Callable[[Line, Optional[str], List[str]], act.Run]


def _exactly(line: Line, args: List[str], count: int, usage: str) -> None:
    if len(args) < count:
        raise line.error("missing argument", hint=f"usage: {usage}")
    if len(args) > count:
        raise line.error(f"unexpected word '{args[count]}'", hint=f"usage: {usage}")


# ----------------------------------------------------------------- header actions
def _set_header(line: Line, inner: Optional[str], args: List[str], add: bool = False) -> act.Run:
    verb = "add-header" if add else "set-header"
    _exactly(line, args, 2, f"{verb} <name> <fmt>")
    name = line.header_name(args[0])
    line.unprotected(args[0], verb)
    if add and not line.response and name.lower() == act.HOST:
        raise line.error(
            f"'add-header {args[0]}': a request has one Host",
            hint="use 'set-header Host <fmt>' to replace it",
        )
    value = line.lf(args[1], "value")
    if (
        not line.response
        and name.lower() == act.HOST
        and value.const is not None
        and not act._HOST_VALUE.match(value.const)
    ):
        raise line.error(
            f"'{value.const}' is not a host",
            hint="a host name or address, and an optional :port",
        )
    return act.set_header(name, value, line.response, add)


def _add_header(line: Line, inner: Optional[str], args: List[str]) -> act.Run:
    return _set_header(line, inner, args, add=True)


def _del_header(line: Line, inner: Optional[str], args: List[str]) -> act.Run:
    usage = "del-header <name> [-m str|beg|end|sub|reg]"
    if not args:
        raise line.error("missing header name", hint=f"usage: {usage}")
    method = "str"
    if len(args) == 3 and args[1] == "-m":
        method = args[2]
    elif len(args) != 1:
        raise line.error(f"unexpected word '{args[1]}'", hint=f"usage: {usage}")
    if method not in ("str", "beg", "end", "sub", "reg"):
        raise line.error(
            f"unknown matching method '{method}'", hint="del-header -m str|beg|end|sub|reg"
        )
    pattern = args[0]
    if method == "reg":
        compile_regex(pattern, False, "", line.origin())
    elif method == "str":
        line.header_name(pattern)
    match = act.name_matcher(pattern, method)
    guarded = set(act.PROTECTED) | (set() if line.response else {act.HOST})
    hit = sorted(n.decode() for n in guarded if match(n))
    if hit:
        shown = pattern if method == "str" else f"{pattern} -m {method}"
        what = ", ".join(hit)
        raise line.error(
            f"'del-header {shown}' would delete {what}, which "
            + (
                "every HTTP/1.1 request needs"
                if hit == ["host"]
                else "the proxy sets per connection"
            ),
            hint="name the headers to delete more narrowly",
        )
    return act.del_header(pattern, method, line.response)


def _replace_header(
    line: Line, inner: Optional[str], args: List[str], per_value: bool = False
) -> act.Run:
    verb = "replace-value" if per_value else "replace-header"
    _exactly(line, args, 3, f"{verb} <name> <match-regex> <replace-fmt>")
    name = line.header_name(args[0])
    line.unprotected(args[0], verb)
    regex, fmt = _replacement(line, args[1], args[2], "a header value is one line")
    return act.replace_header(name, regex, fmt, line.response, per_value)


def _replacement(
    line: Line, regex_text: str, fmt_text: str, one_line: str
) -> Tuple[Pattern[str], LfValue]:
    """A ``replace-*`` rule's regex and replacement, the replacement checked when constant:
    no lone backslash, no group the regex lacks, no CR, LF or NUL."""
    regex = compile_regex(regex_text, False, "", line.origin())
    fmt = line.lf(fmt_text, "replacement")
    if fmt.const is not None:
        parts = act.parse_replacement(fmt.const)
        if parts is None:
            raise line.error(
                f"'{fmt_text}' ends with a lone backslash", hint="write \\\\ for a backslash"
            )
        groups = [p for p in parts if isinstance(p, int)]
        if groups and max(groups) > regex.groups:
            raise line.error(
                f"'\\{max(groups)}' names a group '{regex_text}' does not have",
                hint=f"the regex has {regex.groups} group(s)",
            )
        if any(isinstance(p, str) and _BAD_LITERAL.search(p) for p in parts):
            raise line.error(f"'{fmt_text}' makes a CR, LF or NUL", hint=one_line)
    return regex, fmt


def _replace_target(part: str) -> Builder:
    def build(line: Line, inner: Optional[str], args: List[str]) -> act.Run:
        _exactly(line, args, 2, f"replace-{part} <match-regex> <replace-fmt>")
        regex, fmt = _replacement(line, args[0], args[1], "a request target is one line")
        return act.replace_target(part, regex, fmt)

    return build


def _replace_value(line: Line, inner: Optional[str], args: List[str]) -> act.Run:
    return _replace_header(line, inner, args, per_value=True)


# ----------------------------------------------------------------- the request line
def _target_part(maker: Callable[[LfValue], act.Run], verb: str) -> Builder:
    def build(line: Line, inner: Optional[str], args: List[str]) -> act.Run:
        _exactly(line, args, 1, f"{verb} <fmt>")
        value = line.lf(args[0], "value")
        if value.const is not None:
            if _TARGET_BAD.search(value.const):
                raise line.error(
                    f"'{value.const}' holds a blank or a control character",
                    hint="percent-encode it (%20 for a space)",
                )
            if verb == "set-uri" and not value.const:
                raise line.error("an empty request target", hint="e.g. set-uri /")
        return maker(value)

    return build


def _set_method(line: Line, inner: Optional[str], args: List[str]) -> act.Run:
    _exactly(line, args, 1, "set-method <fmt>")
    value = line.lf(args[0], "method")
    if value.const is not None:
        problem = act.method_problem(value.const)
        if problem:
            raise line.error(problem, hint="e.g. set-method POST")
    return act.set_method(value)


# ----------------------------------------------------------------- variables
def _var_name(line: Line, inner: Optional[str], verb: str) -> Tuple[str, str, Tuple[str, ...]]:
    if inner is None or not inner.endswith(")"):
        raise line.error(
            f"'{verb}' needs the variable in parentheses",
            hint=f"e.g. {verb}(txn.user)",
        )
    words = inner[:-1].split(",")
    origin = line.origin()
    scope, name = variables.parse_name(words[0].strip(), origin)
    conditions = variables.check_conditions([w.strip() for w in words[1:]], origin)
    return scope, name, conditions


def _set_var(line: Line, inner: Optional[str], args: List[str], fmt: bool = False) -> act.Run:
    verb = "set-var-fmt" if fmt else "set-var"
    scope, name, conditions = _var_name(line, inner, verb)
    _exactly(line, args, 1, f"{verb}(<scope>.<name>[,<cond>...]) <{'fmt' if fmt else 'expr'}>")
    value: Callable[[RuleContext], Any]
    if fmt:
        value = line.lf(args[0], "value").fn
    else:
        value = compile_sample(
            args[0], where=line.where, filename=line.ctx.filename, lineno=line.ctx.lineno
        ).fn
    return variables.set_var(scope, name, conditions, value)


def _set_var_fmt(line: Line, inner: Optional[str], args: List[str]) -> act.Run:
    return _set_var(line, inner, args, fmt=True)


def _unset_var(line: Line, inner: Optional[str], args: List[str]) -> act.Run:
    scope, name, conditions = _var_name(line, inner, "unset-var")
    if conditions:
        raise line.error("unset-var takes no condition", hint="unset-var(<scope>.<name>)")
    _exactly(line, args, 0, "unset-var(<scope>.<name>)")
    return variables.unset_var(scope, name)


# ----------------------------------------------------------------- replies
def _status(line: Line, word: str, lo: int, hi: int) -> int:
    try:
        status = int(word, 10)
    except ValueError:
        raise line.error(f"status '{word}' is not a number", hint=f"a code in {lo}..{hi}") from None
    if not lo <= status <= hi:
        raise line.error(f"status {status} is out of range", hint=f"a code in {lo}..{hi}")
    return status


def _reply(line: Line, inner: Optional[str], args: List[str], deny: bool) -> act.Run:
    """``deny``/``return`` with HAProxy's http_parse_http_reply syntax."""
    verb = "deny" if deny else "return"
    usage = (
        f"{verb} [status <code>] [content-type <type>] [default-errorfiles | errorfile "
        "<file> | file <file> | lf-file <file> | string <str> | lf-string <fmt>] "
        "[hdr <name> <fmt>]..."
    )
    status: Optional[int] = None
    content_type: Optional[str] = None
    payload: Optional[Tuple[str, str]] = None
    hdrs: List[Tuple[bytes, LfValue]] = []
    i = 0
    while i < len(args):
        word = args[i]
        if word == "default-errorfiles":
            payload = _one_payload(line, payload, (word, ""))
            i += 1
            continue
        if word not in _REPLY_WORDS or (word == "deny_status" and not deny):
            raise line.error(f"unexpected word '{word}'", hint=f"usage: {usage}")
        if i + 1 >= len(args):
            raise line.error(f"'{word}' needs a value", hint=f"usage: {usage}")
        value = args[i + 1]
        if word == "status" or word == "deny_status":
            status = _status(line, value, 200, 599)
        elif word == "content-type":
            content_type = value
        elif word in ("errorfile", "file", "lf-file", "string", "lf-string"):
            payload = _one_payload(line, payload, (word, value))
        elif word == "errorfiles":
            raise line.error(
                "'errorfiles' needs http-errors sections, which udsproxy does not have",
                hint="use 'errorfile <file>' or the proxy's errorfile lines",
            )
        elif word == "hdr":
            if i + 2 >= len(args):
                raise line.error("'hdr' needs a name and a value", hint=f"usage: {usage}")
            name = args[i + 1]
            if (
                name.lower() in ("content-type", "content-length")
                or name.lower().encode() in act.PROTECTED
            ):
                raise line.error(
                    f"'hdr {name}': the proxy sets it for the response it makes",
                    hint="use 'content-type <type>' for the type",
                )
            hdrs.append((line.header_name(name), line.lf(args[i + 2], "value")))
            i += 3
            continue
        i += 2
    if line.response:
        code = 502 if status is None else status
        flags = "PH"
    else:
        code = (403 if deny else 200) if status is None else status
        flags = "PR" if deny else "LR"
    if deny and payload is None and content_type is None and not hdrs:
        payload = ("default-errorfiles", "")  # HAProxy: bare deny [deny_status] uses the pages
    kind, value = payload if payload is not None else ("", "")
    reason = pages.reason(code).encode()
    if kind in ("default-errorfiles", "errorfile"):
        if code not in ERRORFILE_CODES:
            raise line.error(
                f"status {code} has no error page",
                hint="one of " + " ".join(str(c) for c in ERRORFILE_CODES),
            )
        if hdrs or content_type is not None:
            line.ctx.warnings.append(
                f"'{verb}': content-type and hdr are ignored with an error page"
            )
        if kind == "errorfile":
            data = read_errorfile(value, line.bufsize())
            line.files.append((value, data))
            return act.reply(code, reason, flags, raw=data)
        return act.reply(code, pages.PAGES[code][0].encode(), flags, page=True)
    ctype = content_type.encode("latin-1") if content_type is not None else None
    if kind in ("string", "lf-string", "file", "lf-file"):
        if kind in ("file", "lf-file"):
            text = line.file(value).decode("latin-1")
        else:
            text = value
        if ctype is None and (kind in ("string", "lf-string") or text):
            raise line.error(
                f"'{kind}' needs a 'content-type'", hint="e.g. content-type text/plain"
            )
        if kind in ("lf-string", "lf-file"):
            compiled = compile_lf(
                text, where=line.where, filename=line.ctx.filename, lineno=line.ctx.lineno
            )
            body: act.Body = (
                compiled if compiled.const is None else compiled.const.encode("latin-1")
            )
        else:
            body = text.encode("latin-1")
        if not text:
            ctype = None  # an empty file: no content-type (HAProxy)
        return act.reply(code, reason, flags, ctype, body, hdrs)
    if content_type is not None:
        line.ctx.warnings.append(f"'{verb}': content-type is ignored without a payload")
    return act.reply(code, reason, flags, None, b"", hdrs)


def _one_payload(
    line: Line, old: Optional[Tuple[str, str]], new: Tuple[str, str]
) -> Tuple[str, str]:
    if old is not None:
        raise line.error(
            f"'{new[0]}' after '{old[0]}': one payload per response",
            hint="keep one of errorfile, file, lf-file, string, lf-string, default-errorfiles",
        )
    return new


def _deny(line: Line, inner: Optional[str], args: List[str]) -> act.Run:
    return _reply(line, inner, args, deny=True)


def _return(line: Line, inner: Optional[str], args: List[str]) -> act.Run:
    return _reply(line, inner, args, deny=False)


def _redirect(line: Line, args: List[str], lf_values: bool) -> act.Run:
    usage = (
        "redirect location|prefix|scheme <value> [code 301|302|303|307|308] [drop-query] "
        "[append-slash] [ignore-empty] [set-cookie <name>[=<value>]] [clear-cookie <name>[=]]"
    )
    kind = ""
    value = ""
    code = 302
    flags = {"drop-query": False, "append-slash": False, "ignore-empty": False}
    cookie: Optional[bytes] = None
    i = 0
    while i < len(args):
        word = args[i]
        if word in flags:
            flags[word] = True
            i += 1
            continue
        if word not in REDIRECT_OPTIONS:
            raise line.error(
                f"unexpected word '{word}'",
                hint=f"expects one of {', '.join(REDIRECT_OPTIONS)}; usage: {usage}",
            )
        if i + 1 >= len(args):
            raise line.error(f"'{word}' needs a value", hint=f"usage: {usage}")
        arg = args[i + 1]
        if word in ("location", "prefix", "scheme"):
            if kind:
                raise line.error(
                    f"'{word}' after '{kind}': one redirect type", hint=f"usage: {usage}"
                )
            kind, value = word, arg
        elif word == "code":
            code = _status(line, arg, 301, 308)
            if code not in act.REDIRECT_REASONS:
                raise line.error(
                    f"unsupported redirect code {code}", hint="one of 301, 302, 303, 307, 308"
                )
        else:  # set-cookie / clear-cookie
            if cookie is not None:
                raise line.error("one set-cookie or clear-cookie per redirect")
            if _BAD_LITERAL.search(arg) or not arg:
                raise line.error(f"'{arg}' is not a cookie", hint="NAME[=value]")
            suffix = "; path=/;" if word == "set-cookie" else "; path=/; Max-Age=0;"
            cookie = (arg + suffix).encode("latin-1")
        i += 2
    if not kind:
        raise line.error("missing redirect type", hint=f"usage: {usage}")
    target = line.lf(value, "location") if lf_values else value
    if isinstance(target, str) and _BAD_LITERAL.search(target):
        raise line.error(f"'{target!r}' holds a CR, LF or NUL", hint="a location is one line")
    return act.redirect(
        kind,
        target,
        code,
        flags["drop-query"],
        flags["append-slash"],
        cookie,
        flags["ignore-empty"],
    )


def _http_redirect(line: Line, inner: Optional[str], args: List[str]) -> act.Run:
    return _redirect(line, args, lf_values=True)


def _auth(line: Line, inner: Optional[str], args: List[str]) -> act.Run:
    realm = line.ctx.px.name
    if args:
        if args[0] != "realm" or len(args) != 2:
            raise line.error(f"unexpected word '{args[0]}'", hint="usage: auth [realm <realm>]")
        realm = args[1]
    if '"' in realm or _BAD_LITERAL.search(realm):
        raise line.error(f"realm '{realm}' holds a quote or a line break", hint="e.g. realm Admin")
    return act.auth(realm)


def _allow(line: Line, inner: Optional[str], args: List[str]) -> act.Run:
    _exactly(line, args, 0, "allow")
    return act.allow


def _set_status(line: Line, inner: Optional[str], args: List[str]) -> act.Run:
    usage = "set-status <code> [reason <text>]"
    if not args:
        raise line.error("missing status", hint=f"usage: {usage}")
    status = _status(line, args[0], 100, 999)
    if status < 200:
        raise line.error(
            f"status {status} is not a final response: the client would wait for another",
            hint="a code in 200..999",
        )
    reason = pages.reason(status)
    if len(args) > 1:
        if args[1] != "reason" or len(args) != 3:
            raise line.error(f"unexpected word '{args[1]}'", hint=f"usage: {usage}")
        reason = args[2]
        if _BAD_LITERAL.search(reason):
            raise line.error("a reason is one line", hint=f"usage: {usage}")
    return act.set_status(status, reason.encode("latin-1"))


def _reject(line: Line, inner: Optional[str], args: List[str]) -> act.Run:
    _exactly(line, args, 0, "reject")
    return act.reject


def _set_log_level(line: Line, inner: Optional[str], args: List[str]) -> act.Run:
    levels = (*LEVELS, SILENT)
    _exactly(line, args, 1, f"set-log-level {'|'.join(levels)}")
    if args[0] not in levels:
        raise line.error(
            f"unknown log level '{args[0]}'",
            hint=f"one of {', '.join(levels)} (silent: no line for this request)",
        )
    return act.set_log_level(args[0])


def _capture(line: Line, inner: Optional[str], args: List[str]) -> act.Run:
    """``http-request capture <sample> len <length> | id <id>``, ``http-response capture
    <sample> id <id>``: ``len`` adds a slot to the frontend (the next number), ``id`` names
    one the frontend declares (checked once the section is read, see the parser)."""
    kind = "response" if line.response else "request"
    usage = (
        "http-response capture <sample> id <id>"
        if line.response
        else "http-request capture <sample> len <length> | id <id>"
    )
    if len(args) != 3 or args[1] not in ("len", "id"):
        raise line.error(
            "expects <sample> then 'len' <length> or 'id' <id>", hint=f"usage: {usage}"
        )
    px = line.ctx.px
    if args[1] == "len":
        if line.response:
            raise line.error(
                "expects 'id', found 'len': a response slot is declared in the frontend",
                hint="declare capture response len <length>, then "
                "http-response capture <sample> id <n>",
            )
        if px.kind not in (FRONTEND, LISTEN):
            raise line.error(
                f"'len' adds a capture slot to a frontend; {px.kind} '{px.name}' has none",
                hint="declare the slot in the frontend (declare capture request len <length>) "
                "and write 'id <n>' here",
            )
        length = capture_length(args[2])
    sample = compile_sample(
        args[0], where=line.where, filename=line.ctx.filename, lineno=line.ctx.lineno
    )
    if args[1] == "len":
        slot = add_slot(line.ctx, kind, length)
    else:
        slot = parse_int(args[2], "capture id", 0, 65535)
        if px.kind in (FRONTEND, LISTEN):
            px.capture_refs.append((kind, slot, line.ctx.lineno))
    return act.capture(sample.fn, slot, line.response)


_BUILDERS: Dict[str, Builder] = {
    "add-header": _add_header,
    "allow": _allow,
    "auth": _auth,
    "capture": _capture,
    "del-header": _del_header,
    "deny": _deny,
    "redirect": _http_redirect,
    "reject": _reject,
    "replace-header": _replace_header,
    "replace-path": _replace_target(act.PATH),
    "replace-pathq": _replace_target(act.PATHQ),
    "replace-uri": _replace_target(act.URI),
    "replace-value": _replace_value,
    "return": _return,
    "set-header": _set_header,
    "set-log-level": _set_log_level,
    "set-method": _set_method,
    "set-path": _target_part(act.set_path, "set-path"),
    "set-pathq": _target_part(act.set_pathq, "set-pathq"),
    "set-query": _target_part(act.set_query, "set-query"),
    "set-uri": _target_part(act.set_uri, "set-uri"),
    "set-status": _set_status,
    "set-var": _set_var,
    "set-var-fmt": _set_var_fmt,
    "unset-var": _unset_var,
}
