"""The responses the proxy makes itself: HAProxy 2.6's status lines and small HTML bodies.

An ``errorfile`` replaces a built-in page by the file's bytes, written as they are; its
framing is unknown, so the client connection is closed after it (see :class:`ErrorPages`).
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Tuple

# status -> (reason phrase, sentence), as in HAProxy's http_err_msgs.
PAGES: Dict[int, Tuple[str, str]] = {
    400: ("Bad request", "Your browser sent an invalid request."),
    403: ("Forbidden", "Request forbidden by administrative rules."),
    405: ("Method Not Allowed", "A request was made of a resource using a request method not supported by that resource"),
    408: ("Request Time-out", "Your browser didn't send a complete request in time."),
    500: ("Internal Server Error", "An internal server error occurred."),
    501: ("Not Implemented", "The server does not support the functionality required to fulfill the request."),
    502: ("Bad Gateway", "The server returned an invalid or incomplete response."),
    503: ("Service Unavailable", "No server is available to handle this request."),
    504: ("Gateway Time-out", "The server didn't respond in time."),
}  # fmt: skip

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
