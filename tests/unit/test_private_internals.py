"""The private parts of Twisted and h11 the hot path relies on, checked against what is installed.

pyproject.toml bounds both libraries to the versions these tests passed with; a new
release outside them may move any of these. Each failure names the udsproxy module that
depends on the internal and the installed version, so a bound is raised knowingly.

h11 (and h11-mypyc, the same API compiled, when installed):

- ``h11._headers.Headers``, built from ``(raw name, lower-case name, value)`` triples
  (``http.h11lib.Headers``; ``http.exchange.attach`` builds request heads with it);
- ``Headers._full_items``, that very list (``http.headers.full_items``);
- ``Request(..., headers=<Headers>, _parsed=True)`` keeps the ``Headers`` object and the
  method and target as given, with no second validation (``http.exchange.attach``);
- a ``Connection`` parses nothing before ``next_event`` (``http.headers.RawHead`` checks
  the head beside h11's buffer until then);
- chunk framing as ``http.chunks.ChunkScan`` follows it (size line to its CRLF, CRLF after
  the data, trailers to the first empty line): see ``tests/unit/test_http_chunks.py``.

Twisted (``net.connect``):

- ``tcp.Server.__init__(sock, protocol, client, server, sessionno, reactor)`` and the same
  for ``unix.Server`` (``build_transport`` makes transports without a Port), which makes
  the socket non-blocking (``net.listen`` does not do it again);
- the write-queue state ``_WriteNow.write`` reads to send at once: ``connected``,
  ``disconnecting``, ``_aborting``, ``_writeDisconnecting``, ``_tempDataLen``,
  ``offset``, ``dataBuffer``, and the ``socket`` it sends on;
- ``tcp.Connection.writeSomeData`` usable on ``unix.Server`` (plain send), and
  ``tcp.Connection.doRead``'s results (``None``, ``main.CONNECTION_DONE``/``LOST``), which
  ``_ReadInto.doRead`` returns in the same cases;
- ``repstr`` (``__repr__``, a property of ours) and ``logstr`` (``logPrefix()``), set after
  construction.
"""

from __future__ import annotations

import inspect
import socket
from importlib import import_module
from importlib.metadata import version
from typing import Any, List

import pytest
from twisted.internet import abstract, main, tcp, unix
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock

from udsproxy.http import h11lib
from udsproxy.net.connect import build_transport

TWISTED = f"Twisted {version('twisted')}"


def builds() -> List[Any]:
    """h11 and, when installed, h11-mypyc: udsproxy runs on either."""
    out = [import_module("h11")]
    try:
        out.append(import_module("h11_mypyc"))
    except ImportError:
        pass
    return out


def lib(h11: Any) -> str:
    return f"{h11.__name__} {h11.__version__}"


@pytest.fixture(params=builds(), ids=lambda m: m.__name__)
def h11(request: Any) -> Any:
    return request.param


def parsed_request(h11: Any, raw: bytes) -> Any:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(raw)
    return conn.next_event()


# ------------------------------------------------------------------ h11


def test_headers_class_is_where_h11lib_takes_it(h11: Any) -> None:
    """h11._headers.Headers is the class of parsed headers."""
    where = f"udsproxy.http.h11lib takes h11._headers.Headers ({lib(h11)})"
    headers_module = getattr(h11, "_headers", None)
    assert headers_module is not None, where
    assert hasattr(headers_module, "Headers"), where
    request = parsed_request(h11, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert type(request.headers) is headers_module.Headers, where
    if h11.__name__ == h11lib.IMPLEMENTATION:
        assert h11lib.Headers is headers_module.Headers, where


def test_full_items_are_the_raw_lower_value_triples(h11: Any) -> None:
    """Headers._full_items is the list of (raw name, lower-case name, value) as parsed."""
    where = f"udsproxy.http.headers.full_items reads Headers._full_items ({lib(h11)})"
    request = parsed_request(h11, b"GET / HTTP/1.1\r\nHost: a\r\nX-Mixed-Case: v\r\n\r\n")
    items = getattr(request.headers, "_full_items", None)
    assert isinstance(items, list), where
    assert items == [(b"Host", b"host", b"a"), (b"X-Mixed-Case", b"x-mixed-case", b"v")], where


def test_headers_from_triples_serialize_as_given(h11: Any) -> None:
    """Headers(triples) in a _parsed Request is kept as is and sent with its raw names."""
    where = f"udsproxy.http.exchange.attach sends Request(headers=Headers(...), _parsed=True) ({lib(h11)})"
    headers = h11._headers.Headers([(b"Host", b"host", b"a"), (b"X-Mixed", b"x-mixed", b"v")])
    method, target = b"GET", b"/t"
    request = h11.Request(method=method, target=target, headers=headers, _parsed=True)
    assert request.headers is headers, where
    assert request.method is method and request.target is target, where
    client = h11.Connection(h11.CLIENT)
    assert client.send(request) == b"GET /t HTTP/1.1\r\nHost: a\r\nX-Mixed: v\r\n\r\n", where


def test_nothing_is_parsed_before_next_event(h11: Any) -> None:
    """receive_data only buffers: a bad head raises at next_event, not before."""
    where = f"udsproxy.http.headers.RawHead checks the head beside h11's buffer ({lib(h11)})"
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=20)
    conn.receive_data(b"\x00 not http at all, and longer than the limit\r\n\r\n")
    assert conn.their_state is h11.IDLE, where
    assert conn.trailing_data[0].startswith(b"\x00"), where
    with pytest.raises(h11.RemoteProtocolError):
        conn.next_event()


# ------------------------------------------------------------------ Twisted


class Sink(Protocol):
    def __init__(self) -> None:
        self.data = b""

    def dataReceived(self, data: bytes) -> None:
        self.data += data


@pytest.fixture
def pair() -> Any:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ours.setblocking(False)
    theirs.setblocking(False)
    yield ours, theirs
    ours.close()
    theirs.close()


def make(pair: Any) -> Any:
    ours, _ = pair
    protocol = Sink()
    transport = build_transport(MemoryReactorClock(), ours, protocol, None, 7)
    protocol.makeConnection(transport)
    return transport


@pytest.mark.parametrize("cls", [tcp.Server, unix.Server], ids=["tcp", "unix"])
def test_server_transport_constructor(cls: Any) -> None:
    """tcp.Server and unix.Server take (sock, protocol, client, server, sessionno, reactor)."""
    where = f"udsproxy.net.connect.build_transport builds {cls.__module__}.Server ({TWISTED})"
    names = list(inspect.signature(cls.__init__).parameters)
    assert names == ["self", "sock", "protocol", "client", "server", "sessionno", "reactor"], where


def test_transports_make_their_socket_non_blocking(pair: Any) -> None:
    """The transport's constructor makes its socket non-blocking (accepted sockets are
    handed to build_transport as accept() returns them)."""
    where = f"udsproxy.net.listen.Listener._serve leaves setblocking to tcp.Connection ({TWISTED})"
    ours, _ = pair
    ours.setblocking(True)
    make(pair)
    assert ours.getblocking() is False, where


def test_write_queue_state(pair: Any) -> None:
    """The attributes _WriteNow.write reads exist and mean what it assumes."""
    where = f"udsproxy.net.connect._WriteNow.write reads the write queue ({TWISTED})"
    t = make(pair)
    _, theirs = pair
    assert t.socket is pair[0], where
    assert t.connected and not t.disconnecting, where
    assert t._aborting is False and t._writeDisconnecting is False, where
    assert t._tempDataLen == 0 and t.offset == len(t.dataBuffer) == 0, where
    t.write(b"now")
    assert theirs.recv(100) == b"now", where  # nothing queued: sent at once
    abstract.FileDescriptor.write(t, b"queued")  # Twisted's own path queues ...
    assert t._tempDataLen == len(b"queued"), where  # ... and counts it here
    t.write(b"after")  # so this one must wait its turn
    with pytest.raises(BlockingIOError):
        theirs.recv(100)
    assert t._tempDataLen == len(b"queuedafter"), where
    t.doWrite()  # the reactor's turn: both, in order
    assert theirs.recv(100) == b"queuedafter", where
    assert t._tempDataLen == 0 and t.offset == len(t.dataBuffer), where


def test_closing_flags(pair: Any) -> None:
    """loseWriteConnection and abortConnection set the flags _WriteNow.write checks."""
    where = f"udsproxy.net.connect._WriteNow.write checks the closing flags ({TWISTED})"
    t = make(pair)
    t.loseWriteConnection()
    assert t._writeDisconnecting is True, where
    t = make(pair)
    t.abortConnection()
    assert t._aborting is True, where


def test_plain_recv_and_send_on_unix_transports(pair: Any) -> None:
    """tcp.Connection.writeSomeData works on a unix.Server, and our doRead (recv_into) reads
    what Twisted's own doRead reads, with the same results at EOF."""
    where = f"udsproxy.net.connect._UNIXTransport uses tcp.Connection's writeSomeData and _ReadInto mirrors tcp.Connection.doRead ({TWISTED})"
    assert issubclass(unix.Server, tcp.Connection), where
    t = make(pair)
    _, theirs = pair
    assert t.writeSomeData(b"abc") == 3, where
    assert theirs.recv(10) == b"abc", where
    theirs.send(b"xyz")
    t.doRead()
    theirs.send(b"uvw")
    tcp.Connection.doRead(t)
    assert t.protocol.data == b"xyzuvw", where
    assert t.doRead() is tcp.Connection.doRead(t) is None, where  # nothing to read
    theirs.shutdown(socket.SHUT_WR)
    assert t.doRead() is tcp.Connection.doRead(t) is main.CONNECTION_DONE, where


def test_repstr_and_logstr(pair: Any) -> None:
    """repr() is repstr (made when asked for) and logPrefix() is logstr (set once, shared)."""
    where = f"udsproxy.net.connect build_transport/_Labels use repstr/logstr ({TWISTED})"
    t = make(pair)
    assert repr(t).startswith("<Sink #7 with "), where
    assert t.logPrefix() == "Sink", where
