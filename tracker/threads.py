"""Thread limits for the numeric libraries.

The fitter's BLAS calls are small (a 640 x 71 syrk, 71 x 71 solves), so a second BLAS thread only adds
hand-over cost, and OpenBLAS's worker threads busy-wait between calls: with numpy's default pool of one
thread per core, ``python main.py track`` ran at 176 fps using 2.7 cores, and at 274 fps with one BLAS thread.
The command line (``tracker.cli.main``) therefore limits BLAS to one thread for every command; onnxruntime
and OpenCV have their own settings (``PipelineOptions.threads``).
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np


def _openblas_function(*names: str):
    """The first of ``names`` exported by numpy's bundled OpenBLAS (None when there is none)."""
    for path in glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "libopenblas*")):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in names:
            fn = getattr(lib, name, None)
            if fn is not None:
                return fn
    return None


def limit_blas_threads(n: int = 1) -> str:
    """Limit numpy's BLAS to ``n`` threads now (threadpoolctl when installed, else OpenBLAS's own setter:
    numpy has already started its pool, so environment variables alone come too late). Returns the method."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
        return "threadpoolctl"
    except ImportError:
        pass
    fn = _openblas_function("openblas_set_num_threads64_", "openblas_set_num_threads")
    if fn is None:
        return "not limited (no threadpoolctl, no OpenBLAS setter found)"
    fn(int(n))
    return fn.__name__


def blas_threads() -> int | None:
    """The number of threads numpy's OpenBLAS uses now (None when it cannot be asked)."""
    fn = _openblas_function("openblas_get_num_threads64_", "openblas_get_num_threads")
    return None if fn is None else int(fn())


def limit_to_one_thread() -> str:
    """For benchmarks: one BLAS thread now, and the environment for libraries loaded later and child
    processes. Returns how BLAS was limited."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    return limit_blas_threads(1)
