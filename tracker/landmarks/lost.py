"""Is tracking lost? Decided from the network's uncertainty and from how well the fitted model explains it.

Two tests, either one declares the face lost (the pipeline then goes back to the detector):

1. Uncertainty: the median sigma over all landmarks, in normalised crop units (the network's own units, so
   independent of image resolution and face size). The crop is 2 units wide and the eyes are
   ``2 * TEMPLATE_EYE_DISTANCE = 0.44`` units apart, times the model's crop zoom (:func:`tracker.roi.template`).
   Measured with ``python main.py bench landmarks`` (``tracking_lost``) on the interim model of step 2069
   (320 landmarks, S = 128): held-out 300-W faces have a median sigma of 0.021-0.038 (5th-95th percentile),
   crops with no face 0.18 and above (5th percentile; most of them saturate at the largest sigma). Default
   threshold 0.09, about the geometric mean of the faces' 99th and the non-faces' 5th percentile (20 % of the
   eye distance).
   On frames of all 12 videos (every 10th, 413 frames) the median sigma stays at or below 0.03.
   The final model (step 7453) agrees: faces 0.017-0.036, non-faces 0.16 and above; 0 % of faces and
   99.5 % of non-face crops flagged. So does the committed model (second continuation, step 24905): faces
   0.014-0.028, non-faces 0.13 and above; 0 % of faces and 98.7 % of non-face crops flagged.
2. Fit: the median over landmarks of the squared normalised residual ``|x_i - mu_i|^2 / sigma_i^2`` between
   the fitted model's projected landmarks ``x`` and the network's ``mu`` (the per-landmark term of paper
   Eq. 6 times 2). For calibrated sigmas it follows a chi-square with 2 degrees of freedom (median 1.39).
   Measured after a fresh fit (step 2069 model): held-out faces 0.18-0.85 (5th-95th percentile). Non-face
   crops have tiny residuals (their sigmas are huge), so this test only matters when the network is
   confident and the head model still cannot explain its landmarks. Default threshold 9 (a typical
   landmark 3 sigma off), ten times the faces' 95th percentile.
   When the fit's landmarks are not given, ``fit_cost / L`` (the fitter's total energy per landmark) is
   compared with ``max_cost_per_landmark`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracker.landmarks.decode import sigma_from_px
from tracker.types import Landmarks, Roi


@dataclass(frozen=True)
class LostThresholds:
    """Thresholds of :func:`tracking_lost` (see the module docstring for how they were chosen)."""

    max_median_sigma_norm: float = 0.09
    max_median_sq_residual: float = 9.0
    max_cost_per_landmark: float = 25.0


@dataclass(frozen=True)
class LostDecision:
    """``lost``: go back to the detector; ``reason``: why (empty when tracked); the two measured statistics."""

    lost: bool
    reason: str
    median_sigma_norm: float
    fit_statistic: float | None


def median_sigma_norm(landmarks: Landmarks, roi: Roi) -> float:
    """Median landmark sigma in normalised crop units."""
    return float(np.median(sigma_from_px(landmarks.sigma_px, roi.size, roi.scale_px)))


def median_sq_residual(landmarks: Landmarks, fitted_px: np.ndarray) -> float:
    """Median over landmarks of ``|fitted - mu|^2 / sigma^2``; ``fitted_px`` (L, 2) image px."""
    fitted_px = np.asarray(fitted_px, dtype=np.float64)
    if fitted_px.shape != landmarks.mu_px.shape:
        raise ValueError(f"fitted landmarks {fitted_px.shape} do not match the network's {landmarks.mu_px.shape}")
    r2 = np.sum((fitted_px - landmarks.mu_px) ** 2, axis=1) / np.maximum(landmarks.sigma_px, 1e-9) ** 2
    return float(np.median(r2))


def tracking_lost(landmarks: Landmarks | None, roi: Roi | None, fitted_px: np.ndarray | None = None,
                  fit_cost: float | None = None,
                  thresholds: LostThresholds = LostThresholds()) -> LostDecision:
    """Decide whether the face in ``roi`` is lost.

    landmarks: the network's output for this frame (None: lost); roi: the crop it came from;
    fitted_px: (L, 2) the fitted model's landmarks in image px (``FitResult.landmarks_px``), or None;
    fit_cost: the fitter's final energy (used only when ``fitted_px`` is None).
    """
    if landmarks is None or roi is None:
        return LostDecision(True, "no landmarks", float("nan"), None)
    sig = median_sigma_norm(landmarks, roi)
    if not np.isfinite(sig) or sig > thresholds.max_median_sigma_norm:
        return LostDecision(True, f"landmarks too uncertain (median sigma {sig:.3f} of the half crop > "
                                  f"{thresholds.max_median_sigma_norm})", sig, None)
    if fitted_px is not None:
        stat = median_sq_residual(landmarks, fitted_px)
        if not np.isfinite(stat) or stat > thresholds.max_median_sq_residual:
            return LostDecision(True, f"the model does not fit the landmarks (median squared residual "
                                      f"{stat:.1f} sigma^2 > {thresholds.max_median_sq_residual})", sig, stat)
        return LostDecision(False, "", sig, stat)
    if fit_cost is not None:
        stat = float(fit_cost) / max(len(landmarks), 1)
        if not np.isfinite(stat) or stat > thresholds.max_cost_per_landmark:
            return LostDecision(True, f"fit cost too high ({stat:.1f} per landmark > "
                                      f"{thresholds.max_cost_per_landmark})", sig, stat)
        return LostDecision(False, "", sig, stat)
    return LostDecision(False, "", sig, None)
