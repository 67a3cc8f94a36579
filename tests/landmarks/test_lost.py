"""The tracking-lost decision from sigma and from the fit."""

from __future__ import annotations

import numpy as np

from tracker.landmarks.lost import LostThresholds, median_sq_residual, tracking_lost
from tracker.types import Landmarks, Roi

ROI = Roi(matrix=np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]), size=100)  # 2 image px per crop px


def _lm(sigma_norm: float, n: int = 20) -> Landmarks:
    rng = np.random.default_rng(0)
    # sigma_px = sigma_norm * S / 2 * scale = sigma_norm * 100
    return Landmarks(mu_px=rng.uniform(0, 200, (n, 2)), sigma_px=np.full(n, sigma_norm * 100.0))


def test_confident_landmarks_are_tracked():
    d = tracking_lost(_lm(0.02), ROI)
    assert not d.lost and d.reason == "" and abs(d.median_sigma_norm - 0.02) < 1e-12


def test_uncertain_landmarks_are_lost():
    d = tracking_lost(_lm(0.2), ROI)
    assert d.lost and "too uncertain" in d.reason
    assert not tracking_lost(_lm(0.2), ROI, thresholds=LostThresholds(max_median_sigma_norm=0.3)).lost


def test_fit_residuals_decide():
    lm = _lm(0.02)  # sigma 2 px
    good = lm.mu_px + np.array([2.0, 0.0])  # 1 sigma off: r^2 = 1
    assert median_sq_residual(lm, good) == 1.0
    assert not tracking_lost(lm, ROI, fitted_px=good).lost
    bad = lm.mu_px + np.array([12.0, 0.0])  # 6 sigma off: r^2 = 36
    d = tracking_lost(lm, ROI, fitted_px=bad)
    assert d.lost and "does not fit" in d.reason and d.fit_statistic == 36.0


def test_fit_cost_is_used_without_fitted_landmarks():
    lm = _lm(0.02, n=20)
    assert not tracking_lost(lm, ROI, fit_cost=20.0).lost
    d = tracking_lost(lm, ROI, fit_cost=20 * 30.0)
    assert d.lost and "fit cost too high" in d.reason


def test_nothing_is_lost():
    d = tracking_lost(None, None)
    assert d.lost and d.reason == "no landmarks"
