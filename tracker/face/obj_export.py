"""Wavefront OBJ export of a posed mesh, to look at in any 3D viewer."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np


def write_obj(path: Path, vertices_mm: np.ndarray, faces: np.ndarray, comment: str = "") -> Path:
    """Write (N, 3) vertices (millimetres, any space) and (F, 3) 0-based triangles as an OBJ file.

    ValueError for wrong shapes, non-finite vertices or face indices out of range.
    """
    v = np.asarray(vertices_mm, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must be (N, 3), got {v.shape}")
    if f.ndim != 2 or f.shape[1] < 3 or not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"faces must be (F, 3) integers, got {f.shape} {f.dtype}")
    if f.size and (f.min() < 0 or f.max() >= v.shape[0]):
        raise ValueError(f"face indices must be in 0..{v.shape[0] - 1}")
    if not np.all(np.isfinite(v)):
        raise ValueError("vertices contain non-finite values")
    buf = io.StringIO()
    for line in (comment or "").splitlines():
        buf.write(f"# {line}\n")
    buf.write(f"# {v.shape[0]} vertices, {f.shape[0]} faces; units: millimetres\n")
    np.savetxt(buf, v, fmt="v %.4f %.4f %.4f")
    np.savetxt(buf, f.astype(np.int64) + 1, fmt="f" + " %d" * f.shape[1])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path
