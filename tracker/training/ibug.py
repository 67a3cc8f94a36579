"""Labelled sets from 68-point iBUG annotations (300-W, YouTube Faces CSVs), in the training npz format.

Each of the 68 points is given to the landmark of the set on the same ICT vertex, or to the set's nearest
landmark on the neutral mesh when that is within ``MAX_MATCH_CM`` (else the point is dropped); all other
landmarks get weight 0. With ``--raw68`` the set is the 68 points themselves (L = 68, for tests and checks).
The jaw contour of iBUG is a silhouette and its brows trace the brow's upper edge: neither is the same
surface point as the set's jaw / brow landmarks (on held-out 300-W the GT-to-pseudo-label disagreement is
15.7% and 12.2% of the eye distance there, against 4-6% on eyes, nose and lips), so by default only the
inner points (iBUG 27-67) are used; ``--all-points`` keeps the jaw (at ``JAW_WEIGHT``) and brows.

Command::

    python -m tracker.training.ibug --out runs/data/ibug_300w.npz [--csv DATA/300w-train/landmarks68.csv ...]
        [--landmark-set landmarks320 | --raw68] [--weight 1.0]
"""

from __future__ import annotations

import argparse
import csv
import logging
from pathlib import Path

import numpy as np

from tracker.roi import roi_points_from_ibug68

log = logging.getLogger(__name__)

MAX_MATCH_CM = 0.35
#: The first iBUG point that is not on the jaw or brows.
INNER_START = 27
JAW_WEIGHT = 0.5
#: iBUG-68 left-right mirror permutation (point i of the flipped face is point IBUG_MIRROR[i] of the original).
IBUG_MIRROR = np.array(list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
                       + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
                       + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])


def read_csv68(csv_path: Path) -> tuple[list[str], np.ndarray]:
    """(absolute image paths, (M, 68, 2) float32) from a ``file, x0, y0, ...`` CSV beside an ``images/`` folder."""
    csv_path = Path(csv_path)
    names, pts = [], []
    with open(csv_path, newline="") as fh:
        rows = csv.reader(fh)
        header = next(rows)
        if len(header) != 137:
            raise ValueError(f"{csv_path}: expected 137 columns (file + 68 x, y), got {len(header)}")
        for row in rows:
            names.append(str((csv_path.parent / "images" / row[0]).resolve()))
            pts.append(np.asarray(row[1:], np.float32).reshape(68, 2))
    return names, np.stack(pts)


def ibug_to_set(set_vertex_ids: np.ndarray, ibug_vertex_ids: np.ndarray, neutral_cm: np.ndarray,
                max_cm: float = MAX_MATCH_CM) -> np.ndarray:
    """(68,) index into the landmark set for each iBUG point (-1 where no landmark is within ``max_cm``)."""
    set_pts = neutral_cm[set_vertex_ids]
    out = np.full(68, -1, np.int64)
    for k, v in enumerate(ibug_vertex_ids):
        hit = np.flatnonzero(set_vertex_ids == v)
        if hit.size:
            out[k] = hit[0]
            continue
        d = np.linalg.norm(set_pts - neutral_cm[v], axis=1)
        if d.min() <= max_cm:
            out[k] = int(d.argmin())
    return out


def labelled_from_68(images: list[str], pts68: np.ndarray, mapping: np.ndarray, n_landmarks: int,
                     source: str, weight: float = 1.0) -> dict[str, np.ndarray]:
    """npz arrays (images, landmarks_px, weights, roi_points, source) for 68-point labels mapped by ``mapping``."""
    m = len(images)
    lm = np.zeros((m, n_landmarks, 2), np.float32)
    w = np.zeros((m, n_landmarks), np.float32)
    point_w = np.full(68, weight, np.float32)
    point_w[:17] *= JAW_WEIGHT
    for k in range(68):
        j = mapping[k]
        if j >= 0 and w[0, j] == 0:  # first iBUG point mapped to a landmark wins
            lm[:, j] = pts68[:, k]
            w[:, j] = point_w[k]
    roi = np.stack([roi_points_from_ibug68(p) for p in pts68]).astype(np.float32)
    return {"images": np.asarray(images), "landmarks_px": lm, "weights": w, "roi_points": roi,
            "source": np.full(m, source)}


def main(argv: list[str] | None = None) -> int:
    from tracker.paths import data_dir

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--csv", type=Path, nargs="*", default=None, help="default: 300-W and YouTube Faces CSVs")
    p.add_argument("--landmark-set", default="landmarks320")
    p.add_argument("--raw68", action="store_true", help="keep the 68 points as the landmark set")
    p.add_argument("--weight", type=float, nargs="*", default=None, help="per-CSV label weight (default 1)")
    p.add_argument("--all-points", action="store_true", help="keep iBUG jaw and brow points (0-26)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    csvs = a.csv
    if not csvs:
        data = data_dir()
        if data is None:
            p.error("no data folder: set TRACKER_DATA or pass --csv")
        csvs = [data / "300w-train" / "landmarks68.csv", data / "ytf-frames" / "landmarks68.csv"]
    weights = a.weight or [1.0] * len(csvs)
    if len(weights) != len(csvs):
        p.error("give one --weight per --csv")
    if a.raw68:
        mapping, n = np.arange(68), 68
    else:
        from tracker.face.build import load_head_model
        from tracker.face.landmark_sets import load_landmark_set

        model = load_head_model()
        lset = load_landmark_set(a.landmark_set)
        mapping = ibug_to_set(np.asarray(lset.vertex_ids), np.asarray(model.ibug68_vertex_ids), model.neutral_cm)
        n = len(lset)
        if not a.all_points:
            mapping[:INNER_START] = -1
        log.info("%d of 68 iBUG points map onto %s", int((mapping >= 0).sum()), a.landmark_set)
    parts = []
    for c, wt in zip(csvs, weights):
        names, pts = read_csv68(c)
        parts.append(labelled_from_68(names, pts, mapping, n, c.parent.name, wt))
        log.info("%s: %d images", c, len(names))
    out = {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(a.out, **out)
    log.info("wrote %s (%d samples, %d landmarks)", a.out, len(out["images"]), n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
