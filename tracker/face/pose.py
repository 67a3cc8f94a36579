"""Rotations for outputs: quaternions, named Euler angles (yaw, pitch, roll) and the head's camera-space pose.

Named angles describe the head's rotation relative to the frontal pose (all parameters zero: the face looks
straight into the camera), written in the model's axes (x: the subject's left, y: up, z: out of the face,
towards the camera) as ``Q = R_y(yaw) R_x(pitch) R_z(roll)`` (right-handed, degrees):
- yaw > 0: the nose turns towards the subject's left (+x; the image's right in an unmirrored camera image);
- pitch > 0: the nose turns down (chin towards the chest);
- roll > 0: the top of the head tilts towards the subject's right shoulder (-x).
Quaternions are (w, x, y, z), unit, with w >= 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracker.face.forward import joint_locations, joint_transforms, rotation_matrix
from tracker.face.model import HeadModel
from tracker.types import CM_TO_MM, JOINT_NAMES, MODEL_TO_CAMERA_AXES, FitParams

_M = MODEL_TO_CAMERA_AXES


def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def matrix_from_euler_deg(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Q = R_y(yaw) R_x(pitch) R_z(roll) -> (3, 3)."""
    return _ry(np.radians(yaw_deg)) @ _rx(np.radians(pitch_deg)) @ _rz(np.radians(roll_deg))


def euler_deg_from_matrix(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) degrees of Q = R_y(yaw) R_x(pitch) R_z(roll); pitch in [-90, 90]."""
    r = np.asarray(rot, dtype=np.float64)
    pitch = np.arcsin(np.clip(-r[1, 2], -1.0, 1.0))
    if abs(r[1, 2]) < 1.0 - 1e-9:
        yaw = np.arctan2(r[0, 2], r[2, 2])
        roll = np.arctan2(r[1, 0], r[1, 1])
    else:  # gimbal lock: only yaw - roll (or yaw + roll) is defined; put it all in yaw
        yaw = np.arctan2(-r[2, 0] * np.sign(-r[1, 2]), r[0, 0])
        roll = 0.0
    return float(np.degrees(yaw)), float(np.degrees(pitch)), float(np.degrees(roll))


def quaternion_from_matrix(rot: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> (4,) unit quaternion (w, x, y, z), w >= 0 (Shepperd's method)."""
    r = np.asarray(rot, dtype=np.float64)
    t = np.trace(r)
    if t > 0:
        s = 2.0 * np.sqrt(1.0 + t)
        q = np.array([0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s])
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(max(1.0 + r[i, i] - r[j, j] - r[k, k], 1e-300))
        q = np.empty(4)
        q[0] = (r[k, j] - r[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (r[j, i] + r[i, j]) / s
        q[1 + k] = (r[k, i] + r[i, k]) / s
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


def matrix_from_quaternion(q: np.ndarray) -> np.ndarray:
    """(4,) quaternion (w, x, y, z), normalised here -> (3, 3) rotation."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def quaternion_from_axis_angle(aa: np.ndarray) -> np.ndarray:
    """(3,) axis-angle -> (4,) unit quaternion (w, x, y, z), w >= 0."""
    return quaternion_from_matrix(rotation_matrix(np.asarray(aa, dtype=np.float64)))


def relative_from_root_rotation(root_rotation: np.ndarray) -> np.ndarray:
    """Q (3, 3) of a root rotation alone (joints at rest): ``M exp(root_rotation) M`` in model axes."""
    return _M @ rotation_matrix(np.asarray(root_rotation, dtype=np.float64)) @ _M


def euler_from_axis_angle(root_rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) degrees of a root rotation (``FitParams.root_rotation``, joints at rest), in the
    convention of the module docstring. With neck/head rotations use ``head_pose``."""
    return euler_deg_from_matrix(relative_from_root_rotation(root_rotation))


@dataclass(frozen=True, eq=False)
class HeadPose:
    """The head joint's pose in the camera.

    rotation_cam: (3, 3) maps model-axis directions of the rest head to camera directions (``M`` when
    frontal). relative: (3, 3) Q, the rotation from the frontal pose in model axes (module docstring).
    position_mm: (3,) the posed head joint (the head pivot) in camera millimetres.
    """

    rotation_cam: np.ndarray
    relative: np.ndarray
    position_mm: np.ndarray
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    quaternion: np.ndarray  # (w, x, y, z) of ``relative``


def head_pose(model: HeadModel, params: FitParams) -> HeadPose:
    """The head joint's camera-space rotation and position (root, neck and head rotations composed)."""
    joints_cm = joint_locations(model, params.identity)
    g = joint_transforms(model, params.joints, joints_cm)
    head = JOINT_NAMES.index("head")
    root = rotation_matrix(np.asarray(params.root_rotation, dtype=np.float64))
    rot_cam = root @ _M @ g[head, :3, :3]
    relative = _M @ root @ _M @ g[head, :3, :3]
    pivot_cm = g[head, :3, :3] @ joints_cm[head] + g[head, :3, 3]
    position = root @ (_M @ (CM_TO_MM * pivot_cm)) + np.asarray(params.translation_mm, dtype=np.float64)
    yaw, pitch, roll = euler_deg_from_matrix(relative)
    return HeadPose(rot_cam, relative, position, yaw, pitch, roll, quaternion_from_matrix(relative))


def gaze_directions(model: HeadModel, params: FitParams) -> np.ndarray:
    """(2, 3) unit camera-space gaze directions of (eye_L, eye_R): each eye joint's global rotation applied to
    the rest gaze (model +z, out of the face), then the root transform."""
    g = joint_transforms(model, params.joints, joint_locations(model, params.identity))
    root = rotation_matrix(np.asarray(params.root_rotation, dtype=np.float64))
    out = []
    for name in ("eye_L", "eye_R"):
        d = root @ _M @ g[JOINT_NAMES.index(name), :3, :3] @ np.array([0.0, 0.0, 1.0])
        out.append(d / np.linalg.norm(d))
    return np.array(out)


#: Eye rotation (degrees, relative to the head) that maps to an ARKit-style eyeLook* weight of 1.
EYE_LOOK_FULL_DEG = 30.0


def eye_angles_deg(joints: np.ndarray) -> np.ndarray:
    """(2, 2) (yaw, pitch) in degrees of (eye_L, eye_R) relative to the head, from the eye joints' local
    axis-angle rotations (``FitParams.joints`` rows 2 and 3): the rest gaze (model +z) rotated, then
    yaw = atan2(d_x, d_z) (> 0 towards the subject's left, +x) and pitch = atan2(d_y, |(d_x, d_z)|) (> 0 up)."""
    theta = np.asarray(joints, dtype=np.float64).reshape(-1, 3)
    out = np.zeros((2, 2))
    for i, k in enumerate((JOINT_NAMES.index("eye_L"), JOINT_NAMES.index("eye_R"))):
        d = rotation_matrix(theta[k]) @ np.array([0.0, 0.0, 1.0])
        out[i] = np.degrees([np.arctan2(d[0], d[2]), np.arctan2(d[1], np.hypot(d[0], d[2]))])
    return out


def eye_look_weights(joints: np.ndarray, full_deg: float = EYE_LOOK_FULL_DEG) -> dict[str, float]:
    """ARKit-style eyeLook{In,Out,Up,Down}_{L,R} weights in [0, 1] from the eye joints (for exports: in this
    model gaze is the eye joints' and the eyeLook* blendshapes only shape the lids; docs/head_model.md).
    Out is towards the ear: +x for eye_L, -x for eye_R."""
    angles = eye_angles_deg(joints)
    out = {}
    for (yaw, pitch), side, outward in ((angles[0], "L", 1.0), (angles[1], "R", -1.0)):
        horizontal = outward * yaw / full_deg
        out[f"eyeLookOut_{side}"] = float(np.clip(horizontal, 0.0, 1.0))
        out[f"eyeLookIn_{side}"] = float(np.clip(-horizontal, 0.0, 1.0))
        out[f"eyeLookUp_{side}"] = float(np.clip(pitch / full_deg, 0.0, 1.0))
        out[f"eyeLookDown_{side}"] = float(np.clip(-pitch / full_deg, 0.0, 1.0))
    return out
