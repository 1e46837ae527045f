"""PyPy's JIT settings: taken by PyPy at start-up, nothing on CPython."""

from __future__ import annotations

import platform

import pytest

from udsproxy.jit import PYPY_JIT_PARAMS, tune_jit

PYPY = platform.python_implementation() == "PyPy"


@pytest.mark.skipif(PYPY, reason="CPython only")
def test_cpython_has_nothing_to_tune() -> None:
    """On CPython tune_jit changes nothing and says so."""
    assert tune_jit() is False


@pytest.mark.skipif(not PYPY, reason="PyPy only")
def test_pypy_takes_lower_thresholds() -> None:
    """Each parameter is one of PyPy's, set below its default (compiled earlier, never
    later); PyPy accepts them all (an unknown name or value raises) and tune_jit says so."""
    import pypyjit

    for item in PYPY_JIT_PARAMS.split(","):
        name, value = item.split("=")
        assert 0 < int(value) < pypyjit.defaults[name]
    assert tune_jit() is True
