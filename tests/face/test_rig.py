"""The rig on the real model: eye joints at the eyeball sphere centres, skinning weights, pivots, LBS."""

from __future__ import annotations

import numpy as np

from tracker.face.forward import (identity_shape, joint_locations, joint_transforms, posed_vertices,
                                  rest_shape, skin)
from tracker.face.rig import EYE_PARTS, NECK_BLEND_CM, fit_sphere, part_mask
from tracker.types import FitParams


def _params(model, **kw):
    return FitParams.neutral(model.n_identity, model.n_expression, 800.0).replace(**kw)


def test_fit_sphere_known_values():
    rng = np.random.default_rng(1)
    d = rng.normal(size=(200, 3))
    pts = np.array([1.0, -2.0, 3.0]) + 1.7 * d / np.linalg.norm(d, axis=1, keepdims=True)
    c, r = fit_sphere(pts)
    np.testing.assert_allclose(c, [1.0, -2.0, 3.0], atol=1e-9)
    assert abs(r - 1.7) < 1e-9


def test_eye_joints_at_sphere_centres(head_model):
    m = head_model
    v = m.neutral_cm.astype(np.float64)
    for k, part, r in ((2, "ScleraLeft", m.eye_radius_cm[0]), (3, "ScleraRight", m.eye_radius_cm[1])):
        mask = part_mask(m.vertex_part, m.part_names, part)
        c, radius = fit_sphere(v[mask])
        np.testing.assert_allclose(m.joints_neutral_cm[k], c, atol=1e-5)
        assert abs(radius - r) < 1e-5 and 1.0 < radius < 2.0
    assert m.joints_neutral_cm[2, 0] > 0 > m.joints_neutral_cm[3, 0]  # eye_L is the subject's left, +x
    # identity-linear joints follow the sphere fit of an identity's eyeball within 0.3 mm
    rng = np.random.default_rng(0)
    beta = rng.normal(size=m.n_identity)
    shaped = identity_shape(m, beta)
    joints = joint_locations(m, beta)
    for k, part in ((2, "ScleraLeft"), (3, "ScleraRight")):
        c, _ = fit_sphere(shaped[part_mask(m.vertex_part, m.part_names, part)])
        assert np.linalg.norm(joints[k] - c) < 0.03


def test_pivots_are_anatomical(head_model):
    m = head_model
    neck, head = m.joints_neutral_cm[0], m.joints_neutral_cm[1]
    assert abs(neck[0]) < 1e-5 and abs(head[0]) < 1e-5  # on the mid-plane
    ibug = m.ibug68_vertex_ids
    ear_y = m.neutral_cm[ibug[[1, 15]], 1].mean()
    chin_y = m.neutral_cm[ibug[8], 1]
    assert chin_y < head[1] < ear_y  # head pivot between chin and ear heights
    assert neck[1] < chin_y - 3.0  # neck pivot well below the chin
    assert m.joint_parents.tolist() == [-1, 0, 1, 1]


def test_skin_weights(head_model):
    m = head_model
    w = m.skin_weights
    assert w.shape == (m.n_vertices, 4) and w.min() >= 0.0
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-6)
    for k, parts in EYE_PARTS.items():
        for p in parts:
            mask = part_mask(m.vertex_part, m.part_names, p)
            assert np.all(w[mask, k] == 1.0)
    face_ids = m.ibug68_vertex_ids  # the face is rigid on the head joint
    assert np.all(w[face_ids, 1] == 1.0)
    low = m.neutral_cm[:, 1] < -15.0
    assert low.sum() > 100 and np.all(w[low, 0] == 1.0)  # the lower neck is on the neck joint
    # smooth blend: along every skin edge the head weight changes no faster than the smoothstep's
    # steepest slope (1.5 / NECK_BLEND_CM per cm)
    skin_v = np.isin(m.vertex_part, [m.part_names.index("Face"), m.part_names.index("BackHead")])
    e = np.concatenate([m.faces[:, [0, 1]], m.faces[:, [1, 2]], m.faces[:, [2, 0]]])
    e = e[skin_v[e[:, 0]] & skin_v[e[:, 1]]]
    length = np.linalg.norm(m.neutral_cm[e[:, 0]] - m.neutral_cm[e[:, 1]], axis=1)
    dw = np.abs(w[e[:, 0], 1] - w[e[:, 1], 1])
    assert np.all(dw <= 1.5 / NECK_BLEND_CM * length + 1e-5)
    assert ((w[:, 1] > 0.05) & (w[:, 1] < 0.95)).sum() > 200  # a real blend band, not a cut


def test_zero_pose_is_rest(head_model):
    m = head_model
    rng = np.random.default_rng(3)
    beta = rng.normal(size=m.n_identity)
    psi = rng.uniform(0.0, 1.0, size=m.n_expression)
    p = _params(head_model, identity=beta, expression=psi, translation_mm=np.zeros(3))
    rest = rest_shape(m, beta, psi)
    expect = rest * np.array([10.0, -10.0, -10.0])
    np.testing.assert_allclose(posed_vertices(m, p), expect, atol=1e-6)


def test_head_rotation_moves_head_not_lower_neck(head_model):
    m = head_model
    p0 = _params(m)
    joints = np.zeros((4, 3))
    joints[1] = [0.0, 0.4, 0.0]  # turn the head (yaw)
    p1 = p0.replace(joints=joints)
    a, b = posed_vertices(m, p0), posed_vertices(m, p1)
    moved = np.linalg.norm(a - b, axis=1)
    nose = m.ibug68_vertex_ids[30]
    assert moved[nose] > 30.0  # mm
    low = m.neutral_cm[:, 1] < -15.0
    assert moved[low].max() < 1e-9
    # the head pivot itself does not move, and head vertices keep their distances to it (rigid)
    g = joint_transforms(m, joints, joint_locations(m, np.zeros(m.n_identity)))
    pivot = m.joints_neutral_cm[1].astype(np.float64)
    np.testing.assert_allclose(g[1, :3, :3] @ pivot + g[1, :3, 3], pivot, atol=1e-9)
    head_only = m.skin_weights[:, 1] == 1.0
    rest = m.neutral_cm.astype(np.float64)[head_only]
    posed = skin(rest, m.skin_weights[head_only], g)
    np.testing.assert_allclose(np.linalg.norm(posed - pivot, axis=1), np.linalg.norm(rest - pivot, axis=1),
                               atol=1e-5)


def test_eyes_rotate_rigidly_about_their_centre(head_model):
    m = head_model
    joints = np.zeros((4, 3))
    joints[2] = [0.2, 0.3, 0.0]  # eye_L looks up/sideways
    a = posed_vertices(m, _params(m))
    b = posed_vertices(m, _params(m, joints=joints))
    eye_l = m.skin_weights[:, 2] == 1.0
    moved = np.linalg.norm(a - b, axis=1)
    assert moved[eye_l].max() > 3.0 and moved[~eye_l].max() < 1e-9
    centre = m.joints_neutral_cm[2].astype(np.float64) * np.array([10.0, -10.0, -10.0]) + [0.0, 0.0, 600.0]
    np.testing.assert_allclose(np.linalg.norm(b[eye_l] - centre, axis=1),
                               np.linalg.norm(a[eye_l] - centre, axis=1), atol=1e-4)


def test_eye_look_blendshapes_leave_the_eyeballs(head_model):
    """Documented in docs/head_model.md: gaze is the eye joints'; eyeLook* only move lids and skin."""
    m = head_model
    eyes = m.skin_weights[:, 2:].sum(axis=1) == 1.0
    for j, name in enumerate(m.expression_names):
        if name.startswith("eyeLook"):
            assert np.abs(m.expression_basis_cm[j][eyes]).max() == 0.0
            assert np.abs(m.expression_basis_cm[j]).max() > 0.1
