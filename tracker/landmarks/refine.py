"""Finding the face in a frame: detector -> ROI -> network, then ROI from the network's own landmarks.

The network was trained on crops whose ROI points are the iBUG eye centres (mean of iBUG 36-41 / 42-47) and
the mouth-corner midpoint (iBUG 48, 54). The run-time ROI is made from the same three points, expressed as
fixed affine combinations of the network's L landmarks: each weight row sums to one, so
``roi_points = weights @ mu_px`` commutes with any affine image transform. The weights are fitted by least
squares on projections of the head model in random poses, identities and expressions
(:func:`fit_roi_weights`, :mod:`tracker.landmarks.model_roi`), over the landmarks nearest to each point.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from tracker.roi import roi_from_points
from tracker.types import Landmarks, Roi

log = logging.getLogger(__name__)

_IBUG_ROI_GROUPS = (tuple(range(36, 42)), tuple(range(42, 48)), (48, 54))


def nearest_landmarks(landmark_vertices: np.ndarray, ibug68_vertices: np.ndarray, neutral_cm: np.ndarray,
                      k: int = 80) -> np.ndarray:
    """(3, k) indices into the L landmarks: for each ROI point (the mean of its iBUG vertices on the neutral
    mesh, (N, 3) ``neutral_cm``), the ``k`` landmarks nearest to it in 3D. ``landmark_vertices``: (L,) ids."""
    lv = np.asarray(landmark_vertices, dtype=np.int64)
    iv = np.asarray(ibug68_vertices, dtype=np.int64)
    if iv.shape != (68,):
        raise ValueError(f"expected 68 iBUG vertex ids, got {iv.shape}")
    verts = np.asarray(neutral_cm, dtype=np.float64)
    lm_xyz = verts[lv]
    k = min(k, len(lv))
    return np.stack([np.argsort(np.linalg.norm(lm_xyz - verts[iv[list(g)]].mean(0), axis=1), kind="stable")[:k]
                     for g in _IBUG_ROI_GROUPS])


def fit_roi_weights(landmarks_px: np.ndarray, roi_points: np.ndarray, candidates: np.ndarray,
                    ridge: float = 1e-4) -> np.ndarray:
    """(3, L) affine ROI weights fitted on M examples (e.g. projections of the posed head model).

    landmarks_px: (M, L, 2); roi_points: (M, 3, 2) the iBUG ROI points of the same examples; candidates:
    (3, k) landmark indices allowed for each ROI point. Each example is first centred on its eye midpoint and
    scaled by its eye distance. Per ROI point r, with X the candidates' coordinates (x and y rows stacked):
    ``min |X w - y|^2 + ridge * n * |w|^2  s.t.  sum w = 1``, solved through its KKT system.
    """
    u = np.asarray(landmarks_px, dtype=np.float64)
    r = np.asarray(roi_points, dtype=np.float64)
    if u.ndim != 3 or u.shape[2] != 2 or r.shape != (u.shape[0], 3, 2):
        raise ValueError(f"expected (M, L, 2) landmarks and (M, 3, 2) ROI points, got {u.shape} and {r.shape}")
    mid = 0.5 * (r[:, 0] + r[:, 1])
    d = np.linalg.norm(r[:, 1] - r[:, 0], axis=1)
    un = (u - mid[:, None]) / d[:, None, None]
    rn = (r - mid[:, None]) / d[:, None, None]
    weights = np.zeros((3, u.shape[1]))
    for row in range(3):
        near = np.asarray(candidates[row])
        k = near.size
        x = un[:, near, :].transpose(0, 2, 1).reshape(-1, k)  # (2M, k)
        y = rn[:, row, :].reshape(-1)
        a = x.T @ x + ridge * y.size * np.eye(k)
        kkt = np.block([[2 * a, np.ones((k, 1))], [np.ones((1, k)), np.zeros((1, 1))]])
        weights[row, near] = np.linalg.solve(kkt, np.concatenate([2 * x.T @ y, [1.0]]))[:k]
    return weights


def roi_points_from_landmarks(mu_px: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(L, 2) landmarks and (3, L) weights -> (3, 2) ROI points [right eye, left eye, mouth]."""
    mu_px = np.asarray(mu_px, dtype=np.float64)
    if weights.shape[1] != mu_px.shape[0]:
        raise ValueError(f"ROI weights are for {weights.shape[1]} landmarks, got {mu_px.shape[0]}")
    return weights @ mu_px


@dataclass(frozen=True, eq=False)
class Located:
    """A face located in one image: the final ROI, the landmarks from it, and the detector's score."""

    roi: Roi
    landmarks: Landmarks
    detection_score: float


def locate_face(image_bgr: np.ndarray, detector, predictor, roi_weights: np.ndarray | None,
                refine_passes: int = 1) -> Located | None:
    """Detector -> ROI -> network, then ``refine_passes`` times: ROI from the landmarks -> network.

    Returns None when the detector finds no face. ``roi_weights`` None: no refinement.
    """
    dets = detector.detect(image_bgr)
    if not dets:
        return None
    size, zoom = predictor.input_size, float(getattr(predictor, "crop_zoom", 1.0))
    roi = roi_from_points(dets[0].roi_points(), size, zoom)
    landmarks = predictor.predict(image_bgr, roi)
    if roi_weights is not None:
        for _ in range(refine_passes):
            try:
                roi = roi_from_points(roi_points_from_landmarks(landmarks.mu_px, roi_weights), size, zoom)
            except ValueError as exc:  # degenerate landmarks: keep the detector's ROI
                log.debug("refine skipped: %s", exc)
                break
            landmarks = predictor.predict(image_bgr, roi)
    return Located(roi=roi, landmarks=landmarks, detection_score=dets[0].score)
