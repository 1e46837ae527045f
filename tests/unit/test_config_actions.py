"""http-request / http-response / redirect / userlist lines: every config error with its
file, line, keyword, message and hint, and what the framing rule refuses."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import List

import pytest

from udsproxy.config.model import Config
from udsproxy.config.parser import parse_text
from udsproxy.errors import ConfigError, ConfigErrors
from udsproxy.http import headers
from udsproxy.rules import actions

HEAD = """\
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
backend app
    server a /s/a.sock
frontend fe
    bind 127.0.0.1:8080
    default_backend app
"""
FIRST = HEAD.count("\n") + 1  # the line number of the first line of a test's body


def parse(body: str) -> Config:
    return parse_text(HEAD + textwrap.dedent(body), "app.cfg", {})


def errors(body: str) -> List[ConfigError]:
    with pytest.raises(ConfigErrors) as info:
        parse(body)
    return info.value.errors


def one_error(body: str) -> ConfigError:
    found = errors(body)
    assert len(found) == 1, [str(e) for e in found]
    return found[0]


REQ = "    http-request "
RES = "    http-response "

CASES = [
    # unknown, unsupported or misplaced actions
    (REQ + "set-hedaer X a", "http-request set-hedaer", "unknown action", "set-header"),
    (REQ + "tarpit", "http-request tarpit", "not supported", "http-request actions"),
    (RES + "auth", "http-response auth", "not supported in http-response", "set-status"),
    (REQ + "set-header(x) X a", "http-request set-header", "takes no '(...)'", "set-header ..."),
    # header actions
    (REQ + "set-header X-A", "http-request set-header", "missing argument", "<name> <fmt>"),
    (REQ + "set-header X-A a b", "http-request set-header", "unexpected word 'b'", "usage"),
    (REQ + "set-header X:A a", "http-request set-header", "not a header name", "no ':'"),
    (REQ + "set-header Content-Length 5", "http-request set-header", "may not change", "frames"),
    (REQ + "add-header Transfer-Encoding chunked", "http-request add-header", "may not", "frames"),
    (REQ + "set-header Connection close", "http-request set-header", "may not", "httpclose"),
    (REQ + "set-header Upgrade websocket", "http-request set-header", "may not", "frames"),
    (REQ + "replace-value Keep-Alive a b", "http-request replace-value", "may not", "frames"),
    (RES + "set-header content-length 1", "http-response set-header", "may not", "frames"),
    (REQ + "add-header Host a", "http-request add-header", "one Host", "set-header Host"),
    (REQ + "set-header Host 'a b'", "http-request set-header", "is not a host", ":port"),
    (REQ + "del-header Host", "http-request del-header", "would delete host", "narrowly"),
    (
        REQ + "del-header con -m beg",
        "http-request del-header",
        "connection, content-length",
        "narrowly",
    ),
    (REQ + "del-header ^(te|x)$ -m reg", "http-request del-header", "would delete te", "narrowly"),
    (
        RES + "del-header Transfer-Encoding",
        "http-response del-header",
        "transfer-encoding",
        "narrowly",
    ),
    (REQ + "del-header X -m xyz", "http-request del-header", "unknown matching method", "-m str"),
    (REQ + "del-header X-A extra", "http-request del-header", "unexpected word 'extra'", "usage"),
    (REQ + "del-header ( -m reg", "http-request del-header", "does not compile", "brackets"),
    (REQ + "replace-header X ( a", "http-request replace-header", "does not compile", "brackets"),
    (REQ + "replace-header X (a) \\\\2", "http-request replace-header", "names a group", "1 group"),
    (REQ + "replace-header X a b\\\\", "http-request replace-header", "lone backslash", "\\\\"),
    (
        REQ + "replace-header X a \\\\x0a",
        "http-request replace-header",
        "CR, LF or NUL",
        "one line",
    ),
    (REQ + 'set-header X "a\\r\\nB: c"', "http-request set-header", "CR, LF or NUL", "one line"),
    # lf-strings
    (REQ + "set-header X %[pth]", "http-request set-header", "unknown fetch 'pth'", "path"),
    (REQ + "set-header X %[path", "http-request set-header", "missing ']'", "end the expression"),
    (REQ + "set-header X %cx", "http-request set-header", "no such format variable", "8.2.6"),
    (REQ + "set-header X 100%", "http-request set-header", "truncated line", "%%"),
    (REQ + "set-header X %[status]", "http-request set-header", "cannot be used", "http-response"),
    (RES + "set-header X %[path]", "http-response set-header", "cannot be used", "set-var"),
    (REQ + "set-header X %[path,lowr]", "http-request set-header", "unknown converter", "lower"),
    # the request line
    (REQ + "set-method 'G T'", "http-request set-method", "is not a method", "POST"),
    (REQ + "set-method CONNECT", "http-request set-method", "tunnel", "POST"),
    (REQ + "set-path '/a b'", "http-request set-path", "blank", "%20"),
    (REQ + "set-uri ''", "http-request set-uri", "empty request target", "set-uri /"),
    (REQ + "replace-path ^/(a) /\\\\2", "http-request replace-path", "names a group", "1 group"),
    (REQ + "replace-uri ^/a", "http-request replace-uri", "missing argument", "<replace-fmt>"),
    (REQ + "replace-pathq ^/( /x", "http-request replace-pathq", "regex", ""),
    (RES + "replace-path ^/a /b", "http-response replace-path", "not supported", "set-header"),
    (
        REQ + "set-log-level loud",
        "http-request set-log-level",
        "unknown log level 'loud'",
        "silent: no line",
    ),
    (RES + "set-log-level", "http-response set-log-level", "missing argument", "emerg|alert"),
    (REQ + "reject now", "http-request reject", "unexpected word 'now'", "usage: reject"),
    (RES + "reject", "http-response reject", "not supported in http-response", "deny"),
    # variables
    (REQ + "set-var(xyz.a) path", "http-request set-var", "no valid scope", "txn"),
    (REQ + "set-var(txn.a-b) path", "http-request set-var", "invalid variable name", "letters"),
    (
        REQ + "set-var(txn.a,ifbig) path",
        "http-request set-var",
        "unknown set-var condition",
        "ifgt",
    ),
    (REQ + "set-var txn.a path", "http-request set-var", "in parentheses", "set-var(txn.user)"),
    (REQ + "set-var(txn.a) nope", "http-request set-var", "unknown fetch 'nope'", "section 7.3"),
    (REQ + "unset-var(txn.a,ifset)", "http-request unset-var", "takes no condition", "unset-var("),
    (REQ + "set-var-fmt(txn.a) %[path", "http-request set-var-fmt", "missing ']'", "end the"),
    # replies
    (REQ + "deny deny_status 700", "http-request deny", "out of range", "200..599"),
    (REQ + "deny deny_status x", "http-request deny", "not a number", "200..599"),
    (REQ + "deny deny_status 418", "http-request deny", "has no error page", "429"),
    (
        REQ + "return status 201 string hi",
        "http-request return",
        "needs a 'content-type'",
        "text/plain",
    ),
    (
        REQ + "return content-type a/b string x file /y",
        "http-request return",
        "one payload",
        "keep one",
    ),
    (REQ + "return errorfiles e", "http-request return", "http-errors", "errorfile <file>"),
    (
        REQ + "return hdr Content-Length 3",
        "http-request return",
        "proxy sets it",
        "content-type <type>",
    ),
    (REQ + "return hdr X", "http-request return", "a name and a value", "usage"),
    (REQ + "return status", "http-request return", "needs a value", "usage"),
    (
        REQ + "return content-type a/b file /nonexistent/x",
        "http-request return",
        "cannot read",
        "path",
    ),
    (
        REQ + "return errorfile /nonexistent/x",
        "http-request return",
        "cannot read errorfile",
        "path",
    ),
    (REQ + "return bogus", "http-request return", "unexpected word 'bogus'", "usage"),
    (REQ + "redirect", "http-request redirect", "missing redirect type", "location|prefix"),
    (
        REQ + "redirect location /a code 304",
        "http-request redirect",
        "unsupported redirect code",
        "307",
    ),
    (REQ + "redirect location /a code 300", "http-request redirect", "out of range", "301..308"),
    (REQ + "redirect location /a bogus", "http-request redirect", "unexpected word", "drop-query"),
    (REQ + "redirect location /a prefix /b", "http-request redirect", "one redirect type", "usage"),
    (REQ + "redirect location %[x]", "http-request redirect", "unknown fetch", "section 7.3"),
    ("    redirect scheme", "redirect", "needs a value", "usage"),
    (REQ + "auth basic", "http-request auth", "unexpected word 'basic'", "realm <realm>"),
    (REQ + "allow now", "http-request allow", "unexpected word 'now'", "allow"),
    (RES + "set-status 101", "http-response set-status", "not a final response", "200..999"),
    (RES + "set-status 1000", "http-response set-status", "out of range", "100..999"),
    (RES + "set-status 200 why", "http-response set-status", "unexpected word 'why'", "reason"),
    (RES + "deny deny_status 599", "http-response deny", "has no error page", "503"),
    # conditions
    (REQ + "deny if nope", "http-request", "nope", "acl"),
]


@pytest.mark.parametrize("line, keyword, message, hint", CASES)
def test_rule_errors_name_file_line_keyword_and_hint(
    line: str, keyword: str, message: str, hint: str
) -> None:
    """Each bad rule is one error at its line, naming the keyword, the token and a hint."""
    err = one_error(line + "\n")
    assert (err.filename, err.lineno) == ("app.cfg", FIRST), str(err)
    assert err.keyword == keyword or err.keyword.startswith(keyword), str(err)
    assert message in err.message, str(err)
    assert hint in err.hint, str(err)


def test_protected_names_cover_the_hop_by_hop_fields() -> None:
    """Rules can touch no field the proxy strips per hop (the two lists stay in step)."""
    assert headers.HOP_BY_HOP <= actions.PROTECTED
    assert b"content-length" in actions.PROTECTED


def test_rules_need_mode_http() -> None:
    """http-request/http-response/redirect in a tcp section: an error at the first rule."""
    errs = errors(
        """
        listen t
            mode tcp
            bind 127.0.0.1:9000
            http-request deny
            http-response del-header X
            redirect location /
            server a /s/a.sock
        """
    )
    assert [e.keyword for e in errs] == ["http-request", "http-response", "redirect"]
    assert "need 'mode http'" in errs[0].message and errs[0].lineno == FIRST + 4


def test_rules_are_not_allowed_in_defaults() -> None:
    """Rules belong to the proxy sections (as tcp-request rules)."""
    err = one_error("defaults\n    http-request deny\n")
    assert "not allowed in a 'defaults' section" in err.message


def test_warnings_for_ignored_words() -> None:
    """A content-type without payload and hdr with an error page are accepted and said."""
    cfg = parse(
        """
            http-request return content-type text/plain
            http-request deny hdr X a content-type x/y default-errorfiles
            http-request redirect location %{+Z}[path]
        """
    )
    texts = [n.text for n in cfg.notices]
    assert any("unknown flag 'Z'" in t for t in texts)
    assert any("content-type is ignored without a payload" in t for t in texts)
    assert any("ignored with an error page" in t for t in texts)


# ----------------------------------------------------------------- userlists
USERS = """
userlist admins
    user alice insecure-password secret
"""


def test_userlist_is_parsed() -> None:
    """Users get their own groups and those whose line lists them."""
    cfg = parse_text(
        HEAD
        + "userlist L2\n    group g1\n    group g2 users bob\n"
        + "    user bob insecure-password x groups g1\n    user carol\n",
        "app.cfg",
        {},
    )
    (ul,) = cfg.userlists
    assert ul.name == "L2" and ul.groups == ("g1", "g2")
    bob, carol = ul.users
    assert (bob.name, bob.password, bob.insecure, bob.groups) == ("bob", "x", True, ("g1", "g2"))
    assert carol.groups == () and not carol.insecure  # no password: nobody authenticates


USER_CASES = [
    ("userlist L1\n    user a\n    user a\n", 3, "user", "declared twice", "one user line"),
    ("userlist L1\n    group g\n    group g\n", 3, "group", "declared twice", "one group line"),
    ("userlist L1\n    user a groups nope\n", 2, "user", "not declared", "group nope"),
    ("userlist L1\n    group admn\n    user a groups admin\n", 3, "user", "not declared", "admn"),
    ("userlist L1\n    group g users bob\n", 2, "group", "lists user 'bob'", "user bob"),
    ("userlist L1\n    user a password $9$x\n", 2, "user", "not a hash", "insecure-password"),
    ("userlist L1\n    user a secret x\n", 2, "user", "unknown option 'secret'", "usage"),
    ("userlist L1\n    user a password\n", 2, "user", "needs a value", "usage"),
    (
        "userlist L1\n    user a password $6$s$ insecure-password y\n",
        2,
        "user",
        "two pass",
        "usage",
    ),
    ("userlist L1\n    group g users a,,b\n", 2, "group", "empty user name", "','"),
    ("userlist L1\n    group g members a\n", 2, "group", "unexpected word 'members'", "usage"),
    ("userlist\n", 1, "userlist", "needs one name", "userlist <name>"),
    ("userlist L1\nuserlist L1\n", 2, "userlist", "declared twice", "unique name"),
    ("userlist L1\n    bind :80\n", 2, "bind", "not allowed in a 'userlist'", "frontend"),
]


@pytest.mark.parametrize("text, line, keyword, message, hint", USER_CASES)
def test_userlist_errors(text: str, line: int, keyword: str, message: str, hint: str) -> None:
    """Userlist sections: every error with its line, keyword, message and hint."""
    with pytest.raises(ConfigErrors) as info:
        parse_text(text, "u.cfg", {})
    (err,) = info.value.errors
    assert (err.filename, err.lineno, err.keyword) == ("u.cfg", line, keyword), str(err)
    assert message in err.message and hint in err.hint, str(err)


def test_http_auth_names_a_userlist_anywhere_in_the_file() -> None:
    """A userlist may follow the rules naming it; a missing one is an error at the rule."""
    parse(REQ + "auth unless { http_auth(admins) }\n" + USERS)
    err = one_error(REQ + "auth unless { http_auth(admin) }\n" + USERS)
    assert err.lineno == FIRST and "userlist 'admin' does not exist" in err.message
    assert "did you mean 'admins'" in err.hint


def test_global_user_and_group_keep_their_meaning() -> None:
    """user/group in global still drop privileges (the same words in a userlist do not)."""
    cfg = parse_text("global\n    user root\n    group root\n" + HEAD, "g.cfg", {})
    assert cfg.global_.user == "root" and cfg.global_.gid == 0


def test_files_are_read_with_the_line(tmp_path: Path) -> None:
    """A file payload larger than tune.bufsize is refused at its line."""
    big = tmp_path / "big"
    big.write_bytes(b"x" * 20000)
    err = one_error(REQ + f"return content-type text/plain file {big}\n")
    assert "larger than tune.bufsize" in err.message and err.lineno == FIRST
