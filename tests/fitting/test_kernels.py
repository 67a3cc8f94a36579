"""The compiled tracking kernels against their numpy references (same values, to rounding)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fitting.tiny_head import build_tiny_head, landmark_ids
from tracker.fitting import FaceFitter
from tracker.fitting.landmark_model import Camera, LandmarkModel, evaluate, evaluate_compiled


def _random_pose(rng, lm, sparse_psi: bool):
    psi = rng.uniform(0.0, 1.0, lm.n_expression)
    if sparse_psi:
        psi *= rng.random(lm.n_expression) < 0.4
    return (psi, rng.normal(size=3) * 0.4, np.array([15.0, -20.0, 550.0]) + rng.normal(size=3) * 30.0,
            rng.normal(size=(lm.n_joints, 3)) * 0.25)


def _check_same(lm, rng, trials=6):
    for trial in range(trials):
        rest = lm.rest_identity(rng.normal(size=lm.n_identity))
        psi, root, t, theta = _random_pose(rng, lm, sparse_psi=trial % 2 == 0)
        cam = Camera(650.0 + 100 * trial, 320.0 + trial, 240.0 - trial, 1.0 + 0.01 * trial)
        ref = evaluate(lm, rest, psi, root, t, theta, cam)
        got = evaluate_compiled(lm, rest, psi, root, t, theta, cam)
        np.testing.assert_allclose(got.uv_px, ref.uv_px, rtol=0, atol=1e-9)
        np.testing.assert_allclose(got.x_mm, ref.x_mm, rtol=0, atol=1e-9)
        scale = np.abs(ref.frame_jac).max()
        assert scale > 0
        np.testing.assert_allclose(got.frame_jac, ref.frame_jac, rtol=0, atol=1e-12 * scale)
        plain = evaluate_compiled(lm, rest, psi, root, t, theta, cam, jacobian=False)
        assert plain.frame_jac is None
        np.testing.assert_allclose(plain.uv_px, ref.uv_px, rtol=0, atol=1e-9)


def test_compiled_evaluation_matches_numpy_on_tiny_head():
    model = build_tiny_head(3)
    lm = LandmarkModel.from_head_model(model, landmark_ids(model), threshold_cm=1e-3)
    # the test must exercise sparsity: some landmarks depend on only some expressions
    assert 0 < lm.expression_support.mean() < 1
    _check_same(lm, np.random.default_rng(0))


def test_compiled_evaluation_matches_numpy_on_ict(head_model):
    from tracker.face.landmark_sets import load_landmark_set

    lm = LandmarkModel.from_head_model(head_model, load_landmark_set("landmarks320").vertex_ids, 1e-3)
    _check_same(lm, np.random.default_rng(1), trials=3)


def _random_spd(rng, n):
    a = rng.normal(size=(3 * n, n))
    return a.T @ a + 0.1 * np.eye(n)


@pytest.mark.parametrize("seed", range(8))
def test_compiled_bounded_step_matches_numpy(seed):
    model = build_tiny_head(1)
    fitter = FaceFitter(model, landmark_ids(model))
    rng = np.random.default_rng(seed)
    h = _random_spd(rng, fitter.na)
    g = rng.normal(size=fitter.na) * 50.0
    x = np.zeros(fitter.nf)
    # expressions at 0, at 1 and inside: the active set must be exercised in both directions
    x[fitter.s_exp] = rng.choice([0.0, 1.0, 0.3, 0.95, 0.02], size=fitter.n_exp)
    for lam in (1e-6, 1e-2, 10.0):
        ref = fitter._bounded_step_numpy(h, g, x, lam)
        got = fitter._bounded_step(h, g, x, lam)
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-10)
        psi = x[fitter._exp_idx] + got[fitter._exp_pos]
        assert psi.min() >= -1e-12 and psi.max() <= 1 + 1e-12


def test_compiled_bounded_step_reports_indefinite_matrix():
    model = build_tiny_head(1)
    fitter = FaceFitter(model, landmark_ids(model))
    h = -np.eye(fitter.na)
    with pytest.raises(np.linalg.LinAlgError):
        fitter._bounded_step(h, np.ones(fitter.na), np.full(fitter.nf, 0.5), 1e-3)
