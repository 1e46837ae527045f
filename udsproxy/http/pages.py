"""The responses the proxy makes itself: HAProxy 2.6's status lines and small HTML bodies.

An ``errorfile`` replaces a built-in page by the file's bytes, written as they are; its
framing is unknown, so the client connection is closed after it (see :class:`ErrorPages`).
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

# status -> (reason phrase, sentence), as in HAProxy's http_err_msgs: the pages of the
# statuses an errorfile may replace (and ``deny_status``, ``return ... default-errorfiles``
# may name).
PAGES: Dict[int, Tuple[str, str]] = {
    200: ("OK", "Service ready."),
    400: ("Bad request", "Your browser sent an invalid request."),
    401: ("Unauthorized", "You need a valid user and password to access this content."),
    403: ("Forbidden", "Request forbidden by administrative rules."),
    404: ("Not Found", "The resource could not be found."),
    405: ("Method Not Allowed", "A request was made of a resource using a request method not supported by that resource"),
    407: ("Unauthorized", "You need a valid user and password to access this content."),
    408: ("Request Time-out", "Your browser didn't send a complete request in time."),
    410: ("Gone", "The resource is no longer available and will not be available again."),
    413: ("Payload Too Large", "The request entity exceeds the maximum allowed."),
    422: ("Unprocessable Content", "The server cannot process the contained instructions."),
    425: ("Too Early", "Your browser sent early data."),
    429: ("Too Many Requests", "You have sent too many requests in a given amount of time."),
    500: ("Internal Server Error", "An internal server error occurred."),
    # The leading dot is HAProxy 2.6's own.
    501: ("Not Implemented", ".The server does not support the functionality required to fulfill the request."),
    502: ("Bad Gateway", "The server returned an invalid or incomplete response."),
    503: ("Service Unavailable", "No server is available to handle this request."),
    504: ("Gateway Time-out", "The server didn't respond in time."),
}  # fmt: skip

# HAProxy's http_get_reason: the reason phrase of a status it makes up (``return``,
# ``set-status`` without ``reason``); others get their class's word.
REASONS: Dict[int, str] = {
    100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",
    200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information",
    204: "No Content", 205: "Reset Content", 206: "Partial Content", 207: "Multi-Status",
    210: "Content Different", 226: "IM Used", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 303: "See Other",
    304: "Not Modified", 305: "Use Proxy", 307: "Temporary Redirect",
    308: "Permanent Redirect", 310: "Too many Redirects", 400: "Bad Request",
    401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Time-out", 409: "Conflict", 410: "Gone", 411: "Length Required",
    412: "Precondition Failed", 413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Requested range unsatisfiable",
    417: "Expectation failed", 418: "I'm a teapot", 421: "Misdirected Request",
    422: "Unprocessable Content", 423: "Locked", 424: "Method failure", 425: "Too Early",
    426: "Upgrade Required", 428: "Precondition Required", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 449: "Retry With",
    450: "Blocked by Windows Parental Controls", 451: "Unavailable For Legal Reasons",
    456: "Unrecoverable Error", 499: "client has closed connection",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway or Proxy Error",
    503: "Service Unavailable", 504: "Gateway Time-out", 505: "HTTP Version not supported",
    506: "Variant also negotiate", 507: "Insufficient storage", 508: "Loop detected",
    509: "Bandwidth Limit Exceeded", 510: "Not extended",
    511: "Network authentication required", 520: "Web server is returning an unknown error",
}  # fmt: skip
_CLASS_REASONS = ("Informational", "Success", "Redirection", "Client Error", "Server Error")


def reason(status: int) -> str:
    """The reason phrase HAProxy gives ``status`` when it makes the status line itself."""
    phrase = REASONS.get(status)
    if phrase is not None:
        return phrase
    return _CLASS_REASONS[status // 100 - 1] if 100 <= status < 600 else "Other"


# Statuses after which HAProxy closes the client connection.
CLOSING = frozenset({400, 408})


def body(status: int) -> bytes:
    """The HTML body of ``status``."""
    reason, text = PAGES[status]
    return f"<html><body><h1>{status} {reason}</h1>\n{text}\n</body></html>\n".encode()


def headers(status: int, close: bool) -> List[Tuple[bytes, bytes]]:
    """The header fields of ``status``'s page (framing included)."""
    out = [
        (b"content-length", str(len(body(status))).encode()),
        (b"cache-control", b"no-cache"),
        (b"content-type", b"text/html"),
    ]
    if close:
        out.append((b"connection", b"close"))
    return out


def raw(status: int) -> bytes:
    """The whole response as bytes, ``Connection: close`` included (used when h11 cannot)."""
    reason, _ = PAGES[status]
    head = f"HTTP/1.1 {status} {reason}\r\n".encode()
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers(status, True))
    return head + b"\r\n" + body(status)


class ErrorPages:
    """The error responses of one frontend/backend pair: ``errorfile`` bytes, else built-in.

    As HAProxy's ``http_error_message``: once the backend is chosen its errorfile wins, then
    the frontend's; before that only the frontend's applies (a ``listen`` is both).
    """

    def __init__(
        self,
        frontend: Iterable[Tuple[int, bytes]],
        backend: Iterable[Tuple[int, bytes]] = (),
    ) -> None:
        self.frontend: Dict[int, bytes] = dict(frontend)
        self.backend: Dict[int, bytes] = {**self.frontend, **dict(backend)}

    def custom(self, status: int, backend_chosen: bool) -> Optional[bytes]:
        """The errorfile's raw response for ``status`` (b"": close without one), or None."""
        return (self.backend if backend_chosen else self.frontend).get(status)

    def raw(self, status: int, backend_chosen: bool) -> bytes:
        """The whole response to write as it is: the errorfile's, else the built-in page."""
        page = self.custom(status, backend_chosen)
        return raw(status) if page is None else page


def with_fields(raw: bytes, fields: Sequence[Tuple[bytes, bytes, bytes]]) -> bytes:
    """An errorfile's response with ``fields`` (raw name, lower name, value) replacing every
    field of the same names (``auth``'s WWW-Authenticate, as HAProxy does on its 401)."""
    if not raw:
        return raw  # an empty errorfile: close without a response
    end = raw.find(b"\r\n\r\n")
    sep = b"\r\n"
    if end < 0:
        end = raw.find(b"\n\n")
        sep = b"\n"
    if end < 0:
        return raw
    lines = raw[:end].split(sep)
    names = {lower for _, lower, _ in fields}
    kept = [lines[0]] + [
        line for line in lines[1:] if line.split(b":", 1)[0].strip().lower() not in names
    ]
    kept += [name + b": " + value for name, _, value in fields]
    return sep.join(kept) + raw[end:]
