"""Values written as log-format strings (HAProxy's "lf-strings"): compiled once, rendered per request.

``set-header``, ``add-header``, ``replace-*``, ``return ... lf-string``, ``hdr``, ``redirect``
and ``set-var-fmt`` take their value as a log-format string (configuration.txt §8.2.4):
literal text with ``%[<sample expression>]`` parts. :func:`compile_lf` is the one place an
lf-string becomes a function of a :class:`~.context.RuleContext`; everything that takes one
goes through it.

Until the log-format compiler (``udsproxy.logformat``) is merged, this module reads the
subset rules need and owns nothing else: literal text, ``%%`` and ``%[expr]`` (a missing
sample prints nothing; control characters a sample would put in a header are ``%XX``
encoded, as HAProxy does for header values). A log-format variable (``%ci``, ``%ID`` ...)
is a config error naming the sample expression that gives the same value.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple, Union

from .context import RuleContext, Where
from .sample import Origin, Sample, compile_sample, find_sample_end, to_text

Render = Callable[[RuleContext], str]

# What HAProxy %XX-encodes in a sample written into an HTTP header value.
_HEADER_UNSAFE = {c: f"%{c:02X}" for c in (*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F)}

# Log-format variables and the sample expressions that give the same value.
_VARIABLE_HINTS = {
    "ci": "src",
    "cp": "src_port",
    "fi": "dst",
    "fp": "dst_port",
    "f": "fe_name",
    "ft": "fe_name",
    "b": "be_name",
    "s": "srv_name",
    "ID": "unique-id",
    "HM": "method",
    "HU": "url",
    "HP": "path",
    "HQ": "query",
    "HV": "req.ver",
}


class LfValue:
    """A compiled lf-string: ``value(ctx)`` is its text for this request.

    ``const`` is the text when the string has no expression (no work per request), else
    None. Two values compare equal when written the same (for the frozen config model).
    """

    __slots__ = ("text", "const", "fn", "samples")

    def __init__(
        self, text: str, const: Optional[str], fn: Render, samples: Tuple[Sample, ...]
    ) -> None:
        self.text = text
        self.const = const
        self.fn = fn  # hot paths keep and call it directly
        self.samples = samples

    def __call__(self, ctx: RuleContext) -> str:
        return self.fn(ctx)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LfValue) and (self.text, self.samples) == (
            other.text,
            other.samples,
        )

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"LfValue({self.text!r})"


def compile_lf(text: str, *, where: Where, filename: str = "", lineno: int = 0) -> LfValue:
    """Compile the lf-string ``text`` for evaluation at ``where``.

    Raises ConfigError (file, line, the offending part, a hint) for an unclosed ``%[``, a
    sample expression that does not compile (unknown fetch or converter, a fetch not
    available at ``where`` ...), or a log-format variable.
    """
    origin = Origin(where, filename, lineno)
    parts: List[Union[str, Sample]] = []
    literal: List[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c != "%":
            literal.append(c)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "%":
            literal.append("%")
            i += 2
            continue
        if nxt != "[":
            raise _variable_error(text, i, origin)
        end = find_sample_end(text, i + 2)
        if end < 0:
            raise origin.error(
                f"missing ']' after '{text[i:]}'", hint="write %[<fetch>[,<converter>...]]"
            )
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(
            compile_sample(text[i + 2 : end], where=where, filename=filename, lineno=lineno)
        )
        i = end + 1
    if literal:
        parts.append("".join(literal))
    samples = tuple(p for p in parts if isinstance(p, Sample))
    if not samples:
        const = "".join(p for p in parts if isinstance(p, str))
        return LfValue(text, const, lambda ctx: const, ())
    return LfValue(text, None, _renderer(parts), samples)


def _renderer(parts: List[Union[str, Sample]]) -> Render:
    table = _HEADER_UNSAFE
    pieces = tuple(p if isinstance(p, str) else p.fn for p in parts)
    if len(pieces) == 1:
        (only,) = pieces
        assert not isinstance(only, str)

        def single(ctx: RuleContext) -> str:
            value = to_text(only(ctx))
            return value.translate(table) if value else ""

        return single

    def render(ctx: RuleContext) -> str:
        out = []
        for piece in pieces:
            if type(piece) is str:
                out.append(piece)
            else:
                value = to_text(piece(ctx))  # type: ignore[operator]
                if value:
                    out.append(value.translate(table))
        return "".join(out)

    return render


def _variable_error(text: str, pos: int, origin: Origin) -> Exception:
    rest = text[pos + 1 :]
    if rest.startswith("{"):
        close = rest.find("}")
        rest = rest[close + 1 :] if close >= 0 else rest
    name = ""
    for ch in rest:
        if not (ch.isalnum() or ch == "_"):
            break
        name += ch
    same = _VARIABLE_HINTS.get(name)
    shown = f"%{name}" if name else text[pos : pos + 2]
    return origin.error(
        f"'{shown}': log-format variables are not available in rule values yet",
        hint=(
            f"write %[{same}] for the same value"
            if same
            else "use a sample expression %[...]; write %% for a percent sign"
        ),
    )
