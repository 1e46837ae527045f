"""Chunk sizes of a chunked body, followed beside h11 to refuse one that overflows.

h11 accepts a chunk size of up to 20 hex digits, so ``FFFFFFFFFFFFFFFFFFFF`` is a valid
size to it and the connection then waits for a body that never ends. HAProxy refuses a
size of 2^52 or more (``h1_parse_chunk_size``: "never fed possibly bogus values from
languages that use floats for their integers") as soon as the digit that reaches it is
read. A :class:`ChunkScan` is given the same body bytes as h11, *before* h11, and raises
:class:`ChunkError` at that digit, so that nothing of such a chunk is forwarded.

It only tracks framing; every other check stays h11's. For any body h11 accepts (a size
line is ``1*20HEXDIG [";" ext] OWS CRLF`` with no LF before its CRLF, data is followed by
exactly CRLF, trailers end at the first empty line) the first LF ends each line, so
following lines by LF sees the same chunk boundaries as h11. Where the two would differ
h11 refuses the body anyway.
"""

from __future__ import annotations

from typing import Union

MAX_CHUNK_SIZE = (1 << 52) - 1  # HAProxy's bound: 13 hex digits, leading zeros aside

_HEX = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"}

# States: where the next byte belongs.
SIZE = 0  # hex digits of a chunk size
LINE = 1  # the rest of a size line (extensions, OWS, CRLF): up to its LF
DATA = 2  # chunk data, then its CRLF
TRAILER = 3  # trailer fields, up to the empty line
DONE = 4  # the body ended; what follows is the next message


class ChunkError(Exception):
    """A chunk size that overflows: the reason for the log and the offset in the body."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position


class ChunkScan:
    """The framing state of one chunked body; :meth:`feed` it what h11 is fed."""

    def __init__(self) -> None:
        self.state = SIZE
        self.size = 0
        self.left = 0  # DATA: data bytes plus the CRLF still to come
        self.line_start = True  # TRAILER: the last byte was an LF (optionally then a CR)
        self.cr = False  # TRAILER: ... and a CR followed it
        self.offset = 0  # bytes of the body fed so far

    @property
    def done(self) -> bool:
        return self.state == DONE

    def feed(self, data: Union[bytes, bytearray]) -> None:
        """Follow ``data``; raise :class:`ChunkError` at the digit that overflows a size."""
        i, n = 0, len(data)
        state = self.state
        while i < n and state != DONE:
            if state == DATA:
                step = min(self.left, n - i)
                i += step
                self.left -= step
                if not self.left:
                    state = SIZE
                    self.size = 0
            elif state == SIZE:
                digit = _HEX.get(data[i])
                if digit is None:
                    state = LINE
                    continue
                size = (self.size << 4) | digit
                if size > MAX_CHUNK_SIZE:
                    self.state = state
                    raise ChunkError("chunk size overflows", self.offset + i)
                self.size = size
                i += 1
            elif state == LINE:
                lf = data.find(b"\n", i)
                if lf < 0:
                    i = n
                    continue
                i = lf + 1
                if self.size:
                    state = DATA
                    self.left = self.size + 2  # and the CRLF after the data
                else:  # the last chunk: trailers follow, as if after an LF
                    state = TRAILER
                    self.line_start, self.cr = True, False
            else:  # TRAILER: h11 ends it at the first "\n\r?\n"
                byte = data[i]
                if self.line_start:
                    if byte == 10:
                        state = DONE
                    elif byte == 13 and not self.cr:
                        self.cr = True
                    else:
                        self.line_start, self.cr = False, False
                        continue
                    i += 1
                else:
                    lf = data.find(b"\n", i)
                    if lf < 0:
                        i = n
                        continue
                    i = lf + 1
                    self.line_start, self.cr = True, False
        self.state = state
        self.offset += i
