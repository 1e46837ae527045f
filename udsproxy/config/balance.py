"""``balance`` and ``hash-type`` lines: the algorithm, its options and the hash, checked.

Each option lands in its own field of :class:`model.Balance`; nothing downstream reads
the words again.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import replace
from typing import Dict, List, Sequence

from ..errors import ConfigError
from .builders import Context, need, no_more
from .model import Algorithm, Balance, HashFunction, HashType, UriOptions
from .values import parse_int

URI_OPTIONS = ("len", "depth", "whole", "path-only")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Algorithms that take no option.
_PLAIN = (
    Algorithm.ROUNDROBIN,
    Algorithm.STATIC_RR,
    Algorithm.LEASTCONN,
    Algorithm.FIRST,
    Algorithm.SOURCE,
)


def p_balance(ctx: Context, args: List[str]) -> None:
    usage = "balance roundrobin|static-rr|leastconn|first|source|random[(<draws>)]|uri|url_param|hdr(<name>)"
    need(args, 1, usage)
    algo = args[0]
    # Every option of the previous ``balance`` line is reset; hash-type is kept.
    fields: Dict[str, object] = {}
    m = re.fullmatch(r"random(?:\((\d+)\))?", algo)
    if m:
        fields["draws"] = parse_int(m.group(1), "random draws", 1) if m.group(1) else 2
        fields["algorithm"] = Algorithm.RANDOM
        no_more(args, 1, usage)
    elif algo in _PLAIN:
        fields["algorithm"] = Algorithm(algo)
        no_more(args, 1, usage)
    elif algo == "uri":
        fields["algorithm"] = Algorithm.URI
        fields["uri"] = parse_uri_options(args[1:])
    elif algo == "url_param":
        fields["algorithm"] = Algorithm.URL_PARAM
        fields.update(_url_param(ctx, args[1:]))
    elif algo.startswith("hdr("):
        fields["algorithm"] = Algorithm.HDR
        fields.update(_hdr(algo, args[1:]))
    elif algo in ("rdp-cookie", "hash") or algo.startswith(("rdp-cookie(", "hash")):
        raise ConfigError(
            f"'balance {algo}' is not supported",
            hint="use source, uri, url_param or hdr(<name>) hashing",
        )
    else:
        known = [a.value for a in Algorithm]
        close = difflib.get_close_matches(algo, known, n=1)
        raise ConfigError(
            f"unknown balance algorithm '{algo}'",
            hint=f"did you mean '{close[0]}'?" if close else "use one of " + ", ".join(known),
        )
    old: Balance = ctx.px.fields.get("balance", Balance())  # type: ignore[assignment]
    ctx.px.fields["balance"] = Balance(
        hash_type=old.hash_type,
        hash_function=old.hash_function,
        avalanche=old.avalanche,
        **fields,  # type: ignore[arg-type]
    )


def parse_uri_options(words: Sequence[str]) -> UriOptions:
    """``balance uri`` options, as HAProxy checks them (len and depth: positive integers)."""
    usage = "balance uri [len <n>] [depth <n>] [whole] [path-only]"
    length = depth = 0
    whole = path_only = False
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("len", "depth"):
            if i + 1 >= len(words):
                raise ConfigError(
                    f"'balance uri {word}' expects a positive integer", hint=f"usage: {usage}"
                )
            value = parse_int(words[i + 1], f"balance uri {word}", 1)
            if word == "len":
                length = value
            else:
                depth = value
            i += 2
        elif word == "whole":
            whole = True
            i += 1
        elif word == "path-only":
            path_only = True
            i += 1
        else:
            close = difflib.get_close_matches(word, URI_OPTIONS, n=1)
            raise ConfigError(
                f"unknown 'balance uri' option '{word}'",
                hint=f"did you mean '{close[0]}'?" if close else f"usage: {usage}",
            )
    return UriOptions(length, depth, whole, path_only)


def _url_param(ctx: Context, words: List[str]) -> Dict[str, object]:
    """``balance url_param <param> [check_post [<max_wait>]]``; max_wait is ignored."""
    usage = "balance url_param <param> [check_post]"
    need(words, 1, usage)
    if len(words) > 1 and words[1] != "check_post":
        raise ConfigError(
            f"'balance url_param' only accepts 'check_post' after the parameter, got '{words[1]}'",
            hint=f"usage: {usage}",
        )
    fields: Dict[str, object] = {"url_param": words[0], "check_post": len(words) > 1}
    if len(words) > 2:
        fields["check_post_max_wait"] = parse_int(words[2], "check_post <max_wait>", 0)
        no_more(words, 3, usage)
        ctx.warnings.append(
            "'check_post <max_wait>' is ignored (as by HAProxy): the body is looked at "
            "up to min(Content-Length, tune.bufsize) bytes"
        )
    return fields


def _hdr(algo: str, words: List[str]) -> Dict[str, object]:
    """``balance hdr(<name>) [use_domain_only]``."""
    usage = "balance hdr(<name>) [use_domain_only]"
    m = re.fullmatch(r"hdr\((.*)\)", algo)
    if m is None or not m.group(1):
        raise ConfigError("'balance hdr' requires a header field name", hint=f"usage: {usage}")
    if not _HEADER_NAME.fullmatch(m.group(1)):
        raise ConfigError(f"'{m.group(1)}' is not a header field name", hint=f"usage: {usage}")
    if words and words[0] != "use_domain_only":
        raise ConfigError(
            f"'balance {algo}' only accepts 'use_domain_only', got '{words[0]}'",
            hint=f"usage: {usage}",
        )
    no_more(words, 1, usage)
    return {"header": m.group(1), "use_domain_only": bool(words)}


def p_hash_type(ctx: Context, args: List[str]) -> None:
    usage = "hash-type map-based|consistent [sdbm|djb2|wt6|crc32|none] [avalanche]"
    need(args, 1, usage)
    if args[0] not in list(HashType):
        raise ConfigError(f"unknown hash-type '{args[0]}'", hint=usage)
    fn = HashFunction.SDBM
    if len(args) > 1:
        if args[1] not in list(HashFunction):
            raise ConfigError(f"unknown hash function '{args[1]}'", hint=usage)
        fn = HashFunction(args[1])
    if len(args) > 2 and args[2] != "avalanche":
        raise ConfigError(f"unexpected word '{args[2]}'", hint=usage)
    old: Balance = ctx.px.fields.get("balance", Balance())  # type: ignore[assignment]
    ctx.px.fields["balance"] = replace(
        old, hash_type=HashType(args[0]), hash_function=fn, avalanche=len(args) > 2
    )
