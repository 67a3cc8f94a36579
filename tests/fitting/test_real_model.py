"""The landmark fast path against the head model's full forward model (``tracker.face.forward``)."""

from __future__ import annotations

import numpy as np

from tests.fitting.test_jacobians import fd
from tracker.face.forward import posed_vertices, project
from tracker.fitting.intersect import IntersectModel, intersect_residuals
from tracker.fitting.landmark_model import Camera, LandmarkModel, evaluate
from tracker.types import FitParams, Intrinsics


def _sample_ids(model, n=60):
    face = np.flatnonzero(model.vertex_part == model.part_names.index("Face"))
    iris = np.flatnonzero(model.vertex_part == model.part_names.index("IrisLeft"))
    return np.concatenate([face[np.linspace(0, face.size - 1, n).astype(int)], iris[:: max(1, iris.size // 5)]])


def _params(model, rng, intr):
    return FitParams(rng.normal(size=model.n_identity), rng.uniform(0, 1, model.n_expression),
                     np.array([0.2, -0.5, 0.1]), np.array([15.0, -30.0, 650.0]),
                     rng.normal(scale=0.1, size=(4, 3)), intr.fx)


def test_landmark_model_equals_the_full_forward_model(head_model):
    ids = _sample_ids(head_model)
    lm = LandmarkModel.from_head_model(head_model, ids, threshold_cm=0.0)
    intr = Intrinsics.from_fov(1280, 720, 55.0)
    rng = np.random.default_rng(0)
    for _ in range(3):
        p = _params(head_model, rng, intr)
        ref = posed_vertices(head_model, p, ids)
        ev = evaluate(lm, lm.rest_identity(p.identity), p.expression, p.root_rotation, p.translation_mm,
                      p.joints, Camera(intr.fx, intr.cx, intr.cy), jacobian=False)
        np.testing.assert_allclose(ev.x_mm, ref, atol=1e-3)          # float32 model data: 1 micron
        np.testing.assert_allclose(ev.uv_px, project(ref, intr), atol=1e-3)
    # the sparse (thresholded) model stays within a small fraction of a pixel
    sparse = LandmarkModel.from_head_model(head_model, ids, threshold_cm=1e-3)
    ev = evaluate(sparse, sparse.rest_identity(p.identity), p.expression, p.root_rotation, p.translation_mm,
                  p.joints, Camera(intr.fx, intr.cx, intr.cy), jacobian=False)
    assert np.abs(ev.uv_px - project(ref, intr)).max() < 0.1
    assert sparse.expression_support.mean() < 0.9


def test_real_model_jacobians_match_finite_differences(head_model):
    ids = _sample_ids(head_model, 20)
    lm = LandmarkModel.from_head_model(head_model, ids)
    rng = np.random.default_rng(1)
    intr = Intrinsics.from_fov(640, 480, 60.0)
    p = _params(head_model, rng, intr)
    cam = Camera(intr.fx, intr.cx, intr.cy)

    def uv(beta=p.identity, psi=p.expression, joints=p.joints):
        return evaluate(lm, lm.rest_identity(beta), psi, p.root_rotation, p.translation_mm, joints, cam,
                        jacobian=False).uv_px

    ev = evaluate(lm, lm.rest_identity(p.identity), p.expression, p.root_rotation, p.translation_mm, p.joints,
                  cam, jac_identity=True)
    np.testing.assert_allclose(ev.d_identity[..., :10], fd(lambda b: uv(beta=np.r_[b, p.identity[10:]]),
                                                           p.identity[:10]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ev.d_expression, fd(lambda v: uv(psi=v), p.expression), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ev.d_joints, fd(lambda v: uv(joints=v.reshape(4, 3)), p.joints.ravel()),
                               rtol=1e-4, atol=1e-5)


def test_intersect_sets_on_the_real_model(head_model):
    im = IntersectModel.from_head_model(head_model)
    assert len(im.hulls) == 2 and all(h.lips.ids.size > 0 for h in im.hulls)
    assert sum(h.lips.ids.size for h in im.hulls) > 40
    assert all(e.ids.size > 20 for e in im.eyelids)
    face = head_model.part_names.index("Face")
    assert all(np.all(head_model.vertex_part[e.ids] == face) for e in im.eyelids)
    for k in range(head_model.n_expression):  # no single expression of the mean face intersects
        one = np.zeros(head_model.n_expression)
        one[k] = 1.0
        assert intersect_residuals(im, np.zeros(head_model.n_identity), one, 1.0)[0].size == 0
    # the lower teeth are the ones jawOpen moves
    jaw = head_model.expression_names.index("jawOpen")
    assert np.linalg.norm(im.hulls[1].shift_exp[:, jaw]) > 3 * np.linalg.norm(im.hulls[0].shift_exp[:, jaw])
