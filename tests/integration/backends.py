"""Integration-test helpers: backend processes (ours and thin), and sync HTTP/raw clients.

Addresses are what ``udsproxy.demo.backend.parse_address`` accepts: ``/path``,
``unix@/path``, ``abns@name``, ``abnsz@name``, ``ipv4@host:port`` or ``host:port``; a
``(host, port)`` tuple also works.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import h11

from udsproxy.demo.backend import parse_address

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

AddressLike = Union[str, Tuple[str, int]]
HeaderList = Sequence[Tuple[str, str]]

# ------------------------------------------------------------------------------ sockets


def connect(address: AddressLike, timeout: float = 5.0) -> socket.socket:
    """A blocking socket connected to ``address``, with ``timeout`` on every operation."""
    if isinstance(address, tuple):
        family, sockaddr = socket.AF_INET, address
    else:
        addr = parse_address(address)
        sockaddr = addr.sockaddr()  # type: ignore[assignment]
        family = socket.AF_UNIX if addr.is_unix else socket.AF_INET
        if addr.family == "ipv6":
            family = socket.AF_INET6
        if not addr.is_unix and not addr.host:
            sockaddr = ("127.0.0.1", addr.port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_connectable(
    address: AddressLike, timeout: float = 10.0, proc: Optional[subprocess.Popen[bytes]] = None
) -> None:
    """Poll-connect until ``address`` accepts, ``proc`` dies, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {address} was up")
        try:
            connect(address, timeout=1.0).close()
            return
        except OSError as exc:
            last = exc
        # A short wait between probes; select() on nothing is a portable sub-second sleep.
        select.select([], [], [], 0.02)
    raise TimeoutError(f"{address} not connectable after {timeout}s: {last}")


def raw_exchange(
    address: AddressLike,
    data: bytes,
    timeout: float = 5.0,
    shutdown_write: bool = False,
) -> bytes:
    """Send ``data``, optionally half-close, return all bytes read until close or timeout."""
    sock = connect(address, timeout)
    try:
        sock.sendall(data)
        if shutdown_write:
            sock.shutdown(socket.SHUT_WR)
        return read_until_close(sock, timeout)
    finally:
        sock.close()


def recv_line(sock: socket.socket) -> bytes:
    """One line (up to and including LF) read byte by byte, or what came before EOF.

    Not ``sock.makefile()``: the file object holds a reference that keeps the descriptor
    open after ``sock.close()`` until it is garbage collected, which on PyPy is not at once.
    """
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = sock.recv(1)
        if not byte:
            break
        line += byte
    return bytes(line)


def read_until_close(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything ``sock`` delivers until EOF, a reset, or ``timeout`` overall."""
    deadline = time.monotonic() + timeout
    chunks: List[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------------------ HTTP client


class HTTPResponse(NamedTuple):
    """A parsed response; ``headers`` keep order, names lower-cased by h11."""

    status: int
    headers: List[Tuple[str, str]]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        """The last value of header ``name`` (any case), or None."""
        found = None
        for key, value in self.headers:
            if key == name.lower():
                found = value
        return found


Body = Union[bytes, Iterable[bytes]]


def _request_events(
    method: str, path: str, headers: HeaderList, body: Body, host: str
) -> List[h11.Event]:
    """The h11 events of one request; an iterable body goes out chunked."""
    hdrs = list(headers)
    names = {k.lower() for k, _ in hdrs}
    if "host" not in names:
        hdrs.insert(0, ("Host", host))
    events: List[h11.Event] = []
    if isinstance(body, (bytes, bytearray)):
        if body or method.upper() in ("POST", "PUT", "PATCH"):
            if "content-length" not in names and "transfer-encoding" not in names:
                hdrs.append(("Content-Length", str(len(body))))
        events.append(h11.Request(method=method, target=path, headers=hdrs))
        if body:
            events.append(h11.Data(data=bytes(body)))
    else:
        if "transfer-encoding" not in names:
            hdrs.append(("Transfer-Encoding", "chunked"))
        events.append(h11.Request(method=method, target=path, headers=hdrs))
        events.extend(h11.Data(data=chunk) for chunk in body if chunk)
    events.append(h11.EndOfMessage())
    return events


def serialize_request(
    method: str, path: str, headers: HeaderList = (), body: Body = b"", host: str = "backend"
) -> bytes:
    """The wire bytes of one request (for raw and pipelined tests)."""
    conn = h11.Connection(h11.CLIENT)
    return b"".join(conn.send(e) or b"" for e in _request_events(method, path, headers, body, host))


class HTTPClient:
    """A sync HTTP/1.1 client on one connection: keep-alive, and pipelined sends."""

    def __init__(self, address: AddressLike, timeout: float = 5.0, host: str = "backend") -> None:
        self.address = address
        self.timeout = timeout
        self.host = host
        self.sock = connect(address, timeout)
        self.conn = h11.Connection(h11.CLIENT)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> HTTPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self, method: str, path: str, headers: HeaderList = (), body: Body = b""
    ) -> HTTPResponse:
        """Send one request and read its response; reuse the connection when allowed."""
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        for event in _request_events(method, path, headers, body, self.host):
            data = self.conn.send(event)
            if data:
                self.sock.sendall(data)
        return self._read_response()

    def pipeline(
        self, requests: Sequence[Tuple[str, str, HeaderList, bytes]]
    ) -> List[HTTPResponse]:
        """Write all ``(method, path, headers, body)`` requests in one send; read in order."""
        wire = b"".join(
            serialize_request(method, path, headers, body, self.host)
            for method, path, headers, body in requests
        )
        # h11 sends one request per cycle, so the wire bytes come from scratch connections;
        # the real connection replays the same events (output discarded) to parse in order.
        self.sock.sendall(wire)
        responses = []
        for method, path, headers, body in requests:
            if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
                self.conn.start_next_cycle()
            for event in _request_events(method, path, headers, body, self.host):
                self.conn.send(event)
            responses.append(self._read_response())
        return responses

    def _read_response(self) -> HTTPResponse:
        deadline = time.monotonic() + self.timeout
        response: Optional[h11.Response] = None
        body: List[bytes] = []
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no complete response from {self.address}")
                self.sock.settimeout(left)
                self.conn.receive_data(self.sock.recv(65536))
            elif isinstance(event, h11.InformationalResponse):
                continue
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers]
                return HTTPResponse(response.status_code, headers, b"".join(body))
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError(f"{self.address} closed before a complete response")


def http_request(
    address: AddressLike,
    method: str,
    path: str,
    headers: HeaderList = (),
    body: Body = b"",
    timeout: float = 5.0,
) -> HTTPResponse:
    """One request on a fresh connection; returns ``(status, headers, body)``."""
    with HTTPClient(address, timeout) as client:
        return client.request(method, path, headers, body)


# ------------------------------------------------------------------------------ processes


def _read_line(stream: IO[bytes], deadline: float, buf: bytearray) -> Optional[bytes]:
    """One line from a pipe, or None at EOF; raises TimeoutError at ``deadline``."""
    fd = stream.fileno()
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no READY line in time")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        buf.extend(chunk)
    line, _, rest = bytes(buf).partition(b"\n")
    buf[:] = rest
    return line


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> Optional[int]:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; returns the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream is not None:
            stream.close()
    return proc.returncode


@dataclass
class BackendProc:
    """A running ``udsproxy.demo.backend`` process and the addresses it reported."""

    name: str
    mode: str
    proc: subprocess.Popen[bytes]
    addresses: List[str] = field(default_factory=list)
    log_path: str = ""

    @property
    def address(self) -> str:
        """The first listener, as printed on its READY line (``unix@/path``, ...)."""
        return self.addresses[0]

    @property
    def path(self) -> str:
        """The socket file of the first listener (unix listeners only)."""
        addr = parse_address(self.address)
        assert addr.family == "unix", self.address
        return addr.path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        """What the process wrote to stderr so far."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0) -> Optional[int]:
        """Terminate (SIGTERM, then SIGKILL) and reap; returns the exit status."""
        return stop_process(self.proc, timeout)


def spawn_backend(
    name: str,
    listen: Union[str, Sequence[str]],
    mode: str = "http",
    log_dir: str = "/tmp",
    timeout: float = 15.0,
) -> BackendProc:
    """Start a backend process listening on every address; returns once all are READY."""
    listens = [listen] if isinstance(listen, str) else list(listen)
    argv = [sys.executable, "-m", "udsproxy.demo.backend", "--name", name, "--mode", mode]
    for item in listens:
        argv += ["--socket", item] if item.startswith("/") else ["--listen", item]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    log_path = os.path.join(log_dir, f"backend-{name}-{os.getpid()}-{time.monotonic_ns()}.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env
        )
    backend = BackendProc(name, mode, proc, log_path=log_path)
    deadline = time.monotonic() + timeout
    buf = bytearray()
    try:
        assert proc.stdout is not None
        while len(backend.addresses) < len(listens):
            line = _read_line(proc.stdout, deadline, buf)
            if line is None:
                proc.wait(timeout)
                raise RuntimeError(
                    f"backend {name} exited with {proc.returncode}: {backend.log().strip()}"
                )
            if line.startswith(b"READY "):
                backend.addresses.append(line[6:].decode().strip())
    except BaseException:
        stop_process(proc)
        raise
    return backend


THIN_CONFIG_RU = """\
# A tiny Rack app for integration tests: "/" names the backend, "/echo" echoes the body.
NAME = %(name)r

app = lambda do |env|
  case env["PATH_INFO"]
  when "/"
    [200, {"Content-Type" => "text/plain", "X-Backend" => NAME}, ["hello from #{NAME}\\n"]]
  when "/echo"
    body = env["rack.input"].read
    [200, {"Content-Type" => "application/octet-stream", "X-Backend" => NAME,
           "Content-Length" => body.bytesize.to_s}, [body]]
  else
    [404, {"Content-Type" => "text/plain", "X-Backend" => NAME}, ["not found\\n"]]
  end
end

run app
"""


@dataclass
class ThinProc:
    """A running ``thin`` server on a socket file."""

    name: str
    path: str
    proc: subprocess.Popen[bytes]
    log_path: str

    @property
    def address(self) -> str:
        return f"unix@{self.path}"

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        return stop_process(self.proc, timeout)


def thin_path() -> Optional[str]:
    """The ``thin`` executable, or None when it is not installed."""
    return shutil.which("thin")


def spawn_thin(name: str, path: str, workdir: str, timeout: float = 30.0) -> ThinProc:
    """Start thin in the foreground on socket file ``path``; returns once it accepts."""
    thin = thin_path()
    if thin is None:
        raise FileNotFoundError("thin is not installed")
    appdir = os.path.join(workdir, f"thin-{name}")
    os.makedirs(appdir, exist_ok=True)
    rackup = os.path.join(appdir, "config.ru")
    with open(rackup, "w", encoding="utf-8") as f:
        f.write(THIN_CONFIG_RU % {"name": name})
    log_path = os.path.join(appdir, "thin.log")
    # No -d: thin stays in the foreground, so SIGTERM on this pid stops it. -c keeps any
    # relative file thin creates inside appdir.
    argv = [thin, "start", "-R", rackup, "--socket", path, "-e", "production", "-c", appdir]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=appdir
        )
    server = ThinProc(name, path, proc, log_path)
    try:
        wait_connectable(f"unix@{path}", timeout, proc)
    except BaseException as exc:
        stop_process(proc)
        raise RuntimeError(f"thin did not start: {exc}\n{server.log()}") from exc
    return server
