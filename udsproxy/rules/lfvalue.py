"""Values written as log-format strings (HAProxy's "lf-strings"): compiled once, rendered per request.

``set-header``, ``add-header``, ``replace-*``, ``return ... lf-string``, ``hdr``, ``redirect``
and ``set-var-fmt`` take their value as a log-format string (configuration.txt §8.2.4).
:func:`compile_lf` is the one place such a value becomes a function of a
:class:`~.context.RuleContext`; it hands the string to the log-format compiler
(:func:`udsproxy.logformat.compile_format`, ``HTTP_VALUE`` use: spaces are literal, an
empty value prints nothing, samples' control characters are ``%XX``-encoded as HAProxy
does for header values) and keeps what the request path needs to know:

- ``const``: the text when the string has neither variable nor expression (no work per
  request);
- ``record``: whether it prints log-format variables (``%ci``, ``%ID``, ``%t`` ...), which
  read a session record: the data path puts the request's record in ``ctx.memo["record"]``
  before running rules that need one; without it a record is made from what the rule
  context knows (the connection, the names, the request line).
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

from ..errors import ConfigError
from ..log.formats import SessionRecord
from ..logformat import HTTP_VALUE, compile_format
from ..logformat.parse import Expr, Flag, Text, Var, parse
from .context import RuleContext, Where
from .sample import compile_sample, to_text

Render = Callable[[RuleContext], str]
RECORD = "record"  # ctx.memo key: the request's session record, set by the data path


class _Samples:
    """The record of a format that only reads samples: ``rec.sample`` is all it reads."""

    __slots__ = ("sample",)

    def __init__(self, sample: RuleContext) -> None:
        self.sample = sample


class LfValue:
    """A compiled lf-string: ``value(ctx)`` is its text for this request.

    Two values compare equal when written the same (for the frozen config model).
    """

    __slots__ = ("text", "const", "fn", "record", "literal", "warnings")

    def __init__(
        self,
        text: str,
        const: Optional[str],
        fn: Render,
        record: bool = False,
        literal: str = "",
        warnings: Tuple[str, ...] = (),
    ) -> None:
        self.text = text
        self.const = const
        self.fn = fn  # hot paths keep and call it directly
        self.record = record
        self.literal = literal  # the text parts as written (what the config itself says)
        self.warnings = warnings

    def __call__(self, ctx: RuleContext) -> str:
        return self.fn(ctx)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LfValue) and self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"LfValue({self.text!r})"


def compile_lf(text: str, *, where: Where, filename: str = "", lineno: int = 0) -> LfValue:
    """Compile the lf-string ``text`` for evaluation at ``where``.

    Raises ConfigError (file, line, the offending part, a hint) for what the log-format
    compiler refuses (an unknown variable, an unclosed ``%[`` ...) and for a sample
    expression that does not compile (unknown fetch or converter, a fetch not available at
    ``where`` ...).
    """

    def sample(expr: str) -> Callable[[object], Optional[str]]:
        return compile_sample(  # type: ignore[return-value]
            expr, where=where, filename=filename, lineno=lineno
        ).text_of

    try:
        nodes, _ = parse(text, Flag.NONE, merge_spaces=False)
        fmt = compile_format(text, HTTP_VALUE, http_mode=True, samples=sample)
    except ConfigError as exc:
        exc.filename = exc.filename or filename
        exc.lineno = exc.lineno or lineno
        raise
    warnings = fmt.warnings
    render = fmt.render
    literal = "".join(n.value for n in nodes if isinstance(n, Text))
    if any(isinstance(n, Var) for n in nodes):

        def with_record(ctx: RuleContext) -> str:
            rec = ctx.memo.get(RECORD)
            return render(rec if rec is not None else record_of(ctx))

        return LfValue(text, None, with_record, True, literal, warnings)
    if any(isinstance(n, Expr) for n in nodes):

        def with_samples(ctx: RuleContext) -> str:
            return render(_Samples(ctx))  # type: ignore[arg-type]

        return LfValue(text, None, with_samples, False, literal, warnings)
    const = render(SessionRecord())
    return LfValue(text, const, lambda ctx: const, False, literal, warnings)


def record_of(ctx: RuleContext) -> SessionRecord:
    """A session record from what a rule context knows (no times, no counters)."""
    conn = ctx.conn
    rec = SessionRecord(
        frontend=conn.frontend,
        backend=ctx.backend,
        server=ctx.server,
        status=ctx.status,
        unique_id=ctx.unique_id,
        request_line=(ctx.method + b" " + ctx.target + b" HTTP/" + ctx.version).decode("latin-1")
        if ctx.method
        else None,
        sample=ctx,
    )
    if conn.src is None:
        rec.listener_id = conn.listener_id
    else:
        rec.client_ip = to_text(conn.src) or ""
        rec.client_port = conn.src_port
    return rec
