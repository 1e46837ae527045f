"""Log-format strings ("lf-strings"): HAProxy's ``%ci %b %[expr] ...`` compiled once.

One compiler for every place HAProxy takes a log-format string: ``log-format`` and the
``option httplog`` / ``httplog clf`` / ``tcplog`` lines (which are log-format strings),
``unique-id-format``, and the values of http-request actions. ``compile_format`` runs at
config load and raises ConfigError for what is wrong; ``LogFormat.render(record)`` is
all the data path calls per session. Config keywords compile through
``udsproxy.config.logformat.compile_lf`` (``%[expr]`` by the rules engine, file and line in
the errors); the data path renders with the record of the request
(``http.exchange.Exchange.make_record``, ``log.SessionRecord``), whose ``sample`` field is
the request's ``rules.RuleContext`` when a format has samples (``LogFormat.needs``).

* :mod:`.parse`: the string's syntax (text, separators, variables, flags, expressions);
* :mod:`.variables`: what each ``%var`` prints from a ``log.SessionRecord``;
* :mod:`.compiler`: variables and expressions into code, separators into a template: one
  Python function per format (and per combination of present captures);
* :mod:`.session`: what HTTP and TCP mode share to log a session (``SessionLog``).
"""

from __future__ import annotations

from .compiler import (
    CLF,
    HTTP_VALUE,
    HTTPLOG,
    LOG,
    TCPLOG,
    UNIQUE_ID,
    LogFormat,
    SampleCompiler,
    SampleEvaluator,
    Usage,
    compile_format,
)
from .parse import Flag
from .variables import (
    NEED_FRONTEND_ADDR,
    NEED_LOG_COUNT,
    NEED_REQUEST_CAPTURES,
    NEED_REQUEST_COUNTER,
    NEED_RESPONSE_CAPTURES,
    NEED_SAMPLES,
    NEED_SERVER_ADDR,
    NEED_SERVER_SOURCE,
    VARIABLES,
)

__all__ = [
    "CLF",
    "HTTPLOG",
    "HTTP_VALUE",
    "LOG",
    "NEED_FRONTEND_ADDR",
    "NEED_LOG_COUNT",
    "NEED_REQUEST_CAPTURES",
    "NEED_REQUEST_COUNTER",
    "NEED_RESPONSE_CAPTURES",
    "NEED_SAMPLES",
    "NEED_SERVER_ADDR",
    "NEED_SERVER_SOURCE",
    "TCPLOG",
    "UNIQUE_ID",
    "VARIABLES",
    "Flag",
    "LogFormat",
    "SampleCompiler",
    "SampleEvaluator",
    "Usage",
    "compile_format",
]
