"""E_intersect (paper, supplementary "E_intersect"): eyelid skin inside the eyeball spheres and lip skin
inside the convex hulls of the upper and lower teeth.

Everything is evaluated in the model's rest space T(beta, psi) (cm): the eyelids, lips and teeth are all
skinned to the head joint, so their relative positions do not change with the joint rotations, and the
eyeball spheres are invariant to the eye rotations about their centres. The terms therefore depend on
identity and expression only.

- Eyeballs: sphere of radius ``eye_radius_cm[e]`` about the eye joint J_e(beta). For each eyelid vertex x
  inside it, the residual is  r = sqrt(w) (radius - |x - c|)  (squared distance to the sphere's surface).
- Teeth: each of the upper/lower teeth is a convex hull of J = ``HULL_PLANES`` planes (n_j, p_j): the
  tightest planes with fixed outward normals (a Fibonacci sphere of directions) that bound the neutral teeth
  vertices (a k-DOP, which keeps J small where the exact hull has hundreds of faces); the hull translates
  with the mean displacement c(beta, psi) of its teeth vertices (a rigid
  approximation of how the teeth blendshapes move it, linear in beta and psi). For a lip vertex x,
  d_ij = -min(n_j.(x - c) + p_j, 0), D_i = min_j d_ij, residual r = sqrt(w) D_i  (supplementary Eq.).
- ``tolerance_cm`` (``FitOptions.intersect_tolerance_cm``) shrinks the spheres and hulls: only deeper
  penetration is penalised.

Vertex sets, chosen deterministically from the neutral mesh and ``vertex_part``:
- eyelid vertices: skin ('Face') vertices within ``EYELID_MARGIN_CM`` outside an eyeball sphere;
- lower teeth: teeth vertices that move by more than half the maximum under ``jawOpen``; upper: the rest;
- lip vertices: skin vertices outside the teeth hulls but within ``LIP_MARGIN_CM`` of one;
- of these, only the vertices that stay outside under every single basis shape of the model on its own
  (each identity mode at -2 and +2 sigma, each expression at 1) are guarded. ICT-FaceKit's own blendshapes
  (mouthRollLower, mouthSmile, eyeLookDown, ...) move some skin into the sphere fitted to the sclera or the
  teeth hull, so penalising those vertices would fight the model instead of preventing artefacts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracker.face.model import HeadModel

HULL_PLANES = 48
BOUND_PLANES = 4
EYELID_MARGIN_CM = 0.4
LIP_MARGIN_CM = 0.4
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


def _single_shape_extremes(vs: "_VertexSet", centre_id: np.ndarray,
                           centre_exp: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions (V, C, 3) and centre shifts (C, 3) of ``vs`` under each single basis shape on its own:
    identity mode i at -2 and +2 (``centre_id`` (3, n_id) moves the centre) and expression j at 1
    (``centre_exp`` (3, n_exp), or none)."""
    n_exp = vs.exp_basis.shape[2]
    disp = np.concatenate([-2.0 * vs.id_basis, 2.0 * vs.id_basis, vs.exp_basis], axis=2)     # (V, 3, C)
    c_exp = np.zeros((3, n_exp)) if centre_exp is None else centre_exp
    shift = np.concatenate([-2.0 * centre_id, 2.0 * centre_id, c_exp], axis=1).T           # (C, 3)
    x = vs.neutral[:, None, :] + np.transpose(disp, (0, 2, 1))
    x = np.concatenate([vs.neutral[:, None, :], x], axis=1)
    shift = np.concatenate([np.zeros((1, 3)), shift], axis=0)
    return x, shift


def fibonacci_directions(n: int) -> np.ndarray:
    """(n, 3) unit vectors spread evenly over the sphere (deterministic)."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    r = np.sqrt(1.0 - z * z)
    phi = np.pi * (3.0 - np.sqrt(5.0)) * i
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def _kdop(points: np.ndarray, n_planes: int) -> tuple[np.ndarray, np.ndarray]:
    """Planes n.x + p <= 0 containing ``points`` (M, 3) with normals from :func:`fibonacci_directions`."""
    normals = fibonacci_directions(n_planes)
    offsets = -(points @ normals.T).max(axis=0)
    return normals, offsets


@dataclass(frozen=True, eq=False)
class _VertexSet:
    """A restricted linear rest shape: x = neutral + B_id beta + B_exp psi. ``ids`` (V,), bases (V, 3, n)."""

    ids: np.ndarray
    neutral: np.ndarray
    id_basis: np.ndarray
    exp_basis: np.ndarray
    fixed: np.ndarray | None = None   # neutral + B_id beta for the identity this set was pruned for

    @classmethod
    def from_model(cls, model: HeadModel, ids: np.ndarray) -> "_VertexSet":
        ids = np.asarray(ids, dtype=np.int64)
        return cls(ids, model.neutral_cm[ids].astype(np.float64),
                   np.transpose(model.identity_basis_cm[:, ids], (1, 2, 0)).astype(np.float64),
                   np.transpose(model.expression_basis_cm[:, ids], (1, 2, 0)).astype(np.float64))

    def subset(self, keep: np.ndarray, beta: np.ndarray | None = None) -> "_VertexSet":
        """The vertices ``keep``; with ``beta``, the identity is folded in (then ``rest`` ignores beta)."""
        out = _VertexSet(self.ids[keep], self.neutral[keep], self.id_basis[keep],
                         np.ascontiguousarray(self.exp_basis[keep]))
        if beta is not None:
            out = _VertexSet(out.ids, out.neutral, out.id_basis, out.exp_basis, out.neutral + out.id_basis @ beta)
        return out

    def rest(self, beta: np.ndarray, psi: np.ndarray) -> np.ndarray:
        n = self.ids.shape[0]
        delta = (self.exp_basis.reshape(n * 3, self.exp_basis.shape[2]) @ psi).reshape(n, 3)
        if self.fixed is not None:
            return self.fixed + delta
        return self.neutral + self.id_basis @ beta + delta


@dataclass(frozen=True, eq=False)
class TeethHull:
    """Planes ``normals`` (J, 3) (outward) and ``offsets`` (J,) of a hull: inside iff n.(x - c) + p < 0
    for every plane; the hull moves by c = shift_id beta + shift_exp psi, the mean displacement of its teeth
    vertices (``shift_id`` (3, n_id), ``shift_exp`` (3, n_exp)); ``lips`` the guarded skin vertices."""

    normals: np.ndarray
    offsets: np.ndarray
    shift_id: np.ndarray
    shift_exp: np.ndarray
    lips: _VertexSet


@dataclass(frozen=True, eq=False)
class IntersectModel:
    """Precomputed vertex sets of E_intersect (see the module docstring)."""

    eyelids: tuple[_VertexSet, ...]          # per eye (eye_L, eye_R)
    eye_radius_cm: np.ndarray                # (2,)
    joints_neutral_cm: np.ndarray            # (2, 3) eye joints
    joints_identity_basis_cm: np.ndarray     # (2, 3, n_id)
    hulls: tuple[TeethHull, ...]             # upper, lower
    tolerance_cm: float = 0.0                # penetration allowed before the penalty starts

    @classmethod
    def from_head_model(cls, model: HeadModel, tolerance_cm: float = 0.0) -> "IntersectModel":
        """The vertex sets of ``model``; ``tolerance_cm``: depth tolerated (sphere radius and hull planes
        shrunk by it)."""
        skin = _mask(model, "Face")
        if not skin.any():
            raise ValueError(f"E_intersect needs a 'Face' part; the model has {', '.join(model.part_names)}")
        neutral = model.neutral_cm.astype(np.float64)
        eye_c = model.joints_neutral_cm[list(EYE_JOINTS)].astype(np.float64)
        eye_cb = np.transpose(model.joints_identity_basis_cm[:, list(EYE_JOINTS)], (1, 2, 0)).astype(np.float64)
        eyelids = []
        for e, k in enumerate(EYE_JOINTS):
            d = np.linalg.norm(neutral - eye_c[e], axis=1)
            r = float(model.eye_radius_cm[e])
            cand = _VertexSet.from_model(model, np.flatnonzero(skin & (d > r) & (d < r + EYELID_MARGIN_CM)))
            # keep the vertices that no single basis shape pushes inside (see the module docstring)
            x, c_shift = _single_shape_extremes(cand, eye_cb[e])
            dist = np.linalg.norm(x - (eye_c[e] + c_shift)[None], axis=2)    # (V, C)
            eyelids.append(cand.subset((dist >= r).all(axis=1)))
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
                normals, offsets = _kdop(neutral[g], HULL_PLANES)
                signed = (neutral[skin_ids] @ normals.T + offsets).max(axis=1)
                cand = _VertexSet.from_model(model, skin_ids[(signed > 0) & (signed < LIP_MARGIN_CM)])
                teeth_set = _VertexSet.from_model(model, g)
                shift_id, shift_exp = teeth_set.id_basis.mean(axis=0), teeth_set.exp_basis.mean(axis=0)
                x, c_shift = _single_shape_extremes(cand, shift_id, shift_exp)
                s = np.einsum("vca,ja->vcj", x - c_shift[None], normals) + offsets   # (V, C, J)
                keep = (s.max(axis=2) >= 0).all(axis=1)
                hulls.append(TeethHull(normals, offsets, shift_id, shift_exp, cand.subset(keep)))
        return cls(tuple(eyelids), np.asarray(model.eye_radius_cm, dtype=np.float64), eye_c, eye_cb, tuple(hulls),
                   float(tolerance_cm))

    def for_identity(self, beta: np.ndarray) -> "IntersectModel":
        """The same term with only the vertices that can penetrate for this identity and some psi in
        [0, 1]^n_exp (exact bounds, so the energy is unchanged): |x - c| >= n.(x - c) for the unit
        direction n at psi = 0, and max_j(n_j.(x - c) + p_j) >= n_j*.(x - c) + p_j* for the plane j* that
        is the maximum at psi = 0; both are linear in psi, so their minimum over the box is a sum of
        negative parts. Tracking uses this (identity fixed) to skip most of the candidate vertices.
        The result must only be evaluated with this ``beta`` (its identity is folded in)."""
        beta = np.asarray(beta, dtype=np.float64)
        eyelids = []
        for e, lids in enumerate(self.eyelids):
            x = lids.neutral + lids.id_basis @ beta
            c = self.joints_neutral_cm[e] + self.joints_identity_basis_cm[e] @ beta
            d = x - c
            dist = np.linalg.norm(d, axis=1)
            n = d / np.maximum(dist, 1e-12)[:, None]
            lower = np.einsum("vc,vcj->vj", n, lids.exp_basis)
            bound = dist + np.minimum(lower, 0.0).sum(axis=1)
            eyelids.append(lids.subset(bound < self.eye_radius_cm[e] - self.tolerance_cm, beta))
        hulls = []
        for h in self.hulls:
            lips = h.lips
            x = lips.neutral + lips.id_basis @ beta - h.shift_id @ beta
            s = x @ h.normals.T + h.offsets
            j = np.argmax(s, axis=1)
            n = h.normals[j]
            move = np.einsum("vc,vcj->vj", n, lips.exp_basis) - n @ h.shift_exp
            bound = s[np.arange(len(j)), j] + np.minimum(move, 0.0).sum(axis=1)
            hulls.append(TeethHull(h.normals, h.offsets, h.shift_id, h.shift_exp,
                                   lips.subset(bound < -self.tolerance_cm, beta)))
        return IntersectModel(tuple(eyelids), self.eye_radius_cm, self.joints_neutral_cm,
                              self.joints_identity_basis_cm, tuple(hulls), self.tolerance_cm)

    @property
    def n_vertices(self) -> int:
        return sum(s.ids.size for s in self.eyelids) + sum(h.lips.ids.size for h in self.hulls)


def intersect_residuals(im: IntersectModel, beta: np.ndarray, psi: np.ndarray, weight: float,
                        jacobian: bool = True, jac_identity: bool = True
                        ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Active residuals r (R,) and their Jacobians wrt beta (R, n_id) (None unless ``jac_identity``) and
    psi (R, n_exp).

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
        radius = im.eye_radius_cm[e] - im.tolerance_cm
        inside = dist < radius
        if not inside.any():
            continue
        # E_eyeballs: r = radius - |x - c| for eyelid vertices inside the sphere
        rs.append(sw * (radius - dist[inside]))
        if jacobian:
            nrm = diff[inside] / np.maximum(dist[inside], 1e-12)[:, None]        # (A, 3)
            if jac_identity:
                jb.append(-sw * (np.einsum("ac,aci->ai", nrm, lids.id_basis[inside])
                                 - nrm @ im.joints_identity_basis_cm[e]))
            jp.append(-sw * np.einsum("ac,aci->ai", nrm, lids.exp_basis[inside]))
    for hull in im.hulls:
        if hull.lips.ids.size == 0:
            continue
        x = hull.lips.rest(beta, psi)
        c_shift = hull.shift_id @ beta + hull.shift_exp @ psi                 # (3,)
        s = (x - c_shift) @ hull.normals.T + hull.offsets + im.tolerance_cm  # (V, J), planes shrunk
        jmax = np.argmax(s, axis=1)
        smax = s[np.arange(s.shape[0]), jmax]
        inside = smax < 0
        if not inside.any():
            continue
        # E_teeth: D_i = min_j -min(n_j.x_i + p_j, 0) = -max_j(n_j.x_i + p_j) inside the hull
        rs.append(-sw * smax[inside])
        if jacobian:
            n = hull.normals[jmax[inside]]                                    # (A, 3)
            dc_db, dc_dp = hull.shift_id, hull.shift_exp
            if jac_identity:
                jb.append(-sw * (np.einsum("ac,aci->ai", n, hull.lips.id_basis[inside]) - n @ dc_db))
            jp.append(-sw * (np.einsum("ac,aci->ai", n, hull.lips.exp_basis[inside]) - n @ dc_dp))
    n_id, n_exp = im.joints_identity_basis_cm.shape[2], im.eyelids[0].exp_basis.shape[2]
    if not rs:
        empty = np.zeros(0)
        return (empty, np.zeros((0, n_id)) if jacobian and jac_identity else None,
                np.zeros((0, n_exp)) if jacobian else None)
    r = np.concatenate(rs)
    if not jacobian:
        return r, None, None
    return r, np.concatenate(jb) if jac_identity else None, np.concatenate(jp)


@dataclass(frozen=True, eq=False)
class PackedIntersect:
    """E_intersect for one fixed identity with all candidate vertices in one array (the tracking fast path;
    same residuals as :func:`intersect_residuals`, in the order eyelids of both eyes, then lips of both hulls).

    rest_cm: (V, 3) rest positions at psi = 0; exp_basis: (V, 3, n_exp); the first ``n_eye`` vertices are
    eyelids with sphere centres ``centre_cm`` (n_eye, 3) and radii ``radius_cm`` (n_eye,); the others are lips
    with hull ``hull_index`` (V - n_eye,) into ``offsets`` (H, J) and ``shift_exp`` (H, 3, n_exp);
    ``normals`` (J, 3) are shared by the hulls (the same k-DOP directions); radii and offsets already include
    the tolerance; ``lip_plane`` (V - n_eye,): each lip
    vertex's nearest plane at psi = 0.

    Cheap bound (tracking evaluates this term every iteration, and it is almost never active): a vertex can
    only penetrate where ``bound_offset + bound_gain @ psi < 0`` ((V,) and (V, n_exp)), a lower bound on its
    margin that is linear in psi. Eyelids: |x - c| >= n0.(x - c) = |x0 - c| + n0.(B psi) for the unit
    direction n0 at psi = 0, so inside (|x - c| < radius) needs |x0 - c| - radius + n0.(B psi) < 0.
    Lips: inside the hull needs every plane negative, and each plane's value n_j.(x0 - c0) + p_j +
    n_j.((B - S_h) psi) is exactly linear in psi: the ``BOUND_PLANES`` planes nearest at psi = 0 give
    BOUND_PLANES rows per lip vertex, all of which must be negative. One gemv then tells which vertices need
    the exact test (usually none)."""

    rest_cm: np.ndarray
    exp_basis: np.ndarray
    n_eye: int
    centre_cm: np.ndarray
    radius_cm: np.ndarray
    hull_index: np.ndarray
    normals: np.ndarray
    offsets: np.ndarray
    shift_exp: np.ndarray
    lip_plane: np.ndarray
    bound_offset: np.ndarray
    bound_gain: np.ndarray

    @classmethod
    def from_model(cls, im: IntersectModel, beta: np.ndarray) -> "PackedIntersect":
        beta = np.asarray(beta, dtype=np.float64)
        pruned = im.for_identity(beta)
        rests, bases, centres, radii = [], [], [], []
        for e, lids in enumerate(pruned.eyelids):
            rests.append(lids.rest(beta, np.zeros(lids.exp_basis.shape[2])))
            bases.append(lids.exp_basis)
            c = im.joints_neutral_cm[e] + im.joints_identity_basis_cm[e] @ beta
            centres.append(np.repeat(c[None], lids.ids.size, axis=0))
            radii.append(np.full(lids.ids.size, im.eye_radius_cm[e]))
        n_eye = sum(r.shape[0] for r in rests)
        hull_index = []
        normals = pruned.hulls[0].normals if pruned.hulls else np.zeros((1, 3))
        for h_i, h in enumerate(pruned.hulls):
            if not np.array_equal(h.normals, normals):
                raise ValueError("packed E_intersect needs hulls with shared plane normals")
            # the hull's identity shift is folded into the lips' rest positions (x - c_id)
            rests.append(h.lips.rest(beta, np.zeros(h.lips.exp_basis.shape[2])) - h.shift_id @ beta)
            bases.append(h.lips.exp_basis)
            hull_index.append(np.full(h.lips.ids.size, h_i))
        n_exp = im.eyelids[0].exp_basis.shape[2]
        cat = lambda xs, shape: np.concatenate(xs) if xs else np.zeros(shape)  # noqa: E731
        offsets = np.stack([h.offsets for h in pruned.hulls]) if pruned.hulls else np.zeros((0, 1))
        shift = np.stack([h.shift_exp for h in pruned.hulls]) if pruned.hulls else np.zeros((0, 3, n_exp))
        rest = cat(rests, (0, 3))
        hidx = cat(hull_index, (0,)).astype(np.int64)
        own = np.argmax(rest[n_eye:] @ normals.T + offsets[hidx], axis=1) if hidx.size else np.zeros(0, np.int64)
        tol = im.tolerance_cm
        basis = np.ascontiguousarray(cat(bases, (0, 3, n_exp)))
        centre, radius, offsets = cat(centres, (0, 3)), cat(radii, (0,)) - tol, offsets + tol
        # the linear lower bounds of the margins (class docstring)
        d0 = rest[:n_eye] - centre
        dist0 = np.linalg.norm(d0, axis=1)
        n0 = d0 / np.maximum(dist0, 1e-12)[:, None]
        # lips: the BOUND_PLANES planes nearest at psi = 0 (each exactly linear in psi), (V_lip, P) rows
        s0 = rest[n_eye:] @ normals.T + offsets[hidx]                          # (V_lip, J)
        top = np.argsort(-s0, axis=1)[:, :BOUND_PLANES] if hidx.size else np.zeros((0, BOUND_PLANES), np.int64)
        n_top = normals[top]                                                  # (V_lip, P, 3)
        # rows: eyelids, then the lips' nearest planes rank by rank ((P, V_lip) when reshaped)
        b_off = np.concatenate([dist0 - radius, np.take_along_axis(s0, top, axis=1).T.ravel()])
        b_gain = np.concatenate([np.einsum("va,vai->vi", n0, basis[:n_eye]),
                                 np.einsum("vpa,vai->pvi", n_top, basis[n_eye:] - shift[hidx]).reshape(-1, n_exp)])
        return cls(rest, basis, n_eye, centre, radius, hidx, normals, offsets, shift, own,
                   b_off, np.ascontiguousarray(b_gain.reshape(-1, n_exp)))

    @property
    def n_vertices(self) -> int:
        return int(self.rest_cm.shape[0])

    def residuals(self, psi: np.ndarray, weight: float,
                  jacobian: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """r (R,) and dr/dpsi (R, n_exp) (None without ``jacobian``)."""
        n_exp = self.exp_basis.shape[2]
        psi = np.asarray(psi, dtype=np.float64)
        ne = self.n_eye
        m = self.bound_offset + self.bound_gain @ psi
        # eyelids: one bound row each; lips: inside only if all of their BOUND_PLANES rows are negative
        m_lip = m[ne:].reshape(BOUND_PLANES, -1).max(axis=0)
        if not (m[:ne] < 0.0).any() and not (m_lip < 0.0).any():
            return np.zeros(0), (np.zeros((0, n_exp)) if jacobian else None)
        cand = np.flatnonzero(np.concatenate([m[:ne], m_lip]) < 0.0)
        if cand.size == 0:
            return np.zeros(0), (np.zeros((0, n_exp)) if jacobian else None)
        sw = np.sqrt(weight)
        x = self.rest_cm[cand] + np.einsum("vai,i->va", self.exp_basis[cand], psi)
        eye = cand < ne
        # E_eyeballs: r = radius - |x - c| for eyelid vertices inside the sphere
        e_idx = cand[eye]
        diff = x[eye] - self.centre_cm[e_idx]
        dist = np.sqrt(np.einsum("va,va->v", diff, diff))
        in_eye = dist < self.radius_cm[e_idx]
        # E_teeth: the hull moves by shift_exp psi; inside iff behind every plane, D = -max_j s_j
        l_idx = cand[~eye]
        hidx = self.hull_index[l_idx - ne]
        y = x[~eye] - (self.shift_exp @ psi)[hidx]                            # (C, 3)
        s = y @ self.normals.T + self.offsets[hidx]
        jmax = np.argmax(s, axis=1)
        smax = s[np.arange(s.shape[0]), jmax]
        in_hull = smax < 0
        r = np.concatenate([sw * (self.radius_cm[e_idx[in_eye]] - dist[in_eye]), -sw * smax[in_hull]])
        if not jacobian:
            return r, None
        nrm = diff[in_eye] / np.maximum(dist[in_eye], 1e-12)[:, None]
        j_eye = -sw * np.einsum("ac,aci->ai", nrm, self.exp_basis[e_idx[in_eye]])
        n = self.normals[jmax[in_hull]]
        lips = l_idx[in_hull]
        j_lip = -sw * (np.einsum("ac,aci->ai", n, self.exp_basis[lips])
                       - np.einsum("ac,aci->ai", n, self.shift_exp[self.hull_index[lips - ne]]))
        return r, np.concatenate([j_eye, j_lip])
