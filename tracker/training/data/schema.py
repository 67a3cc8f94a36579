"""Writing and checking the dataset npz files (the contract in the package docstring)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

KEYS = ("images", "landmarks_px", "weights", "roi_points", "source")


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    parts = [p for p in parts if len(p["images"])]
    if not parts:
        raise ValueError("no samples to write")
    return {k: np.concatenate([p[k] for p in parts]) for k in KEYS}


def validate(d: dict[str, np.ndarray], n_landmarks: int | None = None) -> None:
    """Raise ValueError naming the first key that breaks the contract."""
    for k in KEYS:
        if k not in d:
            raise ValueError(f"dataset is missing key {k!r}")
    m = len(d["images"])
    lm = d["landmarks_px"]
    if lm.ndim != 3 or lm.shape[0] != m or lm.shape[2] != 2 or lm.dtype != np.float32:
        raise ValueError(f"landmarks_px must be float32 ({m}, L, 2), got {lm.dtype} {lm.shape}")
    if n_landmarks is not None and lm.shape[1] != n_landmarks:
        raise ValueError(f"landmarks_px has {lm.shape[1]} landmarks, expected {n_landmarks}")
    w = d["weights"]
    if w.shape != lm.shape[:2] or w.dtype != np.float32 or np.any(w < 0) or np.any(w > 1):
        raise ValueError(f"weights must be float32 {lm.shape[:2]} in [0, 1], got {w.dtype} {w.shape}")
    if d["roi_points"].shape != (m, 3, 2) or d["roi_points"].dtype != np.float32:
        raise ValueError(f"roi_points must be float32 ({m}, 3, 2), got {d['roi_points'].shape}")
    if d["source"].shape != (m,) or d["images"].dtype.kind != "U" or d["source"].dtype.kind != "U":
        raise ValueError("images and source must be (M,) str arrays")
    if not np.all(np.isfinite(lm)) or not np.all(np.isfinite(d["roi_points"])):
        raise ValueError("landmarks_px and roi_points must be finite")


def write_dataset(path: Path, d: dict[str, np.ndarray]) -> Path:
    """Validate and write atomically (``path`` ends in .npz)."""
    d = {k: d[k] for k in KEYS}
    d["images"] = d["images"].astype(str)
    d["source"] = d["source"].astype(str)
    validate(d)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **d)
    tmp.replace(path)
    return path


def load_dataset(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        d = {k: z[k] for k in KEYS if k in z}
    validate(d)
    return d
