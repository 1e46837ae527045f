"""Compile a log-format string once into a :class:`LogFormat`; render it per session.

Compiling parses the string (:mod:`.parse`), checks each variable (known, allowed in the
proxy's mode) and each ``%[expr]`` (through the rules engine's compiler, passed in), and
lays the result out as a ``%``-template with one piece per variable: rendering is one
call per variable and one string formatting, never a parse. Separators (unescaped spaces)
are resolved at compile time: HAProxy prints one space where a run of them follows printed
output, and nothing before the first output. Only the header captures can print nothing
at all (a session that never became a stream has none), so a format that uses them keeps
one layout per case.

Three uses, three :class:`Usage` presets (HAProxy's parse_logformat_string options):
``LOG`` (log-format lines: ``-`` for empty values, spaces merge, samples as text),
``UNIQUE_ID`` (spaces merge, samples URL-style ``%XX``-encoded like header values) and
``HTTP_VALUE`` (lf-strings of http-request actions: every space is literal).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import tzinfo
from typing import Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

from ..errors import ConfigError
from ..log.formats import SessionRecord, encoder
from .parse import Expr, Flag, Node, Sep, Text, Var, parse
from .variables import HELPERS, NEED_SAMPLES, VARIABLES, Truncated, text_code

# %[expr]: the rules engine compiles the expression text into an evaluator of the record's
# ``sample`` context that returns the value as a string, or None when there is none.
SampleEvaluator = Callable[[object], Optional[str]]
SampleCompiler = Callable[[str], SampleEvaluator]
Render = Callable[[SessionRecord, Optional[tzinfo]], str]

# What HAProxy %XX-encodes in a sample put in an HTTP header (log.c, http_encode_map).
_HTTP_CODES = [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F]
_HTTP = encoder(_HTTP_CODES, "%")
_HTTP_E = encoder(_HTTP_CODES, "%", '"\\]')
http_encode = _HTTP  # what a value needs to be sent in a header


@dataclass(frozen=True)
class Usage:
    """Where a log-format string is used: its defaults, as HAProxy's LOG_OPT_* options."""

    name: str
    mandatory: bool  # an empty value prints "-"
    merge_spaces: bool  # unescaped spaces separate and merge
    http_encode: bool  # samples are %XX-encoded for an HTTP header value


LOG = Usage("log-format", mandatory=True, merge_spaces=True, http_encode=False)
UNIQUE_ID = Usage("unique-id-format", mandatory=False, merge_spaces=True, http_encode=True)
HTTP_VALUE = Usage("lf-string", mandatory=False, merge_spaces=False, http_encode=True)


def _http_encoded(value: Optional[str], encode: Callable[[str], str]) -> str:
    # lf_encode_chunk: no quotes, no '-', only what a header cannot carry is encoded.
    return encode(value) if value else ""


def _sample_code(name: str, flags: Flag, usage: Usage) -> str:
    value = f"({name}(rec.sample) if rec.sample is not None else None)"
    if usage.http_encode:
        encode = "_HTTP_E" if Flag.ESCAPE in flags else "_HTTP"
        return f"_http_encoded({value}, {encode})"
    return text_code(value, flags)


def _unknown_variable(name: str) -> ConfigError:
    close = difflib.get_close_matches(name, list(VARIABLES), n=1)
    hint = f"did you mean '%{close[0]}'?" if close else "see configuration.txt section 8.2.6"
    return ConfigError(
        f"no such format variable '{name}'. If you wanted to emit the '%' character "
        "verbatim, you need to use '%%'",
        hint=hint,
    )


class Layout:
    """A format for one combination of present optional fields: the literal text before
    each variable, the variables' code, and the text after the last one."""

    def __init__(self, befores: List[str], codes: List[str], tail: str) -> None:
        self.befores = befores
        self.codes = codes
        self.tail = tail

    def source(self, name: str) -> str:
        """A Python function ``name(rec, tz)`` that returns the formatted text."""
        if not self.codes:
            return f"def {name}(rec, tz):\n    return {self.tail!r}\n"
        template = "".join(b.replace("%", "%%") + "%s" for b in self.befores)
        template += self.tail.replace("%", "%%")
        values = "".join(f"\n        {code}," for code in self.codes)
        # The values are a tuple held in a name: CPython 3.11 compiles ``'...' % (a, b)``
        # written out into an f-string, whose joining costs a third more than ``%``.
        return (
            f"def {name}(rec, tz):\n    values = ({values}\n    )\n"
            f"    return {template!r} % values\n"
        )


def _layout(nodes: List[Tuple[Node, str, str]], present: Dict[str, bool]) -> Layout:
    """Resolve separators for one combination of present optional fields."""
    befores: List[str] = []
    codes: List[str] = []
    literal: List[str] = []
    last_is_space = True  # as HAProxy: no space before the first output
    for node, code, optional_on in nodes:
        if isinstance(node, Sep):
            if not last_is_space:
                literal.append(" ")
                last_is_space = True
        elif isinstance(node, Text):
            literal.append(node.value)
            last_is_space = False
        else:
            if optional_on and not present[optional_on]:
                continue  # prints nothing, and the separators around it stay merged
            befores.append("".join(literal))
            literal = []
            codes.append(code)
            last_is_space = False
    return Layout(befores, codes, "".join(literal))


class LogFormat:
    """A compiled log-format string: ``render(record)`` is the line (or header value).

    ``needs`` names the record fields the data path must fill for it (see
    ``variables.NEED_*``); ``warnings`` what was accepted but ignored (unknown flags).
    Two formats compare equal when compiled from the same text for the same use.
    """

    __slots__ = (
        "source",
        "usage",
        "http_mode",
        "needs",
        "warnings",
        "code",
        "_render",
        "_env",
        "_layouts",
        "_optional",
    )

    def __init__(
        self,
        source: str,
        usage: Usage,
        http_mode: bool,
        needs: FrozenSet[str],
        warnings: Sequence[str],
        layouts: List[Layout],
        optional: Tuple[str, ...],
        env: Dict[str, object],
    ) -> None:
        self.source = source
        self.usage = usage
        self.http_mode = http_mode
        self.needs = needs
        self.warnings = tuple(warnings)
        self._layouts = layouts
        self._optional = optional
        self._env = env
        # One function per layout; with optional fields, a first one picks the layout by
        # which of them the record has (bit i: optional[i] is not None).
        code = [layout.source(f"layout_{i}") for i, layout in enumerate(layouts)]
        if optional:
            key = " + ".join(
                f"{1 << i} * (rec.{name} is not None)" for i, name in enumerate(optional)
            )
            table = ", ".join(f"layout_{i}" for i in range(len(layouts)))
            code.append(f"LAYOUTS = ({table},)\n")
            code.append(f"def render(rec, tz):\n    return LAYOUTS[{key}](rec, tz)\n")
        else:
            code.append("render = layout_0\n")
        self.code = "\n".join(code)
        namespace = dict(env)
        exec(compile(self.code, f"<log-format {source!r}>", "exec"), namespace)  # noqa: S102
        self._render: Render = namespace["render"]  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogFormat):
            return NotImplemented
        return (self.source, self.usage, self.http_mode) == (
            other.source,
            other.usage,
            other.http_mode,
        )

    def __hash__(self) -> int:
        return hash((self.source, self.usage, self.http_mode))

    def __repr__(self) -> str:
        return f"LogFormat({self.source!r}, {self.usage.name})"

    def render(self, rec: SessionRecord, tz: Optional[tzinfo] = None) -> str:
        """The formatted text for ``rec``; dates in ``tz`` (None: the local zone)."""
        try:
            return self._render(rec, tz)
        except Truncated:
            return self._truncated(rec, tz)

    def _truncated(self, rec: SessionRecord, tz: Optional[tzinfo]) -> str:
        """What HAProxy writes when a variable cannot be printed: the line up to it."""
        key = sum(1 << i for i, name in enumerate(self._optional) if getattr(rec, name) is not None)
        layout = self._layouts[key]
        out: List[str] = []
        for before, code in zip(layout.befores, layout.codes):
            out.append(before)
            try:
                out.append(str(eval(code, dict(self._env), {"rec": rec, "tz": tz})))  # noqa: S307
            except Truncated:
                break
        return "".join(out)


def compile_format(
    source: str,
    usage: Usage = LOG,
    http_mode: bool = True,
    samples: Optional[SampleCompiler] = None,
) -> LogFormat:
    """Compile ``source`` for ``usage`` in a proxy of ``http_mode`` (else TCP mode).

    ``samples`` compiles ``%[expr]`` expressions; without it they are a config error.
    Raises ConfigError (message and hint; the caller adds file, line and keyword).
    """
    start = Flag.MANDATORY if usage.mandatory else Flag.NONE
    nodes, warnings = parse(source, start, usage.merge_spaces)
    compiled: List[Tuple[Node, str, str]] = []
    needs = set()
    optional: List[str] = []
    env: Dict[str, object] = dict(
        HELPERS, _HTTP=_HTTP, _HTTP_E=_HTTP_E, _http_encoded=_http_encoded
    )
    for node in nodes:
        if isinstance(node, Var):
            var = VARIABLES.get(node.name)
            if var is None:
                raise _unknown_variable(node.name)
            if var.http_only and not http_mode:
                raise ConfigError(
                    f"format variable '{node.name}' is reserved for HTTP mode",
                    hint=f"set 'mode http' on this proxy, or remove '%{node.name}'",
                )
            if var.need:
                needs.add(var.need)
            if var.optional_on and var.optional_on not in optional:
                optional.append(var.optional_on)
            compiled.append((node, var.factory(node.flags), var.optional_on))
        elif isinstance(node, Expr):
            if samples is None:
                raise ConfigError(
                    f"sample expression '%[{node.text}]' cannot be used here",
                    hint="sample expressions need the rules engine, not available here",
                )
            name = f"_sample_{len(env)}"
            env[name] = samples(node.text)
            needs.add(NEED_SAMPLES)
            compiled.append((node, _sample_code(name, node.flags, usage), ""))
        else:
            compiled.append((node, "", ""))
    layouts = []
    for mask in range(1 << len(optional)):
        present = {name: bool(mask >> i & 1) for i, name in enumerate(optional)}
        layouts.append(_layout(compiled, present))
    return LogFormat(
        source, usage, http_mode, frozenset(needs), warnings, layouts, tuple(optional), env
    )


# HAProxy's own formats (log.c), as ``option httplog``, ``option httplog clf`` and
# ``option tcplog`` declare them.
HTTPLOG = "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r"
CLF = '%{+Q}o %{-Q}ci - - [%trg] %r %ST %B "" "" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl'
TCPLOG = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq"
