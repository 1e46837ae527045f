"""Address strings of ``bind`` and ``server`` lines -> model.Address (HAProxy §11 prefixes)."""

from __future__ import annotations

import ipaddress
import socket
from typing import List

from ..errors import ConfigError
from .model import ABNS, ABNSZ, FD, IPV4, IPV6, SUN_PATH_MAX, SYSTEMD, UNIX, Address

PREFIXES = (
    "unix@",
    "abns@",
    "abnsz@",
    "ipv4@",
    "ipv6@",
    "fd@",
    "systemd@",
    "sockpair@",
    "udp@",
    "udp4@",
    "udp6@",
    "quic4@",
    "quic6@",
    "uxst@",
    "uxdg@",
    "tcp@",
    "tcp4@",
    "tcp6@",
)
_UNSUPPORTED = {
    "sockpair@": "socket pairs are a master-worker detail of HAProxy; use unix@ or fd@",
    "udp@": "datagram listeners are not supported: udsproxy proxies streams",
    "udp4@": "datagram listeners are not supported: udsproxy proxies streams",
    "udp6@": "datagram listeners are not supported: udsproxy proxies streams",
    "uxdg@": "datagram listeners are not supported: udsproxy proxies streams",
    "quic4@": "QUIC is not supported",
    "quic6@": "QUIC is not supported",
}


def _parse_port(text: str, word: str, allow_range: bool) -> List[int]:
    if allow_range and "-" in text:
        lo_s, _, hi_s = text.partition("-")
        lo, hi = _parse_port(lo_s, word, False)[0], _parse_port(hi_s, word, False)[0]
        if hi < lo:
            raise ConfigError(
                f"invalid port range in '{word}'", hint="write low-high, e.g. 8000-8010"
            )
        return list(range(lo, hi + 1))
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ConfigError(f"invalid port '{text}' in '{word}'", hint="a port is 0..65535")
    return [int(text)]


def _resolve(host: str, word: str, family: str) -> tuple[str, str]:
    """Return (family, numeric host); host names are resolved now, as HAProxy does."""
    if host in ("", "*"):
        return family or IPV4, ""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            infos = socket.getaddrinfo(
                host, None, socket.AF_INET6 if family == IPV6 else socket.AF_INET
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot resolve host '{host}' in '{word}': {exc}",
                hint="use an IP address or a resolvable name",
            ) from None
        return (family or IPV4), str(infos[0][4][0])
    found = IPV6 if ip.version == 6 else IPV4
    if family and family != found:
        raise ConfigError(f"'{word}': {host} is not an {family} address")
    return found, str(ip)


def parse_address(word: str, for_bind: bool) -> List[Address]:
    """Parse one address word; a bind word may be a comma list or a port range."""
    if for_bind and "," in word:
        out: List[Address] = []
        for part in word.split(","):
            out.extend(parse_address(part, for_bind))
        return out
    prefix = ""
    rest = word
    if "@" in word:
        head = word[: word.index("@") + 1]
        if head in PREFIXES:
            prefix, rest = head, word[len(head) :]
        elif word.startswith("/"):
            pass
        else:
            raise ConfigError(
                f"unknown address prefix '{head}' in '{word}'",
                hint="use unix@, abns@, abnsz@, ipv4@, ipv6@, fd@ or systemd@",
            )
    if prefix in _UNSUPPORTED:
        raise ConfigError(f"address '{word}' is not supported", hint=_UNSUPPORTED[prefix])
    if prefix in ("unix@", "uxst@") or (not prefix and word.startswith("/")):
        if not rest:
            raise ConfigError(f"empty unix socket path in '{word}'")
        if len(rest.encode()) >= SUN_PATH_MAX:
            raise ConfigError(
                f"unix socket path too long ({len(rest.encode())} bytes) in '{word}'",
                hint=f"a socket path must be shorter than {SUN_PATH_MAX} bytes",
            )
        return [Address(UNIX, path=rest)]
    if prefix in ("abns@", "abnsz@"):
        if not rest:
            raise ConfigError(f"empty abstract socket name in '{word}'")
        if len(rest.encode()) > SUN_PATH_MAX - 1:
            raise ConfigError(
                f"abstract socket name too long in '{word}'",
                hint=f"at most {SUN_PATH_MAX - 1} bytes",
            )
        return [Address(ABNS if prefix == "abns@" else ABNSZ, path=rest)]
    if prefix == "fd@":
        if not rest.isdigit():
            raise ConfigError(
                f"invalid file descriptor in '{word}'", hint="write fd@<number>, e.g. fd@3"
            )
        if not for_bind:
            raise ConfigError(f"'{word}': fd@ is only valid on bind lines")
        return [Address(FD, fd=int(rest))]
    if prefix == "systemd@":
        if not rest or ":" in rest:
            raise ConfigError(
                f"invalid socket name in '{word}'",
                hint="write systemd@<FileDescriptorName of the .socket unit>",
            )
        if not for_bind:
            raise ConfigError(f"'{word}': systemd@ is only valid on bind lines")
        return [Address(SYSTEMD, path=rest)]
    family = {"ipv4@": IPV4, "ipv6@": IPV6}.get(prefix, "")
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0 or rest[close + 1 : close + 2] != ":":
            raise ConfigError(f"invalid address '{word}'", hint="write [ipv6]:port")
        host, port_text = rest[: close + 1], rest[close + 2 :]
        family = family or IPV6
    else:
        host, sep, port_text = rest.rpartition(":")
        if not sep:
            if for_bind:
                raise ConfigError(
                    f"missing port in '{word}'",
                    hint="write host:port, *:port, or a socket path starting with '/' "
                    "(or unix@relative/path)",
                )
            if not word.startswith("/") and ("/" in word or word.endswith(".sock")):
                raise ConfigError(
                    f"'{word}' looks like a relative socket path",
                    hint="socket paths must be absolute or written unix@path",
                )
            raise ConfigError(
                f"missing port in server address '{word}'", hint="write host:port, or a socket path"
            )
        if host.count(":") > 0:
            family = family or IPV6
    ports = _parse_port(port_text, word, allow_range=for_bind)
    fam, numeric = _resolve(host, word, family)
    if not for_bind and not numeric:
        raise ConfigError(f"server address '{word}' has no host", hint="write host:port")
    return [Address(fam, host=numeric, port=p) for p in ports]
