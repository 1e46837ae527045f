"""``errorfile`` in HTTP mode: the proxy's own errors answered with the file's bytes, then close."""

from __future__ import annotations

from pathlib import Path

from tests.unit.http_harness import Harness

PAGE_503 = (
    b"HTTP/1.0 503 Service Unavailable\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Content-Type: text/html\r\n"
    b"\r\n"
    b"<html><body><h1>Back soon</h1></body></html>\n"
)


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def backend_with_errorfile(code: int, page: str, server: str = "server a /s/a.sock") -> Harness:
    """One frontend, one backend with ``errorfile <code> <page>`` and one server line."""
    return Harness(
        f"""
        frontend fe
            bind :8080
            default_backend be
        backend be
            errorfile {code} {page}
            {server}
        """
    )


def test_no_server_503_is_the_errorfile_bytes_exactly_then_close(tmp_path: Path) -> None:
    """A 503 with no server sends the file as it is, closes, and logs 503 with its size."""
    page = write(tmp_path, "503.http", PAGE_503)
    h = backend_with_errorfile(503, page, "server a /s/a.sock disabled")
    client = h.client()
    client.request()
    assert client.raw() == PAGE_503
    assert client.transport.disconnecting  # its framing is the file's: no keep-alive
    (line,) = h.sink.lines
    assert f" 503 {len(PAGE_503)} " in line and " SC-- " in line
    assert h.quiet()


def test_a_servers_own_503_is_not_replaced(tmp_path: Path) -> None:
    """errorfile rewrites the proxy's errors only: a server's 503 passes unchanged."""
    page = write(tmp_path, "503.http", PAGE_503)
    h = backend_with_errorfile(503, page)
    client = h.client()
    client.request()
    server = h.connector.servers[0]
    server.read()
    server.respond(status=503, body=b"server says no")
    ((status, headers, body),) = client.responses()
    assert (status, body, headers["x-backend"]) == (503, b"server says no", "a")
    assert not client.transport.disconnecting


def test_backend_errorfile_wins_once_the_backend_is_chosen(tmp_path: Path) -> None:
    """After the backend is chosen its file wins over the frontend's, which is the fallback."""
    fe_page = write(tmp_path, "fe.http", b"HTTP/1.0 503 FE\r\n\r\nfrontend")
    be_page = write(tmp_path, "be.http", b"HTTP/1.0 503 BE\r\n\r\nbackend")
    fe_502 = write(tmp_path, "fe502.http", b"HTTP/1.0 502 FE\r\n\r\nfrontend 502")
    h = Harness(
        f"""
        frontend fe
            bind :8080
            errorfile 503 {fe_page}
            errorfile 502 {fe_502}
            default_backend be
        backend be
            errorfile 503 {be_page}
            server a /s/a.sock disabled
        """
    )
    client = h.client()
    client.request()
    assert client.raw() == b"HTTP/1.0 503 BE\r\n\r\nbackend"
    h = Harness(
        f"""
        frontend fe
            bind :8080
            errorfile 502 {fe_502}
            default_backend be
        backend be
            server a /s/a.sock
        """
    )
    client = h.client()
    client.request(method="POST", body=b"x")
    h.connector.servers[0].close()  # closed before any response byte: 502
    assert client.raw() == b"HTTP/1.0 502 FE\r\n\r\nfrontend 502"


def test_errors_before_the_backend_use_the_frontends_file_only(tmp_path: Path) -> None:
    """A malformed head (400) or CONNECT (405) ignores the backend's file, uses the frontend's."""
    fe_page = b"HTTP/1.0 400 FE\r\n\r\nfrontend 400"
    fe_400 = write(tmp_path, "fe400.http", fe_page)
    be_400 = write(tmp_path, "be400.http", b"HTTP/1.0 400 BE\r\n\r\n")
    be_405 = write(tmp_path, "be405.http", b"HTTP/1.0 405 BE\r\n\r\n")
    h = Harness(
        f"""
        frontend fe
            bind :8080
            errorfile 400 {fe_400}
            default_backend be
        backend be
            errorfile 400 {be_400}
            errorfile 405 {be_405}
            server a /s/a.sock
        """
    )
    client = h.client()
    client.send(b"GET / HTTP/1.1\r\nHost: a\r\n folded: x\r\n\r\n")
    assert client.raw() == fe_page
    assert " 400 0 " in h.sink.lines[-1] and " PR-- " in h.sink.lines[-1]  # %B 0, as HAProxy
    client = h.client()
    client.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert client.raw().startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")  # built-in
    assert not h.connector.servers


def test_listen_section_uses_its_own_errorfile(tmp_path: Path) -> None:
    """In a listen section the frontend and backend are one: its file answers."""
    page = write(tmp_path, "503.http", PAGE_503)
    h = Harness(
        f"""
        listen app
            bind :8080
            errorfile 503 {page}
            server a /s/a.sock disabled
        """
    )
    client = h.client()
    client.request()
    assert client.raw() == PAGE_503


def test_empty_errorfile_closes_without_a_response(tmp_path: Path) -> None:
    """errorfile 408 /dev/null: a silent connection is closed with no byte sent, still logged."""
    h = Harness(
        """
        frontend fe
            bind :8080
            timeout http-request 1s
            errorfile 408 /dev/null
            default_backend be
        backend be
            server a /s/a.sock
        """
    )
    client = h.client()
    h.advance(1.2)
    assert client.raw() == b"" and client.transport.disconnecting
    assert " 408 0 " in h.sink.lines[-1] and " cR-- " in h.sink.lines[-1]


def test_built_in_pages_stay_without_errorfile_for_the_code(tmp_path: Path) -> None:
    """A file for another code leaves the built-in 503 and its keep-alive unchanged."""
    page = write(tmp_path, "502.http", b"HTTP/1.0 502 X\r\n\r\n")
    h = backend_with_errorfile(502, page, "server a /s/a.sock disabled")
    client = h.client()
    client.request()
    ((status, _, body),) = client.responses()
    assert status == 503 and b"No server is available" in body
    assert not client.transport.disconnecting
