"""The fitting energy of the paper (Sec. 3.2) as residual blocks with analytic Jacobians, and its weights.

E = E_landmarks + E_identity + E_expression + E_joints + E_temporal + E_intersect, written as E = |r|^2
(Sec. 3.3) so Levenberg-Marquardt can use J^T J and J^T r. Each function returns residuals and their
Jacobian with respect to its own arguments; the solver chains them with the landmark model's Jacobians.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FitOptions:
    """Weights of the energy terms and solver settings.

    Weights (each multiplies its term as written in the paper):
    - ``w_landmarks`` 1.0: Eq. 2, sum |x - mu|^2 / (2 sigma^2), sigma in px.
    - ``w_identity`` 1.0: -log N(beta | 0, I) = |beta|^2 / 2 (ICT's identity modes are scaled to unit
      variance, so a unit-Gaussian prior is the model's own; we have no scan library to fit the paper's GMM).
    - ``w_expression`` 1.0: |psi|^2 with psi in [0, 1] (a full-strength expression costs 1, about the
      data cost of one landmark 1.4 sigma off).
    - ``w_joints`` 1.0: |theta|^2 over neck, head and eyes (radians^2); the root is free.
    - ``w_temporal`` 0.005: sum over landmarks of |x_t - x_(t-1)|^2 in px^2 (tracking: against the previous
      frame's fit; offline: between consecutive frames). Small: it damps jitter without lagging motion.
    - ``w_intersect`` 100.0: per cm^2 of penetration beyond ``intersect_tolerance_cm`` 0.1 (1 mm beyond it
      costs 1, like a landmark 1.4 sigma off). The tolerance absorbs the model's own small intersections
      (random identities and expression mixes of ICT-FaceKit graze the fitted eyeball spheres and teeth hulls).
    Solver:
    - ``max_iterations`` 6 per tracked frame (warm start); ``max_iterations_init`` 25 after a PnP start;
      ``max_iterations_batch`` 40 for keyframes/offline.
    - ``tolerance`` 1e-3: stop when the relative cost decrease (achieved, or predicted by the Gauss-Newton
      model for the next step) or the relative step falls below it;
      ``tolerance_px`` 0.01: or when an accepted step moves no landmark by more than this (px).
      ``tracking_tolerance`` 3e-3: the same for warm-started tracking frames. The cost is about one unit
      per landmark at the noise level, so 3e-3 of it is far below the uncertainty of the optimum itself
      (about half a unit per parameter); on ``bench fit`` it stops ~0.3 iterations earlier per frame with
      equal or better accuracy than 1e-3.
    - ``initial_lambda`` 1e-3 (LM damping, scaled by diag(J^T J)).
    - ``chord_steps`` 1: in warm-started tracking, up to this many consecutive LM steps reuse the last
      landmark Jacobian (chord steps: true residuals and cost, J^T W r with the recent J); convergence is
      still confirmed with the Jacobian at the final point. 0 evaluates it at every step. On ``bench fit``
      1 is fastest (more chord steps converge more slowly and need more confirmations).
    - ``sparsity_threshold_cm`` 1e-3: basis entries moving a landmark by at most this are dropped (Sec. 3.3).
    Input checks (degenerate input is reported, never fitted):
    - ``min_landmarks`` 8 informative landmarks needed; ``max_sigma_fraction`` 0.05: a landmark is
      informative when sigma <= this fraction of the image diagonal; ``image_margin`` 0.5: landmarks further
      than this fraction of the image size outside it are ignored; ``near_plane_mm`` 50: nearer is "behind".
    """

    w_landmarks: float = 1.0
    w_identity: float = 1.0
    w_expression: float = 1.0
    w_joints: float = 1.0
    w_temporal: float = 0.005
    w_intersect: float = 100.0
    intersect_tolerance_cm: float = 0.1
    max_iterations: int = 6
    max_iterations_init: int = 25
    max_iterations_batch: int = 40
    tolerance: float = 1e-3
    tolerance_px: float = 0.01
    tracking_tolerance: float = 3e-3
    initial_lambda: float = 1e-3
    chord_steps: int = 1
    sparsity_threshold_cm: float = 1e-3
    min_landmarks: int = 8
    max_sigma_fraction: float = 0.05
    image_margin: float = 0.5
    near_plane_mm: float = 50.0

    def __post_init__(self) -> None:
        for name in ("w_landmarks", "w_identity", "w_expression", "w_joints", "w_temporal", "w_intersect",
                     "sparsity_threshold_cm", "image_margin", "intersect_tolerance_cm"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"FitOptions.{name} must be finite and >= 0, got {getattr(self, name)}")
        if self.w_landmarks <= 0:
            raise ValueError("FitOptions.w_landmarks must be > 0")
        if min(self.max_iterations, self.max_iterations_init, self.max_iterations_batch) < 1:
            raise ValueError("FitOptions.max_iterations* must be >= 1")
        if not (np.isfinite(self.tracking_tolerance) and self.tracking_tolerance > 0):
            raise ValueError(f"FitOptions.tracking_tolerance must be finite and > 0, got {self.tracking_tolerance}")
        if self.chord_steps < 0:
            raise ValueError(f"FitOptions.chord_steps must be >= 0, got {self.chord_steps}")


def landmark_residuals(uv_px: np.ndarray, duv: np.ndarray, mu_px: np.ndarray, sigma_px: np.ndarray,
                       weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """E_landmarks (Eq. 2) = sum_l |x_l - mu_l|^2 / (2 sigma_l^2) as r (2L,) and J = dr/dp (2L, P).

    uv_px: (L, 2) projected model landmarks; duv: (L, 2, P) their Jacobian; mu_px (L, 2); sigma_px (L,).
    """
    s = np.sqrt(weight / 2.0) / sigma_px                                    # (L,)
    r = ((uv_px - mu_px) * s[:, None]).reshape(-1)
    return r, (duv * s[:, None, None]).reshape(-1, duv.shape[2])


def identity_residuals(beta: np.ndarray, weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """E_identity = -log N(beta | 0, I) + const = |beta|^2 / 2: r = sqrt(w / 2) beta, J = sqrt(w / 2) I."""
    s = np.sqrt(weight / 2.0)
    return s * np.asarray(beta, dtype=np.float64), s * np.eye(len(beta))


def expression_residuals(psi: np.ndarray, weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """E_expression = |psi|^2: r = sqrt(w) psi, J = sqrt(w) I."""
    s = np.sqrt(weight)
    return s * np.asarray(psi, dtype=np.float64), s * np.eye(len(psi))


def joint_residuals(joints: np.ndarray, weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """E_joints = |theta_{2..K}|^2 over neck, head, eyes ((K, 3) axis-angle; the root is not in it)."""
    s = np.sqrt(weight)
    theta = np.asarray(joints, dtype=np.float64).reshape(-1)
    return s * theta, s * np.eye(theta.size)


def temporal_residuals(uv_px: np.ndarray, duv: np.ndarray, uv_prev_px: np.ndarray,
                       duv_prev: np.ndarray | None = None,
                       weight: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """E_temporal = w sum_l |x_t,l - x_(t-1),l|^2: r (2L,), dr/dp_t (2L, P) and dr/dp_(t-1) (2L, P)
    (None when the previous frame is fixed, as in tracking)."""
    s = np.sqrt(weight)
    r = (s * (uv_px - uv_prev_px)).reshape(-1)
    j_t = s * duv.reshape(-1, duv.shape[2])
    j_prev = None if duv_prev is None else -s * duv_prev.reshape(-1, duv_prev.shape[2])
    return r, j_t, j_prev
