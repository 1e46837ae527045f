"""Logging a session with a frontend's compiled formats: what HTTP and TCP mode share.

:class:`SessionLog` is made once per listener context: it knows the frontend's log and
unique-id formats, which optional record fields they print (so that the data path fills
only those), ``dontlognull``, and counts the lines written (``%lc``). The helpers fill
record fields the way HAProxy keeps them:

* :func:`request_line`: HAProxy's copy of the request line (``%r``) holds at most 1023
  bytes (``REQURI_LEN`` less its NUL);
* :func:`address_pair`: a socket address as the ``(host, port)`` of ``%si:%sp``-like
  fields, ``("unix", 0)`` for a unix socket;
* :meth:`SessionLog.unique_id`: the ``unique-id-format`` rendered as HAProxy bounds it
  (127 bytes) and safe to send as a header value.
"""

from __future__ import annotations

from typing import Any, FrozenSet, Optional, Sequence, Tuple

from ..config.model import Capture, Proxy
from ..log.formats import SessionRecord, is_null_session
from .compiler import LogFormat, http_encode
from .variables import (
    NEED_FRONTEND_ADDR,
    NEED_SAMPLES,
    NEED_SERVER_ADDR,
    NEED_SERVER_SOURCE,
)

REQUEST_LINE_MAX = 1023
SILENT = "silent"  # set-log-level silent: the request logs no line
UNIQUE_ID_MAX = 127  # HAProxy's UNIQUEID_LEN (128) less its NUL
UNIX_PAIR = ("unix", 0)


def request_line(method: bytes, target: bytes, version: bytes) -> str:
    """``GET /path HTTP/1.1`` as HAProxy logs it: cut to 1023 bytes, one char per byte."""
    line = method + b" " + target + b" HTTP/" + version
    return line[:REQUEST_LINE_MAX].decode("latin-1")


def address_pair(addr: Any) -> Optional[Tuple[str, int]]:
    """``(host, port)`` of a Twisted or config address; ``("unix", 0)`` for a unix socket."""
    if addr is None:
        return None
    host = getattr(addr, "host", None)
    port = getattr(addr, "port", None)
    if isinstance(host, str) and host and isinstance(port, int) and port:
        return host, port
    return UNIX_PAIR


class SessionLog:
    """One frontend's session lines: formats, the fields they need, dontlognull, ``%lc``."""

    def __init__(self, frontend: Proxy, counters: Any, sink: Any) -> None:
        self.sink = sink
        self.counters = counters  # the frontend's ProxyCounters (log_count)
        self.format: Optional[LogFormat] = frontend.log_format
        self.unique_id_format: Optional[LogFormat] = frontend.unique_id_format
        self.dontlognull = frontend.has_option("dontlognull")
        needs: FrozenSet[str] = frozenset()
        for fmt in (self.format, self.unique_id_format):
            if fmt is not None:
                needs |= fmt.needs
        self.need_frontend_addr = NEED_FRONTEND_ADDR in needs
        self.need_server_addr = NEED_SERVER_ADDR in needs
        self.need_server_source = NEED_SERVER_SOURCE in needs
        self.need_optional = (
            self.need_frontend_addr or self.need_server_addr or self.need_server_source
        )
        # %[expr]: the record carries the request's rule context (``rec.sample``).
        self.need_samples = NEED_SAMPLES in needs
        # The frontend's capture slots as (lower-case header name or b"", length), None
        # when it declares none: %hr/%hs print them, capture rules and fetches use them.
        self.request_captures = _captures(frontend.request_captures)
        self.response_captures = _captures(frontend.response_captures)
        # Each slot's length, for the slots a stream is given (rules.context.Slots).
        self.request_lengths = tuple(c.length for c in frontend.request_captures)
        self.response_lengths = tuple(c.length for c in frontend.response_captures)

    def fill(
        self,
        rec: SessionRecord,
        local: Any = None,
        server: Any = None,
        server_source: Optional[Tuple[str, int]] = None,
    ) -> None:
        """The optional fields the formats print: the listener's address (``local``, a
        TCP listener's), the server's config address and the server connection's own."""
        if self.need_frontend_addr and local is not None:
            rec.frontend_addr = address_pair(local)
        if server is not None:
            if self.need_server_addr:
                rec.server_addr = address_pair(server.config.address)
            if self.need_server_source:
                rec.server_source = server_source

    def unique_id(self, rec: SessionRecord) -> str:
        """The ID of the request ``rec`` describes: at most 127 characters, header-safe."""
        assert self.unique_id_format is not None
        value = self.unique_id_format.render(rec)[:UNIQUE_ID_MAX]
        # A control character can only come from the config's own text: %XX-encoded too.
        return http_encode(value)

    def line(self, rec: SessionRecord) -> Optional[str]:
        """The session line for ``rec``, None for none (no format, dontlognull, or a line
        that a variable ended before anything was written: HAProxy sends no empty line)."""
        fmt = self.format
        if fmt is None or (self.dontlognull and is_null_session(rec)):
            return None
        counters = self.counters
        rec.log_count = counters.log_count
        line = fmt.render(rec)
        if not line:
            return None
        counters.log_count += 1
        return line

    def write(self, rec: SessionRecord, level: str = "info") -> None:
        """Log ``rec``'s line to the sink, if there is one, at ``level`` (a rule's
        ``set-log-level``; the caller drops a ``silent`` request's record unmade)."""
        if self.sink is not None:
            line = self.line(rec)
            if line is not None:
                self.sink.session(line, level)


def _captures(captures: Sequence[Capture]) -> Optional[Tuple[Tuple[bytes, int], ...]]:
    if not captures:
        return None
    return tuple((c.name.lower().encode("latin-1"), c.length) for c in captures)
