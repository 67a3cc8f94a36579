"""E_intersect (paper, supplementary "E_intersect"): eyelid skin inside the eyeball spheres and lip skin
inside the convex hulls of the upper and lower teeth.

Everything is evaluated in the model's rest space T(beta, psi) (cm): the eyelids, lips and teeth are all
skinned to the head joint, so their relative positions do not change with the joint rotations, and the
eyeball spheres are invariant to the eye rotations about their centres. The terms therefore depend on
identity and expression only.

- Eyeballs: sphere of radius ``eye_radius_cm[e]`` about the eye joint J_e(beta). For each eyelid vertex x
  inside it, the residual is  r = sqrt(w) (radius - |x - c|)  (squared distance to the sphere's surface).
- Teeth: each of the upper/lower teeth is a convex hull of planes (n_j, p_j) fitted to the neutral teeth
  vertices; the hull translates with the mean displacement c(beta, psi) of its teeth vertices (a rigid
  approximation of how the teeth blendshapes move it, linear in beta and psi). For a lip vertex x,
  d_ij = -min(n_j.(x - c) + p_j, 0), D_i = min_j d_ij, residual r = sqrt(w) D_i  (supplementary Eq.).

Vertex sets, chosen deterministically from the neutral mesh and ``vertex_part``:
- eyelid vertices: skin ('Face') vertices within ``EYELID_MARGIN_CM`` outside an eyeball sphere;
- lower teeth: teeth vertices that move by more than half the maximum under ``jawOpen``; upper: the rest;
- lip vertices: skin vertices outside the teeth hulls but within ``LIP_MARGIN_CM`` of one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracker.face.model import HeadModel

EYELID_MARGIN_CM = 0.4
LIP_MARGIN_CM = 0.8
EYE_JOINTS = (2, 3)


def _part_index(model: HeadModel, *names: str) -> list[int]:
    """Indices of parts whose name (case-insensitive, an 'M_' prefix ignored) is one of ``names``."""
    want = {n.lower() for n in names}
    out = []
    for i, p in enumerate(model.part_names):
        key = p.lower()
        key = key[2:] if key.startswith("m_") else key
        if key in want:
            out.append(i)
    return out


def _mask(model: HeadModel, *names: str) -> np.ndarray:
    idx = _part_index(model, *names)
    return np.isin(model.vertex_part, idx) if idx else np.zeros(model.n_vertices, dtype=bool)


@dataclass(frozen=True, eq=False)
class _VertexSet:
    """A restricted linear rest shape: x = neutral + B_id beta + B_exp psi. ``ids`` (V,), bases (V, 3, n)."""

    ids: np.ndarray
    neutral: np.ndarray
    id_basis: np.ndarray
    exp_basis: np.ndarray

    @classmethod
    def from_model(cls, model: HeadModel, ids: np.ndarray) -> "_VertexSet":
        ids = np.asarray(ids, dtype=np.int64)
        return cls(ids, model.neutral_cm[ids].astype(np.float64),
                   np.transpose(model.identity_basis_cm[:, ids], (1, 2, 0)).astype(np.float64),
                   np.transpose(model.expression_basis_cm[:, ids], (1, 2, 0)).astype(np.float64))

    def rest(self, beta: np.ndarray, psi: np.ndarray) -> np.ndarray:
        return self.neutral + self.id_basis @ beta + self.exp_basis @ psi


@dataclass(frozen=True, eq=False)
class TeethHull:
    """Planes ``normals`` (J, 3) (outward) and ``offsets`` (J,) of a hull: inside iff n.(x - c) + p < 0
    for every plane; ``teeth`` the vertices whose mean displacement moves it; ``lips`` the guarded skin."""

    normals: np.ndarray
    offsets: np.ndarray
    teeth: _VertexSet
    lips: _VertexSet


@dataclass(frozen=True, eq=False)
class IntersectModel:
    """Precomputed vertex sets of E_intersect (see the module docstring)."""

    eyelids: tuple[_VertexSet, ...]          # per eye (eye_L, eye_R)
    eye_radius_cm: np.ndarray                # (2,)
    joints_neutral_cm: np.ndarray            # (2, 3) eye joints
    joints_identity_basis_cm: np.ndarray     # (2, 3, n_id)
    hulls: tuple[TeethHull, ...]             # upper, lower

    @classmethod
    def from_head_model(cls, model: HeadModel) -> "IntersectModel":
        from scipy.spatial import ConvexHull

        skin = _mask(model, "Face")
        if not skin.any():
            raise ValueError(f"E_intersect needs a 'Face' part; the model has {', '.join(model.part_names)}")
        neutral = model.neutral_cm.astype(np.float64)
        eyelids = []
        for e, k in enumerate(EYE_JOINTS):
            d = np.linalg.norm(neutral - model.joints_neutral_cm[k], axis=1)
            r = float(model.eye_radius_cm[e])
            eyelids.append(_VertexSet.from_model(model, np.flatnonzero(skin & (d > r) & (d < r + EYELID_MARGIN_CM))))
        hulls = []
        teeth = np.flatnonzero(_mask(model, "Teeth"))
        if teeth.size >= 8:
            names = [n.lower() for n in model.expression_names]
            if "jawopen" in names:
                move = np.linalg.norm(model.expression_basis_cm[names.index("jawopen"), teeth], axis=1)
                lower = move > 0.5 * move.max() if move.max() > 0 else np.zeros(teeth.size, dtype=bool)
            else:
                lower = np.zeros(teeth.size, dtype=bool)
            groups = [g for g in (teeth[~lower], teeth[lower]) if g.size >= 8]
            skin_ids = np.flatnonzero(skin)
            for g in groups:
                hull = ConvexHull(neutral[g])
                normals, offsets = hull.equations[:, :3], hull.equations[:, 3]
                signed = (neutral[skin_ids] @ normals.T + offsets).max(axis=1)
                lips = skin_ids[(signed > 0) & (signed < LIP_MARGIN_CM)]
                hulls.append(TeethHull(normals, offsets, _VertexSet.from_model(model, g),
                                       _VertexSet.from_model(model, lips)))
        return cls(tuple(eyelids), np.asarray(model.eye_radius_cm, dtype=np.float64),
                   model.joints_neutral_cm[list(EYE_JOINTS)].astype(np.float64),
                   np.transpose(model.joints_identity_basis_cm[:, list(EYE_JOINTS)], (1, 2, 0)).astype(np.float64),
                   tuple(hulls))

    @property
    def n_vertices(self) -> int:
        return sum(s.ids.size for s in self.eyelids) + sum(h.lips.ids.size for h in self.hulls)


def intersect_residuals(im: IntersectModel, beta: np.ndarray, psi: np.ndarray, weight: float,
                        jacobian: bool = True) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Active residuals r (R,) and their Jacobians wrt beta (R, n_id) and psi (R, n_exp).

    E_intersect = sum r^2 (supplementary: E_eyeballs + E_teeth); only penetrating vertices give residuals.
    """
    sw = np.sqrt(weight)
    rs, jb, jp = [], [], []
    for e, lids in enumerate(im.eyelids):
        if lids.ids.size == 0:
            continue
        x = lids.rest(beta, psi)
        c = im.joints_neutral_cm[e] + im.joints_identity_basis_cm[e] @ beta
        diff = x - c
        dist = np.linalg.norm(diff, axis=1)
        inside = dist < im.eye_radius_cm[e]
        if not inside.any():
            continue
        # E_eyeballs: r = radius - |x - c| for eyelid vertices inside the sphere
        rs.append(sw * (im.eye_radius_cm[e] - dist[inside]))
        if jacobian:
            nrm = diff[inside] / np.maximum(dist[inside], 1e-12)[:, None]        # (A, 3)
            jb.append(-sw * (np.einsum("ac,aci->ai", nrm, lids.id_basis[inside])
                             - nrm @ im.joints_identity_basis_cm[e]))
            jp.append(-sw * np.einsum("ac,aci->ai", nrm, lids.exp_basis[inside]))
    for hull in im.hulls:
        if hull.lips.ids.size == 0:
            continue
        x = hull.lips.rest(beta, psi)
        c_shift = (hull.teeth.id_basis @ beta + hull.teeth.exp_basis @ psi).mean(axis=0)  # (3,)
        s = (x - c_shift) @ hull.normals.T + hull.offsets                    # (V, J)
        jmax = np.argmax(s, axis=1)
        smax = s[np.arange(s.shape[0]), jmax]
        inside = smax < 0
        if not inside.any():
            continue
        # E_teeth: D_i = min_j -min(n_j.x_i + p_j, 0) = -max_j(n_j.x_i + p_j) inside the hull
        rs.append(-sw * smax[inside])
        if jacobian:
            n = hull.normals[jmax[inside]]                                    # (A, 3)
            dc_db = hull.teeth.id_basis.mean(axis=0)                          # (3, n_id)
            dc_dp = hull.teeth.exp_basis.mean(axis=0)
            jb.append(-sw * (np.einsum("ac,aci->ai", n, hull.lips.id_basis[inside]) - n @ dc_db))
            jp.append(-sw * (np.einsum("ac,aci->ai", n, hull.lips.exp_basis[inside]) - n @ dc_dp))
    n_id, n_exp = im.joints_identity_basis_cm.shape[2], im.eyelids[0].exp_basis.shape[2]
    if not rs:
        empty = np.zeros(0)
        return empty, (np.zeros((0, n_id)) if jacobian else None), (np.zeros((0, n_exp)) if jacobian else None)
    r = np.concatenate(rs)
    if not jacobian:
        return r, None, None
    return r, np.concatenate(jb), np.concatenate(jp)
