"""Every differentiated function against central finite differences."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.fitting.tiny_head import build_tiny_head, landmark_ids
from tracker.fitting import energy
from tracker.fitting.intersect import IntersectModel, PackedIntersect, intersect_residuals
from tracker.fitting.landmark_model import Camera, LandmarkModel, evaluate, forward_kinematics, pose_skeleton
from tracker.fitting.rotation import left_jacobian, rodrigues, rodrigues_jacobian, rotation_log, skew


def fd(fun, x, eps=1e-6):
    """Central differences of fun: (P,) -> array; returns (..., P)."""
    x = np.asarray(x, dtype=np.float64)
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = eps
        cols.append((np.asarray(fun(x + e)) - np.asarray(fun(x - e))) / (2 * eps))
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("w", [np.array([0.3, -1.2, 0.7]), np.array([1e-6, -2e-6, 5e-7]), np.zeros(3),
                               np.array([0.0, 3.0, 0.1])])
def test_rodrigues_jacobian_matches_finite_differences(w):
    num = fd(rodrigues, w)                           # (3, 3, 3): [a, b, i]
    ana = np.transpose(rodrigues_jacobian(w), (1, 2, 0))
    np.testing.assert_allclose(ana, num, atol=1e-7)


@pytest.mark.parametrize("w", [np.array([0.3, -1.2, 0.7]), np.array([1e-6, -2e-6, 5e-7]), np.zeros(3)])
def test_left_jacobian_matches_finite_differences(w):
    # d(R p)/dw = -[R p]x J_l(w)
    p = np.array([0.4, -2.0, 1.3])
    num = fd(lambda v: rodrigues(v) @ p, w)
    np.testing.assert_allclose(-skew(rodrigues(w) @ p) @ left_jacobian(w), num, atol=1e-8)


def test_rodrigues_is_a_rotation_and_log_inverts_it():
    rng = np.random.default_rng(1)
    for _ in range(20):
        w = rng.normal(size=3)
        w *= min(1.0, 3.0 / np.linalg.norm(w))
        r = rodrigues(w)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)
        np.testing.assert_allclose(rotation_log(r), w, atol=1e-9)


@pytest.fixture(scope="module")
def tiny():
    model = build_tiny_head()
    return model, LandmarkModel.from_head_model(model, landmark_ids(model))


def _random_state(rng, lm):
    return dict(beta=rng.normal(size=lm.n_identity), psi=rng.uniform(0.1, 0.9, lm.n_expression),
                root=rng.normal(scale=0.3, size=3), t=np.array([20.0, -10.0, 550.0]),
                joints=rng.normal(scale=0.15, size=(lm.n_joints, 3)), f=700.0)


def test_landmark_model_jacobians_match_finite_differences(tiny):
    _, lm = tiny
    rng = np.random.default_rng(2)
    s = _random_state(rng, lm)
    cam = lambda f: Camera(f, 320.0, 240.0, 1.1)  # noqa: E731

    def uv(**over):
        p = dict(s, **over)
        return evaluate(lm, lm.rest_identity(p["beta"]), p["psi"], p["root"], p["t"], p["joints"], cam(p["f"]),
                        jacobian=False).uv_px

    ev = evaluate(lm, lm.rest_identity(s["beta"]), s["psi"], s["root"], s["t"], s["joints"], cam(s["f"]),
                  jac_identity=True, jac_focal=True)
    np.testing.assert_allclose(ev.uv_px, uv(), atol=1e-12)
    tol = dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ev.d_expression, fd(lambda v: uv(psi=v), s["psi"]), **tol)
    np.testing.assert_allclose(ev.d_identity, fd(lambda v: uv(beta=v), s["beta"]), **tol)
    np.testing.assert_allclose(ev.d_root, fd(lambda v: uv(root=v), s["root"]), **tol)
    np.testing.assert_allclose(ev.d_translation, fd(lambda v: uv(t=v), s["t"]), **tol)
    np.testing.assert_allclose(ev.d_joints, fd(lambda v: uv(joints=v.reshape(-1, 3)), s["joints"].ravel()), **tol)
    np.testing.assert_allclose(ev.d_focal, fd(lambda v: uv(f=float(v[0])), np.array([s["f"]]))[..., 0], **tol)
    # the eye joints move the sclera landmarks, so their columns are not all zero
    assert np.abs(ev.d_joints[:, :, 6:]).max() > 1e-3


def test_sparsity_support_matches_the_jacobian(tiny):
    model, _ = tiny
    lm = LandmarkModel.from_head_model(model, landmark_ids(model), threshold_cm=0.05)
    rng = np.random.default_rng(3)
    s = _random_state(rng, lm)
    ev = evaluate(lm, lm.rest_identity(s["beta"]), s["psi"], s["root"], s["t"], s["joints"], Camera(700, 0, 0))
    nonzero = np.abs(ev.d_expression).max(axis=1) > 0
    np.testing.assert_array_equal(nonzero, lm.expression_support)
    assert 0 < lm.expression_support.mean() < 1  # real sparsity in the tiny model
    # sclera landmarks follow their eye joint only; skin does not depend on the eyes
    sclera = np.isin(model.vertex_part[lm.vertex_ids], [3, 4])
    assert not lm.joint_support[~sclera][:, 2:].any()
    assert lm.joint_support[sclera][:, 2:].any(axis=1).all()


def test_energy_terms_match_finite_differences():
    rng = np.random.default_rng(4)
    n_l, n_p = 7, 5
    base_uv, duv = rng.normal(size=(n_l, 2)), rng.normal(size=(n_l, 2, n_p))
    mu, sigma = rng.normal(size=(n_l, 2)), rng.uniform(0.5, 3.0, n_l)
    p0 = rng.normal(size=n_p)
    uv_of = lambda p: base_uv + duv @ p  # noqa: E731  linear model so FD is exact
    r, j = energy.landmark_residuals(uv_of(p0), duv, mu, sigma, weight=2.0)
    assert float(r @ r) == pytest.approx(2.0 * np.sum(np.sum((uv_of(p0) - mu) ** 2, 1) / (2 * sigma ** 2)))
    np.testing.assert_allclose(j, fd(lambda p: energy.landmark_residuals(uv_of(p), duv, mu, sigma, 2.0)[0], p0),
                               atol=1e-8)
    prev = rng.normal(size=(n_l, 2))
    r, jt, jp = energy.temporal_residuals(uv_of(p0), duv, prev, duv, weight=0.3)
    np.testing.assert_allclose(jt, fd(lambda p: energy.temporal_residuals(uv_of(p), duv, prev, weight=0.3)[0], p0),
                               atol=1e-8)
    np.testing.assert_allclose(jp, fd(lambda p: energy.temporal_residuals(uv_of(p0), duv, uv_of(p), weight=0.3)[0],
                                      p0), atol=1e-8)
    for fun, scale in ((energy.identity_residuals, 0.5), (energy.expression_residuals, 1.0),
                       (energy.joint_residuals, 1.0)):
        r, j = fun(p0, 3.0)
        assert float(r @ r) == pytest.approx(3.0 * scale * float(p0 @ p0))
        np.testing.assert_allclose(j, fd(lambda p: fun(p, 3.0)[0], p0), atol=1e-8)


def test_intersect_term_matches_finite_differences(tiny):
    model, _ = tiny
    im = IntersectModel.from_head_model(model)
    assert all(e.ids.size > 0 for e in im.eyelids) and len(im.hulls) == 2
    rng = np.random.default_rng(5)
    beta = rng.normal(scale=0.5, size=model.n_identity)
    psi = np.zeros(model.n_expression)
    r0, _, _ = intersect_residuals(im, np.zeros(model.n_identity), psi, 1.0)
    assert r0.size == 0  # the neutral face does not intersect itself
    for k in range(model.n_expression):  # no single shape intersects (the sets are chosen that way)
        one = np.zeros(model.n_expression)
        one[k] = 1.0
        assert intersect_residuals(im, np.zeros(model.n_identity), one, 1.0)[0].size == 0
    psi[[1, 2, 5, 6, 7]] = [0.9, 0.8, 0.9, 0.9, 0.8]   # blinks + brow pull lids in, pucker + puff push lips in
    r, jb, jp = intersect_residuals(im, beta, psi, 10.0)
    assert r.size >= 6 and np.all(r > 0)
    n = r.size
    np.testing.assert_allclose(jb, fd(lambda b: intersect_residuals(im, b, psi, 10.0)[0][:n], beta, 1e-7),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jp, fd(lambda p: intersect_residuals(im, beta, p, 10.0)[0][:n], psi, 1e-7),
                               rtol=1e-5, atol=1e-6)


def test_intersect_pruning_for_an_identity_keeps_the_energy(tiny):
    model, _ = tiny
    im = IntersectModel.from_head_model(model)
    rng = np.random.default_rng(6)
    beta = rng.normal(scale=0.5, size=model.n_identity)
    pruned = im.for_identity(beta)
    assert pruned.n_vertices < im.n_vertices
    for _ in range(30):
        psi = rng.uniform(0, 1, model.n_expression) * (rng.random(model.n_expression) < 0.5)
        r_full, _, _ = intersect_residuals(im, beta, psi, 1.0)
        r_pruned, _, _ = intersect_residuals(pruned, beta, psi, 1.0)
        assert float(r_full @ r_full) == pytest.approx(float(r_pruned @ r_pruned), abs=1e-12)


def test_packed_intersect_equals_the_general_term(tiny):
    model, _ = tiny
    im = IntersectModel.from_head_model(model)
    rng = np.random.default_rng(7)
    beta = rng.normal(scale=0.5, size=model.n_identity)
    packed = PackedIntersect.from_model(im, beta)
    hits = 0
    for _ in range(20):
        psi = rng.uniform(0, 1, model.n_expression)
        r, _, jp = intersect_residuals(im, beta, psi, 3.0)
        rp, jpp = packed.residuals(psi, 3.0)
        assert sorted(np.round(r, 12)) == sorted(np.round(rp, 12))
        np.testing.assert_allclose(np.sort(jp, axis=0), np.sort(jpp, axis=0), atol=1e-12)
        hits += r.size
        if r.size:
            n = rp.size
            np.testing.assert_allclose(jpp, fd(lambda p: packed.residuals(p, 3.0)[0][:n], psi, 1e-7),
                                       rtol=1e-5, atol=1e-6)
    assert hits > 0


def test_pose_skeleton_matches_forward_kinematics_and_finite_differences():
    rng = np.random.default_rng(8)
    parents = np.array([-1, 0, 1, 1])
    joints = rng.normal(size=(4, 3))
    theta = rng.normal(scale=0.3, size=(4, 3))
    sk = pose_skeleton(joints, theta, parents)
    a, b, _ = forward_kinematics(joints, theta, parents)
    np.testing.assert_allclose(sk.a, a, atol=1e-12)
    np.testing.assert_allclose(sk.b, b, atol=1e-12)
    num_a = fd(lambda v: pose_skeleton(joints, v.reshape(4, 3), parents).a, theta.ravel())   # (K, 3, 3, 3K)
    num_b = fd(lambda v: pose_skeleton(joints, v.reshape(4, 3), parents).b, theta.ravel())   # (K, 3, 3K)
    np.testing.assert_allclose(np.transpose(sk.da, (0, 2, 3, 1)), num_a, atol=1e-7)
    np.testing.assert_allclose(np.transpose(sk.db, (0, 2, 1)), num_b, atol=1e-7)
    num_j = fd(lambda v: pose_skeleton(v.reshape(4, 3), theta, parents).b, joints.ravel())   # (K, 3, 3K)
    ana_j = np.transpose(sk.db_djoint, (1, 2, 0, 3)).reshape(4, 3, 12)                        # [m, a, (k, c)]
    np.testing.assert_allclose(ana_j, num_j, atol=1e-7)


def test_packed_intersect_bound_never_misses_a_penetrating_vertex(tiny):
    # the linear margin bound must flag every vertex that the exact test finds inside (any psi in the box)
    model, _ = tiny
    im = IntersectModel.from_head_model(model)
    rng = np.random.default_rng(9)
    packed = PackedIntersect.from_model(im, rng.normal(scale=0.5, size=model.n_identity))
    no_bound = dataclasses.replace(packed, bound_offset=np.full_like(packed.bound_offset, -1.0))
    hits = 0
    for _ in range(50):
        psi = rng.uniform(0, 1, model.n_expression) * (rng.random(model.n_expression) < 0.6)
        r, _ = packed.residuals(psi, 1.0)
        r_all, _ = no_bound.residuals(psi, 1.0)       # every vertex gets the exact test
        assert sorted(np.round(r, 12)) == sorted(np.round(r_all, 12))
        hits += r_all.size
    assert hits > 0
