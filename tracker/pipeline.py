"""The tracking pipeline: frames in, TrackedFrames out (plain Python over numpy; no Qt, no torch).

One frame (DESIGN.md, data flow)::

    ROI   from the previous frame's fit: the model's iBUG eye centres and mouth in the image (fixed affine
          combinations of the fitted landmarks) -> fixed triangle (tracker.roi); when there is none or
          tracking was lost: the face detector (BlazeFace), then one refine pass (ROI from the network's
          own landmarks)
    network  S x S crop -> mu (L, 2), sigma (L,) in image px (onnxruntime, one thread)
    fit   Levenberg-Marquardt warm-started from the previous frame (pose, expression, eyes)
    lost  network uncertainty / fit residual too large (tracker.landmarks.lost) -> untracked; when the ROI
          came from the previous fit, the frame is tried once more from the detector

``TrackedFrame.timings_ms`` has ``decode`` (the time the source took to give the frame: decoding a file;
0 for live sources, which decode in their own thread: their waiting time is ``wait``, outside ``total``),
``roi`` (ROI from the fit, or the detector), ``detect`` (the detector's part of ``roi``, 0 when it did not
run), ``network``, ``fit`` (fit and the lost test) and ``total`` (all of them, decode included).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from tracker.roi import roi_from_points, roi_points_from_ibug68
from tracker.types import (CM_TO_MM, DEFAULT_HFOV_DEG, MODEL_TO_CAMERA_AXES, FitParams, FitResult, Frame,
                           Intrinsics, Landmarks, Roi, TrackedFrame)

log = logging.getLogger(__name__)


class PipelineError(Exception):
    """The pipeline cannot be built (no landmark model, no head model ...); the message is for the user."""


@dataclass(frozen=True)
class PipelineOptions:
    """landmark_model: the ONNX file (default ``assets/landmark_model.onnx``); threads: onnxruntime threads;
    intrinsics: the camera (e.g. from a calibration profile; rescaled to the frame size), else the source's
    hint, else ``hfov_deg``; identity: (n_id,) the face's identity; when None, the saved face profile's
    (``tracker.camera.profiles``, if ``use_face_profile`` and it was made for this head model), else the mean;
    refine_passes: network passes with a ROI from its own landmarks after a detection;
    redetect_every: run the detector every N frames even while tracking (0: only when lost);
    fit_options: a ``tracker.fitting.energy.FitOptions`` (the fitter's defaults when None);
    min_detection_score: BlazeFace threshold; roi_from: where the next frame's ROI comes from while tracking:
    "fit" (the fitted model's iBUG eyes and mouth, DESIGN.md) or "landmarks" (the network's own landmarks of
    this frame through the refine pass's weights)."""

    landmark_model: Path | None = None
    threads: int = 1
    intrinsics: Intrinsics | None = None
    hfov_deg: float = DEFAULT_HFOV_DEG
    identity: np.ndarray | None = None
    refine_passes: int = 1
    redetect_every: int = 0
    fit_options: object | None = None
    min_detection_score: float = 0.5
    use_face_profile: bool = True
    roi_from: str = "fit"


# ------------------------------------------------------------------------------------------ mesh on demand


class _FullMesh:
    """The full head mesh posed by FitParams (the forward model of ``tracker.face.model``) in float32, with the
    identity part cached per identity and the root transform folded into the skinning transforms."""

    def __init__(self, model):
        self.model = model
        self._key: bytes | None = None
        self._rest = None
        self._joints = None
        self._exp_flat = np.ascontiguousarray(model.expression_basis_cm, dtype=np.float32).reshape(
            model.n_expression, -1)                                                               # (n_exp, 3N)
        self._weights = np.ascontiguousarray(model.skin_weights, dtype=np.float32)               # (N, K)

    def _identity_rest(self, beta: np.ndarray):
        key = beta.tobytes()
        if key != self._key:
            from tracker.face.forward import joint_locations

            m = self.model
            self._rest = (np.asarray(m.neutral_cm, np.float32)
                          + np.tensordot(beta.astype(np.float32), m.identity_basis_cm, axes=1)).reshape(-1)
            self._joints = joint_locations(m, beta)
            self._key = key
        return self._rest, self._joints

    def posed_mm(self, p: FitParams) -> np.ndarray:
        from tracker.face.forward import joint_transforms, rotation_matrix

        m = self.model
        rest, joints_cm = self._identity_rest(np.asarray(p.identity, np.float64))
        # rest shape T(beta, psi) = neutral + B_id beta + B_exp psi
        t = (rest + np.asarray(p.expression, np.float32) @ self._exp_flat).reshape(-1, 3)
        # camera x = R_root (10 M) sum_k w_k G_k T + t = sum_k w_k [(R_root 10 M) G_k] T + t (weights sum to 1)
        g = joint_transforms(m, np.asarray(p.joints, np.float64).reshape(-1, 3), joints_cm)[:, :3, :]  # (K, 3, 4)
        c = np.einsum("ab,kbc->kac", rotation_matrix(np.asarray(p.root_rotation, np.float64))
                      @ (CM_TO_MM * MODEL_TO_CAMERA_AXES), g)
        blended = (self._weights @ c.reshape(len(c), 12).astype(np.float32)).reshape(-1, 3, 4)
        x = np.einsum("nab,nb->na", blended[:, :, :3], t) + blended[:, :, 3]
        return x.astype(np.float64) + np.asarray(p.translation_mm, np.float64)


_MESHES: dict[int, _FullMesh] = {}


def fit_vertices(model, fit: FitResult | FitParams) -> np.ndarray:
    """(N, 3) camera-space millimetres of every vertex of ``model`` posed by a fit (or its FitParams).

    The forward model of ``tracker.face.model`` in float32 with the identity part cached per identity, so per
    frame only expressions and skinning run (about 2 ms of CPU for the 26,719 vertices, against 10 ms for
    ``tracker.face.forward.posed_vertices`` in float64; they agree to 1e-3 mm, see tests/test_pipeline.py).
    """
    params = fit.params if isinstance(fit, FitResult) else fit
    mesh = _MESHES.get(id(model))
    if mesh is None or mesh.model is not model:
        if len(_MESHES) > 4:
            _MESHES.clear()
        mesh = _MESHES[id(model)] = _FullMesh(model)
    return mesh.posed_mm(params)


# ------------------------------------------------------------------------------------------------- pipeline


class Pipeline:
    """Tracks frames one by one, carrying the last fit from frame to frame.

    Components are built from ``options`` unless given (tests and benchmarks pass their own):
    ``detector`` (``detect(image) -> [Detection]``), ``predictor`` (``LandmarkPredictor``), ``model``
    (HeadModel), ``fitter`` (``FaceFitter``), ``ibug68_vertices`` ((68,) vertex ids for the ROI).
    Raises PipelineError with the reason when a component cannot be built.
    """

    def __init__(self, options: PipelineOptions | None = None, *, detector=None, predictor=None, model=None,
                 fitter=None, ibug68_vertices: np.ndarray | None = None):
        self.options = options or PipelineOptions()
        o = self.options
        try:
            if predictor is None:
                from tracker.landmarks.predictor import LandmarkPredictor

                predictor = LandmarkPredictor(o.landmark_model, threads=o.threads)
            self.predictor = predictor
            info = getattr(predictor, "info", None)
            self.landmark_set_name = (getattr(info, "landmark_set", "") or "landmarks320") if info else "landmarks320"
            if model is None:
                from tracker.face.build import load_head_model

                model = load_head_model()
            self.model = model
            if fitter is None or ibug68_vertices is None:
                from tracker.face.landmark_sets import load_landmark_set
            if fitter is None:
                from tracker.fitting.solver import FaceFitter

                lm_set = load_landmark_set(self.landmark_set_name)
                n_out = int(getattr(predictor, "n_landmarks", 0) or 0)
                if n_out and n_out != len(lm_set):
                    raise PipelineError(
                        f"cannot start tracking: the landmark model outputs {n_out} landmarks but its landmark "
                        f"set '{self.landmark_set_name}' has {len(lm_set)} (set 'landmark_set' in its JSON)")
                fitter = FaceFitter(model, lm_set, o.fit_options)
            self.fitter = fitter
            if ibug68_vertices is None:
                ibug68_vertices = load_landmark_set("landmarks68").vertex_ids
            if detector is None:
                from tracker.detect import FaceDetector

                detector = FaceDetector(min_score=o.min_detection_score)
            self.detector = detector
        except PipelineError:
            raise
        except (ImportError, FileNotFoundError, ValueError, OSError) as exc:
            raise PipelineError(f"cannot start tracking: {exc}") from exc
        self.identity = None if o.identity is None else np.asarray(o.identity, dtype=np.float64)
        self.identity_source = "options" if o.identity is not None else "mean face"
        if self.identity is None and o.use_face_profile:
            try:
                from tracker.camera.profiles import load_face_profile

                profile = load_face_profile(getattr(model, "version", None))
            except Exception as exc:  # noqa: BLE001 - no profile is the normal case
                log.debug("no face profile: %s", exc)
                profile = None
            if profile is not None and np.shape(profile.identity) == (model.n_identity,):
                self.identity = np.asarray(profile.identity, dtype=np.float64)
                self.identity_source = f"face profile ({profile.created})"
                log.info("using the saved face profile for the identity")
        self._ids68 = np.asarray(ibug68_vertices, dtype=np.int64)
        if self._ids68.shape != (68,):
            raise PipelineError(f"expected 68 iBUG vertex ids, got {self._ids68.shape}")
        self._rest68 = None
        self._rest68_key: bytes | None = None
        # (3, L) affine weights: the iBUG eye centres and mouth from the L landmarks (tracker.landmarks.refine)
        self.roi_weights = None
        try:
            from tracker.landmarks.model_roi import roi_weights_for

            self.roi_weights = roi_weights_for(self.landmark_set_name, int(getattr(predictor, "n_landmarks", 0)))
        except Exception as exc:  # noqa: BLE001 - no weights: no refine pass, ROI by projecting the iBUG points
            log.info("no ROI weights for the landmark set: %s", exc)
        if o.roi_from not in ("fit", "landmarks"):
            raise PipelineError(f"roi_from must be 'fit' or 'landmarks', got {o.roi_from!r}")
        if o.roi_from == "landmarks" and self.roi_weights is None:
            raise PipelineError(f"roi_from='landmarks' needs ROI weights for '{self.landmark_set_name}'")
        self.crop_size = int(predictor.input_size)
        self.crop_zoom = float(getattr(predictor, "crop_zoom", 1.0))  # the model's (tracker.roi.template)
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame (the next frame starts from the detector)."""
        self._previous: FitParams | None = None
        self._previous_mu: np.ndarray | None = None
        self._previous_fit_px: np.ndarray | None = None
        self._frames_since_detect = 0

    def describe(self) -> dict:
        """Versions for a session's metadata."""
        info = getattr(self.predictor, "info", None)
        return {
            "model_version": getattr(self.model, "version", ""),
            "landmark_set": self.landmark_set_name,
            "landmark_model": str(getattr(info, "path", "")),
            "landmark_model_version": getattr(info, "version", ""),
            "n_landmarks": int(getattr(self.predictor, "n_landmarks", 0) or 0),
            "crop_size": self.crop_size,
            "crop_zoom": self.crop_zoom,
            "identity": self.identity_source,
        }

    # ---------------------------------------------------------------------------------------- stages
    def intrinsics_for(self, frame: Frame, hint: Intrinsics | None = None) -> Intrinsics:
        """The options' intrinsics, else the source's hint, else ``hfov_deg``; at the frame's size."""
        intr = self.options.intrinsics or hint
        if intr is None:
            return Intrinsics.from_fov(frame.width, frame.height, self.options.hfov_deg)
        if (intr.width, intr.height) != (frame.width, frame.height):
            intr = intr.scaled_to(frame.width, frame.height)
        return intr

    def project68(self, params: FitParams, intrinsics: Intrinsics) -> np.ndarray:
        """(68, 2) the fitted model's iBUG points in image px (pinhole with the fit's focal length)."""
        from tracker.face.forward import identity_shape, posed_vertices

        key = np.asarray(params.identity, np.float64).tobytes()
        if key != self._rest68_key:
            self._rest68 = identity_shape(self.model, params.identity, self._ids68)
            self._rest68_key = key
        x = posed_vertices(self.model, params, self._ids68, self._rest68)
        f = float(params.focal_px)
        aspect = intrinsics.fy / intrinsics.fx
        return np.stack([f * x[:, 0] / x[:, 2] + intrinsics.cx, f * aspect * x[:, 1] / x[:, 2] + intrinsics.cy], 1)

    def _roi_from_fit(self, params: FitParams, intr: Intrinsics) -> Roi | None:
        """The ROI for this frame from the previous one. roi_from="fit": the fitted model's iBUG eye centres and
        mouth; they are fixed affine combinations of the fitted landmarks (``roi_weights``, exact on the
        neutral mesh, within 0.002 eye distances on real fits: tests/test_pipeline.py), which the fitter has
        already projected (distortion included), so no projection runs here; without weights the 68 points
        are projected (:meth:`project68`). roi_from="landmarks": the network's own landmarks instead."""
        try:
            from tracker.landmarks.refine import roi_points_from_landmarks

            if self.options.roi_from == "landmarks" and self._previous_mu is not None:
                return self._roi(roi_points_from_landmarks(self._previous_mu, self.roi_weights))
            px = self._previous_fit_px
            if self.roi_weights is not None and px is not None and px.shape[0] == self.roi_weights.shape[1]:
                pts3 = roi_points_from_landmarks(px, self.roi_weights)
                return self._roi(pts3) if np.all(np.isfinite(pts3)) else None
            pts = self.project68(params, intr)
            if not np.all(np.isfinite(pts)):
                return None
            return self._roi(roi_points_from_ibug68(pts))
        except ValueError as exc:
            log.debug("ROI from the previous fit failed: %s", exc)
            return None

    def _roi(self, points: np.ndarray) -> Roi:
        """The network's ROI for (3, 2) image points [right eye, left eye, mouth], at the model's crop zoom."""
        return roi_from_points(points, self.crop_size, self.crop_zoom)

    def _detect(self, image: np.ndarray) -> tuple[Roi | None, float]:
        """The detector's best face as a ROI (None: no face) and the detector's time in ms."""
        t0 = time.perf_counter()
        dets = self.detector.detect(image)
        t_det = (time.perf_counter() - t0) * 1e3
        if not dets:
            return None, t_det
        try:
            return self._roi(dets[0].roi_points()), t_det
        except ValueError:
            return None, t_det

    def _predict(self, image: np.ndarray, roi: Roi) -> Landmarks:
        """The network on the ROI (``warp_to_crop`` reads only the part of the frame the crop covers)."""
        return self.predictor.predict(image, roi)

    def _network(self, image: np.ndarray, roi: Roi, refine: bool) -> tuple[Roi, Landmarks]:
        lms = self._predict(image, roi)
        if refine and self.roi_weights is not None:
            from tracker.landmarks.refine import roi_points_from_landmarks

            for _ in range(self.options.refine_passes):
                try:
                    roi = self._roi(roi_points_from_landmarks(lms.mu_px, self.roi_weights))
                except ValueError:
                    break
                lms = self._predict(image, roi)
        return roi, lms

    def _fit_and_check(self, lms: Landmarks, roi: Roi, intr: Intrinsics, previous: FitParams | None):
        """(fit or None, reason lost or ""). Uncertain landmarks are rejected before fitting (no time spent);
        a fit that cannot explain the landmarks is rejected after (``tracker.landmarks.lost``'s two tests)."""
        from tracker.landmarks.lost import LostThresholds, median_sq_residual, tracking_lost

        decision = tracking_lost(lms, roi)
        if decision.lost:
            return None, decision.reason
        fit = self.fitter.fit_frame(lms, intr, previous, identity=self.identity)
        if not np.isfinite(fit.cost):  # the fitter's answer to degenerate input: a placeholder and a message
            return fit, f"fit failed: {fit.message or 'no finite cost'}"
        limit = LostThresholds().max_median_sq_residual
        stat = median_sq_residual(lms, fit.landmarks_px)
        if not np.isfinite(stat) or stat > limit:
            return fit, (f"the model does not fit the landmarks (median squared residual {stat:.1f} sigma^2 > "
                         f"{limit})")
        return fit, ""

    def process(self, frame: Frame, intrinsics: Intrinsics | None = None, decode_ms: float = 0.0) -> TrackedFrame:
        """Track one frame (the previous frame's fit is the starting point)."""
        t_start = time.perf_counter()
        intr = intrinsics if intrinsics is not None else self.intrinsics_for(frame)
        image = frame.image
        timings = {"decode": float(decode_ms), "roi": 0.0, "detect": 0.0, "network": 0.0, "fit": 0.0}
        previous = self._previous
        redetect = (self.options.redetect_every > 0 and self._frames_since_detect >= self.options.redetect_every)
        attempts = ["fit"] if previous is not None and not redetect else []
        attempts.append("detector")
        roi = lms = fit = None
        message = ""
        tracked = False
        for how in attempts:
            t0 = time.perf_counter()
            if how == "fit":
                roi = self._roi_from_fit(previous, intr)
                timings["roi"] += (time.perf_counter() - t0) * 1e3
                if roi is None:
                    continue
            else:
                roi, t_det = self._detect(image)
                timings["roi"] += (time.perf_counter() - t0) * 1e3
                timings["detect"] += t_det
                self._frames_since_detect = 0
                if roi is None:
                    message = "no face found"
                    lms = fit = None
                    break
            t1 = time.perf_counter()
            try:
                roi, lms = self._network(image, roi, refine=(how == "detector"))
            except (ValueError, FloatingPointError) as exc:  # e.g. non-finite network output: this frame only
                log.warning("landmark network failed on frame %d: %s", frame.index, exc)
                timings["network"] += (time.perf_counter() - t1) * 1e3
                lms = fit = None
                message = f"tracking lost: the landmark network failed ({exc})"
                continue
            t2 = time.perf_counter()
            timings["network"] += (t2 - t1) * 1e3
            try:
                fit, reason = self._fit_and_check(lms, roi, intr, previous if how == "fit" else None)
            except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:  # a numerical failure
                log.warning("fit failed on frame %d: %s", frame.index, exc)
                fit, reason = None, f"fit failed ({exc})"
            timings["fit"] += (time.perf_counter() - t2) * 1e3
            if not reason:
                tracked, message = True, ""
                break
            message = f"tracking lost: {reason}"
        self._frames_since_detect += 1
        self._previous = fit.params if tracked else None
        self._previous_mu = lms.mu_px if tracked else None
        self._previous_fit_px = fit.landmarks_px if tracked else None
        timings["total"] = (time.perf_counter() - t_start) * 1e3 + float(decode_ms)
        return TrackedFrame(frame=frame, intrinsics=intr, roi=roi, landmarks=lms, fit=fit, tracked=tracked,
                            timings_ms=timings, message=message)

    def track(self, frames: Iterable[Frame], source=None, *, max_frames: int | None = None) -> Iterator[TrackedFrame]:
        """TrackedFrames for ``frames`` (a FrameSource or any iterable of Frames). ``source``: where the frames
        come from, for its ``intrinsics_hint`` (``frames`` itself when it is a source)."""
        source = source if source is not None else frames
        hint = getattr(source, "intrinsics_hint", None)
        live = bool(getattr(source, "is_live", False))
        it = iter(frames)
        n = 0
        while max_frames is None or n < max_frames:
            t0 = time.perf_counter()
            try:
                frame = next(it)
            except StopIteration:
                return
            waited_ms = (time.perf_counter() - t0) * 1e3
            if live:  # a camera decodes in its own thread: the time here is waiting for the next frame
                tf = self.process(frame, self.intrinsics_for(frame, hint))
                tf.timings_ms["wait"] = waited_ms
                yield tf
            else:
                yield self.process(frame, self.intrinsics_for(frame, hint), waited_ms)
            n += 1


def track(source, options: PipelineOptions | None = None, *, max_frames: int | None = None,
          pipeline: Pipeline | None = None) -> Iterator[TrackedFrame]:
    """Track a frame source (or iterable of Frames) with a new Pipeline (or ``pipeline``)."""
    pipeline = pipeline or Pipeline(options)
    return pipeline.track(source, max_frames=max_frames)
