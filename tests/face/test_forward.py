"""Forward functions: rotations, camera transform and projection known values, subsets, caching, pose, OBJ."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.face.forward import (identity_shape, model_to_camera, posed_vertices, project, rest_shape,
                                  rotation_matrix)
from tracker.face.obj_export import write_obj
from tracker.face.obj_io import parse_obj_mesh
from tracker.face.pose import (euler_deg_from_matrix, euler_from_axis_angle, gaze_directions, head_pose, matrix_from_euler_deg,
                               matrix_from_quaternion, quaternion_from_axis_angle, quaternion_from_matrix)
from tracker.types import FitParams, Intrinsics


def test_rotation_matrix_known_values():
    np.testing.assert_allclose(rotation_matrix(np.zeros(3)), np.eye(3))
    r = rotation_matrix(np.array([0.0, 0.0, np.pi / 2]))
    np.testing.assert_allclose(r @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    rs = rotation_matrix(np.random.default_rng(0).normal(size=(5, 3)))
    np.testing.assert_allclose(rs @ rs.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (5, 3, 3)), atol=1e-12)
    small = np.array([1e-9, -2e-9, 3e-9])
    np.testing.assert_allclose(rotation_matrix(small), np.eye(3) + np.cross(np.eye(3), small), atol=1e-15)


def test_project_known_values():
    k = Intrinsics(640, 480, 1000.0, 900.0, 320.0, 240.0)
    np.testing.assert_allclose(project(np.array([[100.0, 50.0, 1000.0], [0.0, 0.0, 500.0]]), k),
                               [[420.0, 285.0], [320.0, 240.0]])


def test_model_to_camera_axes():
    # the model's +y (up) goes to the camera's -y (up in the image), +z (out of the face) towards the camera
    x = model_to_camera(np.array([[1.0, 2.0, 3.0]]), np.zeros(3), np.array([5.0, 6.0, 700.0]))
    np.testing.assert_allclose(x, [[15.0, -14.0, 670.0]])
    r = model_to_camera(np.array([[1.0, 0.0, 0.0]]), np.array([0.0, np.pi / 2, 0.0]), np.zeros(3))
    np.testing.assert_allclose(r, [[0.0, 0.0, -10.0]], atol=1e-12)


def test_posed_vertices_subset_cache_and_expression(head_model):
    m = head_model
    rng = np.random.default_rng(5)
    p = FitParams.neutral(m.n_identity, m.n_expression, 800.0).replace(
        identity=rng.normal(size=m.n_identity), expression=rng.uniform(0, 1, m.n_expression),
        joints=rng.normal(size=(4, 3)) * 0.1, root_rotation=rng.normal(size=3) * 0.2)
    full = posed_vertices(m, p)
    ids = np.array([0, 5, 1000, 26718, 12345])
    np.testing.assert_allclose(posed_vertices(m, p, ids), full[ids], atol=1e-5)
    # the cached identity shape is invalidated when the identity changes
    p2 = p.replace(identity=p.identity + 0.5)
    assert np.abs(posed_vertices(m, p2) - full).max() > 1.0
    np.testing.assert_allclose(posed_vertices(m, p), full, atol=0)
    # expressions are linear: one weight adds its blendshape
    j = m.expression_names.index("jawOpen")
    psi = np.zeros(m.n_expression)
    psi[j] = 0.5
    np.testing.assert_allclose(rest_shape(m, np.zeros(m.n_identity), psi),
                               m.neutral_cm + 0.5 * m.expression_basis_cm[j].astype(np.float64), atol=1e-5)
    np.testing.assert_allclose(identity_shape(m, np.zeros(m.n_identity)), m.neutral_cm, atol=0)
    with pytest.raises(ValueError, match=r"identity must have shape \(100,\)"):
        identity_shape(m, np.zeros(3))


def test_euler_quaternion_round_trips():
    for yaw, pitch, roll in ((20.0, -10.0, 5.0), (-170.0, 45.0, 90.0), (0.0, 0.0, 0.0)):
        r = matrix_from_euler_deg(yaw, pitch, roll)
        np.testing.assert_allclose(euler_deg_from_matrix(r), (yaw, pitch, roll), atol=1e-9)
        q = quaternion_from_matrix(r)
        assert q[0] >= 0 and abs(np.linalg.norm(q) - 1) < 1e-12
        np.testing.assert_allclose(matrix_from_quaternion(q), r, atol=1e-12)
    # 90 degrees about y: q = (cos 45, 0, sin 45, 0)
    np.testing.assert_allclose(quaternion_from_axis_angle(np.array([0.0, np.pi / 2, 0.0])),
                               [np.sqrt(0.5), 0.0, np.sqrt(0.5), 0.0], atol=1e-12)
    # signs: yaw > 0 moves the nose (+z) towards +x; pitch > 0 moves it down (-y)
    assert (matrix_from_euler_deg(10, 0, 0) @ [0, 0, 1])[0] > 0
    assert (matrix_from_euler_deg(0, 10, 0) @ [0, 0, 1])[1] < 0
    assert (matrix_from_euler_deg(0, 0, 10) @ [0, 1, 0])[0] < 0


def test_head_pose(head_model):
    m = head_model
    p = FitParams.neutral(m.n_identity, m.n_expression, 800.0)
    pose = head_pose(m, p)
    assert (pose.yaw_deg, pose.pitch_deg, pose.roll_deg) == (0.0, 0.0, 0.0)
    pivot = m.joints_neutral_cm[1] * np.array([10.0, -10.0, -10.0]) + [0.0, 0.0, 600.0]
    np.testing.assert_allclose(pose.position_mm, pivot, atol=1e-4)
    joints = np.zeros((4, 3))
    joints[0] = [0.0, np.radians(10.0), 0.0]  # neck and head yaw add up
    joints[1] = [0.0, np.radians(15.0), 0.0]
    pose = head_pose(m, p.replace(joints=joints))
    assert abs(pose.yaw_deg - 25.0) < 1e-9 and abs(pose.pitch_deg) < 1e-9
    # the root's rotation about the camera's vertical axis (which is the model's -y) is a negative yaw
    pose = head_pose(m, p.replace(root_rotation=np.array([0.0, np.radians(30.0), 0.0])))
    assert abs(pose.yaw_deg + 30.0) < 1e-9
    root = np.array([0.1, -0.4, 0.2])
    h = head_pose(m, p.replace(root_rotation=root))
    np.testing.assert_allclose(euler_from_axis_angle(root), (h.yaw_deg, h.pitch_deg, h.roll_deg), atol=1e-9)
    gaze = gaze_directions(m, p)
    np.testing.assert_allclose(gaze, [[0, 0, -1], [0, 0, -1]], atol=1e-12)  # towards the camera


def test_obj_round_trip(head_model, tmp_path):
    m = head_model
    p = FitParams.neutral(m.n_identity, m.n_expression, 800.0)
    v = posed_vertices(m, p)
    path = write_obj(tmp_path / "head.obj", v, m.faces, comment="test")
    mesh = parse_obj_mesh(path.read_bytes(), str(path))
    np.testing.assert_allclose(mesh.vertices, v, atol=1e-4)
    np.testing.assert_array_equal(np.stack(mesh.polygons), m.faces)
    with pytest.raises(ValueError, match=r"face indices must be in 0\.\.2"):
        write_obj(tmp_path / "bad.obj", np.zeros((3, 3)), np.array([[0, 1, 3]]))
    with pytest.raises(ValueError, match=r"vertices must be \(N, 3\)"):
        write_obj(tmp_path / "bad.obj", np.zeros((3, 2)), np.array([[0, 1, 2]]))


def test_eye_look_weights_from_joints():
    from tracker.face.pose import eye_angles_deg, eye_look_weights

    joints = np.zeros((4, 3))
    joints[2] = [0.0, np.radians(15.0), 0.0]  # eye_L turns towards +x (its ear): 15 degrees
    joints[3] = [np.radians(-30.0), 0.0, 0.0]  # eye_R: rotation about +x by -30 degrees turns +z up
    np.testing.assert_allclose(eye_angles_deg(joints), [[15.0, 0.0], [0.0, 30.0]], atol=1e-9)
    w = eye_look_weights(joints)
    assert abs(w["eyeLookOut_L"] - 0.5) < 1e-9 and w["eyeLookIn_L"] == 0.0
    assert abs(w["eyeLookUp_R"] - 1.0) < 1e-9 and w["eyeLookDown_R"] == 0.0 and w["eyeLookIn_R"] == 0.0
    joints[3] = [0.0, np.radians(15.0), 0.0]  # both eyes look to the subject's left: eye_R looks inwards
    assert abs(eye_look_weights(joints)["eyeLookIn_R"] - 0.5) < 1e-9
