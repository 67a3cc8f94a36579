"""Stages 2-3 of the pseudo-labels: the head model fitted to each image's MediaPipe points (and 300-W ground
truth), then the landmark set's vertices projected into the image with per-landmark weights.

Weights (the label's trust, used by the Gaussian NLL as a per-landmark factor):
- 1.0 for face points inside the area MediaPipe observes (within 1 cm of its surface on the neutral mesh);
- 0.4 for face-skin points outside it (ears, temples, under the chin), 0.25 for scalp/back of head/neck;
- eyeball points: 0.7 when the gaze was fitted to MediaPipe's iris centre, else 0.3;
- times 0.6 where the surface faces away from the camera (the point is hidden by the head itself).
For 300-W images the fit also uses the ground truth's points whose definition agrees with the model's
(``GT_RELIABLE``: eye corners and lids, nose, mouth corners and lip centres); those labels get weight 1.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from tracker.face.model import HeadModel
from tracker.roi import roi_points_from_ibug68
from tracker.training.data.correspondence import Correspondence
from tracker.training.data.fit import ShapeFitter, WeakPerspectiveFit
from tracker.training.data.sources import ImageItem

log = logging.getLogger(__name__)

#: 300-W points whose annotation convention matches ICT's iBUG vertices (the jaw contour, brows and the
#: inner-lip sides differ systematically by 5-20% of the inter-ocular distance, so they are not fitted).
GT_RELIABLE = np.array([27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 38, 39, 40, 42, 43, 45, 47,
                        48, 50, 51, 52, 54, 56, 57, 58, 62, 66])
#: Identity modes and priors of the fit (chosen on 120 held-out 300-W images: NME of the reliable points
#: 5.23% with 40 modes and prior 3, 4.96% with 60 modes and prior 0.5). Change FIT_VERSION with them.
N_IDENTITY_FIT = 60
IDENTITY_PRIOR, EXPRESSION_PRIOR = 0.5, 1.0
FIT_VERSION = "v2"
COVERED_RADIUS_CM = 1.0
#: MediaPipe iris centres (refined landmarks).
MP_IRIS_CENTRES = (468, 473)


@dataclass(frozen=True, eq=False)
class FitTable:
    """Per-image fits of one source. images: (M,) str; scale (M,); rotation (M, 3, 3); translation (M, 3);
    identity (M, K); expression (M, E); eye_rotation (M, 2, 3) axis-angle of eye_L, eye_R (model space);
    rms_px (M,); gt68 (M, 68, 2) NaN where none; gaze_ok (M,) bool."""

    images: np.ndarray
    source: np.ndarray
    scale: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    identity: np.ndarray
    expression: np.ndarray
    eye_rotation: np.ndarray
    rms_px: np.ndarray
    gt68: np.ndarray
    gaze_ok: np.ndarray

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **{k: getattr(self, k) for k in self.__dataclass_fields__})
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "FitTable":
        z = np.load(path)
        return cls(**{k: z[k] for k in cls.__dataclass_fields__})

    def __len__(self) -> int:
        return len(self.images)


def make_fitter(model: HeadModel, corr: Correspondence, n_identity: int = N_IDENTITY_FIT) -> ShapeFitter:
    return ShapeFitter(model.neutral_cm, model.identity_basis_cm[:n_identity], model.expression_basis_cm,
                       model.ibug68_vertex_ids, corr, IDENTITY_PRIOR, EXPRESSION_PRIOR)


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) of the smallest rotation taking direction a to direction b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(a @ b)
    if s < 1e-12:
        return np.zeros(3)
    return axis / s * np.arctan2(s, c)


class GazeFitter:
    """Eye joint rotations that put the model's pupil centre on MediaPipe's iris centre (weak perspective)."""

    def __init__(self, model: HeadModel):
        from tracker.face.forward import joint_locations  # noqa: F401  (checked at construction)

        self.model = model
        parts = model.part_names
        self.pupil_ids = []
        for name in ("IrisLeft", "IrisRight"):
            ids = np.flatnonzero(model.vertex_part == parts.index(name))
            # The pupil centre: the iris vertices most in front (+z) along the eye's axis.
            v = model.neutral_cm[ids]
            self.pupil_ids.append(ids[np.argsort(-v[:, 2])[:8]])

    def fit(self, fit: WeakPerspectiveFit, mp478: np.ndarray, shape_pupils: list[np.ndarray],
            joints_cm: np.ndarray) -> tuple[np.ndarray, bool]:
        """(2, 3) model-space axis-angles for eye_L, eye_R and whether both were fitted."""
        from tracker.types import MODEL_TO_CAMERA_AXES

        if mp478.shape[0] < 478:
            return np.zeros((2, 3)), False
        m = fit.scale * fit.rotation @ MODEL_TO_CAMERA_AXES
        iris = mp478[list(MP_IRIS_CENTRES), :2]
        out = np.zeros((2, 3))
        ok = True
        for e, joint in enumerate((2, 3)):  # eye_L, eye_R
            c = fit.transform(joints_cm[joint])
            pupil = fit.transform(shape_pupils[e].mean(0))
            d = pupil - c
            r = np.linalg.norm(d)
            # The MediaPipe iris nearest this eye's projected pupil.
            q = iris[np.argmin(np.linalg.norm(iris - pupil[:2], axis=1))]
            xy = q - c[:2]
            if np.linalg.norm(xy) >= 0.95 * r:
                ok = False
                continue
            d_new = np.array([xy[0], xy[1], -np.sqrt(r * r - xy @ xy)])  # pupil towards the camera (-z)
            aa_cam = _rotation_between(d, d_new)
            rot = m / fit.scale
            out[e] = rot.T @ aa_cam  # axis in model coordinates (rot is orthonormal)
            if np.linalg.norm(out[e]) > np.radians(35):
                out[e] *= np.radians(35) / np.linalg.norm(out[e])
        return out, ok


def fit_items(model: HeadModel, fitter: ShapeFitter, items: list[ImageItem], mp: dict[str, np.ndarray],
              gaze: GazeFitter | None = None) -> FitTable:
    """Fit every item that MediaPipe found a face in (others are skipped)."""
    from tracker.face.forward import joint_locations

    rows = []
    for it in items:
        pts = mp.get(it.path)
        if pts is None:
            continue
        gt = None
        if it.gt68 is not None and it.gt_exact:
            gt = np.full((68, 2), np.nan)
            gt[GT_RELIABLE] = it.gt68[GT_RELIABLE]
        f = fitter.fit(pts, gt)
        ident = np.zeros(model.n_identity)
        ident[:len(f.identity)] = f.identity
        eye_rot, gaze_ok = np.zeros((2, 3)), False
        if gaze is not None:
            joints = joint_locations(model, ident)
            pupils = [model.neutral_cm[ids] + np.tensordot(f.identity, model.identity_basis_cm[:len(f.identity)][:, ids], 1)
                      + np.tensordot(f.expression, model.expression_basis_cm[:, ids], 1) for ids in gaze.pupil_ids]
            eye_rot, gaze_ok = gaze.fit(f, pts, pupils, joints)
        gt68 = it.gt68 if it.gt68 is not None and it.gt_exact else np.full((68, 2), np.nan)
        rows.append((it.path, it.source, f.scale, f.rotation, f.translation, f.identity, f.expression, eye_rot,
                     f.rms_px, gt68, gaze_ok))
    if not rows:
        k, e = fitter.n_id, fitter.n_ex
        return FitTable(np.array([], str), np.array([], str), np.zeros(0), np.zeros((0, 3, 3)), np.zeros((0, 3)),
                        np.zeros((0, k)), np.zeros((0, e)), np.zeros((0, 2, 3)), np.zeros(0), np.zeros((0, 68, 2)),
                        np.zeros(0, bool))
    cols = list(zip(*rows))
    return FitTable(np.array(cols[0]), np.array(cols[1]), *[np.asarray(c) for c in cols[2:]])


def _vertex_normals(v: np.ndarray, faces: np.ndarray) -> np.ndarray:
    fn = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


class LabelProjector:
    """Projects a landmark set's vertices for each fit and computes their weights (module docstring)."""

    def __init__(self, model: HeadModel, vertex_ids: np.ndarray, corr: Correspondence):
        self.model = model
        self.ids = np.asarray(vertex_ids, np.int64)
        neutral = model.neutral_cm.astype(np.float64)
        mp_pts = corr.points(neutral)
        dist, _ = cKDTree(mp_pts).query(neutral[self.ids])
        parts = [model.part_names[p] for p in model.vertex_part[self.ids]]
        self.covered = dist < COVERED_RADIUS_CM
        self.eyeball = np.array([p.startswith(("Sclera", "Iris", "Lacrimal", "EyeBlend", "EyeOcclusion"))
                                 for p in parts])
        self.face = np.array([p in ("Face", "EyeLashes") for p in parts])
        base = np.where(self.covered, 1.0, np.where(self.face, 0.4, 0.25))
        self.base = np.where(self.eyeball, 0.3, base)
        self.normals = _vertex_normals(neutral, model.faces)[self.ids]
        self.ibug = model.ibug68_vertex_ids
        # Landmarks that are iBUG vertices, for ground-truth overrides.
        self.gt_match = {int(np.flatnonzero(self.ids == v)[0]): i for i, v in enumerate(self.ibug)
                         if i in set(GT_RELIABLE.tolist()) and np.any(self.ids == v)}

    def project(self, table: FitTable) -> dict[str, np.ndarray]:
        from tracker.face.forward import joint_locations, joint_transforms, skin
        from tracker.types import MODEL_TO_CAMERA_AXES

        m_all = len(table)
        n = len(self.ids)
        lm = np.zeros((m_all, n, 2), np.float32)
        w = np.zeros((m_all, n), np.float32)
        roi = np.zeros((m_all, 3, 2), np.float32)
        model = self.model
        k = table.identity.shape[1]
        id_basis = model.identity_basis_cm[:k]
        all_ids = np.concatenate([self.ids, self.ibug])
        id_sub = id_basis[:, all_ids].reshape(k, -1)
        ex_sub = model.expression_basis_cm[:, all_ids].reshape(model.n_expression, -1)
        neutral_sub = model.neutral_cm[all_ids].astype(np.float64)
        weights_sub = model.skin_weights[all_ids]
        for i in range(m_all):
            rest = neutral_sub + (table.identity[i] @ id_sub + table.expression[i] @ ex_sub).reshape(-1, 3)
            ident = np.zeros(model.n_identity)
            ident[:k] = table.identity[i]
            joints = np.zeros((4, 3))
            joints[2:] = table.eye_rotation[i]
            posed = skin(rest, weights_sub, joint_transforms(model, joints, joint_locations(model, ident)))
            fit = WeakPerspectiveFit(float(table.scale[i]), table.rotation[i], table.translation[i],
                                     table.identity[i], table.expression[i], float(table.rms_px[i]))
            img = fit.transform(posed)
            pts, ib = img[:n, :2], img[n:, :2]
            wi = self.base.copy()
            if table.gaze_ok[i]:
                wi[self.eyeball] = 0.7
            # Camera-space normal z > 0: the surface faces away from the camera.
            nz = (self.normals @ (table.rotation[i] @ MODEL_TO_CAMERA_AXES).T)[:, 2]
            wi = np.where(nz > 0.0, wi * 0.6, wi)
            gt = table.gt68[i]
            if np.isfinite(gt).all():
                for li, gi in self.gt_match.items():
                    pts[li] = gt[gi]
                    wi[li] = 1.0
                roi[i] = roi_points_from_ibug68(gt)
            else:
                roi[i] = roi_points_from_ibug68(ib)
            lm[i], w[i] = pts, wi
        return {"images": table.images.astype(str), "landmarks_px": lm, "weights": w, "roi_points": roi,
                "source": table.source.astype(str)}
