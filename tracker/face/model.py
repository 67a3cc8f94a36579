"""The head model as immutable arrays: the contract between the builder, the fitter and the renderers.

Forward model (paper Sec. 3.2; linear blend skinning as in smplx's ``lbs``), all in model space (cm):
- rest shape  T(beta, psi) = neutral + sum_i beta_i * identity_basis[i] + sum_j psi_j * expression_basis[j]
- joints      J(beta) = joints_neutral + sum_i beta_i * joints_identity_basis[i]            (4, 3)
- local rotation R_k = exp(joints[k]) about J_k; global G_k = G_parent(k) * T(J_k) R_k T(-J_k), root = I
- posed       v' = sum_k skin_weights[v, k] * G_k v
- camera (mm) x = exp(root_rotation) @ (MODEL_TO_CAMERA_AXES @ (CM_TO_MM * v')) + translation_mm
- image (px)  u = fx * x / z + cx,  v = fy * y / z + cy
Joint order is ``tracker.types.JOINT_NAMES`` (neck, head, eye_L, eye_R); ``joint_parents`` gives the tree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class LandmarkSet:
    """Named model vertices used as landmarks. ``vertex_ids``: (L,) int; ``names``/``regions``: L strings.
    ``mirror``: (L,) int, the index of each landmark's left/right mirror landmark (itself on the mid-plane),
    so a horizontally flipped image's landmarks are ``flipped[mirror]``; None when unknown."""

    name: str
    vertex_ids: np.ndarray
    names: tuple[str, ...]
    regions: tuple[str, ...]
    mirror: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.vertex_ids.shape[0])


@dataclass(frozen=True, eq=False)
class HeadModel:
    """ICT-FaceKit as arrays (float32 unless noted). N vertices, F triangles, 4 joints.

    neutral_cm: (N, 3); identity_basis_cm: (n_id, N, 3), coefficients ~ N(0, 1);
    expression_basis_cm: (53, N, 3) deltas for weights in [0, 1]; expression_names: 53 ARKit names;
    faces: (F, 3) int32 triangles; vertex_part: (N,) uint8 index into part_names;
    joint_parents: (4,) int64, -1 for the root's child; joints_neutral_cm: (4, 3);
    joints_identity_basis_cm: (n_id, 4, 3); skin_weights: (N, 4), rows sum to 1;
    eye_radius_cm: (2,) eyeball sphere radii (eye_L, eye_R) from the sphere fit;
    version: a string that changes whenever the cache format or the build procedure changes.
    ibug68_vertex_ids: (68,) int64 the iBUG 68 landmark vertices of ``vertex_indices.json`` (or None).
    """

    neutral_cm: np.ndarray
    identity_basis_cm: np.ndarray
    expression_basis_cm: np.ndarray
    expression_names: tuple[str, ...]
    faces: np.ndarray
    vertex_part: np.ndarray
    part_names: tuple[str, ...]
    joint_parents: np.ndarray
    joints_neutral_cm: np.ndarray
    joints_identity_basis_cm: np.ndarray
    skin_weights: np.ndarray
    eye_radius_cm: np.ndarray
    version: str
    ibug68_vertex_ids: np.ndarray | None = None

    @property
    def n_vertices(self) -> int:
        return int(self.neutral_cm.shape[0])

    @property
    def n_identity(self) -> int:
        return int(self.identity_basis_cm.shape[0])

    @property
    def n_expression(self) -> int:
        return int(self.expression_basis_cm.shape[0])
