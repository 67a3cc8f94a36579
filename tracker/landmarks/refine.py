"""Finding the face in a frame: detector -> ROI -> network, then ROI from the network's own landmarks.

The network was trained on crops whose ROI points are the iBUG eye centres (mean of iBUG 36-41 / 42-47) and
the mouth-corner midpoint (iBUG 48, 54). The run-time ROI is made from the same three points, expressed as
fixed affine combinations of the network's L landmarks (:func:`roi_weights_from_model`): each weight row
sums to one, so ``roi_points = weights @ mu_px`` commutes with any affine image transform.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from tracker.roi import roi_from_points
from tracker.types import Landmarks, Roi

log = logging.getLogger(__name__)

_IBUG_ROI_GROUPS = (tuple(range(36, 42)), tuple(range(42, 48)), (48, 54))


def roi_weights_from_model(landmark_vertices: np.ndarray, ibug68_vertices: np.ndarray, neutral_cm: np.ndarray,
                           k: int = 6, ridge: float = 1e-3) -> np.ndarray:
    """(3, L) affine weights giving the three ROI points from the L landmarks.

    landmark_vertices: (L,) vertex ids of the network's landmarks; ibug68_vertices: (68,) vertex ids of the
    iBUG points; neutral_cm: (N, 3) the model's neutral mesh. For each ROI point (the mean of its iBUG
    vertices on the neutral mesh) the ``k`` nearest landmarks get weights w (sum 1) minimising
    ``|sum_i w_i X_i - target|^2 + ridge * |w - 1/k|^2`` (equality-constrained least squares).
    """
    lv = np.asarray(landmark_vertices, dtype=np.int64)
    iv = np.asarray(ibug68_vertices, dtype=np.int64)
    verts = np.asarray(neutral_cm, dtype=np.float64)
    if iv.shape != (68,):
        raise ValueError(f"expected 68 iBUG vertex ids, got {iv.shape}")
    lm_xyz = verts[lv]  # (L, 3)
    weights = np.zeros((3, len(lv)))
    k = min(k, len(lv))
    for row, group in enumerate(_IBUG_ROI_GROUPS):
        target = verts[iv[list(group)]].mean(0)
        near = np.argsort(np.linalg.norm(lm_xyz - target, axis=1))[:k]
        x = lm_xyz[near]  # (k, 3)
        # KKT system of  min |x^T w - t|^2 + r |w - 1/k|^2  s.t.  sum w = 1
        a = x @ x.T + ridge * np.eye(k)
        kkt = np.block([[2 * a, np.ones((k, 1))], [np.ones((1, k)), np.zeros((1, 1))]])
        rhs = np.concatenate([2 * (x @ target + ridge / k), [1.0]])
        weights[row, near] = np.linalg.solve(kkt, rhs)[:k]
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
    size = predictor.input_size
    roi = roi_from_points(dets[0].roi_points(), size)
    landmarks = predictor.predict(image_bgr, roi)
    if roi_weights is not None:
        for _ in range(refine_passes):
            try:
                roi = roi_from_points(roi_points_from_landmarks(landmarks.mu_px, roi_weights), size)
            except ValueError as exc:  # degenerate landmarks: keep the detector's ROI
                log.debug("refine skipped: %s", exc)
                break
            landmarks = predictor.predict(image_bgr, roi)
    return Located(roi=roi, landmarks=landmarks, detection_score=dets[0].score)
