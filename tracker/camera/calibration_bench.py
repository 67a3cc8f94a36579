"""``python main.py bench calibrate [--json]``: calibration accuracy on synthetic data with known intrinsics.

- board: checkerboard and ChArUco views rendered through known cameras (with distortion), detected and
  calibrated (``tracker.camera.calibration``); focal error in %, target <= 0.5 %.
- face: landmark sequences (the 320-landmark set) of the real ICT-FaceKit head (random identity, small
  expressions) moving through the guided protocol (yaw +-35 deg, pitch +-20 deg, depth 0.35-0.8 m), projected
  through a known focal length, with Gaussian landmark noise (1-2 px); each frame fitted in tracking mode at the
  default 45 deg guess, keyframes chosen by coverage, focal + identity solved through the fitter's focal mode;
  focal error in %, target <= 3 % (worst over cases and repeats). Two stress cases add a fixed 2 mm per-landmark
  shape error the model cannot represent; they are reported separately (``stress_*``), not in ``pass``.

- face_rendered: the head model rendered through a known camera (65 deg) along the same protocol and tracked by
  the real pipeline (detector, landmark network, fitter): the whole chain, reported beside the targets.

Everything runs on one thread (OMP/BLAS pinned by the caller's environment; cv2 set here).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from tracker.types import Intrinsics, Landmarks

log = logging.getLogger(__name__)

BOARD_TARGET_PCT = 0.5
FACE_TARGET_PCT = 3.0


def add_arguments(p) -> None:
    p.add_argument("--part", choices=("all", "board", "face", "rendered"), default="all",
                   help="which part: board, face (synthetic landmarks), rendered (rendered head through the whole "
                        "pipeline); all runs the three")
    p.add_argument("--rendered-frames", type=int, default=48, help="frames of the rendered sequence (default 48)")
    p.add_argument("--board-views", type=int, default=12, help="views per board calibration (default 12)")
    p.add_argument("--face-frames", type=int, default=48, help="frames per synthetic face sequence (default 48)")
    p.add_argument("--face-noise-px", type=float, default=None,
                   help="landmark noise std in px for every face case (default: each case's own, 1 or 2 px)")
    p.add_argument("--face-landmarks", default="landmarks320",
                   help="the landmark set of the synthetic face: a frozen set's name (default landmarks320, the "
                        "network's) or a number N of face vertices spread by farthest-point sampling")
    p.add_argument("--face-repeats", type=int, default=2,
                   help="runs per face case, each with a new identity and noise (default 2)")
    p.add_argument("--seed", type=int, default=0)


# ----------------------------------------------------------------------------------------------------------
# Board part

BOARD_CASES = (
    ("checkerboard:9x6:25mm", Intrinsics(640, 480, 585.0, 585.0, 322.5, 236.0, (-0.22, 0.09, 0.001, -0.0007, 0.0))),
    ("charuco:9x7:20mm:15mm", Intrinsics(1280, 720, 915.0, 915.0, 645.0, 355.0, (0.08, -0.12, 0.0, 0.0005, 0.0))),
    ("checkerboard:7x5:30mm", Intrinsics(1280, 720, 1560.0, 1560.0, 630.0, 370.0)),
)


def board_benchmark(n_views: int, seed: int) -> dict:
    from tracker.camera.board import BoardSpec, random_board_poses, render_board_view
    from tracker.camera.calibration import calibrate_board

    rng = np.random.default_rng(seed)
    cases = {}
    worst = 0.0
    for board, cam in BOARD_CASES:
        spec = BoardSpec.parse(board)
        t0 = time.perf_counter()
        images = [render_board_view(spec, cam, r, t, rng=rng) for r, t in random_board_poses(spec, cam, n_views, rng)]
        t1 = time.perf_counter()
        res = calibrate_board(images, spec)
        t2 = time.perf_counter()
        k = res.intrinsics
        err = 100.0 * max(abs(k.fx / cam.fx - 1), abs(k.fy / cam.fy - 1))
        worst = max(worst, err)
        name = f"{spec.kind}_{cam.width}x{cam.height}_hfov{cam.hfov_deg:.0f}"
        cases[name] = {
            "board": str(spec), "views": res.n_views, "true_fx": cam.fx, "fx": k.fx, "fy": k.fy,
            "focal_error_pct": err, "cx_error_px": k.cx - cam.cx, "cy_error_px": k.cy - cam.cy,
            "k1_true": cam.dist_coeffs[0] if cam.dist_coeffs else 0.0, "k1": k.dist_coeffs[0],
            "rms_reprojection_px": res.rms_reprojection_px, "render_s": t1 - t0, "detect_calibrate_s": t2 - t1,
        }
    return {"cases": cases, "worst_focal_error_pct": worst, "target_pct": BOARD_TARGET_PCT,
            "pass": bool(worst <= BOARD_TARGET_PCT)}


# ----------------------------------------------------------------------------------------------------------
# Face part: synthetic landmark sequences


def face_landmark_ids(model, n: int, seed: int = 0) -> np.ndarray:
    """(n,) vertex ids spread over the model's 'Face' part (farthest-point sampling on the neutral shape)."""
    part = np.asarray(model.part_names)[np.asarray(model.vertex_part)]
    face = np.flatnonzero(part == "Face")
    if face.size == 0:
        raise ValueError("the head model has no 'Face' part")
    pts = np.asarray(model.neutral_cm, dtype=np.float64)[face]
    front = pts[:, 2] > np.quantile(pts[:, 2], 0.35)  # the front of the face, not the sides of the head
    face, pts = face[front], pts[front]
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(face)))]
    d = np.linalg.norm(pts - pts[chosen[0]], axis=1)
    for _ in range(min(n, len(face)) - 1):
        i = int(np.argmax(d))
        chosen.append(i)
        d = np.minimum(d, np.linalg.norm(pts - pts[i], axis=1))
    return np.sort(face[chosen])


def _rot_xy(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Axis-angle root rotation giving head yaw/pitch as ``face_calibration.head_yaw_pitch_deg`` reads them."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("YX", [-yaw_deg, -pitch_deg], degrees=True).as_rotvec()


@dataclass(frozen=True, eq=False)
class SyntheticFaceSequence:
    """landmarks per frame, the true camera, identity (n_id,), and per-frame yaw/pitch (deg) and depth (mm)."""

    landmarks: list[Landmarks]
    camera: Intrinsics
    identity: np.ndarray
    yaw_deg: np.ndarray
    pitch_deg: np.ndarray
    depth_mm: np.ndarray


def synthetic_face_sequence(landmark_model, camera: Intrinsics, n_frames: int, rng: np.random.Generator,
                            noise_px: float = 1.0, depth_mm: tuple[float, float] = (350.0, 800.0),
                            yaw_amp_deg: float = 35.0, pitch_amp_deg: float = 20.0,
                            identity_scale: float = 1.0, expression_scale: float = 0.15,
                            shape_error_mm: float = 0.0) -> SyntheticFaceSequence:
    """A head following the guided protocol: yaw and pitch sweeps and a depth sweep over ``depth_mm``, projected
    through ``camera`` (``tracker.fitting.landmark_model.evaluate``) with N(0, noise_px^2) noise per coordinate.

    ``shape_error_mm``: a fixed N(0, shape_error_mm^2) offset per landmark and axis added to the rest shape, the
    same in every frame: a face the model cannot represent exactly (model and landmark-definition mismatch)."""
    from dataclasses import replace
    from scipy.spatial.transform import Rotation

    from tracker.fitting.landmark_model import Camera, evaluate
    from tracker.types import CM_TO_MM, MODEL_TO_CAMERA_AXES

    lm = landmark_model
    beta = rng.normal(0.0, identity_scale, lm.n_identity)
    rest = lm.rest_identity(beta)
    if shape_error_mm > 0:
        rest = replace(rest, shape_cm=rest.shape_cm + rng.normal(0.0, shape_error_mm / 10.0, rest.shape_cm.shape))
    centre_mm = CM_TO_MM * MODEL_TO_CAMERA_AXES @ np.asarray(rest.shape_cm, dtype=np.float64).mean(axis=0)
    cam = Camera(camera.fx, camera.cx, camera.cy, camera.fy / camera.fx)
    t = (np.arange(n_frames) + 0.5) / n_frames
    yaw = yaw_amp_deg * np.sin(2 * math.pi * t)
    pitch = pitch_amp_deg * np.sin(2 * math.pi * 2 * t + math.pi / 3)
    lo, hi = depth_mm
    depth = np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * 0.5 * (1 - np.cos(2 * math.pi * 1.5 * t)))
    out = []
    for i in range(n_frames):
        z = depth[i]
        # keep the face in the image: lateral offset up to 15% of the half-width at that depth
        tx = 0.15 * (camera.width / 2) * z / camera.fx * math.sin(2 * math.pi * 3 * t[i])
        ty = 0.1 * (camera.height / 2) * z / camera.fy * math.cos(2 * math.pi * 2.5 * t[i])
        psi = np.clip(rng.normal(0.0, expression_scale, lm.n_expression), 0.0, 1.0)
        joints = np.zeros((lm.n_joints, 3))
        rot = _rot_xy(yaw[i], pitch[i])
        # place the landmarks' centroid (not the model origin) at (tx, ty, z)
        trans = np.array([tx, ty, z]) - Rotation.from_rotvec(rot).apply(centre_mm)
        ev = evaluate(lm, rest, psi, rot, trans, joints, cam, jacobian=False)
        uv = ev.uv_px + rng.normal(0.0, noise_px, ev.uv_px.shape)
        out.append(Landmarks(uv, np.full(len(uv), max(noise_px, 0.3))))
    return SyntheticFaceSequence(out, camera, beta, yaw, pitch, depth)


#: (width, height, hfov_deg, landmark noise px, shape error mm). The issue's protocol (known focal, landmark
#: noise, depth 0.35-0.8 m; the face generated by the model) decides "pass"; the stress cases add a fixed 2 mm
#: per-landmark shape error the model cannot represent and are reported beside it.
FACE_CASES = ((640, 480, 55.0, 1.0, 0.0), (1280, 720, 70.0, 1.0, 0.0), (640, 480, 80.0, 1.0, 0.0),
              (640, 480, 60.0, 2.0, 0.0))
FACE_STRESS_CASES = ((640, 480, 60.0, 2.0, 2.0), (1280, 720, 50.0, 2.0, 2.0))


def face_benchmark(n_frames: int, noise_px: float | None, n_landmarks: int | str, seed: int,
                   repeats: int = 1) -> dict:
    """Each case ``repeats`` times (new identity, expressions and noise each time): the signed focal error of
    every run, its mean (bias) and the worst |error|."""
    try:
        from tracker.face.build import load_head_model
        from tracker.fitting import FaceFitter
    except ImportError as exc:
        return {"missing": f"the fitter's focal mode is not in the tree ({exc})"}
    from tracker.camera.face_calibration import FaceCalibrationError, calibrate_landmarks

    model = load_head_model()
    if str(n_landmarks).isdigit():
        ids = face_landmark_ids(model, int(n_landmarks))
    else:
        from tracker.face.landmark_sets import load_landmark_set

        ids = load_landmark_set(str(n_landmarks)).vertex_ids
    fitter = FaceFitter(model, ids)
    rng = np.random.default_rng(seed)
    cases = {}
    worst = 0.0
    worst_stress = 0.0
    for w, h, hfov, case_noise, shape_error in FACE_CASES + FACE_STRESS_CASES:
        noise = case_noise if noise_px is None else noise_px
        cam = Intrinsics.from_fov(w, h, hfov)
        guess = Intrinsics.from_fov(w, h)
        name = f"{w}x{h}_hfov{hfov:.0f}_noise{noise:g}px_shape{shape_error:g}mm"
        errors, stds, keyframes, seconds, failures = [], [], [], [], []
        for _ in range(max(1, repeats)):
            seq = synthetic_face_sequence(fitter.lm, cam, n_frames, rng, noise_px=noise, shape_error_mm=shape_error)
            t0 = time.perf_counter()
            try:
                res = calibrate_landmarks(seq.landmarks, guess, fitter)
            except FaceCalibrationError as exc:
                failures.append(str(exc))
                continue
            seconds.append(time.perf_counter() - t0)
            errors.append(100.0 * (res.focal_px / cam.fx - 1))
            stds.append(100.0 * res.focal_std_px / res.focal_px)
            keyframes.append(res.n_keyframes)
        case_worst = max((abs(e) for e in errors), default=math.inf) if not failures else math.inf
        if shape_error > 0:
            worst_stress = max(worst_stress, case_worst)
        else:
            worst = max(worst, case_worst)
        cases[name] = {
            "true_focal_px": cam.fx, "start_focal_px": guess.fx, "hfov_true_deg": hfov, "noise_px": noise,
            "shape_error_mm": shape_error, "landmarks": len(ids), "frames": n_frames, "runs": len(errors),
            "focal_error_pct": case_worst, "signed_errors_pct": errors,
            "mean_error_pct": float(np.mean(errors)) if errors else math.nan,
            "reported_std_pct": float(np.mean(stds)) if stds else math.nan,
            "keyframes": float(np.mean(keyframes)) if keyframes else 0.0,
            "seconds_per_run": float(np.mean(seconds)) if seconds else math.nan,
        }
        if failures:
            cases[name]["failures"] = failures
    return {"cases": cases, "worst_focal_error_pct": worst, "target_pct": FACE_TARGET_PCT,
            "depth_range_mm": [350, 800], "pass": bool(worst <= FACE_TARGET_PCT),
            "stress_worst_focal_error_pct": worst_stress, "stress_within_target": bool(worst_stress <= FACE_TARGET_PCT)}


def rendered_face_benchmark(n_frames: int, seed: int, hfov_deg: float = 65.0, width: int = 640,
                            height: int = 480) -> dict:
    """End to end: the head model rendered (``tracker.face.render``) through a known camera along the guided
    protocol, tracked by the real pipeline (detector, landmark network, fitter) starting from the 45 degree guess,
    and calibrated from the tracked frames. Measures the whole chain, the network's landmarks included."""
    try:
        from tracker.face.build import load_head_model
        from tracker.face.render import render_head
        from tracker.pipeline import Pipeline, PipelineError, PipelineOptions
    except ImportError as exc:
        return {"missing": f"the pipeline or renderer is not in the tree ({exc})"}
    from tracker.camera.face_calibration import FaceCalibrator, fitter_focal_solver, head_yaw_pitch_deg
    from tracker.types import FitParams, Frame

    model = load_head_model()
    try:
        pipeline = Pipeline(PipelineOptions(use_face_profile=False))
    except PipelineError as exc:
        return {"missing": str(exc)}
    cam = Intrinsics.from_fov(width, height, hfov_deg)
    rng = np.random.default_rng(seed)
    beta = rng.normal(0.0, 0.7, model.n_identity)
    t = (np.arange(n_frames) + 0.5) / n_frames
    yaw = 35 * np.sin(2 * math.pi * t)
    pitch = 20 * np.sin(4 * math.pi * t + math.pi / 3)
    depth = np.exp(np.log(350) + (np.log(800) - np.log(350)) * 0.5 * (1 - np.cos(3 * math.pi * t)))
    t0 = time.perf_counter()
    frames = []
    for i in range(n_frames):
        z = depth[i]
        params = FitParams.neutral(model.n_identity, model.n_expression, cam.fx).replace(
            identity=beta, expression=np.clip(rng.normal(0.0, 0.1, model.n_expression), 0.0, 1.0),
            root_rotation=_rot_xy(yaw[i], pitch[i]),
            translation_mm=np.array([0.08 * (width / 2) * z / cam.fx * math.sin(6 * math.pi * t[i]), 0.0, z]))
        frames.append(Frame(render_head(model, params, cam).image, int(i * 33e6), i))
    render_s = time.perf_counter() - t0
    cal = FaceCalibrator(fitter_focal_solver(pipeline.fitter))
    t0 = time.perf_counter()
    est_yaw, est_pitch, true_yaw, tracked = [], [], [], 0
    upd = None
    for tf in pipeline.track(iter(frames)):
        if tf.tracked:
            tracked += 1
            y, p = head_yaw_pitch_deg(tf.fit.params)
            est_yaw.append(y)
            est_pitch.append(p)
            true_yaw.append(yaw[tf.frame.index])
        upd = cal.add_tracked(tf)
    if cal.estimate is None and cal.state == "collecting" and len(cal.keyframes) >= cal.options.min_keyframes:
        cal.solve()
    out = {
        "true_focal_px": cam.fx, "start_focal_px": Intrinsics.from_fov(width, height).fx, "frames": n_frames,
        "tracked": tracked, "true_yaw_range_deg": [float(yaw.min()), float(yaw.max())],
        "tracked_yaw_range_deg": [float(min(est_yaw, default=math.nan)), float(max(est_yaw, default=math.nan))],
        "true_pitch_range_deg": [float(pitch.min()), float(pitch.max())],
        "tracked_pitch_range_deg": [float(min(est_pitch, default=math.nan)), float(max(est_pitch, default=math.nan))],
        "keyframes": len(cal.keyframes), "coverage": cal.coverage.fraction, "state": cal.state,
        "render_s": render_s, "track_calibrate_s": time.perf_counter() - t0,
    }
    if cal.estimate is not None:
        out["focal_px"] = cal.estimate.focal_px
        out["focal_std_px"] = cal.estimate.focal_std_px
        out["focal_error_pct"] = 100.0 * abs(cal.estimate.focal_px / cam.fx - 1)
        out["pass"] = bool(out["focal_error_pct"] <= FACE_TARGET_PCT)
    else:
        out["message"] = cal.message or (upd.message if upd is not None else "no frames")
        out["pass"] = False
    return out


def run(args) -> dict:
    import cv2

    cv2.setNumThreads(1)
    part = getattr(args, "part", "all")
    out: dict = {}
    if part in ("all", "board"):
        out["board"] = board_benchmark(args.board_views, args.seed)
    if part in ("all", "face"):
        out["face"] = face_benchmark(args.face_frames, args.face_noise_px, args.face_landmarks, args.seed,
                                     args.face_repeats)
    if part in ("all", "rendered"):
        out["face_rendered"] = rendered_face_benchmark(args.rendered_frames, args.seed)
    return out
