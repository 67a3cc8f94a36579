"""The tracking pipeline: the posed mesh on demand, and tracking a real clip end to end."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.pipeline import fit_vertices
from tracker.types import FitParams, Intrinsics


def _random_params(model, rng) -> FitParams:
    return FitParams(identity=rng.normal(size=model.n_identity), expression=rng.uniform(0, 0.6, model.n_expression),
                     root_rotation=rng.normal(scale=0.2, size=3), translation_mm=np.array([15.0, -10.0, 550.0]),
                     joints=rng.normal(scale=0.1, size=(4, 3)), focal_px=600.0)


def test_fit_vertices_agree_with_the_fitters_forward_model(head_model):
    from tracker.fitting.energy import FitOptions
    from tracker.fitting.solver import FaceFitter

    rng = np.random.default_rng(0)
    ids = rng.choice(head_model.n_vertices, 300, replace=False)
    fitter = FaceFitter(head_model, ids, FitOptions(sparsity_threshold_cm=0.0))  # exact model
    intr = Intrinsics.from_fov(640, 480)
    for _ in range(2):
        p = _random_params(head_model, rng).replace(focal_px=intr.fx)
        v = fit_vertices(head_model, p)
        assert v.shape == (head_model.n_vertices, 3) and np.all(np.isfinite(v))
        uv = np.stack([intr.fx * v[ids, 0] / v[ids, 2] + intr.cx, intr.fy * v[ids, 1] / v[ids, 2] + intr.cy], 1)
        assert np.allclose(uv, fitter.landmarks_px(p, intr), atol=1e-3)  # float32 mesh vs float64 landmarks
    # zero pose: the mean face in front of the camera, its nose (max model z) nearest to the camera
    v0 = fit_vertices(head_model, FitParams.neutral(head_model.n_identity, head_model.n_expression, 600.0))
    face = head_model.vertex_part == head_model.part_names.index("Face")
    assert abs(np.median(v0[face, 0])) < 20 and 400 < v0[face, 2].min() < 600 < v0[face, 2].max()
