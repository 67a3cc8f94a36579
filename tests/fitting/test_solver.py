"""The LM solver: gradients of the accumulated normal equations, convergence, bounds, degenerate input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.fitting.test_jacobians import fd
from tests.fitting.tiny_head import build_tiny_head, landmark_ids
from tracker.fitting import FaceFitter, FitOptions
from tracker.types import FitParams, Intrinsics, Landmarks

EXACT = FitOptions(w_identity=0.0, w_expression=0.0, w_joints=0.0, w_temporal=0.0, w_intersect=0.0,
                   max_iterations=60, max_iterations_init=60, max_iterations_batch=60, tolerance=1e-12,
                   tolerance_px=1e-7)


@pytest.fixture(scope="module")
def model():
    return build_tiny_head()


@pytest.fixture(scope="module")
def intr():
    return Intrinsics.from_fov(640, 480, 60.0)


def _gt(rng, model, intr, identity=None, z=500.0):
    return FitParams(rng.normal(size=model.n_identity) if identity is None else identity,
                     rng.uniform(0.1, 0.9, model.n_expression),
                     rng.normal(scale=0.25, size=3), np.array([rng.uniform(-40, 40), rng.uniform(-40, 40), z]),
                     rng.normal(scale=0.04, size=(4, 3)), intr.fx)


def _points_mm(fitter, p):
    return fitter._frame_eval(fitter.pack(p), fitter.rest(p.identity), fitter.camera(Intrinsics.from_fov(
        640, 480, 60.0), p.focal_px), jac=False).x_mm


def _rmse(a, b):
    return float(np.sqrt(np.mean(np.sum((a - b) ** 2, axis=1))))


def test_tracking_converges_below_a_thousandth_of_a_pixel_on_noise_free_data(model, intr):
    fitter = FaceFitter(model, landmark_ids(model), EXACT)
    rng = np.random.default_rng(10)
    for _ in range(3):
        gt = _gt(rng, model, intr)
        uv = fitter.landmarks_px(gt, intr)
        res = fitter.fit_frame(Landmarks(uv, np.full(len(uv), 1.0)), intr, None, identity=gt.identity)
        assert res.converged, res.message
        assert res.message == ""
        assert _rmse(res.landmarks_px, uv) < 1e-3
        np.testing.assert_allclose(res.params.expression, gt.expression, atol=1e-4)
        # (translation alone is not identifiable without the joint prior: neck/head rotations trade with it)
        np.testing.assert_allclose(_points_mm(fitter, res.params), _points_mm(fitter, gt), atol=1e-2)


def test_warm_started_tracking_needs_few_iterations(model, intr):
    fitter = FaceFitter(model, landmark_ids(model))
    rng = np.random.default_rng(11)
    gt = _gt(rng, model, intr)
    sigma = np.full(len(fitter.lm), 1.0)
    prev = fitter.fit_frame(Landmarks(fitter.landmarks_px(gt, intr), sigma), intr, None, gt.identity)
    assert prev.converged
    iters = []
    for i in range(10):
        gt = gt.replace(root_rotation=gt.root_rotation + [0.0, 0.01, 0.0],
                        translation_mm=gt.translation_mm + [1.0, 0.0, 2.0])
        uv = fitter.landmarks_px(gt, intr)
        prev = fitter.fit_frame(Landmarks(uv, sigma), intr, prev)
        iters.append(prev.iterations)
        assert _rmse(prev.landmarks_px, uv) < 0.5
    assert max(iters) <= FitOptions().max_iterations and np.median(iters) <= 4


def test_expression_stays_in_its_bounds(model, intr):
    fitter = FaceFitter(model, landmark_ids(model), EXACT)
    rng = np.random.default_rng(12)
    gt = _gt(rng, model, intr)
    psi = gt.expression.copy()
    psi[[0, 3, 4]] = [1.5, -0.4, 1.2]      # data generated outside the box
    uv = fitter.landmarks_px(gt.replace(expression=psi), intr)
    res = fitter.fit_frame(Landmarks(uv, np.full(len(uv), 1.0)), intr, None, identity=gt.identity)
    e = res.params.expression
    assert np.all(e >= 0.0) and np.all(e <= 1.0)
    assert e[0] == 1.0 and e[3] == 0.0 and e[4] == 1.0


def test_accumulated_gradient_matches_finite_differences_of_the_energy(model, intr):
    fitter = FaceFitter(model, landmark_ids(model), FitOptions(w_temporal=0.3, w_intersect=50.0))
    rng = np.random.default_rng(13)
    gt = _gt(rng, model, intr)
    gt = gt.replace(expression=np.clip(gt.expression + [0.5, 0.6, 0.6, 0, 0, 0, 0, 0], 0, 0.99))
    cam = fitter.camera(intr)
    lmk = Landmarks(fitter.landmarks_px(gt, intr) + rng.normal(size=(len(fitter.lm), 2)),
                    rng.uniform(0.5, 3.0, len(fitter.lm)))
    data = fitter._prepare(lmk, intr)
    uv_prev = lmk.mu_px + 2.0
    x = fitter.pack(gt)
    cost, h, g, _ = fitter.frame_system(x, gt.identity, cam, data, uv_prev)
    assert cost == pytest.approx(fitter.frame_cost(x, gt.identity, cam, data, uv_prev))

    def energy(xa):
        xx = x.copy()
        xx[fitter.active] = xa
        return fitter.frame_cost(xx, gt.identity, cam, data, uv_prev)

    # E = |r|^2, so dE/dx = 2 J^T r
    num = fd(energy, x[fitter.active], 1e-6)
    np.testing.assert_allclose(2.0 * g, num, rtol=1e-5, atol=1e-4 * np.abs(num).max())
    np.testing.assert_allclose(h, h.T, atol=1e-9)
    assert np.linalg.eigvalsh(h).min() > -1e-8


def test_batch_gradient_matches_finite_differences(model, intr):
    fitter = FaceFitter(model, landmark_ids(model), FitOptions(w_temporal=0.3))
    rng = np.random.default_rng(14)
    beta = rng.normal(size=model.n_identity)
    gts = [_gt(rng, model, intr, beta) for _ in range(3)]
    datas = [fitter._prepare(Landmarks(fitter.landmarks_px(g, intr) + rng.normal(size=(len(fitter.lm), 2)),
                                       np.full(len(fitter.lm), 1.5)), intr) for g in gts]
    xf = np.stack([fitter.pack(g) for g in gts])
    pairs = [(0, 1), (1, 2)]
    cost, hff, hoff, hfs, hss, gf, gs, _ = fitter._batch_system(xf, beta, intr.fx, intr, datas, pairs, True, True)

    def energy(v):
        na, ns = fitter.na, model.n_identity + 1
        xx = xf.copy()
        xx[:, fitter.active] = v[:-ns].reshape(3, na)
        return fitter._batch_system(xx, v[-ns:-1], v[-1], intr, datas, pairs, True, True)[0]

    v0 = np.concatenate([xf[:, fitter.active].ravel(), beta, [intr.fx]])
    num = fd(energy, v0, 1e-6)
    ana = 2.0 * np.concatenate([gf.ravel(), gs])
    np.testing.assert_allclose(ana, num, rtol=1e-4, atol=1e-4 * np.abs(num).max())


def test_keyframes_recover_identity_and_focal_length(model, intr):
    fitter = FaceFitter(model, landmark_ids(model), EXACT)
    rng = np.random.default_rng(15)
    beta = rng.normal(size=model.n_identity)
    gts = [_gt(rng, model, intr, beta, z=rng.uniform(300, 1000)) for _ in range(8)]
    lmks = [Landmarks(fitter.landmarks_px(g, intr), np.full(len(fitter.lm), 1.0)) for g in gts]
    res = fitter.fit_keyframes(lmks, intr.with_focal(intr.fx * 1.25), fit_identity=True, fit_focal=True)
    assert res.converged, res.message
    assert res.focal_px == pytest.approx(intr.fx, rel=1e-4)
    np.testing.assert_allclose(res.identity, beta, atol=1e-3)
    assert res.focal_std_px is not None and 0 < res.focal_std_px < 0.2 * intr.fx
    assert res.identity_std.shape == (model.n_identity,)
    assert all(_rmse(f.landmarks_px, lm.mu_px) < 1e-3 for f, lm in zip(res.frames, lmks))


def test_offline_sequence_fit_with_temporal_term(model, intr):
    rng = np.random.default_rng(16)
    beta = rng.normal(size=model.n_identity)
    fitter = FaceFitter(model, landmark_ids(model), FitOptions(w_temporal=0.0, w_intersect=0.0))
    gt = _gt(rng, model, intr, beta)
    gts, lmks = [], []
    for i in range(6):
        g = gt.replace(root_rotation=gt.root_rotation + [0, 0.02 * i, 0],
                       translation_mm=gt.translation_mm + [2 * i, 0, 0])
        gts.append(g)
        lmks.append(Landmarks(fitter.landmarks_px(g, intr) + rng.normal(scale=0.5, size=(len(fitter.lm), 2)),
                              np.full(len(fitter.lm), 0.5)))
    lmks[3] = Landmarks(np.full((len(fitter.lm), 2), np.nan), np.ones(len(fitter.lm)))  # a lost frame
    free = fitter.fit_sequence(lmks, intr, fit_identity=True)
    assert free.converged
    assert "1 of 6 frames left out" in free.message
    assert not free.frames[3].converged and "finite" in free.frames[3].message
    for i in (0, 1, 2, 4, 5):
        assert _rmse(free.frames[i].landmarks_px, fitter.landmarks_px(gts[i], intr)) < 0.5
    # E_temporal pulls consecutive frames together (and only consecutive ones: 2 -> 4 is not a pair)
    smooth_fitter = FaceFitter(model, landmark_ids(model), FitOptions(w_temporal=1.0, w_intersect=0.0))
    smooth = smooth_fitter.fit_sequence(lmks, intr)

    def motion(res, i, j):
        return _rmse(res.frames[i].landmarks_px, res.frames[j].landmarks_px)

    for i, j in ((0, 1), (1, 2), (4, 5)):
        assert motion(smooth, i, j) < 0.8 * motion(free, i, j)
    assert motion(smooth, 2, 4) > 0.8 * motion(free, 2, 4)


def _assert_finite(res):
    p = res.params
    for a in (p.identity, p.expression, p.root_rotation, p.translation_mm, p.joints, res.landmarks_px):
        assert np.all(np.isfinite(a))
    assert math.isfinite(p.focal_px)
    assert not math.isnan(res.cost)


def test_degenerate_inputs_are_reported_and_never_nan(model, intr):
    fitter = FaceFitter(model, landmark_ids(model))
    rng = np.random.default_rng(17)
    gt = _gt(rng, model, intr)
    uv = fitter.landmarks_px(gt, intr)
    n = len(uv)
    cases = {
        "sigma too large": Landmarks(uv, np.full(n, 1e6)),
        "are finite": Landmarks(np.full((n, 2), np.nan), np.ones(n)),
        "far off the image": Landmarks(uv + 1e5, np.ones(n)),
    }
    inf_uv = uv.copy()
    inf_uv[:-3] = np.inf
    cases["only 3 of"] = Landmarks(inf_uv, np.ones(n))
    for text, lmk in cases.items():
        for prev in (None, gt):
            res = fitter.fit_frame(lmk, intr, prev)
            assert not res.converged
            assert text in res.message
            assert res.iterations == 0
            _assert_finite(res)
    behind = gt.replace(translation_mm=np.array([0.0, 0.0, -500.0]))
    res = fitter.fit_frame(Landmarks(uv, np.ones(n)), intr, behind)
    assert not res.converged and "face is behind the camera" in res.message
    _assert_finite(res)
    with pytest.raises(ValueError, match="expected 101 landmarks"):
        fitter.fit_frame(Landmarks(uv[:5], np.ones(5)), intr)
    with pytest.raises(ValueError, match="FitParams.expression has shape"):
        fitter.fit_frame(Landmarks(uv, np.ones(n)), intr, gt.replace(expression=np.zeros(3)))


def test_partially_missing_landmarks_are_ignored(model, intr):
    fitter = FaceFitter(model, landmark_ids(model), EXACT)
    rng = np.random.default_rng(18)
    gt = _gt(rng, model, intr)
    uv = fitter.landmarks_px(gt, intr)
    mu = uv.copy()
    mu[::5] = np.nan
    res = fitter.fit_frame(Landmarks(mu, np.ones(len(uv))), intr, None, gt.identity)
    assert res.converged
    assert _rmse(res.landmarks_px, uv) < 1e-3


@pytest.mark.parametrize("coupled", [False, True])
def test_block_tridiagonal_solve_matches_a_dense_solve(coupled):
    from tracker.fitting.solver import block_tridiagonal_solve

    rng = np.random.default_rng(19)
    f, n = 5, 4
    a = np.zeros((f * n, f * n))
    diag = np.empty((f, n, n))
    upper = []
    for i in range(f):
        m = rng.normal(size=(n, n))
        diag[i] = m @ m.T + 8 * np.eye(n)
        a[i * n:(i + 1) * n, i * n:(i + 1) * n] = diag[i]
        if coupled and i + 1 < f and i != 2:   # one missing link: two independent chains
            e = rng.normal(size=(n, n))
            upper.append((i, i + 1, e))
            a[i * n:(i + 1) * n, (i + 1) * n:(i + 2) * n] = e
            a[(i + 1) * n:(i + 2) * n, i * n:(i + 1) * n] = e.T
    rhs = rng.normal(size=(f, n, 3))
    out = block_tridiagonal_solve(diag, upper, rhs)
    np.testing.assert_allclose(out.reshape(f * n, 3), np.linalg.solve(a, rhs.reshape(f * n, 3)), atol=1e-10)


def test_chord_steps_track_like_full_gauss_newton(model, intr):
    # chord steps (reused Jacobian) and full Gauss-Newton steps reach the same fits on a noisy sequence
    rng = np.random.default_rng(21)
    gt = _gt(rng, model, intr)
    fits = {}
    for chord in (0, 1, 3):
        fitter = FaceFitter(model, landmark_ids(model), FitOptions(chord_steps=chord, tracking_tolerance=1e-6))
        noise = np.random.default_rng(22)
        p, prev, out = gt, None, []
        for _ in range(8):
            p = p.replace(root_rotation=p.root_rotation + [0.0, 0.03, 0.01],
                          translation_mm=p.translation_mm + [2.0, -1.0, 4.0])
            uv = fitter.landmarks_px(p, intr) + noise.normal(scale=0.5, size=(len(fitter.lm), 2))
            prev = fitter.fit_frame(Landmarks(uv, np.full(len(uv), 0.5)), intr, prev, gt.identity)
            assert prev.converged, prev.message
            out.append(prev.landmarks_px)
        fits[chord] = np.array(out)
    for chord in (1, 3):   # the same optimum: convergence is confirmed with the Jacobian at the final point
        assert np.abs(fits[0] - fits[chord]).max() < 0.005


@pytest.mark.parametrize("field, value, text", [("chord_steps", -1, "chord_steps must be >= 0"),
                                                ("tracking_tolerance", 0.0, "tracking_tolerance must be finite and > 0")])
def test_tracking_options_are_checked(field, value, text):
    with pytest.raises(ValueError, match=text):
        FitOptions(**{field: value})
