"""``errorfile``: read and checked at parse time, kept as bytes, inherited from defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_config_parser import one_error, parse

PAGE_503 = (
    b"HTTP/1.0 503 Service Unavailable\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Connection: close\r\n"
    b"Content-Type: text/html\r\n"
    b"\r\n"
    b"<html><body><h1>Back soon</h1></body></html>\n"
)


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_errorfile_is_read_at_parse_time_and_active(tmp_path: Path) -> None:
    """The file's exact bytes land in the proxy; no 'not active yet' notice, nothing planned."""
    page = write(tmp_path, "503.http", PAGE_503)
    cfg = parse(f"backend b\n    mode http\n    errorfile 503 {page}\n")
    be = cfg.proxy("b")
    assert be is not None and be.errorfiles == ((503, PAGE_503),)
    assert be.planned == ()
    assert not any("errorfile" in n.text for n in cfg.notices)


def test_empty_errorfile_and_lf_only_lines_are_accepted(tmp_path: Path) -> None:
    """An empty file (HAProxy: close without a response) and LF-only line ends are valid."""
    empty = write(tmp_path, "408.http", b"")
    lf = write(tmp_path, "502.http", b"HTTP/1.1 502 Bad\nContent-Length: 3\n\nbad")
    cfg = parse(f"backend b\n    errorfile 408 {empty}\n    errorfile 502 {lf}\n")
    be = cfg.proxy("b")
    assert be is not None
    assert dict(be.errorfiles) == {408: b"", 502: b"HTTP/1.1 502 Bad\nContent-Length: 3\n\nbad"}


def test_missing_errorfile_is_an_error_with_line_keyword_and_hint(tmp_path: Path) -> None:
    """An unreadable file names itself, the line and the keyword; a relative path is explained."""
    err = one_error(f"backend b\n    errorfile 503 {tmp_path / 'none.http'}\n")
    assert (err.filename, err.lineno, err.keyword) == ("t.cfg", 2, "errorfile")
    assert "cannot read errorfile" in err.message and "No such file" in err.message
    assert "check the path" in err.hint and "relative" not in err.hint
    err = one_error("backend b\n    errorfile 503 no/such/503.http\n")
    assert "current directory" in err.hint


def test_directory_as_errorfile_is_an_error(tmp_path: Path) -> None:
    """A directory cannot be read as an errorfile."""
    err = one_error(f"backend b\n    errorfile 503 {tmp_path}\n")
    assert "cannot read errorfile" in err.message


def test_errorfile_larger_than_bufsize_is_refused(tmp_path: Path) -> None:
    """More than tune.bufsize bytes is 'too large'; exactly tune.bufsize is accepted."""
    head = b"HTTP/1.0 503 X\r\n\r\n"
    fits = write(tmp_path, "fits.http", head + b"a" * (2048 - len(head)))
    big = write(tmp_path, "big.http", head + b"a" * (2049 - len(head)))
    glob = "global\n    tune.bufsize 2048\n"
    cfg = parse(f"{glob}backend b\n    errorfile 503 {fits}\n")
    be = cfg.proxy("b")
    assert be is not None and len(be.errorfiles[0][1]) == 2048
    err = one_error(f"{glob}backend b\n    errorfile 503 {big}\n")
    assert err.lineno == 4 and err.keyword == "errorfile"
    assert "too large" in err.message and "2048" in err.message
    assert "tune.bufsize" in err.hint


def test_default_bufsize_is_16384(tmp_path: Path) -> None:
    """Without tune.bufsize the limit is HAProxy's default, 16384 bytes."""
    big = write(tmp_path, "big.http", b"HTTP/1.0 503 X\r\n\r\n" + b"a" * 16384)
    assert "16384" in one_error(f"backend b\n    errorfile 503 {big}\n").message


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"<html>sorry</html>\n", "status line"),
        (b"GET / HTTP/1.1\r\n\r\n", "status line"),
        (b"HTTP/2 503 X\r\n\r\n", "status line"),
        (b"HTTP/1.0 5033 X\r\n\r\n", "status line"),
        (b"HTTP/1.0 503 X\r\nContent-Type: text/html\r\n", "no end"),
        (b"HTTP/1.0 503 X\r\nnot a header\r\n\r\n", "not a header field"),
        (b"HTTP/1.0 503 X\r\nContent-Length: 100\r\n\r\nabc", "Content-Length is 100"),
        (b"HTTP/1.0 503 X\r\nContent-Length: x\r\n\r\n", "invalid Content-Length"),
    ],
)
def test_errorfile_that_is_no_http_response_is_refused(
    tmp_path: Path, data: bytes, problem: str
) -> None:
    """The content must be an HTTP/1.x response: status line, header fields, end of head."""
    path = write(tmp_path, "bad.http", data)
    err = one_error(f"backend b\n    errorfile 503 {path}\n")
    assert err.keyword == "errorfile" and err.lineno == 2
    assert "is not an HTTP response" in err.message and problem in err.message
    assert "status line" in err.hint


def test_errorfile_code_must_be_one_haproxy_emits(tmp_path: Path) -> None:
    """A code outside HAProxy's list is refused, before the file is even read."""
    err = one_error(f"backend b\n    errorfile 302 {tmp_path / 'none.http'}\n")
    assert "errorfile code 302 is not allowed" in err.message and "503" in err.hint


def test_errorfiles_are_inherited_from_defaults_and_overridden_per_code(tmp_path: Path) -> None:
    """A proxy gets its defaults' files; its own line for a code wins; a new defaults resets."""
    a = write(tmp_path, "a.http", b"HTTP/1.0 503 A\r\n\r\n")
    b = write(tmp_path, "b.http", b"HTTP/1.0 502 B\r\n\r\n")
    c = write(tmp_path, "c.http", b"HTTP/1.0 503 C\r\n\r\n")
    cfg = parse(
        f"""
        defaults
            mode http
            errorfile 503 {a}
            errorfile 502 {b}
        frontend fe
            bind :8080
            default_backend be
        backend be
            errorfile 503 {c}
        defaults
            mode http
        backend other
        """
    )
    fe, be, other = cfg.proxy("fe"), cfg.proxy("be"), cfg.proxy("other")
    assert fe is not None and be is not None and other is not None
    assert fe.errorfiles == ((502, b"HTTP/1.0 502 B\r\n\r\n"), (503, b"HTTP/1.0 503 A\r\n\r\n"))
    assert be.errorfiles == ((502, b"HTTP/1.0 502 B\r\n\r\n"), (503, b"HTTP/1.0 503 C\r\n\r\n"))
    assert other.errorfiles == ()
