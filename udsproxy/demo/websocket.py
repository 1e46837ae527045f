"""The demo backend's WebSocket side (RFC 6455): the handshake key and a frame codec.

Just enough for an echo endpoint that a real WebSocket client can talk to through the
proxy: frames are parsed as they arrive (masked from clients), data frames are echoed with
their FIN bit and opcode (so fragmented messages stay fragmented), pings get pongs and a
close is answered with a close.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import List, Optional, Tuple

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_PAYLOAD = 16 * 1024 * 1024  # a demo: refuse frames larger than this

Frame = Tuple[bool, int, bytes]  # (fin, opcode, payload)


class FrameError(Exception):
    """A frame the endpoint cannot accept (close code 1002 or 1009)."""

    def __init__(self, reason: str, code: int = 1002) -> None:
        super().__init__(reason)
        self.code = code


def accept_key(key: bytes) -> bytes:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key.strip() + GUID).digest())


def encode_frame(
    opcode: int, payload: bytes, fin: bool = True, mask: Optional[bytes] = None
) -> bytes:
    """One frame; ``mask`` (4 bytes) for frames a client sends."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    mask_bit = 0x80 if mask is not None else 0
    n = len(payload)
    if n < 126:
        head.append(mask_bit | n)
    elif n < 65536:
        head.append(mask_bit | 126)
        head += struct.pack("!H", n)
    else:
        head.append(mask_bit | 127)
        head += struct.pack("!Q", n)
    if mask is None:
        return bytes(head) + payload
    return bytes(head) + mask + _unmask(payload, mask)


def _unmask(data: bytes, mask: bytes) -> bytes:
    if not data:
        return b""
    key = int.from_bytes((mask * (len(data) // 4 + 1))[: len(data)], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(len(data), "big")


class FrameParser:
    """Bytes in, complete frames out; ``require_mask`` for a server reading a client."""

    def __init__(self, require_mask: bool = True) -> None:
        self.buffer = b""
        self.require_mask = require_mask

    def feed(self, data: bytes) -> List[Frame]:
        self.buffer += data
        frames: List[Frame] = []
        while True:
            frame = self._next()
            if frame is None:
                return frames
            frames.append(frame)

    def _next(self) -> Optional[Frame]:
        buf = self.buffer
        if len(buf) < 2:
            return None
        fin = bool(buf[0] & 0x80)
        if buf[0] & 0x70:
            raise FrameError("reserved bits set without an extension")
        opcode = buf[0] & 0x0F
        masked = bool(buf[1] & 0x80)
        if self.require_mask and not masked:
            raise FrameError("client frames must be masked")
        n = buf[1] & 0x7F
        pos = 2
        if n == 126:
            if len(buf) < 4:
                return None
            (n,) = struct.unpack("!H", buf[2:4])
            pos = 4
        elif n == 127:
            if len(buf) < 10:
                return None
            (n,) = struct.unpack("!Q", buf[2:10])
            pos = 10
        if n > MAX_PAYLOAD:
            raise FrameError(f"frame of {n} bytes is too large", code=1009)
        mask = b""
        if masked:
            mask = buf[pos : pos + 4]
            pos += 4
        if len(buf) < pos + n:
            return None
        payload = buf[pos : pos + n]
        self.buffer = buf[pos + n :]
        if masked:
            payload = _unmask(payload, mask)
        return fin, opcode, payload
