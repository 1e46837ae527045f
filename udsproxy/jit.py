"""PyPy's JIT warm-up, set for a proxy: its request paths compiled after hundreds of requests.

PyPy compiles a loop once it has run 1039 times, a function after 1619 calls, and a
bridge (the path a guard did not expect) after 200 failures of that guard. A proxy's
request is one pass through many functions with many branches, most of them bridges, so
with those defaults udsproxy reaches its compiled speed only after some 30 000 requests:
``tools/hotpath.py`` costs 0.5-2 ms of CPU per keep-alive request for the first 7 000 and
60-90 us once warm, and a benchmark's warm-up (or a quiet hour's traffic) ends before.
Lower thresholds reach the same compiled speed after 3 000-7 000 requests without more
machine code (1.8 MiB either way). Nothing changes on CPython.
"""

from __future__ import annotations

# pypyjit.set_param's syntax; the values chosen with tools/hotpath.py (see above).
PYPY_JIT_PARAMS = "threshold=200,function_threshold=300,trace_eagerness=50"


def tune_jit() -> bool:
    """Set :data:`PYPY_JIT_PARAMS` when running on PyPy; whether it did."""
    try:
        import pypyjit
    except ImportError:  # CPython
        return False
    pypyjit.set_param(PYPY_JIT_PARAMS)
    return True
