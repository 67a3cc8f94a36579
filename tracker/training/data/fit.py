"""Stage 2 of the pseudo-labels: the ICT shape fitted to MediaPipe's points (and 68-point labels if any).

Weak-perspective model (MediaPipe's 3D output is an orthographic-like shape in pixels, z of the scale of x):

    p ~ s * R @ (A @ X) + t,    X = neutral + identity_basis . beta + expression_basis . psi    (model cm)

with ``A = MODEL_TO_CAMERA_AXES`` (MediaPipe's axes are x right, y down, z away from the camera), s in px/cm.
Solved by alternation: the similarity (s, R, t) by weighted Umeyama, then (beta, psi, t) by a bounded linear
least-squares fit with ridge priors (psi in [0, 1]), a few rounds. 2D ground truth, where present, adds rows
for the x, y of the iBUG-68 vertices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracker.training.data.correspondence import Correspondence, umeyama
from tracker.types import MODEL_TO_CAMERA_AXES

#: Per-axis weights of MediaPipe residuals (its depth is less reliable than x, y).
MP_AXIS_WEIGHTS = np.array([1.0, 1.0, 0.5])
#: Weights of 68-point ground-truth residuals: jaw contour (0-16) and inner points (17-67).
GT_JAW_WEIGHT, GT_INNER_WEIGHT = 0.7, 4.0


@dataclass(frozen=True, eq=False)
class WeakPerspectiveFit:
    """scale: px per cm; rotation: (3, 3) after the model->camera axis flip; translation: (3,) px;
    identity: (K,), expression: (E,); rms_px: RMS x,y residual over MediaPipe's 468 points."""

    scale: float
    rotation: np.ndarray
    translation: np.ndarray
    identity: np.ndarray
    expression: np.ndarray
    rms_px: float
    gt_rms_px: float = float("nan")

    def transform(self, x_model: np.ndarray) -> np.ndarray:
        """(..., 3) model cm -> (..., 3) image px (x, y) and depth (z, px, larger = farther)."""
        return self.scale * (np.asarray(x_model) @ (self.rotation @ MODEL_TO_CAMERA_AXES).T) + self.translation


class ShapeFitter:
    """Precomputes the linear model of the correspondence points and iBUG-68 vertices for fast per-image fits.

    neutral: (N, 3); identity_basis: (K, N, 3); expression_basis: (E, N, 3); ibug68: (68,) vertex ids.
    """

    def __init__(self, neutral, identity_basis, expression_basis, ibug68, corr: Correspondence,
                 identity_prior: float = 3.0, expression_prior: float = 1.0):
        w = corr.barycentric
        pts = lambda v: np.einsum("...ijc,ij->...ic", v[..., corr.triangles, :], w)  # noqa: E731
        self.mp0 = pts(neutral.astype(np.float64))  # (468, 3)
        self.mp_basis = np.concatenate([pts(identity_basis.astype(np.float64)),
                                        pts(expression_basis.astype(np.float64))])  # (B, 468, 3)
        self.gt0 = neutral[ibug68].astype(np.float64)
        self.gt_basis = np.concatenate([identity_basis[:, ibug68], expression_basis[:, ibug68]]).astype(np.float64)
        self.n_id, self.n_ex = len(identity_basis), len(expression_basis)
        self.prior = np.concatenate([np.full(self.n_id, identity_prior), np.full(self.n_ex, expression_prior)])
        self.lo = np.concatenate([np.full(self.n_id, -4.0), np.zeros(self.n_ex)])
        self.hi = np.concatenate([np.full(self.n_id, 4.0), np.ones(self.n_ex)])

    def fit(self, mp478: np.ndarray, gt68: np.ndarray | None = None, rounds: int = 4) -> WeakPerspectiveFit:
        """mp478: (478, 3) or (468, 3) MediaPipe points (px); gt68: optional (68, 2) px, NaN rows ignored."""
        p = np.asarray(mp478, np.float64)[:468]
        a_axes = MODEL_TO_CAMERA_AXES
        coef = np.zeros(self.n_id + self.n_ex)
        gt_w = None
        if gt68 is not None:
            gt68 = np.asarray(gt68, np.float64)
            valid = np.isfinite(gt68).all(1)
            gt_w = np.where(np.arange(68) < 17, GT_JAW_WEIGHT, GT_INNER_WEIGHT) * valid
            gt68 = np.where(valid[:, None], gt68, 0.0)
        for _ in range(rounds):
            x = self.mp0 + np.tensordot(coef, self.mp_basis, 1)
            s, r, t = umeyama(x @ a_axes.T, p)
            # Linear rows: s R A (X0 + B c) + t = p  ->  [s R A B, I] [c; t] = p - s R A X0 (per axis weights).
            m = s * r @ a_axes  # (3, 3)
            aw = MP_AXIS_WEIGHTS
            rows = [np.concatenate([np.einsum("kc,bic->ikb", m, self.mp_basis),
                                    np.broadcast_to(np.eye(3), (468, 3, 3))], 2) * aw[None, :, None]]
            rhs = [(p - self.mp0 @ m.T) * aw]
            if gt68 is not None:
                g = np.concatenate([np.einsum("kc,bic->ikb", m[:2], self.gt_basis),
                                    np.broadcast_to(np.eye(3)[:2], (68, 2, 3))], 2) * gt_w[:, None, None]
                rows.append(g)
                rhs.append((np.asarray(gt68, np.float64) - self.gt0 @ m[:2].T) * gt_w[:, None])
            a_mat = np.concatenate([r_.reshape(-1, r_.shape[-1]) for r_ in rows])
            b_vec = np.concatenate([r_.ravel() for r_ in rhs])
            # Priors scale with s so that they act in cm, independent of the face's size in pixels.
            prior = np.concatenate([self.prior * s, np.zeros(3)])
            lo = np.concatenate([self.lo, np.full(3, -np.inf)])
            hi = np.concatenate([self.hi, np.full(3, np.inf)])
            sol = _bounded_ridge(a_mat, b_vec, prior, lo, hi)
            coef = sol[:-3]
            t = sol[-3:]
        x = self.mp0 + np.tensordot(coef, self.mp_basis, 1)
        fit = WeakPerspectiveFit(s, r, t, coef[:self.n_id], coef[self.n_id:], 0.0)
        rms = float(np.sqrt(((fit.transform(x)[:, :2] - p[:, :2]) ** 2).sum(1).mean()))
        gt_rms = float("nan")
        if gt68 is not None:
            xg = self.gt0 + np.tensordot(coef, self.gt_basis, 1)
            gt_rms = float(np.sqrt(((fit.transform(xg)[:, :2] - gt68) ** 2).sum(1)[gt_w > 0].mean()))
        return WeakPerspectiveFit(s, r, t, fit.identity, fit.expression, rms, gt_rms)


def _bounded_ridge(a: np.ndarray, b: np.ndarray, prior: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   passes: int = 4) -> np.ndarray:
    """argmin |a x - b|^2 + |prior * x|^2 subject to lo <= x <= hi, by an active set on the normal equations:
    solve, fix the variables out of bounds at their bound, re-solve the rest (a few passes; exact when the
    active set settles). a: (R, P); b: (R,); prior, lo, hi: (P,)."""
    ata = a.T @ a + np.diag(prior ** 2)
    atb = a.T @ b
    x = np.zeros(len(atb))
    fixed = np.zeros(len(atb), bool)
    for _ in range(passes):
        free = ~fixed
        rhs = atb[free] - ata[np.ix_(free, fixed)] @ x[fixed]
        x[free] = np.linalg.solve(ata[np.ix_(free, free)], rhs)
        out = free & ((x < lo) | (x > hi))
        if not out.any():
            break
        x[out] = np.clip(x[out], lo[out], hi[out])
        fixed |= out
    return x
