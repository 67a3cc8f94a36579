"""The skeleton of the head model: joint locations (linear in identity) and linear blend skinning weights.

Joints (``tracker.types.JOINT_NAMES``): neck (child of the root), head (child of neck), eye_L and eye_R
(children of head). ``_L`` is the subject's left, model +x, as in ICT-FaceKit's ``ScleraLeft`` and ARKit's
``eyeBlink_L``.

- Eye joints: the centre of a least-squares sphere fitted to each eyeball's sclera vertices (algebraic fit,
  ``|x|^2 = 2 c.x + d``, ``r^2 = d + |c|^2``). The fit is not linear in the vertices, so its identity basis is
  the central secant ``(c(neutral + b_i) - c(neutral - b_i)) / 2`` of each identity mode b_i (coefficients
  ~ N(0, 1), so this is the slope over the prior's +-1 sigma range).
- Neck and head pivots: fixed affine combinations (weights summing to 1) of three mesh "anchor" points in the
  mid-sagittal plane, chosen so that on the neutral head they sit at anatomical targets:
  head (atlanto-occipital joint) about 2.5-3 cm below the ear canals, in line with them;
  neck (cervico-thoracic junction) at the base of the neck, 60 % of the way from the throat to the nape.
  Because the weights are affine, the pivots follow each identity exactly linearly
  (``joints_identity_basis = sum_a w_a * identity_basis[anchor_a]``).
- Skinning: eyeball parts (sclera and iris, which includes the pupil) rigid to their eye joint; every other
  vertex on the head joint except the neck, which blends smoothly (a C1 smoothstep) from head to neck across
  a band below a "jaw plane" running from the throat under the chin to the nape under the skull.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Parents of (neck, head, eye_L, eye_R); -1 is the root (the rigid root transform).
JOINT_PARENTS = np.array([-1, 0, 1, 1], dtype=np.int64)
NECK, HEAD, EYE_L, EYE_R = 0, 1, 2, 3

#: Neutral-head targets (cm, model space) of the pivots; see the module docstring.
HEAD_PIVOT_TARGET_CM = np.array([0.0, -1.5, -0.5])
NECK_PIVOT_TARGET_CM = np.array([0.0, -12.0, -2.4])
#: Points (y, z) in the mid-sagittal plane, cm: the throat just under the chin and the nape under the skull.
#: The head weight is 1 above the line through them and falls to 0 over ``NECK_BLEND_CM`` below it.
JAW_PLANE_THROAT_YZ = np.array([-8.7, 6.0])
JAW_PLANE_NAPE_YZ = np.array([-4.0, -7.0])
NECK_BLEND_CM = 5.0

EYE_PARTS = {EYE_L: ("ScleraLeft", "IrisLeft"), EYE_R: ("ScleraRight", "IrisRight")}
SPHERE_PARTS = {EYE_L: "ScleraLeft", EYE_R: "ScleraRight"}


@dataclass(frozen=True, eq=False)
class Rig:
    """joints_neutral_cm (4, 3); joints_identity_basis_cm (n_id, 4, 3); skin_weights (N, 4);
    eye_radius_cm (2,); joint_parents (4,)."""

    joints_neutral_cm: np.ndarray
    joints_identity_basis_cm: np.ndarray
    skin_weights: np.ndarray
    eye_radius_cm: np.ndarray
    joint_parents: np.ndarray


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Algebraic least-squares sphere through (M, 3) points -> centre (3,), radius.

    Solves ``[2x 2y 2z 1] [c; d] = x^2 + y^2 + z^2`` in the least-squares sense; ``r = sqrt(d + |c|^2)``.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or p.shape[0] < 4:
        raise ValueError(f"a sphere fit needs (M >= 4, 3) points, got {p.shape}")
    a = np.hstack([2.0 * p, np.ones((p.shape[0], 1))])
    b = np.einsum("ij,ij->i", p, p)
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    centre, d = sol[:3], sol[3]
    return centre, float(np.sqrt(max(d + centre @ centre, 0.0)))


def part_mask(vertex_part: np.ndarray, part_names: tuple[str, ...], name: str) -> np.ndarray:
    if name not in part_names:
        raise ValueError(f"the mesh has no material group '{name}' (groups: {', '.join(part_names)})")
    return vertex_part == part_names.index(name)


def _midline_vertex(neutral: np.ndarray, candidates: np.ndarray, target_yz: np.ndarray) -> int:
    """The candidate vertex on the mid-plane (|x| < 1 mm) nearest to ``target_yz``."""
    ids = np.flatnonzero(candidates & (np.abs(neutral[:, 0]) < 0.1))
    if ids.size == 0:
        raise ValueError("no mid-plane vertices to anchor the neck/head pivots on")
    d = np.linalg.norm(neutral[ids][:, 1:] - target_yz, axis=1)
    return int(ids[np.argmin(d)])


def _affine_pivot(anchor_pts: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Affine weights w (A,), sum 1, with ``w @ anchor_pts ~= target`` in the (y, z) plane (least norm)."""
    a = np.vstack([anchor_pts[:, 1:].T, np.ones(anchor_pts.shape[0])])  # (3, A)
    b = np.array([target[1], target[2], 1.0])
    w, *_ = np.linalg.lstsq(a, b, rcond=None)
    return w


def pivot_anchors(neutral: np.ndarray, vertex_part: np.ndarray, part_names: tuple[str, ...],
                  ibug68: np.ndarray) -> dict[str, tuple[list[list[int]], np.ndarray]]:
    """For 'neck' and 'head': anchor points (each a list of vertices averaged, e.g. a left/right pair) and
    their affine weights. Anchors: the midpoint of iBUG jaw points 1 and 15 (in front of the ears), and
    skin vertices on the mid-plane at the throat and the nape (at the pivot's height for the neck)."""
    skin = np.zeros(neutral.shape[0], dtype=bool)
    for name in ("Face", "BackHead"):
        skin |= part_mask(vertex_part, part_names, name)
    ear_pair = [int(ibug68[1]), int(ibug68[15])]
    out = {}
    for joint, target, throat_yz, nape_yz in (
            ("head", HEAD_PIVOT_TARGET_CM, (-9.0, 6.0), (-6.0, -7.0)),
            ("neck", NECK_PIVOT_TARGET_CM, (-12.0, 4.5), (-12.0, -7.0))):
        throat = _midline_vertex(neutral, skin & (neutral[:, 2] > 0), np.array(throat_yz))
        nape = _midline_vertex(neutral, skin & (neutral[:, 2] < 0), np.array(nape_yz))
        anchors = [ear_pair, [throat], [nape]]
        pts = np.stack([neutral[a].mean(axis=0) for a in anchors])
        out[joint] = (anchors, _affine_pivot(pts, target))
    return out


def _anchored_point(verts: np.ndarray, anchors: list[list[int]], w: np.ndarray) -> np.ndarray:
    """(..., N, 3) vertices -> (..., 3) affine combination of anchor means."""
    pts = np.stack([verts[..., a, :].mean(axis=-2) for a in anchors], axis=-2)  # (..., A, 3)
    return np.einsum("a,...ai->...i", w, pts)


def smoothstep(t: np.ndarray) -> np.ndarray:
    """C1 ramp: 0 for t <= 0, 1 for t >= 1, 3t^2 - 2t^3 between."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def neck_head_blend(neutral: np.ndarray) -> np.ndarray:
    """(N,) head weight in [0, 1]: 1 above the jaw plane, smooth to 0 at ``NECK_BLEND_CM`` below it."""
    direction = JAW_PLANE_NAPE_YZ - JAW_PLANE_THROAT_YZ
    direction = direction / np.linalg.norm(direction)
    normal = np.array([-direction[1], direction[0]])  # (y, z): up and forward
    if normal[0] < 0:
        normal = -normal
    signed = (neutral[:, 1:] - JAW_PLANE_THROAT_YZ) @ normal
    return smoothstep(1.0 + signed / NECK_BLEND_CM)


def compute_rig(neutral: np.ndarray, identity_basis: np.ndarray, vertex_part: np.ndarray,
                part_names: tuple[str, ...], ibug68: np.ndarray) -> Rig:
    """The rig of a model: neutral (N, 3) cm, identity_basis (n_id, N, 3) cm, vertex_part (N,)."""
    n = neutral.shape[0]
    n_id = identity_basis.shape[0]
    joints = np.zeros((4, 3))
    joints_basis = np.zeros((n_id, 4, 3))
    radius = np.zeros(2)

    pivots = pivot_anchors(neutral, vertex_part, part_names, ibug68)
    for name, k in (("neck", NECK), ("head", HEAD)):
        anchors, w = pivots[name]
        joints[k] = _anchored_point(neutral, anchors, w)
        joints_basis[:, k] = _anchored_point(identity_basis, anchors, w)

    for k, part in SPHERE_PARTS.items():
        mask = part_mask(vertex_part, part_names, part)
        centre, r = fit_sphere(neutral[mask])
        joints[k] = centre
        radius[k - EYE_L] = r
        for i in range(n_id):
            c_plus, _ = fit_sphere(neutral[mask] + identity_basis[i, mask])
            c_minus, _ = fit_sphere(neutral[mask] - identity_basis[i, mask])
            joints_basis[i, k] = 0.5 * (c_plus - c_minus)

    weights = np.zeros((n, 4))
    w_head = neck_head_blend(neutral)
    weights[:, HEAD] = w_head
    weights[:, NECK] = 1.0 - w_head
    for k, parts in EYE_PARTS.items():
        mask = np.zeros(n, dtype=bool)
        for p in parts:
            mask |= part_mask(vertex_part, part_names, p)
        weights[mask] = 0.0
        weights[mask, k] = 1.0
    return Rig(joints.astype(np.float32), joints_basis.astype(np.float32), weights.astype(np.float32),
               radius.astype(np.float32), JOINT_PARENTS.copy())
