"""Levenberg-Marquardt fitting of the head model to probabilistic 2D landmarks (paper Sec. 3.2-3.3).

Each iteration solves (J^T J + lambda diag(J^T J)) delta = -J^T r by Cholesky. J^T J and J^T r are
accumulated term by term (landmarks + temporal share the landmark Jacobian, the priors are diagonal,
E_intersect adds its few active rows) and never as a full residual vector. The static sparsity analysis
(``LandmarkModel.expression_support`` / ``joint_support``, paper Sec. 3.3) zeroes the basis entries below
the threshold and drops parameter columns that move no landmark (they stay at their prior mean). The
paper's per-landmark sparse outer products are a C++ optimisation: in numpy, accumulating J^T J per
landmark region over each region's support (45 % fewer flops for the 320-landmark set) measured 4x slower
than one dense BLAS syrk over all landmarks (445 us vs 105 us), so the landmark block is one syrk.

Tracking is warm-started from the previous frame and reuses its final Jacobian (the Jacobian depends on the
parameters only). Its first step is a chord step (``FitOptions.chord_steps``): the new point gets a
residual-only evaluation, and the gradient J^T W r(x) uses the Jacobian it started with; convergence is only
accepted with the Jacobian at the final point (evaluated once; the next frame reuses it), i.e. when the
Gauss-Newton model predicts a relative decrease below ``tracking_tolerance``. A typical frame costs one
Jacobian, one to two residual-only evaluations and two to three bounded solves (``bench fit``: ~2.2
iterations per frame). The evaluations and the bounded solves run as compiled kernels
(``tracker.fitting.kernels``, numba), so the dense J^T W J product is now the largest single cost.

Modes:
- tracking (:meth:`FaceFitter.fit_frame`): expression, root rotation and translation, joints (neck, head,
  eyes) of one frame; identity and focal fixed; warm start from the previous frame, PnP on the mean head
  (cv2.solvePnP, SQPnP) otherwise.
- keyframes (:meth:`FaceFitter.fit_keyframes`): identity (and focal length) shared over frames, per-frame
  pose and expression. The normal equations are block-arrow: the per-frame blocks are factored by banded
  Cholesky (:func:`block_tridiagonal_solve`) and the shared block is solved on their Schur complement.
- offline (:meth:`FaceFitter.fit_sequence`): all frames jointly with E_temporal between consecutive frames,
  which makes the per-frame part block-tridiagonal; same banded Cholesky + Schur complement.

psi is kept in [0, 1] by a projected LM: parameters at a bound whose gradient points outwards are held
(their rows and columns are removed from the step), and the step is clamped to the box.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg.blas import dsyrk
from scipy.linalg.lapack import dpotrf, dpotrs, dtrtri

from tracker.face.model import HeadModel, LandmarkSet
from tracker.fitting.energy import FitOptions
from tracker.fitting.intersect import IntersectModel, PackedIntersect, intersect_residuals
from tracker.fitting.kernels import bounded_step as _bounded_step_kernel
from tracker.fitting.kernels import landmark_terms, scale_rows
from tracker.fitting.landmark_model import Camera, IdentityRest, LandmarkModel, evaluate, evaluate_compiled
from tracker.types import MODEL_TO_CAMERA_AXES, CM_TO_MM, FitParams, FitResult, Intrinsics, Landmarks

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class KeyframeFitResult:
    """Shared identity (n_id,) and focal length over keyframes, and each frame's own fit.

    focal_std_px: standard deviation of the focal length from the inverse of the Gauss-Newton Hessian
    (E is a negative log-likelihood, so cov = (2 J^T J)^-1, marginalised over all other parameters);
    None when the focal length was not fitted. identity_std: (n_id,) likewise, or None.
    """

    identity: np.ndarray
    focal_px: float
    focal_std_px: float | None
    identity_std: np.ndarray | None
    frames: list[FitResult]
    cost: float
    iterations: int
    converged: bool
    message: str = ""


@dataclass
class _FrameInput:
    mu: np.ndarray        # (L, 2) undistorted px (0 where unused)
    w: np.ndarray         # (L,) w_landmarks / (2 sigma^2); 0 for unused landmarks
    used: np.ndarray      # (L,) bool
    message: str          # non-empty: degenerate input


class FaceFitter:
    """Fits a :class:`HeadModel` to :class:`Landmarks` of a :class:`LandmarkSet` (or vertex ids)."""

    def __init__(self, model: HeadModel, landmark_set: LandmarkSet | np.ndarray,
                 options: FitOptions | None = None):
        self.model = model
        self.options = options or FitOptions()
        ids = landmark_set.vertex_ids if isinstance(landmark_set, LandmarkSet) else np.asarray(landmark_set)
        self.lm = LandmarkModel.from_head_model(model, ids, self.options.sparsity_threshold_cm)
        self.n_exp, self.n_id, self.n_joints = self.lm.n_expression, self.lm.n_identity, self.lm.n_joints
        self.nf = self.n_exp + 6 + 3 * self.n_joints
        self.s_exp = slice(0, self.n_exp)
        self.s_root = slice(self.n_exp, self.n_exp + 3)
        self.s_trans = slice(self.n_exp + 3, self.n_exp + 6)
        self.s_joints = slice(self.n_exp + 6, self.nf)
        # static sparsity: per-frame columns that move at least one landmark
        active = np.concatenate([self.lm.expression_support.any(axis=0), np.ones(6, dtype=bool),
                                 np.repeat(self.lm.joint_support.any(axis=0), 3)])
        self.active = np.flatnonzero(active)
        self.na = self.active.size
        self._exp_pos = np.flatnonzero(self.active < self.n_exp)                 # positions in active set
        self._joint_pos = np.flatnonzero(self.active >= self.s_joints.start)
        self._exp_idx, self._joint_idx = self.active[self._exp_pos], self.active[self._joint_pos]
        # flat indices of the prior diagonals in H (na, na) and their weights
        self._prior_diag = np.concatenate([self._exp_pos, self._joint_pos]) * (self.na + 1)
        self._prior_weight = np.concatenate([np.full(self._exp_pos.size, self.options.w_expression),
                                             np.full(self._joint_pos.size, self.options.w_joints)])
        self._prior_vector = np.zeros(self.na)
        self._prior_vector[self._exp_pos] = self.options.w_expression
        self._prior_vector[self._joint_pos] = self.options.w_joints
        self.intersect: IntersectModel | None = None
        if self.options.w_intersect > 0:
            try:
                self.intersect = IntersectModel.from_head_model(model, self.options.intersect_tolerance_cm)
            except ValueError as exc:
                log.info("E_intersect disabled: %s", exc)
        self._rest_key: bytes | None = None
        self._rest: IdentityRest | None = None
        self._isect_key: bytes | None = None
        self._isect: PackedIntersect | None = None
        self._isect_cache: tuple | None = None
        self._last_eval: tuple | None = None
        self._warm_up()

    def _warm_up(self) -> None:
        """Compile the tracking kernels (or load them from numba's on-disk cache: about 0.15 s) with this
        model's own array types, so the first tracked frame does not pay for it (a first compile on a new
        machine takes a few seconds)."""
        x = np.zeros(self.nf)
        x[self.s_trans] = (0.0, 0.0, 600.0)
        cam = Camera(600.0, 320.0, 240.0)
        for jac in (False, True):
            ev = self._frame_eval(x, self.rest(np.zeros(self.n_id)), cam, jac=jac)
        self._bounded_step(np.eye(self.na), np.ones(self.na), x, 1e-3)
        jf = self._jacobian_rows(ev)
        self._gauss_newton_h(jf, np.ones(jf.shape[0]))
        landmark_terms(ev.uv_px, ev.uv_px, np.ones(len(ev.uv_px)), ev.uv_px, 0.0, jf, np.empty(jf.shape[1]))

    # ------------------------------------------------------------------ parameters
    def rest(self, identity: np.ndarray) -> IdentityRest:
        beta = np.asarray(identity, dtype=np.float64)
        key = beta.tobytes()
        if key != self._rest_key:
            self._rest, self._rest_key = self.lm.rest_identity(beta), key
        return self._rest

    def intersect_for(self, identity: np.ndarray) -> PackedIntersect | None:
        """E_intersect pruned to the vertices that can penetrate for this identity, packed (cached)."""
        if self.intersect is None:
            return None
        key = np.asarray(identity, dtype=np.float64).tobytes()
        if key != self._isect_key:
            self._isect, self._isect_key = PackedIntersect.from_model(self.intersect, identity), key
        return self._isect

    def pack(self, p: FitParams) -> np.ndarray:
        """FitParams -> per-frame vector (nf,): expression (clipped to [0, 1]), root rotation, translation,
        joints. Raises ValueError when the shapes do not match this model."""
        shapes = {"expression": (np.shape(p.expression), (self.n_exp,)),
                  "root_rotation": (np.shape(p.root_rotation), (3,)),
                  "translation_mm": (np.shape(p.translation_mm), (3,)),
                  "joints": (np.shape(p.joints), (self.n_joints, 3))}
        for name, (got, want) in shapes.items():
            if got != want:
                raise ValueError(f"FitParams.{name} has shape {got}, this model needs {want}")
        return np.concatenate([np.clip(p.expression, 0.0, 1.0), p.root_rotation, p.translation_mm,
                               np.ravel(p.joints)]).astype(np.float64)

    def unpack(self, x: np.ndarray, identity: np.ndarray, focal_px: float) -> FitParams:
        return FitParams(np.array(identity, dtype=np.float64), x[self.s_exp].copy(), x[self.s_root].copy(),
                         x[self.s_trans].copy(), x[self.s_joints].reshape(self.n_joints, 3).copy(),
                         float(focal_px))

    @staticmethod
    def camera(intrinsics: Intrinsics, focal_px: float | None = None) -> Camera:
        f = intrinsics.fx if focal_px is None else focal_px
        return Camera(float(f), float(intrinsics.cx), float(intrinsics.cy), float(intrinsics.fy / intrinsics.fx))

    def landmarks_px(self, params: FitParams, intrinsics: Intrinsics) -> np.ndarray:
        """(L, 2) projected landmarks of ``params`` (undistorted pinhole, then the intrinsics' distortion)."""
        ev = evaluate(self.lm, self.rest(params.identity), params.expression, params.root_rotation,
                      params.translation_mm, params.joints, self.camera(intrinsics, params.focal_px),
                      jacobian=False)
        return _distort(ev.uv_px, ev.x_mm, intrinsics)

    # ------------------------------------------------------------------ input checks
    def _prepare(self, lmk: Landmarks, intr: Intrinsics) -> _FrameInput:
        o = self.options
        n = len(self.lm)
        if len(lmk) != n:
            raise ValueError(f"expected {n} landmarks for this landmark set, got {len(lmk)}")
        mu = np.asarray(lmk.mu_px, dtype=np.float64)
        sigma = np.asarray(lmk.sigma_px, dtype=np.float64)
        finite = np.isfinite(mu).all(axis=1) & np.isfinite(sigma) & (sigma > 0)
        n_finite = int(np.count_nonzero(finite))
        mx, my = o.image_margin * intr.width, o.image_margin * intr.height
        max_sigma = o.max_sigma_fraction * math.hypot(intr.width, intr.height)
        no_dist = not intr.dist_coeffs or not any(c != 0 for c in intr.dist_coeffs)
        if n_finite == n and no_dist and n >= o.min_landmarks:
            # fast path (the usual frame): everything finite, inside the margin and informative
            lo = mu.min(axis=0)
            hi = mu.max(axis=0)
            if lo[0] > -mx and lo[1] > -my and hi[0] < intr.width + mx and hi[1] < intr.height + my and \
                    sigma.max() <= max_sigma:
                return _FrameInput(mu, o.w_landmarks / (2.0 * sigma * sigma), finite, "")
        w = np.zeros(n)
        zero_mu = np.zeros((n, 2))
        if n_finite < o.min_landmarks:
            return _FrameInput(zero_mu, w, finite,
                               f"degenerate landmarks: only {int(finite.sum())} of {n} are finite "
                               f"(NaN or infinite positions or sigmas); {o.min_landmarks} needed")
        mu = np.where(finite[:, None], mu, 0.0)
        if not no_dist:
            import cv2
            mu = cv2.undistortPoints(mu.reshape(-1, 1, 2), intr.matrix, np.asarray(intr.dist_coeffs),
                                     P=intr.matrix).reshape(-1, 2)
        inside = finite & (mu[:, 0] > -mx) & (mu[:, 0] < intr.width + mx) & (mu[:, 1] > -my) & \
            (mu[:, 1] < intr.height + my)
        informative = finite & (sigma <= max_sigma)
        good = inside & informative
        if informative.sum() < o.min_landmarks:
            return _FrameInput(zero_mu, w, finite,
                               f"degenerate landmarks: sigma too large, only {int(informative.sum())} of {n} "
                               f"have sigma <= {max_sigma:.1f} px; {o.min_landmarks} needed")
        if good.sum() < o.min_landmarks:
            return _FrameInput(zero_mu, w, finite,
                               f"degenerate landmarks: far off the image, only {int(good.sum())} of {n} lie "
                               f"within {o.image_margin:.0%} of the {intr.width}x{intr.height} image")
        used = finite & inside
        w[used] = o.w_landmarks / (2.0 * sigma[used] ** 2)
        return _FrameInput(np.where(used[:, None], mu, 0.0), w, used, "")

    # ------------------------------------------------------------------ initialisation
    def pnp_init(self, data: _FrameInput, intr: Intrinsics, identity: np.ndarray,
                 focal_px: float) -> tuple[np.ndarray | None, str]:
        """Rigid start: cv2.solvePnP of the (identity's) rest-pose landmarks to mu. -> (x (nf,), message)."""
        import cv2

        rest = self.rest(identity)
        pts = rest.shape_cm @ (CM_TO_MM * MODEL_TO_CAMERA_AXES).T
        sel = data.used & (data.w >= np.quantile(data.w[data.used], 0.25))
        if sel.sum() < 6:
            sel = data.used
        k = np.array([[focal_px, 0, intr.cx], [0, focal_px * intr.fy / intr.fx, intr.cy], [0, 0, 1.0]])
        obj = np.ascontiguousarray(pts[sel]).reshape(-1, 1, 3)
        img = np.ascontiguousarray(data.mu[sel]).reshape(-1, 1, 2)
        ok, rvec, tvec = False, None, None
        for flag in (cv2.SOLVEPNP_SQPNP, cv2.SOLVEPNP_EPNP):
            try:
                ok, rvec, tvec = cv2.solvePnP(obj, img, k, None, flags=flag)
            except cv2.error:
                ok = False
            if ok and np.all(np.isfinite(rvec)) and np.all(np.isfinite(tvec)):
                break
            ok = False
        if not ok:
            return None, "PnP initialisation failed"
        x = np.zeros(self.nf)
        x[self.s_root] = rvec.ravel()
        x[self.s_trans] = tvec.ravel()
        return x, ""

    # ------------------------------------------------------------------ one frame: tracking mode
    def _frame_eval(self, x: np.ndarray, rest: IdentityRest, cam: Camera, jac: bool,
                    jac_id: bool = False, jac_focal: bool = False):
        if not (jac_id or jac_focal):
            # the tracking hot path: the compiled kernel (same values as the numpy reference)
            return evaluate_compiled(self.lm, rest, x[self.s_exp], x[self.s_root], x[self.s_trans],
                                     x[self.s_joints], cam, jacobian=jac)
        return evaluate(self.lm, rest, x[self.s_exp], x[self.s_root], x[self.s_trans],
                        x[self.s_joints].reshape(self.n_joints, 3), cam, jacobian=jac, jac_identity=jac_id,
                        jac_focal=jac_focal)

    def _behind(self, ev, data: _FrameInput) -> bool:
        return bool(np.any(ev.x_mm[data.used, 2] < self.options.near_plane_mm))

    def _prior_cost(self, x: np.ndarray) -> float:
        o = self.options
        psi, th = x[self.s_exp], x[self.s_joints]
        return o.w_expression * float(psi @ psi) + o.w_joints * float(th @ th)

    def frame_cost(self, x: np.ndarray, identity: np.ndarray, cam: Camera, data: _FrameInput,
                   uv_prev: np.ndarray | None) -> float:
        """E for one frame with identity and camera fixed (what :meth:`fit_frame` minimises)."""
        ev = self._frame_eval(x, self.rest(identity), cam, jac=False)
        return self._frame_cost_from(ev, x, identity, data, uv_prev)

    def _frame_cost_from(self, ev, x, identity, data, uv_prev) -> float:
        o = self.options
        res = ev.uv_px - data.mu
        cost = float(data.w @ np.einsum("la,la->l", res, res)) + self._prior_cost(x)
        if uv_prev is not None and o.w_temporal > 0:
            d = ev.uv_px - uv_prev
            cost += o.w_temporal * float(np.einsum("la,la->", d, d))
        if self.intersect is not None:
            r, _ = self.intersect_for(identity).residuals(x[self.s_exp], o.w_intersect, jacobian=False)
            cost += float(r @ r)
        return cost

    def frame_system(self, x: np.ndarray, identity: np.ndarray, cam: Camera, data: _FrameInput,
                     uv_prev: np.ndarray | None, ev=None):
        """(cost, H (na, na), g (na,), ev): J^T J and J^T r over the active per-frame columns."""
        if ev is None:
            ev = self._frame_eval(x, self.rest(identity), cam, jac=True)
        return (*self._frame_system(x, ev, data, uv_prev, self._row_weights(data, uv_prev),
                                    self.intersect_for(identity)), ev)

    def _row_weights(self, data: _FrameInput, uv_prev: np.ndarray | None) -> np.ndarray:
        """(2L,) sqrt of each residual row's weight in E_landmarks (+ E_temporal): J^T W J = A^T A."""
        wsum = data.w + self.options.w_temporal if uv_prev is not None and self.options.w_temporal > 0 else data.w
        return np.repeat(np.sqrt(wsum), 2)

    def _frame_system(self, x: np.ndarray, ev, data: _FrameInput, uv_prev: np.ndarray | None,
                      row_w: np.ndarray, isect: PackedIntersect | None):
        """cost, H, g of one frame from an evaluation with Jacobian (``row_w`` from :meth:`_row_weights`)."""
        jf = self._jacobian_rows(ev)
        cost, g, h = self._residual_terms(x, ev, jf, data, uv_prev, isect, self._gauss_newton_h(jf, row_w))
        return cost, h, g

    def _jacobian_rows(self, ev) -> np.ndarray:
        """(2L, na): the landmark Jacobian over the active per-frame columns."""
        jf = ev.frame_jac.reshape(-1, self.nf)
        return jf if self.na == self.nf else jf[:, self.active]

    def _gauss_newton_h(self, jf: np.ndarray, row_w: np.ndarray) -> np.ndarray:
        """J^T W J of Eq. 2 (+ E_temporal) as A^T A with A = sqrt(W) J (one syrk), plus the diagonal priors
        E_expression, E_joints (their residuals are the parameters themselves)."""
        a = np.empty(jf.shape)
        scale_rows(jf, row_w, a)
        h = _ata(a)
        h.flat[self._prior_diag] += self._prior_weight
        return h

    def _residual_terms(self, x: np.ndarray, ev, jf: np.ndarray, data: _FrameInput,
                        uv_prev: np.ndarray | None, isect: PackedIntersect | None, h_base: np.ndarray):
        """cost, g = J^T r and H = ``h_base`` + E_intersect's J^T J at ``x``, with the landmark residuals of
        ``ev`` (at ``x``) and the landmark Jacobian ``jf`` (at ``x``, or a recent point for chord steps)."""
        o = self.options
        # Eq. 2 (+ E_temporal): cost = r^T W r (+ w_t |uv - uv_prev|^2), g = J^T (W r (+ w_t (uv - uv_prev)))
        g = np.empty(jf.shape[1])
        temporal = uv_prev is not None and o.w_temporal > 0
        cost = landmark_terms(ev.uv_px, data.mu, data.w, uv_prev if temporal else ev.uv_px,
                              float(o.w_temporal) if temporal else 0.0, jf, g)
        # E_expression + E_joints = sum_i p_i x_i^2 over the active columns (p_i: w_expression, w_joints, 0)
        xa = x if self.na == self.nf else x[self.active]
        px = self._prior_vector * xa
        cost += float(px @ xa)
        g += px
        ie = self._exp_pos
        h = h_base
        if isect is not None:
            # E_intersect depends on psi only: a frame starts (and a chord step is confirmed) at the psi of
            # the previous call, so one cached entry saves about a third of the calls
            psi = x[self.s_exp]
            key = psi.tobytes()
            cache = self._isect_cache
            if cache is not None and cache[0] is isect and cache[1] == key:
                r, jp = cache[2]
            else:
                r, jp = isect.residuals(psi, o.w_intersect)
                self._isect_cache = (isect, key, (r, jp))
            if r.size:
                cost += float(r @ r)
                jpa = jp[:, self._exp_idx]
                h = h_base.copy()
                h[ie[:, None], ie] += jpa.T @ jpa
                g[ie] += jpa.T @ r
        return cost, g, h

    def fit_frame(self, landmarks: Landmarks, intrinsics: Intrinsics,
                  previous: FitParams | FitResult | None = None, identity: np.ndarray | None = None) -> FitResult:
        """Tracking mode: pose, expression and eyes of one frame; identity and focal length fixed.

        ``previous``: the last frame's fit (params or result; warm start and E_temporal) or None (PnP start
        on the mean head,
        or on ``identity``). ``identity``: (n_id,), defaults to ``previous.identity`` or the mean (zeros).
        The focal length is ``intrinsics.fx``. Degenerate input gives ``converged=False`` and a message.
        """
        o = self.options
        if isinstance(previous, FitResult):
            previous = previous.params
        if identity is None:
            identity = previous.identity if previous is not None else np.zeros(self.n_id)
        identity = np.asarray(identity, dtype=np.float64)
        if identity.shape != (self.n_id,) or not np.all(np.isfinite(identity)):
            raise ValueError(f"identity must be ({self.n_id},) and finite, got shape {identity.shape}")
        focal = float(intrinsics.fx)
        cam = self.camera(intrinsics)
        data = self._prepare(landmarks, intrinsics)
        if previous is not None and not _params_finite(previous):
            previous = None
        if data.message:
            return self._failed(previous, identity, intrinsics, data.message)
        uv_prev = None
        if previous is not None:
            x = self.pack(previous)
            # the Jacobian depends on the parameters only: reuse the last frame's final evaluation
            key = (x.tobytes(), identity.tobytes(), cam)
            ev = self._last_eval[1] if self._last_eval is not None and self._last_eval[0] == key else None
            if ev is None:
                ev = self._frame_eval(x, self.rest(identity), cam, jac=True)
            if np.any(ev.x_mm[:, 2] < o.near_plane_mm):
                return self._failed(previous, identity, intrinsics,
                                    f"face is behind the camera: the previous fit puts landmarks at "
                                    f"z = {ev.x_mm[:, 2].min():.0f} mm (near plane {o.near_plane_mm:.0f} mm)")
            uv_prev = ev.uv_px
        else:
            x, msg = self.pnp_init(data, intrinsics, identity, focal)
            if x is None:
                return self._failed(None, identity, intrinsics, msg)
            ev = self._frame_eval(x, self.rest(identity), cam, jac=True)
            if self._behind(ev, data):
                return self._failed(None, identity, intrinsics,
                                    "face is behind the camera: PnP puts the landmarks at z = "
                                    f"{ev.x_mm[data.used, 2].min():.0f} mm")
        max_iter = o.max_iterations if previous is not None else max(o.max_iterations, o.max_iterations_init)
        warm = previous is not None
        x, cost, iters, converged, msg = self._lm_single(x, identity, cam, data, uv_prev, ev, max_iter,
                                                         o.chord_steps if warm else 0,
                                                         o.tracking_tolerance if warm else o.tolerance)
        params = self.unpack(x, identity, focal)
        # (x has psi in [0, 1], so it equals self.pack(params) bit for bit)
        self._last_eval = ((x.tobytes(), identity.tobytes(), cam), self._last_ev)
        uv = _distort(self._last_ev.uv_px, self._last_ev.x_mm, intrinsics)
        return FitResult(params, uv, cost, iters, converged, msg)

    def _bounded_step(self, h: np.ndarray, g: np.ndarray, x: np.ndarray, lam: float) -> np.ndarray:
        """Solve (H + lam diag H) d = -g by Cholesky with psi + d kept in [0, 1] (primal active set).

        psi at a bound whose gradient points outwards is held (d = 0); a free psi whose step would leave
        the box is fixed at the bound (d = bound - psi) and the others are solved again, at most 4 times.
        Only the free rows and columns are factored (fixed steps d_F move to the right-hand side:
        H_FF d_F = -g_F - H_FX d_X), so the usual case of most expressions resting at 0 is a small system.
        Runs as the compiled :func:`tracker.fitting.kernels.bounded_step`; :meth:`_bounded_step_numpy` is
        the reference it is tested against."""
        d = np.empty(self.na)
        if not _bounded_step_kernel(h, g, self._exp_pos, x[self._exp_idx], float(lam), d):
            raise np.linalg.LinAlgError("damped Gauss-Newton matrix not positive definite")
        return d

    def _bounded_step_numpy(self, h: np.ndarray, g: np.ndarray, x: np.ndarray, lam: float) -> np.ndarray:
        """The numpy reference of :meth:`_bounded_step`."""
        ie = self._exp_pos
        psi = x[self._exp_idx]
        ge = g[ie]
        fixed = np.zeros(self.na, dtype=bool)
        fixed[ie] = ((psi <= 0.0) & (ge > 0)) | ((psi >= 1.0) & (ge < 0))
        d = np.zeros(self.na)
        damp = lam * np.maximum(np.diagonal(h), 1e-9)
        for _ in range(4):
            free = np.flatnonzero(~fixed)
            hf = h.take(free, axis=0)                        # (nfree, na) rows, then the free columns
            hd = hf.take(free, axis=1)
            hd.flat[::free.size + 1] += damp[free]
            rhs = -g[free]
            if fixed.any():
                rhs -= hf @ np.where(fixed, d, 0.0)
            d[free] = _cholesky_solve(hd, rhs)
            new_psi = psi + d[ie]
            viol = ~fixed[ie] & ((new_psi < 0.0) | (new_psi > 1.0))
            if not viol.any():
                break
            fixed[ie[viol]] = True
            d[ie[viol]] = np.clip(new_psi[viol], 0.0, 1.0) - psi[viol]
        return d

    def _lm_single(self, x, identity, cam, data, uv_prev, ev, max_iter, chord: int = 0,
                   tolerance: float | None = None):
        """Levenberg-Marquardt from ``x`` whose evaluation (with Jacobian) is ``ev``.

        ``chord`` > 0 (warm-started tracking): up to that many consecutive steps reuse the last landmark
        Jacobian J (chord / Shamanskii steps): each costs a residual evaluation only, with the true residual
        and cost at the new point, g = J^T W r(x) and the same J^T W J. Frame to frame the pose moves a few
        degrees, so J barely changes; a rejected chord step refreshes J first. The Jacobian at the final
        point is evaluated once (the next frame's first step uses it), so a frame usually costs one Jacobian.
        Chord steps converge to their own fixed point (J_old^T W r = 0), so convergence is only accepted
        with the Jacobian at the final point: after chord steps it is evaluated there and the Gauss-Newton
        prediction decides whether to stop (the usual case) or to go on with full steps.
        ``tolerance``: relative cost decrease to stop at (default ``options.tolerance``).
        """
        o = self.options
        tol = o.tolerance if tolerance is None else tolerance
        lam = o.initial_lambda
        rest = self.rest(identity)
        isect = self.intersect_for(identity)
        row_w = self._row_weights(data, uv_prev)
        used = data.used
        jf = self._jacobian_rows(ev)
        hb = self._gauss_newton_h(jf, row_w)
        cost, g, h = self._residual_terms(x, ev, jf, data, uv_prev, isect, hb)
        fresh, age = True, 0          # jf is the Jacobian at x; chord steps since it was evaluated
        converged = False
        it = 0
        msg = ""
        x_norm_tol = o.tolerance * (float(np.sqrt(x @ x)) + o.tolerance)
        for it in range(1, max_iter + 1):
            improved = False
            stale_step = not fresh        # this iteration's step is computed with an old Jacobian
            attempt = 0
            while attempt < 8:
                try:
                    step = self._bounded_step(h, g, x, lam)
                except (np.linalg.LinAlgError, ValueError):
                    lam *= 10.0
                    attempt += 1
                    continue
                # the Gauss-Newton model's predicted decrease: when it is negligible, stop without evaluating
                pred = -(g @ step + 0.5 * step @ (h @ step))
                if attempt == 0 and lam <= 1e-2 and pred < tol * max(cost, 1.0):
                    converged = improved = True
                    it -= 1
                    break
                xn = x.copy()
                xn[self.active] += step
                np.clip(xn[self.s_exp], 0.0, 1.0, out=xn[self.s_exp])
                use_chord = age < chord
                evn = self._frame_eval(xn, rest, cam, jac=not use_chord)
                z = evn.x_mm[:, 2]
                ok = np.isfinite(evn.uv_px).all() and not bool(np.any((z < o.near_plane_mm) & used))
                if ok:
                    if use_chord:
                        jfn, hbn = jf, hb
                    else:
                        jfn = self._jacobian_rows(evn)
                        hbn = self._gauss_newton_h(jfn, row_w)
                    cn, gn, hn = self._residual_terms(xn, evn, jfn, data, uv_prev, isect, hbn)
                if ok and cn <= cost:
                    rel = (cost - cn) / max(cost, 1e-300)
                    dx = xn - x
                    small_step = (float(np.sqrt(dx @ dx)) <= x_norm_tol
                                  or np.abs(evn.uv_px - ev.uv_px).max() < o.tolerance_px)
                    x, cost, h, g, ev, jf, hb = xn, cn, hn, gn, evn, jfn, hbn
                    fresh, age = (False, age + 1) if use_chord else (True, 0)
                    x_norm_tol = o.tolerance * (float(np.sqrt(x @ x)) + o.tolerance)
                    lam = max(lam / 10.0, 1e-9)
                    improved = True
                    if rel < tol or small_step:
                        converged = True
                    break
                if not fresh or use_chord:
                    # a stale Jacobian may be why the step failed: refresh it at x before damping more
                    if not fresh:
                        ev = self._frame_eval(x, rest, cam, jac=True)
                        jf = self._jacobian_rows(ev)
                        hb = self._gauss_newton_h(jf, row_w)
                        cost, g, h = self._residual_terms(x, ev, jf, data, uv_prev, isect, hb)
                    fresh, age = True, chord
                    attempt += 1
                    continue
                lam *= 10.0
                attempt += 1
            if not improved and fresh:
                converged = True  # no descent step exists at this damping: a (local) minimum
                msg = ""
                break
            if (converged and stale_step) or not improved:
                # chord steps stop at their own fixed point (J_old^T r = 0): confirm with the Jacobian at x,
                # which the next frame needs anyway, and go on with true Gauss-Newton steps if needed
                if not fresh:
                    ev = self._frame_eval(x, rest, cam, jac=True)
                    jf = self._jacobian_rows(ev)
                    hb = self._gauss_newton_h(jf, row_w)
                    cost, g, h = self._residual_terms(x, ev, jf, data, uv_prev, isect, hb)
                fresh, age, converged = True, chord, False
                continue
            if converged:
                break
        if not converged:
            msg = f"stopped after {max_iter} iterations"
        if not fresh:
            # the Jacobian at the final point, reused by the next frame's first step
            ev = self._frame_eval(x, rest, cam, jac=True)
        self._last_ev = ev
        return x, cost, it, converged, msg

    def _failed(self, previous: FitParams | None, identity: np.ndarray, intr: Intrinsics,
                message: str) -> FitResult:
        """A finite placeholder result for degenerate input: the previous fit, or the mean face 60 cm ahead."""
        log.debug("fit failed: %s", message)
        params = previous if previous is not None else FitParams.neutral(self.n_id, self.n_exp, intr.fx)
        params = params.replace(identity=np.asarray(identity, dtype=np.float64), focal_px=float(intr.fx))
        ev = self._frame_eval(self.pack(params), self.rest(params.identity), self.camera(intr), jac=False)
        z = np.maximum(ev.x_mm[:, 2], self.options.near_plane_mm)
        uv = np.stack([intr.fx * ev.x_mm[:, 0] / z + intr.cx, intr.fy * ev.x_mm[:, 1] / z + intr.cy], axis=1)
        return FitResult(params, uv, math.inf, 0, False, message)

    # ------------------------------------------------------------------ batches: keyframes and offline
    def fit_keyframes(self, landmarks: list[Landmarks], intrinsics: Intrinsics,
                      previous: list[FitParams | None] | None = None, identity: np.ndarray | None = None,
                      fit_identity: bool = True, fit_focal: bool = False) -> KeyframeFitResult:
        """Identity (and, with ``fit_focal``, the focal length) shared over keyframes; pose and expression
        per frame. ``previous``: per-frame starts (None entries: PnP). ``identity``: start (default zeros).
        The focal length starts from ``intrinsics.fx``."""
        return self._fit_batch(landmarks, intrinsics, previous, identity, fit_identity, fit_focal, temporal=False)

    def fit_sequence(self, landmarks: list[Landmarks], intrinsics: Intrinsics,
                     previous: list[FitParams | None] | None = None, identity: np.ndarray | None = None,
                     fit_identity: bool = True, fit_focal: bool = False) -> KeyframeFitResult:
        """Offline: all frames of a recording jointly, identity shared, E_temporal across the sequence.
        Frames whose landmarks are degenerate are left out of the fit (their result says why)."""
        return self._fit_batch(landmarks, intrinsics, previous, identity, fit_identity, fit_focal, temporal=True)

    def _fit_batch(self, landmarks, intr, previous, identity, fit_identity, fit_focal, temporal):
        o = self.options
        n_frames = len(landmarks)
        if n_frames == 0:
            raise ValueError("no frames to fit")
        if previous is not None and len(previous) != n_frames:
            raise ValueError(f"previous has {len(previous)} entries for {n_frames} frames")
        beta = np.zeros(self.n_id) if identity is None else np.asarray(identity, dtype=np.float64).copy()
        focal = float(intr.fx)
        datas = [self._prepare(lmk, intr) for lmk in landmarks]
        xs: list[np.ndarray | None] = []
        msgs = []
        for i, d in enumerate(datas):
            if d.message:
                xs.append(None)
                msgs.append(d.message)
                continue
            p = previous[i] if previous is not None else None
            if p is not None and _params_finite(p):
                x = self.pack(p)
            else:
                x, m = self.pnp_init(d, intr, beta, focal)
                if x is None:
                    xs.append(None)
                    msgs.append(m)
                    continue
            ev = self._frame_eval(x, self.rest(beta), self.camera(intr, focal), jac=False)
            if self._behind(ev, d):
                xs.append(None)
                msgs.append("face is behind the camera at the start of the fit")
                continue
            xs.append(x)
            msgs.append("")
        idx = [i for i, x in enumerate(xs) if x is not None]
        if not idx:
            frames = [self._failed(None, beta, intr, m) for m in msgs]
            return KeyframeFitResult(beta, focal, None, None, frames, math.inf, 0, False,
                                     "no frame could be fitted: " + msgs[0])
        xf = np.stack([xs[i] for i in idx])                                   # (F, nf)
        dat = [datas[i] for i in idx]
        # temporal pairs only between frames that were consecutive in the input
        pairs = [(a, a + 1) for a in range(len(idx) - 1) if temporal and idx[a + 1] == idx[a] + 1]
        xf, beta, focal, cost, iters, conv, cov_s = self._lm_batch(xf, beta, focal, intr, dat, pairs,
                                                                   fit_identity, fit_focal)
        frames: list[FitResult] = []
        k = 0
        for i in range(n_frames):
            if xs[i] is None:
                frames.append(self._failed(None, beta, intr, msgs[i]))
                continue
            params = self.unpack(xf[k], beta, focal)
            intr_f = intr.with_focal(focal)
            frames.append(FitResult(params, self.landmarks_px(params, intr_f),
                                    self.frame_cost(xf[k], beta, self.camera(intr, focal), dat[k], None),
                                    iters, conv, "" if conv else "batch fit did not converge"))
            k += 1
        ns_id = self.n_id if fit_identity else 0
        focal_std = id_std = None
        if cov_s is not None:
            var = np.clip(np.diag(cov_s), 0.0, None)
            if fit_identity:
                id_std = np.sqrt(var[:ns_id])
            if fit_focal:
                focal_std = float(np.sqrt(var[ns_id]))
        n_bad = n_frames - len(idx)
        msg = "" if conv else f"stopped after {iters} iterations"
        if n_bad:
            msg = (msg + "; " if msg else "") + f"{n_bad} of {n_frames} frames left out (degenerate input)"
        return KeyframeFitResult(beta, focal, focal_std, id_std, frames, cost, iters, conv, msg)

    def _batch_system(self, xf, beta, focal, intr, dat, pairs, fit_id, fit_focal):
        """Block-arrow (+ tridiagonal) normal equations. -> cost, Hff (F, na, na), Hoff (list of
        (i, j, na, na) for j = i + 1), Hfs (F, na, ns), Hss, gf (F, na), gs (ns,)."""
        o = self.options
        rest = self.rest(beta)
        cam = self.camera(intr, focal)
        n_frames = xf.shape[0]
        ns = (self.n_id if fit_id else 0) + (1 if fit_focal else 0)
        hff = np.zeros((n_frames, self.na, self.na))
        hfs = np.zeros((n_frames, self.na, ns))
        hss = np.zeros((ns, ns))
        gf = np.zeros((n_frames, self.na))
        gs = np.zeros(ns)
        cost = 0.0
        jfs, jss, uvs = [], [], []
        ie, ij = self._exp_pos, self._joint_pos
        for f in range(n_frames):
            x = xf[f]
            ev = self._frame_eval(x, rest, cam, jac=True, jac_id=fit_id, jac_focal=fit_focal)
            if not np.all(np.isfinite(ev.uv_px)) or self._behind(ev, dat[f]):
                return None
            d = dat[f]
            res = ev.uv_px - d.mu
            cost += float(d.w @ np.einsum("la,la->l", res, res)) + self._prior_cost(x)
            jf = (ev.frame_jac if self.na == self.nf else ev.frame_jac[:, :, self.active]).reshape(-1, self.na)
            parts = []
            if fit_id:
                parts.append(ev.d_identity.reshape(-1, self.n_id))
            if fit_focal:
                parts.append(ev.d_focal.reshape(-1, 1))
            js = np.concatenate(parts, axis=1) if parts else np.zeros((jf.shape[0], 0))
            sw = np.sqrt(np.repeat(d.w, 2))[:, None]
            a, b = jf * sw, js * sw
            e = (res * d.w[:, None]).reshape(-1)
            hff[f] = a.T @ a
            hfs[f] = a.T @ b
            hss += b.T @ b
            gf[f] = jf.T @ e
            gs += js.T @ e
            hff[f, ie, ie] += o.w_expression
            gf[f, ie] += o.w_expression * x[self.active[ie]]
            hff[f, ij, ij] += o.w_joints
            gf[f, ij] += o.w_joints * x[self.active[ij]]
            if self.intersect is not None:
                r, jb, jp = intersect_residuals(self.intersect, beta, x[self.s_exp], o.w_intersect)
                if r.size:
                    cost += float(r @ r)
                    jpa = jp[:, self.active[ie]]
                    hff[f][np.ix_(ie, ie)] += jpa.T @ jpa
                    gf[f, ie] += jpa.T @ r
                    if fit_id:
                        hss[:self.n_id, :self.n_id] += jb.T @ jb
                        gs[:self.n_id] += jb.T @ r
                        hfs[f][ie, :self.n_id] += jpa.T @ jb
            jfs.append(jf)
            jss.append(js)
            uvs.append(ev.uv_px)
        hoff = []
        wt = o.w_temporal
        if pairs and wt > 0:
            for i, j in pairs:
                # E_temporal: r = sqrt(w) (x_j - x_i) between consecutive frames i, j = i + 1
                r = (uvs[j] - uvs[i]).reshape(-1)
                cost += wt * float(r @ r)
                ji, jj = jfs[i], jfs[j]
                hff[i] += wt * ji.T @ ji
                hff[j] += wt * jj.T @ jj
                hoff.append((i, j, -wt * ji.T @ jj))
                gf[i] -= wt * ji.T @ r
                gf[j] += wt * jj.T @ r
                if ns:
                    ds = jss[j] - jss[i]
                    hss += wt * ds.T @ ds
                    hfs[i] -= wt * ji.T @ ds
                    hfs[j] += wt * jj.T @ ds
                    gs += wt * ds.T @ r
        if fit_id:
            # E_identity = |beta|^2 / 2
            s = o.w_identity / 2.0
            hss[np.arange(self.n_id), np.arange(self.n_id)] += s
            gs[:self.n_id] += s * beta
            cost += s * float(beta @ beta)
        elif self.n_id:
            cost += o.w_identity / 2.0 * float(beta @ beta)
        return cost, hff, hoff, hfs, hss, gf, gs, uvs

    def _solve_batch(self, hff, hoff, hfs, hss, gf, gs, lam, fixed, fixed_step):
        """Damped block-arrow solve by banded Cholesky + Schur complement. -> (dx (F, na), ds (ns,)).

        ``fixed`` (F, na) bool: per-frame parameters whose step is prescribed as ``fixed_step`` (F, na)."""
        n_frames, na, _ = hff.shape
        ns = hss.shape[0]
        n = n_frames * na
        hff = hff.copy()
        hfs = hfs.copy()
        gf = gf.copy()
        diag_idx = np.arange(na)
        for f in range(n_frames):
            dg = hff[f, diag_idx, diag_idx]
            hff[f, diag_idx, diag_idx] += lam * np.maximum(dg, 1e-9)
        hoff = [(i, j, m.copy()) for i, j, m in hoff]
        gs = gs.copy()
        fh, ph = np.nonzero(fixed)
        if fh.size:
            # prescribed steps d: move H d to the right-hand side, then identity rows/cols with d as solution
            d = np.where(fixed, fixed_step, 0.0)
            gf += np.einsum("fij,fj->fi", hff, d)
            for i, j, m in hoff:
                gf[i] += m @ d[j]
                gf[j] += m.T @ d[i]
            gs += np.einsum("fis,fi->s", hfs, d)
            hff[fh, ph, :] = 0.0
            hff[fh, :, ph] = 0.0
            hff[fh, ph, ph] = 1.0
            hfs[fh, ph, :] = 0.0
            gf[fh, ph] = -d[fh, ph]
            for i, j, m in hoff:
                m[ph[fh == i], :] = 0.0
                m[:, ph[fh == j]] = 0.0
        rhs = np.concatenate([gf[:, :, None], hfs], axis=2)                  # (F, na, 1 + ns)
        sol = block_tridiagonal_solve(hff, hoff, rhs).reshape(n, 1 + ns)
        ainv_g, ainv_b = sol[:, 0], sol[:, 1:]
        if ns:
            b = hfs.reshape(n, ns)
            s = hss + lam * np.diag(np.maximum(np.diag(hss), 1e-9)) - b.T @ ainv_b
            ds = -_cholesky_solve(s, gs - b.T @ ainv_g)
            dx = -(ainv_g + ainv_b @ ds)
        else:
            ds = np.zeros(0)
            dx = -ainv_g
        return dx.reshape(n_frames, na), ds

    def _lm_batch(self, xf, beta, focal, intr, dat, pairs, fit_id, fit_focal):
        o = self.options
        lam = o.initial_lambda
        ie = self._exp_pos
        sysm = self._batch_system(xf, beta, focal, intr, dat, pairs, fit_id, fit_focal)
        if sysm is None:
            raise RuntimeError("the starting point puts a face behind the camera")
        converged = False
        it = 0
        for it in range(1, o.max_iterations_batch + 1):
            cost, hff, hoff, hfs, hss, gf, gs, _ = sysm
            psi = xf[:, self.active[ie]]
            gpsi = gf[:, ie]
            improved = False
            for _ in range(8):
                # primal active set for psi in [0, 1], as in _bounded_step
                fixed = np.zeros((xf.shape[0], self.na), dtype=bool)
                fixed[:, ie] = ((psi <= 0.0) & (gpsi > 0)) | ((psi >= 1.0) & (gpsi < 0))
                fixed_step = np.zeros((xf.shape[0], self.na))
                try:
                    for _ in range(4):
                        dx, ds = self._solve_batch(hff, hoff, hfs, hss, gf, gs, lam, fixed, fixed_step)
                        new_psi = psi + dx[:, ie]
                        viol = ~fixed[:, ie] & ((new_psi < 0.0) | (new_psi > 1.0))
                        if not viol.any():
                            break
                        fi, pi = np.nonzero(viol)
                        fixed[fi, ie[pi]] = True
                        fixed_step[fi, ie[pi]] = np.clip(new_psi[fi, pi], 0.0, 1.0) - psi[fi, pi]
                except (np.linalg.LinAlgError, ValueError):
                    lam *= 10.0
                    continue
                xn = xf.copy()
                xn[:, self.active] += dx
                xn[:, self.s_exp] = np.clip(xn[:, self.s_exp], 0.0, 1.0)
                bn, fn = beta, focal
                k = 0
                if fit_id:
                    bn = beta + ds[:self.n_id]
                    k = self.n_id
                if fit_focal:
                    fn = focal + float(ds[k])
                    if fn <= 1.0:
                        lam *= 10.0
                        continue
                new = self._batch_system(xn, bn, fn, intr, dat, pairs, fit_id, fit_focal)
                if new is not None and np.isfinite(new[0]) and new[0] <= cost:
                    rel = (cost - new[0]) / max(cost, 1e-300)
                    moved = max(np.abs(a - b).max() for a, b in zip(new[-1], sysm[-1]))
                    xf, beta, focal, sysm = xn, bn, fn, new
                    lam = max(lam / 10.0, 1e-9)
                    improved = True
                    converged = rel < o.tolerance or moved < o.tolerance_px
                    break
                lam *= 10.0
            if not improved:
                converged = True
                break
            if converged:
                break
        cost, hff, hoff, hfs, hss, gf, gs, _ = sysm
        cov_s = None
        if hss.shape[0]:
            # marginal covariance of the shared parameters: inverse of the Schur complement of 2 J^T J
            try:
                cov_s = self._shared_covariance(hff, hoff, hfs, hss)
            except (np.linalg.LinAlgError, ValueError) as exc:
                log.debug("no covariance: %s", exc)
        return xf, beta, focal, cost, it, converged, cov_s

    def _shared_covariance(self, hff, hoff, hfs, hss):
        n_frames, na, _ = hff.shape
        ns = hss.shape[0]
        n = n_frames * na
        diag = hff.copy()
        diag[:, np.arange(na), np.arange(na)] += 1e-9
        b = hfs.reshape(n, ns)
        ainv_b = block_tridiagonal_solve(diag, hoff, hfs).reshape(n, ns)
        s = hss - b.T @ ainv_b
        return np.linalg.inv(2.0 * s)


def block_tridiagonal_solve(diag: np.ndarray, upper: list, rhs: np.ndarray) -> np.ndarray:
    """Solve the symmetric positive definite block-tridiagonal system by block Cholesky.

    diag: (F, n, n) diagonal blocks; upper: [(i, i + 1, E_i (n, n))] blocks A[i, i + 1] (missing: zero);
    rhs: (F, n, c). Factor L_1 = chol(D_1), X_i = L_(i-1)^-1 E_(i-1), L_i = chol(D_i - X_i^T X_i); then
    forward z_i = L_i^-1 (r_i - X_i^T z_(i-1)) and backward y_i = L_i^-T (z_i - X_(i+1) y_(i+1)).
    Block-diagonal systems (no ``upper``) are F independent Cholesky solves. Here L^-1 is formed explicitly
    (see :func:`_inverse_cholesky_factor`)."""
    n_frames, n, _ = diag.shape
    ups = {i: m for i, j, m in upper}
    if not ups:
        out = np.empty_like(rhs)
        for f in range(n_frames):
            li = _inverse_cholesky_factor(diag[f])
            out[f] = li.T @ (li @ rhs[f])
        return out
    linv = []
    xs: list[np.ndarray | None] = [None] * n_frames
    z = np.empty_like(rhs)
    for f in range(n_frames):
        d = diag[f]
        r = rhs[f]
        if f > 0 and (f - 1) in ups:
            x = linv[f - 1] @ ups[f - 1]
            xs[f] = x
            d = d - x.T @ x
            r = r - x.T @ z[f - 1]
        linv.append(_inverse_cholesky_factor(d))
        z[f] = linv[f] @ r
    y = np.empty_like(rhs)
    for f in range(n_frames - 1, -1, -1):
        r = z[f]
        if f + 1 < n_frames and xs[f + 1] is not None:
            r = r - xs[f + 1] @ y[f + 1]
        y[f] = linv[f].T @ r
    return y


def _inverse_cholesky_factor(a: np.ndarray) -> np.ndarray:
    """L^-1 for the Cholesky factor a = L L^T (LAPACK potrf + trtri), so a^-1 b = L^-T (L^-1 b).
    (Triangular solves with many right-hand sides, trsm, are pathologically slow in the OpenBLAS build we
    ship with; two matrix products with the explicit triangular inverse are fast and accurate here.)"""
    c, info = dpotrf(a, lower=1, clean=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"matrix not positive definite (potrf info {info})")
    li, info = dtrtri(c, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"trtri failed (info {info})")
    return li


def _ata(a: np.ndarray) -> np.ndarray:
    """A^T A by a symmetric rank-k update (BLAS syrk, half the flops of a matmul), both triangles filled."""
    u = dsyrk(1.0, a.T, trans=0, lower=0)   # a.T is Fortran-ordered: no copy; lower triangle left 0
    h = u + u.T
    h.flat[::h.shape[0] + 1] *= 0.5
    return h


def _cholesky_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve a x = b for symmetric positive definite a by Cholesky (LAPACK potrf/potrs)."""
    c, info = dpotrf(a, lower=0, clean=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"matrix not positive definite (potrf info {info})")
    x, info = dpotrs(c, b, lower=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"potrs failed (info {info})")
    return x


def _params_finite(p: FitParams) -> bool:
    return bool(np.all(np.isfinite(p.identity)) and np.all(np.isfinite(p.expression))
                and np.all(np.isfinite(p.root_rotation)) and np.all(np.isfinite(p.translation_mm))
                and np.all(np.isfinite(p.joints)) and np.isfinite(p.focal_px))


def _distort(uv: np.ndarray, x_mm: np.ndarray, intr: Intrinsics) -> np.ndarray:
    if not intr.dist_coeffs or not any(c != 0 for c in intr.dist_coeffs):
        return uv
    import cv2
    pts, _ = cv2.projectPoints(x_mm.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), intr.matrix,
                               np.asarray(intr.dist_coeffs))
    return pts.reshape(-1, 2)
