"""``errorfile`` lines: the status codes allowed and the response files, read and checked."""

from __future__ import annotations

import os
import re
from typing import List, Tuple

from ..errors import ConfigError
from . import model
from .builders import Context, need, no_more
from .values import parse_int

ERRORFILE_CODES = (
    200,
    400,
    401,
    403,
    404,
    405,
    407,
    408,
    410,
    413,
    425,
    429,
    500,
    501,
    502,
    503,
    504,
)


def p_errorfile(ctx: Context, args: List[str]) -> None:
    usage = "errorfile <code> <file>"
    need(args, 2, usage)
    no_more(args, 2, usage)
    code = parse_int(args[0], "errorfile code")
    if code not in ERRORFILE_CODES:
        raise ConfigError(
            f"errorfile code {code} is not allowed",
            hint="allowed: " + " ".join(str(c) for c in ERRORFILE_CODES),
        )
    # HAProxy reads the file when it parses the line, with tune.bufsize as set so far.
    raw = ctx.glob.fields.get("tune.bufsize")
    bufsize = raw if isinstance(raw, int) else model.Global.bufsize
    data = read_errorfile(args[1], bufsize)
    old: Tuple[Tuple[int, bytes], ...] = ctx.px.fields.get("errorfiles", ())  # type: ignore[assignment]
    # A later line for the same code wins, also over one inherited from defaults.
    ctx.px.fields["errorfiles"] = tuple(sorted({**dict(old), code: data}.items()))


ERRORFILE_STATUS_LINE = re.compile(rb"HTTP/1\.[01] [0-9]{3}(?: [^\r\n]*)?\r?\n")
ERRORFILE_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
ERRORFILE_HINT = (
    "the file holds a whole response: a status line such as 'HTTP/1.0 503 Service "
    "Unavailable', header lines, an empty line, then the body"
)


def read_errorfile(path: str, bufsize: int) -> bytes:
    """An errorfile's bytes, refused as HAProxy refuses them at start.

    Readable, at most ``tune.bufsize`` bytes, and an HTTP/1.x response (status line, header
    lines, end of head, a body as long as its Content-Length says). An empty file is valid:
    the connection is then closed without a response.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(bufsize + 1)
    except OSError as exc:
        where = "" if os.path.isabs(path) else "; a relative path starts at the current directory"
        raise ConfigError(
            f"cannot read errorfile '{path}': {exc.strerror}",
            hint=f"check the path and permissions{where}",
        ) from None
    if len(data) > bufsize:
        raise ConfigError(
            f"errorfile '{path}' is too large: more than tune.bufsize ({bufsize} bytes)",
            hint="shorten the response, or raise tune.bufsize in the global section",
        )
    if data:
        problem = errorfile_problem(data)
        if problem:
            raise ConfigError(
                f"errorfile '{path}' is not an HTTP response: {problem}", hint=ERRORFILE_HINT
            )
    return data


def errorfile_problem(data: bytes) -> str:
    """What makes ``data`` no HTTP/1.x response, or "" (a light check, not a full parse)."""
    if ERRORFILE_STATUS_LINE.match(data) is None:
        return "it does not start with a status line 'HTTP/1.x <code> <reason>'"
    end = ERRORFILE_END_OF_HEAD.search(data)
    if end is None:
        return "its head has no end (an empty line after the header lines)"
    head, body = data[: end.start()], data[end.end() :]
    for line in head.split(b"\n")[1:]:
        name, colon, value = line.rstrip(b"\r").partition(b":")
        if not colon or not name or name != name.strip():
            return f"'{line.decode('latin-1').strip()}' is not a header field"
        if name.lower() == b"content-length":
            length = value.strip()
            if not length.isdigit():
                return f"invalid Content-Length '{length.decode('latin-1')}'"
            if int(length) != len(body):
                return f"Content-Length is {int(length)} but the body has {len(body)} bytes"
    return ""
