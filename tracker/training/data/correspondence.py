"""A dense correspondence from MediaPipe Face Mesh's 468 canonical vertices to the ICT-FaceKit surface.

Each MediaPipe landmark i becomes a point on an ICT triangle: ``triangles[i]`` (3 vertex ids) with
``barycentric[i]`` (3 weights), so for any ICT shape V (N, 3) the MediaPipe-equivalent points are
``sum_k barycentric[i, k] * V[triangles[i, k]]``.

Built from the two models only (:func:`build_correspondence`):
1. similarity (Umeyama) from 12 anatomical pairs (eye corners, nose, mouth, chin) of MediaPipe's canonical
   mesh to the ICT neutral mesh's iBUG-68 vertices;
2. non-rigid ICP: ICT identity + expression coefficients (ridge priors, expression weights in [0, 1]) and
   the similarity are refitted to the MediaPipe points and their closest points on the ICT face surface,
   the anatomical pairs kept as extra terms;
3. each MediaPipe point's closest point on the fitted ICT face surface gives its triangle and barycentrics.

The result is committed as ``mediapipe_to_ict.npz`` beside this module (small; derived from MediaPipe's
canonical_face_model.obj, Apache-2.0, Copyright The MediaPipe Authors, and ICT-FaceKit, MIT, Copyright (c)
2020 USC Institute for Creative Technologies).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import lsq_linear
from scipy.spatial import cKDTree

from tracker import paths

log = logging.getLogger(__name__)

CORRESPONDENCE_FILE = Path(__file__).with_name("mediapipe_to_ict.npz")

#: (MediaPipe landmark, iBUG-68 index) pairs of the same anatomical point.
ANATOMICAL_PAIRS = ((33, 36), (133, 39), (362, 42), (263, 45), (1, 30), (61, 48), (291, 54), (152, 8),
                    (168, 27), (2, 33), (0, 51), (17, 57))


@dataclass(frozen=True, eq=False)
class Correspondence:
    """triangles: (468, 3) int ICT vertex ids; barycentric: (468, 3) float32, rows sum to 1."""

    triangles: np.ndarray
    barycentric: np.ndarray

    def points(self, vertices: np.ndarray) -> np.ndarray:
        """(..., N, 3) ICT vertices -> (..., 468, 3) MediaPipe-equivalent points."""
        return np.einsum("...ijc,ij->...ic", vertices[..., self.triangles, :], self.barycentric)

    def matrix(self, n_vertices: int):
        """(468, N) sparse matrix W with W @ V = points(V)."""
        from scipy.sparse import csr_matrix

        rows = np.repeat(np.arange(len(self.triangles)), 3)
        return csr_matrix((self.barycentric.ravel(), (rows, self.triangles.ravel())),
                          shape=(len(self.triangles), n_vertices))


def load_mediapipe_canonical(path: Path | None = None) -> np.ndarray:
    """(468, 3) MediaPipe canonical face vertices (cm, +y up, +z towards the viewer)."""
    if path is None:
        data = paths.data_dir()
        if data is None:
            raise FileNotFoundError("data folder not found: set TRACKER_DATA")
        path = data / "mediapipe" / "canonical_face_model.obj"
    rows = [line.split()[1:4] for line in Path(path).read_text().splitlines() if line.startswith("v ")]
    v = np.asarray(rows, dtype=np.float64)
    if v.shape != (468, 3):
        raise ValueError(f"{path}: expected 468 vertices, got {v.shape[0]}")
    return v


def umeyama(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None):
    """Similarity (s, R, t) minimising sum w |s R src + t - dst|^2. src, dst: (P, D). Umeyama 1991, Eq. 40-42."""
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    xs, xd = src - mu_s, dst - mu_d
    cov = (xd * w[:, None]).T @ xs
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(src.shape[1])
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    r = u @ np.diag(sign) @ vt
    var_s = w @ (xs ** 2).sum(1)
    s = float((d * sign).sum() / var_s)
    return s, r, mu_d - s * r @ mu_s


def closest_points_on_mesh(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, k: int = 12):
    """Closest surface points, searched over triangles around the k nearest vertices.

    points: (P, 3); vertices: (N, 3); faces: (F, 3). Returns (face index (P,), barycentric (P, 3), distance (P,)).
    """
    used = np.unique(faces)
    tree = cKDTree(vertices[used])
    _, nn = tree.query(points, k=k)
    vert_faces: dict[int, list[int]] = {}
    for f, tri in enumerate(faces):
        for v in tri:
            vert_faces.setdefault(int(v), []).append(f)
    best_f = np.zeros(len(points), np.int64)
    best_b = np.zeros((len(points), 3))
    best_d = np.full(len(points), np.inf)
    for p, cand in enumerate(nn):
        fs = np.unique(np.concatenate([vert_faces[int(used[c])] for c in cand]))
        b, d = _closest_on_triangles(points[p], vertices[faces[fs]])
        j = int(np.argmin(d))
        best_f[p], best_b[p], best_d[p] = fs[j], b[j], d[j]
    return best_f, best_b, best_d


def _closest_on_triangles(p: np.ndarray, tris: np.ndarray):
    """Closest point to p (3,) on each triangle (T, 3, 3): barycentrics (T, 3) and distances (T,).

    Minimises over the triangle by projecting on the plane, then clamping to edges when outside.
    """
    a, b, c = tris[:, 0], tris[:, 1], tris[:, 2]
    cands_b, cands_d = [], []
    # plane projection
    e0, e1, v = b - a, c - a, p - a
    d00, d01, d11 = (e0 * e0).sum(1), (e0 * e1).sum(1), (e1 * e1).sum(1)
    d20, d21 = (v * e0).sum(1), (v * e1).sum(1)
    den = np.maximum(d00 * d11 - d01 * d01, 1e-20)
    bv = (d11 * d20 - d01 * d21) / den
    bw = (d00 * d21 - d01 * d20) / den
    bu = 1 - bv - bw
    bary = np.stack([bu, bv, bw], 1)
    inside = (bary >= 0).all(1)
    q = bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c
    d = np.where(inside, np.linalg.norm(q - p, axis=1), np.inf)
    cands_b.append(bary)
    cands_d.append(d)
    # edges
    for i, j in ((0, 1), (1, 2), (2, 0)):
        pi, pj = tris[:, i], tris[:, j]
        e = pj - pi
        t = np.clip(((p - pi) * e).sum(1) / np.maximum((e * e).sum(1), 1e-20), 0, 1)
        q = pi + t[:, None] * e
        be = np.zeros((len(tris), 3))
        be[:, i], be[:, j] = 1 - t, t
        cands_b.append(be)
        cands_d.append(np.linalg.norm(q - p, axis=1))
    cb, cd = np.stack(cands_b), np.stack(cands_d)  # (4, T, 3), (4, T)
    k = np.argmin(cd, 0)
    idx = np.arange(len(tris))
    return cb[k, idx], cd[k, idx]


def face_triangles(model) -> np.ndarray:
    """(F', 3) the triangles of a HeadModel whose three vertices are all face skin."""
    is_face = model.vertex_part == model.part_names.index("Face")
    return model.faces[is_face[model.faces].all(1)]


def build_correspondence(mesh=None, canonical: np.ndarray | None = None, n_identity: int = 40,
                         iterations: int = 8, identity_prior: float = 1.0, expression_prior: float = 4.0
                         ) -> tuple[Correspondence, dict]:
    """Build the correspondence (see module docstring) on a HeadModel (default: ``load_head_model()``).

    Returns it and a report (surface distances and anatomical-pair errors in mm, fitted coefficients).
    """
    if mesh is None:
        from tracker.face.build import load_head_model

        mesh = load_head_model()
    mp = load_mediapipe_canonical() if canonical is None else np.asarray(canonical, np.float64)
    face_tris = face_triangles(mesh)
    mp_ids = np.array([a for a, _ in ANATOMICAL_PAIRS])
    ict_ids = mesh.ibug68_vertex_ids[[b for _, b in ANATOMICAL_PAIRS]]
    neutral = mesh.neutral_cm.astype(np.float64)
    s, r, t = umeyama(mp[mp_ids], neutral[ict_ids])
    ident = mesh.identity_basis_cm[:n_identity].astype(np.float64)
    expr = mesh.expression_basis_cm.astype(np.float64)
    n_id, n_ex = len(ident), len(expr)
    coef = np.zeros(n_id + n_ex)
    shape = neutral.copy()
    anat_w = 3.0
    for it in range(iterations):
        target = s * mp @ r.T + t
        f, bary, dist = closest_points_on_mesh(target, shape, face_tris)
        tri = face_tris[f]
        # Linear model of the correspondence points and the anatomical vertices in (beta, psi).
        basis = np.concatenate([ident, expr])  # (n_id + n_ex, N, 3)
        pts_basis = np.einsum("bijc,ij->bic", basis[:, tri], bary)  # (B, 468, 3)
        pts_neutral = np.einsum("ijc,ij->ic", neutral[tri], bary)
        a_rows = [pts_basis.reshape(len(basis), -1).T, anat_w * basis[:, ict_ids].reshape(len(basis), -1).T]
        b_rows = [(target - pts_neutral).ravel(), anat_w * (target[mp_ids] - neutral[ict_ids]).ravel()]
        prior = np.concatenate([np.full(n_id, identity_prior), np.full(n_ex, expression_prior)])
        a_mat = np.vstack(a_rows + [np.diag(prior)])
        b_vec = np.concatenate(b_rows + [np.zeros(len(prior))])
        lo = np.concatenate([np.full(n_id, -4.0), np.zeros(n_ex)])
        hi = np.concatenate([np.full(n_id, 4.0), np.ones(n_ex)])
        coef = lsq_linear(a_mat, b_vec, bounds=(lo, hi), method="bvls").x
        shape = neutral + np.tensordot(coef, basis, 1)
        # Re-align the similarity to the fitted shape (points and anatomical pairs).
        src = np.vstack([mp, mp[mp_ids]])
        dst = np.vstack([np.einsum("ijc,ij->ic", shape[tri], bary), shape[ict_ids]])
        w = np.concatenate([np.ones(len(mp)), np.full(len(mp_ids), anat_w ** 2)])
        s, r, t = umeyama(src, dst, w)
        log.info("correspondence iteration %d: mean distance %.2f mm", it, 10 * dist.mean())
    target = s * mp @ r.T + t
    f, bary, dist = closest_points_on_mesh(target, shape, face_tris)
    corr = Correspondence(face_tris[f].astype(np.int32), bary.astype(np.float32))
    anat_err = np.linalg.norm(corr.points(shape)[mp_ids] - shape[ict_ids], axis=1) * 10
    report = {"surface_distance_mm_mean": float(dist.mean() * 10), "surface_distance_mm_max": float(dist.max() * 10),
              "anatomical_error_mm": anat_err.round(2).tolist(), "scale": s,
              "identity": coef[:n_id].round(3).tolist(), "expression": coef[n_id:].round(3).tolist()}
    return corr, report


def save_correspondence(corr: Correspondence, path: Path = CORRESPONDENCE_FILE) -> None:
    np.savez_compressed(path, triangles=corr.triangles, barycentric=corr.barycentric,
                        licence=np.array("derived from MediaPipe canonical_face_model.obj (Apache-2.0, "
                                         "The MediaPipe Authors) and ICT-FaceKit (MIT, USC ICT)"))


def load_correspondence(path: Path = CORRESPONDENCE_FILE) -> Correspondence:
    """The committed correspondence (build it with ``python -m tracker.training.data correspondence``)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} missing: run python -m tracker.training.data correspondence")
    z = np.load(path)
    return Correspondence(z["triangles"].astype(np.int64), z["barycentric"].astype(np.float64))
