"""The 32-bit hash functions of ``hash-type <method> <function>`` (HAProxy's hash.c).

``sdbm`` is HAProxy's default; ``full_hash`` is Bob Jenkins' integer mix HAProxy uses to
place consistent-hash ring points and for the ``avalanche`` modifier.
"""

from __future__ import annotations

import zlib
from typing import Callable, Dict

MASK = 0xFFFFFFFF


def sdbm(data: bytes) -> int:
    h = 0
    for c in data:
        h = (c + (h << 6) + (h << 16) - h) & MASK
    return h


def djb2(data: bytes) -> int:
    h = 5381
    for c in data:
        h = ((h << 5) + h + c) & MASK
    return h


def wt6(data: bytes) -> int:
    h0, h1 = 0xA53C965A, 0x5CA6953A
    step0, step1 = 6, 18
    for c in data:
        h0 = ~(h0 ^ c) & MASK
        h1 = ~(h1 + c) & MASK
        t = ((h1 << step0) | (h1 >> (32 - step0))) & MASK
        h1 = ((h0 << step1) | (h0 >> (32 - step1))) & MASK
        h0 = t
        t = ((h0 >> 16) ^ h1) & 0xFFFF
        step0 = t & 0x1F
        step1 = t >> 11
    return (h0 ^ h1) & MASK


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & MASK


def none(data: bytes) -> int:
    """``none``: the key already is a hash (a decimal number, else its last 4 bytes)."""
    if data.isdigit():
        return int(data) & MASK
    return int.from_bytes(data[-4:], "big")


def full_hash(a: int) -> int:
    """Bob Jenkins' 32-bit integer hash: spreads close inputs over the whole range."""
    a &= MASK
    a = (a + 0x7ED55D16 + (a << 12)) & MASK
    a = (a ^ 0xC761C23C ^ (a >> 19)) & MASK
    a = (a + 0x165667B1 + (a << 5)) & MASK
    a = ((a + 0xD3A2646C) ^ (a << 9)) & MASK
    a = (a + 0xFD7046C5 + (a << 3)) & MASK
    a = (a ^ 0xB55A4F09 ^ (a >> 16)) & MASK
    return a


HASH_FUNCTIONS: Dict[str, Callable[[bytes], int]] = {
    "sdbm": sdbm,
    "djb2": djb2,
    "wt6": wt6,
    "crc32": crc32,
    "none": none,
}
