"""Label translation (a ridge map from one landmark scheme to the iBUG 68 points) and inter-ocular NME.

Protocol (the benchmark of :mod:`tracker.landmarks.bench`): each method's landmarks and the ground truth are
expressed in a normalising frame made from the method's *own* eyes and mouth (:func:`tracker.roi.roi_from_points`
with the crop's normalised coordinates), so the map only has to learn the scheme difference, not the pose.
A linear map with bias, ``y = [x, 1] W``, fitted by ridge regression on the training part of 300-W, turns the
flattened (2L,) landmarks into the flattened (136,) iBUG points; the ridge strength is picked on a fifth of
the training part held aside.
"""

from __future__ import annotations

import numpy as np

#: iBUG outer eye corners: the inter-ocular normalisation of 300-W.
IBUG_OUTER_EYE_CORNERS = (36, 45)
#: iBUG 68 regions (0-based point ranges) for the per-region breakdown of the NME.
IBUG_REGIONS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36), "eyes": range(36, 48),
                "mouth": range(48, 68)}
RIDGE_GRID = (1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def to_frame(points_px: np.ndarray, roi) -> np.ndarray:
    """(N, 2) image pixels -> (N, 2) normalised coordinates of ``roi``'s crop (:class:`tracker.types.Roi`): the
    protocol's frame, with the face's position, scale and roll taken out by its eyes and mouth."""
    from tracker.roi import crop_to_normalized

    return crop_to_normalized(roi.image_to_crop(np.asarray(points_px, dtype=np.float64)), roi.size)


def from_frame(points_n: np.ndarray, roi) -> np.ndarray:
    """Inverse of :func:`to_frame`."""
    from tracker.roi import normalized_to_crop

    return roi.crop_to_image(normalized_to_crop(np.asarray(points_n, dtype=np.float64), roi.size))


def fit_ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """(M, F) features, (M, T) targets -> (F + 1, T) weights of ``[x, 1] @ W`` (the bias is not penalised).

    Closed form: W = (A^T A + lam * M * P)^-1 A^T y with A = [x, 1] and P = diag(1, ..., 1, 0).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m, f = x.shape
    a = np.hstack([x, np.ones((m, 1))])
    penalty = np.eye(f + 1) * (lam * m)
    penalty[f, f] = 0.0
    return np.linalg.solve(a.T @ a + penalty, a.T @ y)


def apply_ridge(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(M, F) features -> (M, T) predictions."""
    x = np.asarray(x, dtype=np.float64)
    return x @ w[:-1] + w[-1]


def point_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(M, 68, 2) predictions and ground truth in px -> (M, 68) errors in percent of the outer-eye-corner distance."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    d = np.linalg.norm(gt[:, IBUG_OUTER_EYE_CORNERS[0]] - gt[:, IBUG_OUTER_EYE_CORNERS[1]], axis=1)
    return 100.0 * np.linalg.norm(pred - gt, axis=2) / d[:, None]


def nme_interocular(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(M, 68, 2) predictions and ground truth in px -> (M,) NME in percent of the outer-eye-corner distance."""
    return point_errors(pred, gt).mean(axis=1)


def nme_by_region(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """(M, 68, 2) predictions and ground truth -> mean NME (%, outer-eye-corner distance) of each iBUG region's
    points (:data:`IBUG_REGIONS`): the mean over regions weighted by their point counts is the overall NME."""
    return region_means(point_errors(pred, gt))


def region_means(errors: np.ndarray) -> dict[str, float]:
    """(M, 68) point errors (:func:`point_errors`) -> the mean of each iBUG region's points."""
    return {name: float(errors[:, list(idx)].mean()) for name, idx in IBUG_REGIONS.items()}


def fit_translation(x: np.ndarray, y: np.ndarray, grid=RIDGE_GRID, seed: int = 0) -> tuple[np.ndarray, float]:
    """Ridge map with the strength chosen on a held-aside fifth of (x, y) (mean squared error), refitted on all.

    x: (M, F) features; y: (M, T) targets. Returns (W, lambda).
    """
    m = x.shape[0]
    if m < 5:
        raise ValueError(f"need at least 5 training samples for the label translation, got {m}")
    rng = np.random.default_rng(seed)
    val = np.zeros(m, bool)
    val[rng.permutation(m)[: max(1, m // 5)]] = True
    best = min(grid, key=lambda lam: float(np.mean((apply_ridge(x[val], fit_ridge(x[~val], y[~val], lam))
                                                     - y[val]) ** 2)))
    return fit_ridge(x, y, best), float(best)
