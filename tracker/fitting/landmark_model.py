"""The landmarks-only fast path of the head model: the forward model of ``tracker.face.model`` restricted
to L landmark vertices, with analytic Jacobians with respect to every parameter.

The sub-model keeps only the rows of the bases that belong to the landmark vertices ((n_id, L, 3) identity,
(n_exp, L, 3) expression, (L, 4) skin weights and the 4 joints), so evaluating it never touches the full mesh.

Forward model (``tracker/face/model.py``, paper Sec. 3.2), model space in cm, camera in mm:
    T = neutral + B_id beta + B_exp psi;  J = J0 + B_J beta
    G_k = G_parent(k) [R_k | J_k - R_k J_k];  v' = sum_k w_k G_k T
    x = R_root (10 M v') + t;  u = fx x / z + cx,  v = fy y / z + cy   (fx = f, fy = aspect * f)

Static sparsity (paper Sec. 3.3): ``expression_support[l, j]`` says whether expression j moves landmark l by
more than ``threshold_cm`` (likewise identity, and joints through the skin weights of the joint's subtree).
Basis entries below the threshold are zeroed, so the Jacobians are exactly as sparse as the support says.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from tracker.face.model import HeadModel
from tracker.fitting.rotation import left_jacobian, rodrigues, rodrigues_jacobian
from tracker.types import CM_TO_MM, MODEL_TO_CAMERA_AXES

#: 10 * M: model cm (+y up, +z out) -> camera mm axes (y down, z forward)
_MODEL_TO_CAMERA_MM = CM_TO_MM * MODEL_TO_CAMERA_AXES


@dataclass(frozen=True, eq=False)
class LandmarkModel:
    """The head model restricted to L vertices (float64). K joints, n_id identity, n_exp expression modes.

    neutral_cm: (L, 3); identity_basis_cm: (L, 3, n_id); expression_basis_cm: (L, 3, n_exp);
    skin_weights: (L, K); joints_neutral_cm: (K, 3); joints_identity_basis_cm: (K, 3, n_id);
    joint_parents: (K,) with parent < child (-1: the root);
    expression_support: (L, n_exp) bool; identity_support: (L, n_id) bool; joint_support: (L, K) bool.
    """

    vertex_ids: np.ndarray
    neutral_cm: np.ndarray
    identity_basis_cm: np.ndarray
    expression_basis_cm: np.ndarray
    skin_weights: np.ndarray
    joints_neutral_cm: np.ndarray
    joints_identity_basis_cm: np.ndarray
    joint_parents: np.ndarray
    expression_support: np.ndarray
    identity_support: np.ndarray
    joint_support: np.ndarray
    threshold_cm: float

    @classmethod
    def from_head_model(cls, model: HeadModel, vertex_ids: np.ndarray,
                        threshold_cm: float = 0.0) -> "LandmarkModel":
        """Restrict ``model`` to ``vertex_ids`` (L,). Basis rows whose displacement norm is at most
        ``threshold_cm`` for a landmark are zeroed (0 keeps the model exact)."""
        ids = np.asarray(vertex_ids, dtype=np.int64).reshape(-1)
        if ids.size == 0:
            raise ValueError("a landmark model needs at least one vertex")
        if ids.min() < 0 or ids.max() >= model.n_vertices:
            raise ValueError(f"vertex ids must be in [0, {model.n_vertices}), got [{ids.min()}, {ids.max()}]")
        parents = np.asarray(model.joint_parents, dtype=np.int64)
        if np.any(parents >= np.arange(parents.size)):
            raise ValueError(f"joint_parents must list parents before children, got {parents.tolist()}")
        id_basis = np.ascontiguousarray(np.transpose(model.identity_basis_cm[:, ids, :], (1, 2, 0)),
                                        dtype=np.float64)
        exp_basis = np.ascontiguousarray(np.transpose(model.expression_basis_cm[:, ids, :], (1, 2, 0)),
                                         dtype=np.float64)
        # paper Sec. 3.3: static sparsity analysis of each landmark, with a threshold
        exp_support = np.linalg.norm(exp_basis, axis=1) > threshold_cm
        id_support = np.linalg.norm(id_basis, axis=1) > threshold_cm
        exp_basis = exp_basis * exp_support[:, None, :]
        id_basis = id_basis * id_support[:, None, :]
        weights = np.asarray(model.skin_weights[ids], dtype=np.float64)
        k = parents.size
        subtree = np.eye(k, dtype=bool)  # subtree[a, m]: m is a or a descendant of a
        for m in range(k):
            p = parents[m]
            while p >= 0:
                subtree[p, m] = True
                p = parents[p]
        joint_support = (weights @ subtree.T.astype(np.float64)) > 1e-9
        return cls(ids, np.asarray(model.neutral_cm[ids], dtype=np.float64), id_basis, exp_basis, weights,
                   np.asarray(model.joints_neutral_cm, dtype=np.float64),
                   np.ascontiguousarray(np.transpose(model.joints_identity_basis_cm, (1, 2, 0)),
                                        dtype=np.float64),
                   parents, exp_support, id_support, joint_support, float(threshold_cm))

    def __len__(self) -> int:
        return int(self.vertex_ids.shape[0])

    @cached_property
    def subtree(self) -> np.ndarray:
        """(K, K) bool: ``[k, m]`` when joint m is k or below k."""
        return _subtree(self.joint_parents)

    @cached_property
    def subtree_weights(self) -> np.ndarray:
        """(L, K): s_lk = sum of landmark l's skin weights over the joints at or below k."""
        return self.skin_weights @ self.subtree.T.astype(np.float64)

    @cached_property
    def root_joints(self) -> np.ndarray:
        """(R,) the joints without a parent."""
        return np.flatnonzero(self.joint_parents < 0)

    @cached_property
    def expression_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """((L, m) int64, (L,) int64): the expressions each landmark depends on, padded, and their count."""
        count = self.expression_support.sum(axis=1).astype(np.int64)
        cols = np.zeros((len(self), max(int(count.max(initial=0)), 1)), dtype=np.int64)
        for l, row in enumerate(self.expression_support):
            idx = np.flatnonzero(row)
            cols[l, :idx.size] = idx
        return cols, count

    @cached_property
    def expression_basis_flat(self) -> np.ndarray:
        """(3L, n_exp) view of the expression basis for one gemv per rest shape."""
        return self.expression_basis_cm.reshape(-1, self.n_expression)

    @property
    def n_identity(self) -> int:
        return int(self.identity_basis_cm.shape[2])

    @property
    def n_expression(self) -> int:
        return int(self.expression_basis_cm.shape[2])

    @property
    def n_joints(self) -> int:
        return int(self.joint_parents.shape[0])

    def rest_identity(self, identity: np.ndarray) -> "IdentityRest":
        """The identity-dependent part of the rest shape, computed once per identity."""
        beta = np.asarray(identity, dtype=np.float64)
        return IdentityRest(beta, self.neutral_cm + self.identity_basis_cm @ beta,
                            self.joints_neutral_cm + self.joints_identity_basis_cm @ beta)


@dataclass(frozen=True, eq=False)
class IdentityRest:
    """``shape_cm`` (L, 3) = neutral + B_id beta; ``joints_cm`` (K, 3) = J0 + B_J beta."""

    identity: np.ndarray
    shape_cm: np.ndarray
    joints_cm: np.ndarray


@dataclass(frozen=True, eq=False)
class Skeleton:
    """Posed joints. ``a``: (K, 3, 3) and ``b``: (K, 3) global affine maps G_k x = a_k x + b_k;
    ``da``: (K, 3K, 3, 3) and ``db``: (K, 3K, 3) their derivatives (``[m, p]``: joint m, rotation parameter
    p = 3 k + j); ``db_djoint``: (K, K, 3, 3) derivative of b_m wrt joint position J_k (``[k, m]``)."""

    a: np.ndarray
    b: np.ndarray
    da: np.ndarray
    db: np.ndarray
    db_djoint: np.ndarray


def _subtree(parents: np.ndarray) -> np.ndarray:
    """(K, K) bool: ``[a, m]`` is True when m is a or a descendant of a."""
    k_count = parents.shape[0]
    sub = np.zeros((k_count, k_count), dtype=bool)
    for m in range(k_count):
        a = m
        while a >= 0:
            sub[a, m] = True
            a = parents[a]
    return sub


def pose_skeleton(joints_cm: np.ndarray, rotations: np.ndarray, parents: np.ndarray) -> Skeleton:
    """Forward kinematics with derivatives. ``joints_cm``: (K, 3) rest joint positions; ``rotations``: (K, 3).

    G_k = G_parent(k) L_k with L_k = [R_k | J_k - R_k J_k]; for m in the subtree of k,
    dG_m/dtheta_kj = G_parent(k) dL_kj G_k^-1 G_m and db_m/dJ_k = A_parent(k) (I - R_k).
    """
    k_count = parents.shape[0]
    g = np.zeros((k_count, 4, 4))
    g[:, 3, 3] = 1.0
    parent_g = np.zeros((k_count, 4, 4))
    local_d = np.zeros((k_count, 3, 4, 4))
    rot = np.empty((k_count, 3, 3))
    for k in range(k_count):
        r = rodrigues(rotations[k])
        dr = rodrigues_jacobian(rotations[k], r)
        rot[k] = r
        loc = np.eye(4)
        loc[:3, :3] = r
        loc[:3, 3] = joints_cm[k] - r @ joints_cm[k]
        local_d[k, :, :3, :3] = dr
        local_d[k, :, :3, 3] = -dr @ joints_cm[k]
        parent_g[k] = g[parents[k]] if parents[k] >= 0 else np.eye(4)
        g[k] = parent_g[k] @ loc
    # G_k^-1 for rigid G: [R^T | -R^T t]
    g_inv = np.zeros_like(g)
    g_inv[:, :3, :3] = np.transpose(g[:, :3, :3], (0, 2, 1))
    g_inv[:, :3, 3] = -np.einsum("kba,kb->ka", g[:, :3, :3], g[:, :3, 3])
    g_inv[:, 3, 3] = 1.0
    subtree = _subtree(parents)
    # dG[m, k, j] = P_k dL_kj G_k^-1 G_m  (zero unless m in subtree(k))
    left = (parent_g[:, None] @ local_d)[:, :, :3, :]                 # (K, 3, 3, 4)
    right = g_inv[:, None] @ g[None, :]                                # (K, K, 4, 4)  [k, m]
    dg = np.einsum("kjab,kmbc->mkjac", left, right) * subtree.T[:, :, None, None, None]
    dg = dg.reshape(k_count, 3 * k_count, 3, 4)
    db_dj = np.einsum("kab,kbc->kac", parent_g[:, :3, :3], _EYE3 - rot)  # (K, 3, 3)
    db_djoint = db_dj[:, None] * subtree[:, :, None, None]               # (K, K, 3, 3)
    return Skeleton(g[:, :3, :3].copy(), g[:, :3, 3].copy(), np.ascontiguousarray(dg[..., :3]),
                    np.ascontiguousarray(dg[..., 3]), db_djoint)


_EYE3 = np.eye(3)
_ZERO3 = np.zeros(3)


@dataclass(frozen=True)
class Camera:
    """Pinhole with ``fx = focal_px``, ``fy = aspect * focal_px``, principal point (cx, cy) in px."""

    focal_px: float
    cx: float
    cy: float
    aspect: float = 1.0


@dataclass(frozen=True, eq=False)
class LandmarkEval:
    """``uv_px``: (L, 2); ``x_mm``: (L, 3) camera space; Jacobians of uv (None when not asked for):
    ``d_expression`` (L, 2, n_exp), ``d_root`` (L, 2, 3), ``d_translation`` (L, 2, 3),
    ``d_joints`` (L, 2, 3K) (views into ``frame_jac`` (L, 2, n_exp + 6 + 3K)), ``d_identity`` (L, 2, n_id),
    ``d_focal`` (L, 2)."""

    uv_px: np.ndarray
    x_mm: np.ndarray
    frame_jac: np.ndarray | None = None
    d_identity: np.ndarray | None = None
    d_focal: np.ndarray | None = None
    n_exp: int = 0

    def _block(self, a: int, b: int | None) -> np.ndarray | None:
        return None if self.frame_jac is None else self.frame_jac[:, :, a:b]

    @property
    def d_expression(self) -> np.ndarray | None:
        return self._block(0, self.n_exp)

    @property
    def d_root(self) -> np.ndarray | None:
        return self._block(self.n_exp, self.n_exp + 3)

    @property
    def d_translation(self) -> np.ndarray | None:
        return self._block(self.n_exp + 3, self.n_exp + 6)

    @property
    def d_joints(self) -> np.ndarray | None:
        return self._block(self.n_exp + 6, None)

    def frame_jacobian(self) -> np.ndarray:
        """(L, 2, n_exp + 6 + 3K): the per-frame block in the order expression, root, translation, joints."""
        return self.frame_jac


def _cross_rows(p: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Row-wise p x z for p (..., 2, 3) and z (..., 3): the rows of p [z]x."""
    z = z[..., None, :]
    out = np.empty(np.broadcast_shapes(p.shape, z.shape))
    out[..., 0] = p[..., 1] * z[..., 2] - p[..., 2] * z[..., 1]
    out[..., 1] = p[..., 2] * z[..., 0] - p[..., 0] * z[..., 2]
    out[..., 2] = p[..., 0] * z[..., 1] - p[..., 1] * z[..., 0]
    return out


def forward_kinematics(joints_cm: np.ndarray, rotations: np.ndarray,
                       parents: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Global affine maps G_k x = a_k x + b_k of the joints: (a (K, 3, 3), b (K, 3), local R_k list)."""
    k_count = parents.shape[0]
    a = np.empty((k_count, 3, 3))
    b = np.empty((k_count, 3))
    rots = []
    for k in range(k_count):
        r = rodrigues(rotations[k])
        rots.append(r)
        loc_t = joints_cm[k] - r @ joints_cm[k]
        p = parents[k]
        if p < 0:
            a[k], b[k] = r, loc_t
        else:
            a[k] = a[p] @ r
            b[k] = a[p] @ loc_t + b[p]
    return a, b, rots


def evaluate(lm: LandmarkModel, rest: IdentityRest, expression: np.ndarray, root_rotation: np.ndarray,
             translation_mm: np.ndarray, joints: np.ndarray, camera: Camera, *, jacobian: bool = True,
             jac_identity: bool = False, jac_focal: bool = False) -> LandmarkEval:
    """Posed landmarks in camera space (mm) and projected (px), with analytic Jacobians.

    rest: from ``lm.rest_identity(beta)``; expression: (n_exp,); root_rotation, translation_mm: (3,);
    joints: (K, 3) axis-angle.

    Everything is computed in camera space: with C = 10 R0 M (model cm -> camera mm, a scaled rotation),
    each joint's map is C_m = C A_m, d_m = C b_m, so x = sum_m w_m (C_m T + d_m) + t (Sec. 3.2, Eq. 1's
    linear blend skinning). Rotation derivatives use the left Jacobian of SO(3): perturbing joint k by
    delta rotates everything below it about the joint's camera position j_k, so
        d x / d theta_k = -[u_k]x R'_k J_l(theta_k),   u_k = S_k - s_k j_k,   R'_k = R0 M A_parent(k)
    with S_k = sum_{m below k} w_m (C_m T + d_m) and s_k = sum_{m below k} w_m (both per landmark); for the
    root rotation u = x - t and R' = I. The pinhole derivative P = d(u, v)/dx has rows (fx/z, 0, -fx x/z^2)
    and (0, fy/z, -fy y/z^2), so the rows of P [u]x are written out component-wise.
    """
    psi = np.asarray(expression, dtype=np.float64)
    theta = np.asarray(joints, dtype=np.float64).reshape(lm.n_joints, 3)
    w = lm.skin_weights
    n, k_count = w.shape
    n_exp = lm.n_expression
    parents = lm.joint_parents
    # rest shape T(beta, psi) = neutral + B_id beta + B_exp psi   (one gemv over the (3L, n_exp) basis)
    t_rest = rest.shape_cm + (lm.expression_basis_flat @ psi).reshape(n, 3)     # (L, 3)
    a, b, rots = forward_kinematics(rest.joints_cm, theta, parents)
    r0 = rodrigues(root_rotation)
    cam = r0 @ _MODEL_TO_CAMERA_MM                                               # C = 10 R0 M (3, 3)
    c_m = cam @ a                                                                # (K, 3, 3) C A_m
    d_m = b @ cam.T                                                              # (K, 3)    C b_m
    # linear blend skinning in camera space: w_m (C_m T + d_m), one gemm for all joints
    y = (t_rest @ c_m.transpose(2, 0, 1).reshape(3, 3 * k_count)).reshape(n, k_count, 3)
    y += d_m
    y *= w[:, :, None]                                                           # (L, K, 3)
    roots = lm.root_joints
    if jacobian:
        # subtree sums S_k (children after parents, so accumulate from the last joint up)
        for k in range(k_count - 1, -1, -1):
            if parents[k] >= 0:
                y[:, parents[k]] += y[:, k]
        x_rel = y[:, roots[0]].copy() if roots.size == 1 else y[:, roots].sum(axis=1)
    else:
        x_rel = y.sum(axis=1)
    x = x_rel + np.asarray(translation_mm, dtype=np.float64)
    fx = float(camera.focal_px)
    fy = fx * camera.aspect
    inv_z = 1.0 / x[:, 2]
    xn, yn = x[:, 0] * inv_z, x[:, 1] * inv_z
    uv = np.empty((n, 2))
    np.multiply(xn, fx, out=uv[:, 0])
    uv[:, 0] += camera.cx
    np.multiply(yn, fy, out=uv[:, 1])
    uv[:, 1] += camera.cy
    if not jacobian:
        return LandmarkEval(uv, x)
    # P = d(u, v)/dx: rows (pa, 0, pc) and (0, pb, pd)
    pa = fx * inv_z
    pb = fy * inv_z
    pc = -xn * pa
    pd = -yn * pb
    jac = np.empty((n, 2, n_exp + 6 + 3 * k_count))
    # d uv / d psi = P C_blend B_exp with C_blend = sum_m w_m C_m (L, 3, 3)
    cb = (w @ c_m.reshape(k_count, 9)).reshape(n, 3, 3)
    q = np.empty((n, 2, 3))
    np.multiply(cb[:, 0], pa[:, None], out=q[:, 0])
    q[:, 0] += cb[:, 2] * pc[:, None]
    np.multiply(cb[:, 1], pb[:, None], out=q[:, 1])
    q[:, 1] += cb[:, 2] * pd[:, None]
    np.matmul(q, lm.expression_basis_cm, out=jac[:, :, :n_exp])
    # d uv / d t = P
    jt = jac[:, :, n_exp + 3:n_exp + 6]
    jt[:, 0, 0] = pa
    jt[:, 0, 1] = 0.0
    jt[:, 0, 2] = pc
    jt[:, 1, 0] = 0.0
    jt[:, 1, 1] = pb
    jt[:, 1, 2] = pd
    # lever arms u (R, L, 3) of the root (R = 0) and the joints (R = 1 + k)
    a_par = np.stack([a[p] if p >= 0 else _EYE3 for p in parents])               # (K, 3, 3)
    b_par = np.stack([b[p] if p >= 0 else _ZERO3 for p in parents])              # (K, 3)
    joint_cam = (np.einsum("kab,kb->ka", a_par, rest.joints_cm) + b_par) @ cam.T  # (K, 3) C G_par(k) J_k
    u = np.empty((k_count + 1, n, 3))
    u[0] = x_rel
    np.subtract(y.transpose(1, 0, 2), lm.subtree_weights.T[:, :, None] * joint_cam[:, None, :], out=u[1:])
    # rows of P [u]x: (pa, 0, pc) x u and (0, pb, pd) x u
    ux, uy, uz = u[..., 0], u[..., 1], u[..., 2]
    cr = np.empty((k_count + 1, n, 2, 3))
    np.multiply(pc, uy, out=cr[:, :, 0, 0])
    np.negative(cr[:, :, 0, 0], out=cr[:, :, 0, 0])
    cr[:, :, 0, 1] = pc * ux - pa * uz
    np.multiply(pa, uy, out=cr[:, :, 0, 2])
    cr[:, :, 1, 0] = pb * uz - pd * uy
    np.multiply(pd, ux, out=cr[:, :, 1, 1])
    np.multiply(pb, ux, out=cr[:, :, 1, 2])
    np.negative(cr[:, :, 1, 2], out=cr[:, :, 1, 2])
    # -R'_r J_l(theta_r) per rotation r: the root's R' is I, joint k's is R0 M A_parent(k) = C A_par / 10
    rot_maps = np.empty((k_count + 1, 3, 3))
    rot_maps[0] = -left_jacobian(root_rotation)
    for k in range(k_count):
        rot_maps[k + 1] = (cam @ a_par[k]) @ left_jacobian(theta[k]) * (-1.0 / CM_TO_MM)
    dr = (cr.reshape(k_count + 1, 2 * n, 3) @ rot_maps).reshape(k_count + 1, n, 2, 3)
    jac[:, :, n_exp:n_exp + 3] = dr[0]
    jac[:, :, n_exp + 6:].reshape(n, 2, k_count, 3)[...] = dr[1:].transpose(1, 2, 0, 3)
    d_identity = None
    if jac_identity:
        # T depends on beta directly; b_m depends on the joint positions J(beta):
        # d b_m / d J_k = A_parent(k) (I - R_k) for k at or above m
        c = np.stack([a_par[k] @ (_EYE3 - rots[k]) for k in range(k_count)])            # (K, 3, 3)
        cbeta = np.einsum("kab,kbi->kai", c, lm.joints_identity_basis_cm)               # (K, 3, n_id)
        a_blend = (w @ a.reshape(k_count, 9)).reshape(n, 3, 3)              # (L, 3, 3)
        dv_dbeta = a_blend @ lm.identity_basis_cm + np.einsum("lk,kai->lai", lm.subtree_weights, cbeta)
        p_cam = np.zeros((n, 2, 3))
        p_cam[:, 0, 0], p_cam[:, 0, 2], p_cam[:, 1, 1], p_cam[:, 1, 2] = pa, pc, pb, pd
        d_identity = (p_cam.reshape(2 * n, 3) @ cam).reshape(n, 2, 3) @ dv_dbeta
    d_focal = np.stack([xn, camera.aspect * yn], axis=1) if jac_focal else None
    return LandmarkEval(uv, x, jac, d_identity, d_focal, n_exp)


def evaluate_compiled(lm: LandmarkModel, rest: IdentityRest, expression: np.ndarray, root_rotation: np.ndarray,
                      translation_mm: np.ndarray, joints: np.ndarray, camera: Camera, *,
                      jacobian: bool = True) -> LandmarkEval:
    """:func:`evaluate` without the identity and focal Jacobians, by the compiled kernel
    (:func:`tracker.fitting.kernels.evaluate_frame`): the tracking hot path. Same outputs up to rounding."""
    from tracker.fitting.kernels import evaluate_frame

    n, k_count = lm.skin_weights.shape
    n_exp = lm.n_expression
    cols, count = lm.expression_columns
    uv = np.empty((n, 2))
    x_mm = np.empty((n, 3))
    jac = np.empty((n, 2, n_exp + 6 + 3 * k_count)) if jacobian else _NO_JAC
    fx = float(camera.focal_px)
    evaluate_frame(np.asarray(expression, dtype=np.float64), np.asarray(root_rotation, dtype=np.float64),
                   np.asarray(translation_mm, dtype=np.float64),
                   np.asarray(joints, dtype=np.float64).reshape(k_count, 3), rest.shape_cm, rest.joints_cm,
                   lm.expression_basis_cm, cols, count, lm.skin_weights, lm.subtree_weights, lm.joint_parents,
                   _MODEL_TO_CAMERA_MM, fx, fx * camera.aspect, float(camera.cx), float(camera.cy), bool(jacobian),
                   uv, x_mm, jac)
    return LandmarkEval(uv, x_mm, jac if jacobian else None, None, None, n_exp)


_NO_JAC = np.empty((0, 2, 0))


def posed_points_cm(lm: LandmarkModel, rest: IdentityRest, expression: np.ndarray,
                    joints: np.ndarray) -> np.ndarray:
    """(L, 3) posed model-space points v' (cm) before the root transform."""
    t_rest = rest.shape_cm + lm.expression_basis_cm @ np.asarray(expression, dtype=np.float64)
    sk = pose_skeleton(rest.joints_cm, np.asarray(joints, dtype=np.float64).reshape(lm.n_joints, 3),
                       lm.joint_parents)
    a_blend = (lm.skin_weights @ sk.a.reshape(lm.n_joints, 9)).reshape(-1, 3, 3)
    return np.einsum("lab,lb->la", a_blend, t_rest) + lm.skin_weights @ sk.b
