"""The BLAS thread limit that every command applies (tracker/threads.py)."""

from __future__ import annotations

import os

from tracker.threads import blas_threads, limit_blas_threads


def _openblas_threads() -> int:
    n = blas_threads()
    assert n is not None, "numpy's OpenBLAS not found"
    return n


def test_limit_blas_threads_takes_effect_after_numpy_is_loaded():
    before = _openblas_threads()
    try:
        if (os.cpu_count() or 1) >= 2:
            limit_blas_threads(2)          # start from a pool of two, as numpy has on a 2-core machine
            assert _openblas_threads() == 2
        method = limit_blas_threads(1)
        assert not method.startswith("not limited"), method
        assert _openblas_threads() == 1
    finally:
        limit_blas_threads(before)
    assert _openblas_threads() == before
