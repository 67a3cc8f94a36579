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


def limit_blas_threads(n: int = 1) -> str:
    """Limit numpy's BLAS to ``n`` threads now (threadpoolctl when installed, else OpenBLAS's own setter:
    numpy has already started its pool, so environment variables alone come too late). Returns the method."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
        return "threadpoolctl"
    except ImportError:
        pass
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "libopenblas*"))
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("openblas_set_num_threads64_", "openblas_set_num_threads"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn(int(n))
                return name
    return "not limited (no threadpoolctl, no OpenBLAS setter found)"
