"""Ridge label translation and NME: known values."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.landmarks.label_translation import apply_ridge, fit_ridge, fit_translation, nme_by_region, nme_interocular


def test_ridge_recovers_an_exact_linear_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    w_true = rng.normal(size=(6, 4))
    y = x @ w_true + np.array([1.0, -2.0, 0.5, 3.0])
    w = fit_ridge(x, y, 1e-9)
    np.testing.assert_allclose(w[:-1], w_true, atol=1e-6)
    np.testing.assert_allclose(w[-1], [1.0, -2.0, 0.5, 3.0], atol=1e-6)
    np.testing.assert_allclose(apply_ridge(x, w), y, atol=1e-6)
    # a strong ridge shrinks the weights but not the bias
    w_big = fit_ridge(x, y, 1e6)
    assert np.abs(w_big[:-1]).max() < 1e-3
    np.testing.assert_allclose(w_big[-1], y.mean(0), atol=1e-2)


def test_fit_translation_prefers_a_small_ridge_for_clean_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 3))
    y = x @ rng.normal(size=(3, 2))
    w, lam = fit_translation(x, y)
    assert lam <= 1e-4
    with pytest.raises(ValueError, match="at least 5"):
        fit_translation(x[:3], y[:3])


def test_nme_known_value():
    gt = np.zeros((1, 68, 2))
    gt[0, 36] = [0.0, 0.0]
    gt[0, 45] = [100.0, 0.0]
    pred = gt + np.array([3.0, 4.0])  # every point 5 px off
    np.testing.assert_allclose(nme_interocular(pred, gt), [5.0])


def test_nme_by_region_splits_the_error_by_ibug_region():
    gt = np.zeros((2, 68, 2))
    gt[:, 45, 0] = 50.0  # outer eye corners 50 px apart
    pred = gt.copy()
    pred[:, 48:68, 1] += 5.0  # only the mouth is off, by 10 % of the eye distance
    regions = nme_by_region(pred, gt)
    assert regions["mouth"] == pytest.approx(10.0)
    assert all(regions[k] == 0.0 for k in ("jaw", "brows", "nose", "eyes"))
    assert 20 * regions["mouth"] / 68 == pytest.approx(nme_interocular(pred, gt).mean())
