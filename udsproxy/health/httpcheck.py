"""The HTTP check: its request and the verdict on a response (pure, no I/O).

``option httpchk [<method>] [<uri>] [<version>]`` gives the request line (HAProxy's default
``OPTIONS / HTTP/1.0``); ``http-check send`` overrides parts of it and adds headers and a
body; ``Connection: close`` is added unless a header sets it, as HAProxy does. With no
``http-check expect`` a 2xx or 3xx answer passes; otherwise each expect rule is applied in
order (``status``, ``rstatus``, ``string``, ``rstring``, ``hdr``; ``!`` negates).
``http-check disable-on-404``: a 404 from a server that is up passes conditionally (L7OKC)
and puts it in STOPPING (no new load-balanced traffic).
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

from udsproxy.config.model import (
    ExpectMatch,
    HttpCheck,
    HttpCheckExpect,
    HttpCheckOther,
    HttpCheckSend,
)

from .status import CheckResult, Status

MAX_RESPONSE = 16384  # bytes read at most (HAProxy reads one buffer: tune.bufsize)
_METHODS_WITHOUT_LENGTH = ("OPTIONS", "GET", "HEAD", "DELETE")


def build_request(check: HttpCheck) -> bytes:
    """The bytes of the check request."""
    method, uri, version = check.method, check.uri, check.version
    headers: List[Tuple[str, str]] = []
    body = ""
    for rule in check.rules:
        if isinstance(rule, HttpCheckSend):
            method = rule.method or method
            uri = rule.uri or uri
            version = rule.version or version
            headers.extend(rule.headers)
            body = rule.body or body
    lines = [f"{method} {uri} {version}"]
    lines += [f"{name}: {value}" for name, value in headers if value]
    if not any(name.lower() == "connection" for name, _ in headers):
        lines.append("Connection: close")
    if method not in _METHODS_WITHOUT_LENGTH or body:
        lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("latin-1", "replace")


def disables_on_404(check: HttpCheck) -> bool:
    return any(isinstance(r, HttpCheckOther) and r.action == "disable-on-404" for r in check.rules)


class Response:
    """A response read so far: status line, headers, and the body once complete."""

    def __init__(self) -> None:
        self.data = b""
        self.code: Optional[int] = None
        self.reason = ""
        self.headers: List[Tuple[str, str]] = []
        self.body_start = -1
        self.length: Optional[int] = None
        self.invalid = ""

    def feed(self, data: bytes) -> None:
        self.data += data
        if self.body_start < 0 and not self.invalid:
            end = self.data.find(b"\r\n\r\n")
            if end >= 0:
                self._parse_head(self.data[:end].decode("latin-1"))
                self.body_start = end + 4

    def _parse_head(self, head: str) -> None:
        lines = head.split("\r\n")
        match = re.fullmatch(r"HTTP/\d\.\d (\d{3})(?: (.*))?", lines[0])
        if match is None:
            self.invalid = "invalid HTTP status line"
            return
        self.code = int(match.group(1))
        self.reason = match.group(2) or ""
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                self.invalid = "invalid HTTP header"
                return
            self.headers.append((name.strip(), value.strip()))
            if name.strip().lower() == "content-length" and value.strip().isdigit():
                self.length = int(value.strip())

    @property
    def body(self) -> bytes:
        return self.data[self.body_start :] if self.body_start >= 0 else b""

    def complete(self, closed: bool) -> bool:
        """Enough to decide: the head and the whole body (or the connection closed)."""
        if self.invalid or closed or len(self.data) >= MAX_RESPONSE:
            return True
        if self.body_start < 0:
            return False
        if self.code is not None and (self.code in (204, 304) or 100 <= self.code < 200):
            return True
        return self.length is not None and len(self.body) >= self.length


def verdict(check: HttpCheck, response: Response, server_up: bool) -> CheckResult:
    """The check's result for a complete ``response`` (or what a closed connection left)."""
    if response.invalid:
        return CheckResult(Status.L7RSP, response.invalid)
    if response.code is None:
        if not response.data:
            return CheckResult(Status.L7RSP, "empty response")
        return CheckResult(Status.L7RSP, "incomplete response")
    code, reason = response.code, response.reason
    if code == 404 and server_up and disables_on_404(check):
        return CheckResult(Status.L7OKC, reason, code)
    expects = [r for r in check.rules if isinstance(r, HttpCheckExpect)]
    if not expects:
        if 200 <= code < 400:
            return CheckResult(Status.L7OK, "", code)
        return CheckResult(Status.L7STS, reason, code)
    for rule in expects:
        failed = _expect_fails(rule, response)
        if failed is not None:
            return failed
    return CheckResult(Status.L7OK, "", code)


def _status_matches(pattern: str, code: int) -> bool:
    for part in pattern.split(","):
        low, _, high = part.partition("-")
        if int(low) <= code <= int(high or low):
            return True
    return False


def _text_matches(method: str, pattern: str, text: str) -> bool:
    if method == "beg":
        return text.startswith(pattern)
    if method == "end":
        return text.endswith(pattern)
    if method == "sub":
        return pattern in text
    if method == "reg":
        return re.search(pattern, text) is not None
    return text == pattern


def _expect_fails(rule: HttpCheckExpect, response: Response) -> Optional[CheckResult]:
    code = response.code
    assert code is not None
    body = response.body.decode("latin-1")
    match = rule.match
    status_rule = match in (ExpectMatch.STATUS, ExpectMatch.RSTATUS)
    if match == ExpectMatch.STATUS:
        ok = _status_matches(rule.pattern, code)
    elif match == ExpectMatch.RSTATUS:
        ok = re.search(rule.pattern, str(code)) is not None
    elif match == ExpectMatch.STRING:
        ok = rule.pattern in body
    elif match == ExpectMatch.RSTRING:
        ok = re.search(rule.pattern, body) is not None
    elif match in (ExpectMatch.HDR, ExpectMatch.FHDR):
        ok = any(
            _text_matches(rule.name_method, rule.pattern.lower(), name.lower())
            and (rule.value is None or _text_matches(rule.value_method, rule.value, value))
            for name, value in response.headers
        )
    else:
        return CheckResult(Status.L7RSP, f"unsupported expect match '{match}'", code)
    if ok != rule.negate:
        return None
    try:
        status = Status(rule.error_status)
    except ValueError:
        status = Status.L7RSP
    if status_rule:
        if rule.error_status == "L7RSP":  # the default: a status rule fails as L7STS
            status = Status.L7STS
        return CheckResult(status, rule.comment or response.reason, code)
    what = "HTTP header" if match in (ExpectMatch.HDR, ExpectMatch.FHDR) else "HTTP content"
    return CheckResult(status, rule.comment or f"{what} check did not match", code)
