"""The BLAS thread limit that every command applies (tracker/threads.py)."""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

from tracker.threads import limit_blas_threads


def _openblas_threads() -> int:
    for path in glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "libopenblas*")):
        lib = ctypes.CDLL(path)
        for name in ("openblas_get_num_threads64_", "openblas_get_num_threads"):
            fn = getattr(lib, name, None)
            if fn is not None:
                return int(fn())
    raise AssertionError("numpy's OpenBLAS not found")


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
