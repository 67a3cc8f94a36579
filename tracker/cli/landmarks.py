"""``python main.py landmarks IMAGE... [--json]``: dense landmarks, sigmas and the fitted model's 68 iBUG points.

Per image: BlazeFace -> ROI -> network -> one refine pass (ROI from the network's own eye and mouth
landmarks) -> network -> the head model fitted to the landmarks (camera with a 45 degree horizontal field of
view) -> the model's iBUG-68 vertices projected into the image.

Output: a readable block per image, or with ``--json`` one JSON object per image per line:
``{"file", "face": true, "width", "height", "detection_score", "landmark_set", "landmarks_px": [[x, y], ...],
"sigma_px": [...], "median_sigma_norm", "tracking_lost", "ibug68_px": [[x, y], ...] | null, "fit": {...}}``
or ``{"file", "face": false, "reason"}`` when no face is found (exit status 0): the detector finds none, or
its best candidate gives landmarks too uncertain to be a face (:func:`tracker.landmarks.lost.tracking_lost`).
``tracking_lost`` of a found face is the fit test: the head model cannot explain the landmarks. An unreadable file prints one
error line (``main.py landmarks: error: ...``) on stderr and makes the exit status 1; the others still run.
"""

from __future__ import annotations

import json
import logging
import sys

log = logging.getLogger(__name__)


def add_arguments(p) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any format OpenCV reads)")
    p.add_argument("--json", action="store_true", help="one JSON object per image per line")
    p.add_argument("--model", default=None, help="ONNX landmark model (default assets/landmark_model.onnx)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    p.add_argument("--hfov", type=float, default=45.0, help="horizontal field of view in degrees (default 45)")
    p.add_argument("--no-fit", action="store_true", help="landmarks only, no model fit")
    p.add_argument("--min-score", type=float, default=0.5, help="face detector threshold (default 0.5)")


class _Fitter:
    """H2's fitter and H1's forward model for the 68 iBUG points; ``error`` says why it is unavailable."""

    def __init__(self, landmark_set: str, n_landmarks: int):
        self.error = ""
        try:
            from tracker.face.build import load_head_model
            from tracker.face.landmark_sets import load_landmark_set
            from tracker.fitting.solver import FaceFitter

            self.model = load_head_model()
            lm_set = load_landmark_set(landmark_set or "landmarks320")
            if len(lm_set) != n_landmarks:
                raise ValueError(f"landmark set '{lm_set.name}' has {len(lm_set)} landmarks, the network "
                                 f"{n_landmarks}")
            self.ibug = load_landmark_set("landmarks68")
            self.fitter = FaceFitter(self.model, lm_set)
        except Exception as exc:  # the fitter or head model not available: landmarks only
            self.error = f"no model fit: {exc}"
            log.warning(self.error)

    def fit(self, landmarks, width: int, height: int, hfov: float) -> dict:
        import numpy as np

        from tracker.face.forward import posed_vertices, project
        from tracker.types import Intrinsics

        intr = Intrinsics.from_fov(width, height, hfov)
        res = self.fitter.fit_frame(landmarks, intr, None)
        pts68 = project(posed_vertices(self.model, res.params, self.ibug.vertex_ids), intr)
        return {"result": res, "ibug68_px": pts68 if np.all(np.isfinite(pts68)) else None}


def _readable(out: dict) -> str:
    if not out["face"]:
        return f"{out['file']}: no face ({out['reason']})"
    lines = [f"{out['file']}: face (detector score {out['detection_score']:.2f}), {len(out['landmarks_px'])} "
             f"landmarks '{out['landmark_set']}', median sigma {out['median_sigma_norm']:.4f} of the half crop"
             + (f"; tracking lost: {out['lost_reason']}" if out["tracking_lost"] else "")]
    lines.append("  landmarks (index x_px y_px sigma_px):")
    lines += [f"  {i:4d} {x:9.2f} {y:9.2f} {s:7.2f}"
              for i, ((x, y), s) in enumerate(zip(out["landmarks_px"], out["sigma_px"]))]
    fit = out.get("fit") or {}
    if out.get("ibug68_px") is not None:
        lines.append(f"  fitted model: cost {fit.get('cost', float('nan')):.1f}, {fit.get('iterations')} iterations"
                     f"{'' if fit.get('converged') else ', not converged'}; iBUG 68 (index x_px y_px):")
        lines += [f"  {i:4d} {x:9.2f} {y:9.2f}" for i, (x, y) in enumerate(out["ibug68_px"])]
    elif fit.get("error"):
        lines.append(f"  {fit['error']}")
    return "\n".join(lines)


def run(args) -> int:
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2
    import numpy as np

    from tracker.cli import CommandError
    from tracker.detect import FaceDetector
    from tracker.landmarks.lost import median_sigma_norm, tracking_lost
    from tracker.landmarks.model_roi import roi_weights_for
    from tracker.landmarks.predictor import LandmarkModelError, LandmarkPredictor
    from tracker.landmarks.refine import locate_face

    if not 1.0 <= args.hfov <= 179.0:
        raise CommandError(f"--hfov must be in [1, 179] degrees, got {args.hfov}")
    if not 0.0 <= args.min_score <= 1.0:
        raise CommandError(f"--min-score must be in [0, 1], got {args.min_score}")
    if args.threads < 1:
        raise CommandError(f"--threads must be at least 1, got {args.threads}")
    try:
        predictor = LandmarkPredictor(args.model, threads=args.threads)
    except LandmarkModelError as exc:
        raise CommandError(str(exc)) from exc
    weights = roi_weights_for(predictor.info.landmark_set, predictor.n_landmarks)
    fitter = None if args.no_fit else _Fitter(predictor.info.landmark_set, predictor.n_landmarks)
    status = 0
    with FaceDetector(min_score=args.min_score) as detector:
        for path in args.images:
            image = cv2.imread(path, cv2.IMREAD_COLOR) if os.path.isfile(path) else None
            if image is None:
                why = "no such file" if not os.path.exists(path) else "not an image OpenCV can read"
                print(f"main.py landmarks: error: cannot read {path}: {why}", file=sys.stderr)
                status = 1
                continue
            h, w = image.shape[:2]
            located = locate_face(image, detector, predictor, weights)
            if located is None:
                out = {"file": path, "face": False, "reason": "no face found by the detector",
                       "width": w, "height": h}
            elif tracking_lost(located.landmarks, located.roi).lost:
                decision = tracking_lost(located.landmarks, located.roi)
                out = {"file": path, "face": False, "width": w, "height": h,
                       "reason": f"the detector found a candidate (score {located.detection_score:.2f}) but "
                                 f"the landmark network rejects it: {decision.reason}"}
            else:
                lm = located.landmarks
                out = {"file": path, "face": True, "width": w, "height": h,
                       "detection_score": located.detection_score, "landmark_set": predictor.info.landmark_set,
                       "roi_matrix": located.roi.matrix.tolist(), "landmarks_px": lm.mu_px.tolist(),
                       "sigma_px": lm.sigma_px.tolist(),
                       "median_sigma_norm": median_sigma_norm(lm, located.roi)}
                fitted_px = None
                if fitter is not None and not fitter.error:
                    fit = fitter.fit(lm, w, h, args.hfov)
                    res = fit["result"]
                    fitted_px = res.landmarks_px
                    out["ibug68_px"] = None if fit["ibug68_px"] is None else fit["ibug68_px"].tolist()
                    out["fit"] = {"cost": float(res.cost), "iterations": int(res.iterations),
                                  "converged": bool(res.converged), "message": res.message,
                                  "hfov_deg": args.hfov, "focal_px": float(res.params.focal_px),
                                  "root_rotation": np.asarray(res.params.root_rotation).tolist(),
                                  "translation_mm": np.asarray(res.params.translation_mm).tolist()}
                else:
                    out["ibug68_px"] = None
                    out["fit"] = {"error": fitter.error if fitter is not None else "fit skipped (--no-fit)"}
                # the sigma test passed above; this adds the fit test (the model cannot explain the landmarks)
                decision = tracking_lost(lm, located.roi, fitted_px=fitted_px)
                out["tracking_lost"] = decision.lost
                out["lost_reason"] = decision.reason
            if args.json:
                print(json.dumps(out))
            else:
                print(_readable(out))
            sys.stdout.flush()
    return status
