"""The forward model of ``tracker.face.model`` as pure numpy: rest shape, joints, LBS, camera, projection.

Definition (the module docstring of ``tracker.face.model``; paper Sec. 3.2, LBS as in smplx's ``lbs``):
- rest shape  T(beta, psi) = neutral + sum_i beta_i * identity_basis[i] + sum_j psi_j * expression_basis[j]
- joints      J(beta) = joints_neutral + sum_i beta_i * joints_identity_basis[i]
- local       R_k = exp(theta_k) about J_k; global G_k = G_parent(k) T(J_k) R_k T(-J_k), root = identity
- posed       v' = sum_k w_vk G_k v
- camera (mm) x = exp(root_rotation) (MODEL_TO_CAMERA_AXES (CM_TO_MM v')) + translation_mm
- image (px)  u = fx x / z + cx, v = fy y / z + cy (no lens distortion: undistort observations instead)

Computation runs in float64 on the gathered vertices (all of them, or ``vertex_ids``); expression
weights that are exactly zero are skipped.
"""

from __future__ import annotations

import numpy as np

from tracker.face.model import HeadModel
from tracker.types import CM_TO_MM, MODEL_TO_CAMERA_AXES, FitParams, Intrinsics


def rotation_matrix(axis_angle: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: (..., 3) axis-angle -> (..., 3, 3) rotation matrices, exact at 0."""
    aa = np.asarray(axis_angle, dtype=np.float64)
    theta = np.linalg.norm(aa, axis=-1)[..., None, None]
    k = np.zeros(aa.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2] = -aa[..., 2], aa[..., 1]
    k[..., 1, 0], k[..., 1, 2] = aa[..., 2], -aa[..., 0]
    k[..., 2, 0], k[..., 2, 1] = -aa[..., 1], aa[..., 0]
    small = theta < 1e-8
    safe = np.where(small, 1.0, theta)
    # R = I + sin(t)/t K + (1 - cos(t))/t^2 K^2 (Taylor limits 1 and 1/2 at t = 0)
    a = np.where(small, 1.0 - theta ** 2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta ** 2 / 24.0, (1.0 - np.cos(safe)) / safe ** 2)
    return np.eye(3) + a * k + b * (k @ k)


def identity_shape(model: HeadModel, identity: np.ndarray, vertex_ids: np.ndarray | None = None) -> np.ndarray:
    """neutral + sum_i beta_i identity_basis[i] -> (N or len(ids), 3) cm, float64."""
    beta = np.asarray(identity, dtype=np.float64)
    if beta.shape != (model.n_identity,):
        raise ValueError(f"identity must have shape ({model.n_identity},), got {beta.shape}")
    if vertex_ids is None:
        neutral, basis = model.neutral_cm, model.identity_basis_cm
    else:
        neutral, basis = model.neutral_cm[vertex_ids], model.identity_basis_cm
    out = neutral.astype(np.float64)
    nz = np.flatnonzero(beta)
    if nz.size:
        basis = basis[nz] if vertex_ids is None else basis[np.ix_(nz, vertex_ids)]
        m = basis.shape[1]
        out += (beta[nz].astype(np.float32) @ basis.reshape(nz.size, m * 3)).reshape(m, 3)
    return out


# The last full-mesh identity shape: (model, identity bytes) -> (N, 3). Tracking keeps the identity fixed
# for many frames, so posed_vertices reuses it (reading the 32 MB identity basis is most of the cost).
_last_identity: tuple[object, bytes, np.ndarray] | None = None


def _cached_identity_shape(model: HeadModel, identity: np.ndarray) -> np.ndarray:
    global _last_identity
    beta = np.asarray(identity, dtype=np.float64)
    key = beta.tobytes()
    entry = _last_identity
    if entry is not None and entry[0] is model and entry[1] == key:
        return entry[2]
    shape = identity_shape(model, beta)
    shape.setflags(write=False)
    _last_identity = (model, key, shape)
    return shape


def rest_shape(model: HeadModel, identity: np.ndarray, expression: np.ndarray,
               vertex_ids: np.ndarray | None = None, identity_shape_cm: np.ndarray | None = None) -> np.ndarray:
    """T(beta, psi) (N or len(ids), 3) cm. ``identity_shape_cm``: a precomputed ``identity_shape`` for the
    same vertices (tracking keeps the identity fixed, so callers may cache it)."""
    psi = np.asarray(expression, dtype=np.float64)
    if psi.shape != (model.n_expression,):
        raise ValueError(f"expression must have shape ({model.n_expression},), got {psi.shape}")
    if identity_shape_cm is None:
        out = identity_shape(model, identity, vertex_ids)
    else:
        out = np.array(identity_shape_cm, dtype=np.float64, copy=True)
    nz = np.flatnonzero(psi)
    if nz.size:
        basis = (model.expression_basis_cm[nz] if vertex_ids is None
                 else model.expression_basis_cm[np.ix_(nz, vertex_ids)])
        m = basis.shape[1]
        out += (psi[nz].astype(np.float32) @ basis.reshape(nz.size, m * 3)).reshape(m, 3)
    return out


def joint_locations(model: HeadModel, identity: np.ndarray) -> np.ndarray:
    """J(beta) = joints_neutral + sum_i beta_i joints_identity_basis[i] -> (4, 3) cm."""
    beta = np.asarray(identity, dtype=np.float64)
    return model.joints_neutral_cm.astype(np.float64) + np.einsum(
        "i,ijk->jk", beta, model.joints_identity_basis_cm.astype(np.float64))


def joint_transforms(model: HeadModel, joints_aa: np.ndarray, joint_locs_cm: np.ndarray) -> np.ndarray:
    """Global joint transforms G_k (4, 4, 4) in model space (cm), root = identity.

    G_k = G_parent(k) T(J_k) R_k T(-J_k) with R_k = exp(theta_k); parents precede children.
    """
    theta = np.asarray(joints_aa, dtype=np.float64).reshape(-1, 3)
    n_joints = model.joint_parents.shape[0]
    if theta.shape[0] != n_joints:
        raise ValueError(f"joints must have shape ({n_joints}, 3), got {np.shape(joints_aa)}")
    rot = rotation_matrix(theta)
    out = np.zeros((n_joints, 4, 4))
    for k in range(n_joints):
        local = np.eye(4)
        local[:3, :3] = rot[k]
        local[:3, 3] = joint_locs_cm[k] - rot[k] @ joint_locs_cm[k]  # T(J) R T(-J)
        parent = int(model.joint_parents[k])
        out[k] = local if parent < 0 else out[parent] @ local
    return out


def skin(points_cm: np.ndarray, weights: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Linear blend skinning: v' = sum_k w_vk G_k v. points (M, 3), weights (M, K), transforms (K, 4, 4)."""
    blended = weights.astype(np.float64) @ transforms[:, :3, :].reshape(-1, 12)  # (M, 12)
    blended = blended.reshape(-1, 3, 4)
    return np.einsum("mij,mj->mi", blended[:, :, :3], points_cm) + blended[:, :, 3]


def model_to_camera(points_cm: np.ndarray, root_rotation: np.ndarray, translation_mm: np.ndarray) -> np.ndarray:
    """x = exp(root_rotation) (MODEL_TO_CAMERA_AXES (CM_TO_MM v)) + translation_mm: (M, 3) cm -> (M, 3) mm."""
    r = rotation_matrix(np.asarray(root_rotation, dtype=np.float64)) @ MODEL_TO_CAMERA_AXES * CM_TO_MM
    return points_cm @ r.T + np.asarray(translation_mm, dtype=np.float64)


def posed_vertices(model: HeadModel, params: FitParams, vertex_ids: np.ndarray | None = None,
                   identity_shape_cm: np.ndarray | None = None) -> np.ndarray:
    """Camera-space posed vertices in millimetres: (N, 3), or (len(vertex_ids), 3).

    ``identity_shape_cm``: optional cached ``identity_shape(model, params.identity, vertex_ids)``; for the
    full mesh the last identity's shape is reused automatically.
    """
    ids = None if vertex_ids is None else np.asarray(vertex_ids, dtype=np.int64)
    if identity_shape_cm is None and ids is None:
        identity_shape_cm = _cached_identity_shape(model, params.identity)
    rest = rest_shape(model, params.identity, params.expression, ids, identity_shape_cm)
    transforms = joint_transforms(model, params.joints, joint_locations(model, params.identity))
    weights = model.skin_weights if ids is None else model.skin_weights[ids]
    posed = skin(rest, weights, transforms)
    return model_to_camera(posed, params.root_rotation, params.translation_mm)


def project(points_mm: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Pinhole projection (..., 3) camera mm -> (..., 2) px: u = fx x / z + cx, v = fy y / z + cy."""
    p = np.asarray(points_mm, dtype=np.float64)
    z = p[..., 2]
    return np.stack([intrinsics.fx * p[..., 0] / z + intrinsics.cx,
                     intrinsics.fy * p[..., 1] / z + intrinsics.cy], axis=-1)
