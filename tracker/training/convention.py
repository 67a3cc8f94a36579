"""Pseudo-labels moved to the human annotators' convention, by a ridge map learnt where both exist.

The pseudo-labels (MediaPipe Face Mesh -> head model fitted -> landmarks projected, :mod:`tracker.training.data`)
and the 300-W annotators place the inner iBUG points (eyes, nose, lips) differently. On the held-out 300-W
images, the pseudo-labels of the 41 landmarks that carry 300-W ground truth (:mod:`tracker.training.ibug`),
fitted without that ground truth, are 4.7 % of the outer-eye-corner distance from it, and still 3.2 % once
each point's mean offset is removed: part of the difference moves with expression and pose. The committed
weights train on ground truth for those landmarks on the 1,622 300-W training images and on pseudo-labels on
the 11,000 others, so the network sees two conventions for the same outputs.

This learns the difference where both labels exist and applies it where only the pseudo-labels do:

1. The 300-W images are pseudo-labelled once more with the fit *not* told their ground truth
   (:func:`gt_free_pseudo_labels`, cached beside the other fits), as every image without ground truth is.
2. A ridge map (:func:`tracker.landmarks.label_translation.fit_translation`, the strength picked on a fifth
   held aside) from all L pseudo-labelled landmarks to the ground-truth landmarks, both in the normalised
   frame of the row's own ROI points (:func:`frame_roi`), is fitted on the 300-W *training* images.
   On the held-out ones (never used for the fit) it brings the 41 landmarks to 2.6 % of the ground truth.
3. :func:`apply_map` replaces those landmarks' pseudo-labels in every row of the base file whose image has no
   ground truth (YouTube Faces, UTKFace, video frames); weights, ROI points and the other landmarks are kept.

Command (then ``tracker.training.merge_labels`` puts the ground truth over the 300-W rows as before)::

    python -m tracker.training.convention --base OUT/real_train.npz --gt runs/data/ibug320_inner.npz \\
        --out runs/data/real_train_conv.npz [--gt-source 300w-train] [--data DIR] [--cache OUT]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tracker.training.dataset import LabelledSet

log = logging.getLogger(__name__)

#: Size of the reference crop whose normalised coordinates the map works in (any size gives the same frame).
FRAME_SIZE = 160


def frame_roi(roi_points: np.ndarray):
    """The ROI made from a row's (3, 2) ROI points (eyes and mouth) whose normalised crop coordinates
    (:func:`tracker.landmarks.label_translation.to_frame`) the map works in."""
    from tracker.roi import roi_from_points

    return roi_from_points(np.asarray(roi_points, np.float64), FRAME_SIZE)


@dataclass(frozen=True)
class ConventionMap:
    """targets: (T,) landmark indices the map writes; w: (2L + 1, 2T) ridge weights on the flattened frame
    coordinates of all L landmarks; lam: the ridge strength; stats: the fit's figures (:func:`fit_map`)."""

    targets: np.ndarray
    w: np.ndarray
    lam: float
    stats: dict

    def predict(self, landmarks_px: np.ndarray, roi_points: np.ndarray) -> np.ndarray:
        """(L, 2) pseudo-labels and (3, 2) ROI points -> (T, 2) the target landmarks in pixels."""
        from tracker.landmarks.label_translation import apply_ridge, from_frame, to_frame

        roi = frame_roi(roi_points)
        return from_frame(apply_ridge(to_frame(landmarks_px, roi).ravel()[None], self.w)[0].reshape(-1, 2), roi)


def _resolved(path: str) -> str:
    return str(Path(path).resolve())


def _pairs(pseudo: LabelledSet, gt: LabelledSet) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (i into ``pseudo``, j into ``gt``) of the images both label."""
    where = {}
    for j, p in enumerate(gt.images):
        where.setdefault(_resolved(p), j)
    pairs = [(i, where[_resolved(p)]) for i, p in enumerate(pseudo.images) if _resolved(p) in where]
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i, j = np.array(pairs).T
    return i, j


def _errors(pred_n: np.ndarray, gt_n: np.ndarray, eye_n: np.ndarray) -> np.ndarray:
    """(M, T, 2) frame coordinates, (M,) ROI eye distances in the frame -> (M, T) errors in % of the latter."""
    return 100.0 * np.linalg.norm(pred_n - gt_n, axis=2) / eye_n[:, None]


def fit_map(pseudo: LabelledSet, gt: LabelledSet, held_out: np.ndarray | None = None) -> ConventionMap:
    """Fit the map from ``pseudo`` (all L landmarks, labelled *without* the ground truth) to the landmarks that
    every row of ``gt`` labels (weight > 0), on the images both hold. ``held_out``: (len(pseudo),) bool, rows
    kept out of the fit and only measured (stats ``held_out_*``). Errors are in % of the ROI eye distance."""
    from tracker.landmarks.label_translation import apply_ridge, fit_translation, to_frame

    if pseudo.n_landmarks != gt.n_landmarks:
        raise ValueError(f"the files disagree on the number of landmarks: {pseudo.n_landmarks} vs {gt.n_landmarks}")
    i, j = _pairs(pseudo, gt)
    if len(i) == 0:
        raise ValueError("no image is labelled by both the pseudo-labels and the ground truth")
    labelled = gt.weights[j] > 0
    targets = np.flatnonzero(labelled.all(axis=0))
    if len(targets) == 0:
        raise ValueError("no landmark has ground truth in every matched image")
    hold = np.zeros(len(i), bool) if held_out is None else np.asarray(held_out, bool)[i]
    x, y, eye_n = [], [], np.empty(len(i))
    for k, (a, b) in enumerate(zip(i, j)):
        roi = frame_roi(pseudo.roi_points[a])
        x.append(to_frame(pseudo.landmarks_px[a], roi))
        y.append(to_frame(gt.landmarks_px[b][targets], roi))
        eye_n[k] = np.linalg.norm(np.diff(to_frame(pseudo.roi_points[a][:2], roi), axis=0))
    x, y = np.stack(x), np.stack(y)
    fit = ~hold
    if fit.sum() < 5:
        raise ValueError(f"need at least 5 images with both labels to fit the map, got {int(fit.sum())}")
    w, lam = fit_translation(x[fit].reshape(fit.sum(), -1), y[fit].reshape(fit.sum(), -1))
    stats = {"images_fitted": int(fit.sum()), "landmarks": int(len(targets)), "ridge_lambda": lam,
             "unit": "% of the ROI eye-centre distance"}
    for name, sel in (("fitted", fit), ("held_out", hold)):
        if not sel.any():
            continue
        pred = apply_ridge(x[sel].reshape(sel.sum(), -1), w).reshape(sel.sum(), -1, 2)
        before = _errors(x[sel][:, targets], y[sel], eye_n[sel])
        stats[f"{name}_images"] = int(sel.sum())
        stats[f"{name}_error_before"] = float(before.mean())
        stats[f"{name}_error_after"] = float(_errors(pred, y[sel], eye_n[sel]).mean())
    return ConventionMap(targets, w, float(lam), stats)


def apply_map(base: LabelledSet, cmap: ConventionMap, skip: LabelledSet | None = None) -> tuple[LabelledSet, int]:
    """``base`` with the map's target landmarks replaced in every row whose image ``skip`` does not hold (the
    images with ground truth, which ``merge_labels`` labels instead). Returns (new set, rows changed)."""
    if cmap.w.shape[0] != 2 * base.n_landmarks + 1:
        raise ValueError(f"the map is for {(cmap.w.shape[0] - 1) // 2} landmarks, the file has {base.n_landmarks}")
    skipped = set() if skip is None else {_resolved(p) for p in skip.images}
    landmarks = base.landmarks_px.copy()
    changed = 0
    for r in range(len(base)):
        if _resolved(base.images[r]) in skipped:
            continue
        landmarks[r, cmap.targets] = cmap.predict(base.landmarks_px[r], base.roi_points[r]).astype(np.float32)
        changed += 1
    return replace(base, landmarks_px=landmarks), changed


def gt_free_pseudo_labels(data: Path, cache: Path) -> LabelledSet:
    """Pseudo-labels of the 300-W images (train and held-out) made as for images without ground truth: the
    head model fitted to MediaPipe's points alone. MediaPipe's results and the fits are cached under ``cache``
    (``tracker.training.data``'s folder), so a second call costs seconds."""
    from tracker.face.build import load_head_model
    from tracker.training.data.build import _fits_for, load_landmark_vertex_ids
    from tracker.training.data.correspondence import load_correspondence
    from tracker.training.data.mediapipe_run import run_mediapipe
    from tracker.training.data.pseudo_labels import LabelProjector
    from tracker.training.data.sources import items_300w

    if not (data / "300w-train" / "landmarks68.csv").is_file():
        raise FileNotFoundError(f"no 300-W ground truth under {data} (300w-train/landmarks68.csv)")
    items = [replace(it, gt68=None, gt_exact=False) for it in items_300w(data)]
    model = load_head_model()
    corr = load_correspondence()
    mp = run_mediapipe([it.path for it in items], cache / "mediapipe" / "300w")
    table = _fits_for("300w_without_gt", items, mp, model, corr, cache)
    labels = LabelProjector(model, load_landmark_vertex_ids(model), corr).project(table)
    return LabelledSet(labels["images"], labels["landmarks_px"], labels["weights"], labels["roi_points"],
                       labels["source"])


def main(argv: list[str] | None = None) -> int:
    from tracker.paths import data_dir
    from tracker.splits import is_held_out_300w
    from tracker.training.data import default_root
    from tracker.training.merge_labels import save

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", type=Path, required=True, help="pseudo-labels to correct (e.g. OUT/real_train.npz)")
    p.add_argument("--gt", type=Path, required=True, help="ground truth on the landmark set (tracker.training.ibug)")
    p.add_argument("--gt-source", default="300w-train", help="rows of --gt to learn from (default 300w-train)")
    p.add_argument("--out", type=Path, required=True, help="the corrected file (.npz)")
    p.add_argument("--data", type=Path, default=None, help="data folder (default: TRACKER_DATA / ../shared/data)")
    p.add_argument("--cache", type=Path, default=None, help="tracker.training.data's output folder (MediaPipe "
                   "results and fits are cached there)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        data = args.data or data_dir()
        if data is None:
            raise FileNotFoundError("no data folder: give --data or set TRACKER_DATA")
        base = LabelledSet.from_npz(args.base)
        gt = LabelledSet.from_npz(args.gt)
        gt = gt.subset(np.flatnonzero(gt.source == args.gt_source))
        if len(gt) == 0:
            raise ValueError(f"{args.gt} has no rows of source {args.gt_source!r}")
        pseudo = gt_free_pseudo_labels(Path(data), args.cache or default_root())
        held = np.array([is_held_out_300w(Path(p).name) for p in pseudo.images])
        cmap = fit_map(pseudo, gt, held_out=held)
        out, changed = apply_map(base, cmap, skip=gt)
        save(out, args.out)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stats = dict(cmap.stats, rows_changed=changed, rows=len(base), out=str(args.out))
    print(json.dumps(stats, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
