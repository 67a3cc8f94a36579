"""``python main.py bench fit [--json] [--quick]``: the fitter on synthetic sequences with known ground truth.

Ground truth (issue 3): random identities beta ~ N(0, 1); smooth expression trajectories (a few ARKit
expressions per sequence, sums of sinusoids clipped to [0, 1]) and gaze; head motion up to +-70 degrees yaw,
+-40 pitch, +-15 roll; distance 0.3-1.2 m; horizontal field of view 40-80 degrees at 640x480; per-landmark
noise sigma ~ U(0.5, 3) px (the fitter is told sigma); 10 % of the landmarks occluded: displaced by 10-40 px
and reported with sigma 10-30 px. Rendering uses the head model's full forward model
(``tracker.face.forward.posed_vertices``), not the fitter's own.

Modes:
- ``tracking``: identity and focal length known, warm-started frame to frame (PnP on the first frame);
- ``tracking_1px``: the same with sigma = 1 px everywhere and no occlusion (the accuracy target);
- ``tracking_mean_identity``: identity unknown (the mean face), as before identity refinement;
- ``keyframes``: identity and focal length fitted from 60 keyframes with depth variation, starting from the
  mean face and a 45 degree field of view;
- ``offline``: whole sequences jointly (identity shared, E_temporal), focal known.

Metrics per mode: ms per frame (median, p90; wall clock and this thread's CPU time, which is what one core
costs when the machine is shared), LM iterations, landmark RMSE against the noise-free landmarks (px),
face-region vertex error (mean over 'Face' vertices, mm, after a rigid alignment without scale), expression
mean absolute error, head rotation error (geodesic, degrees, of the head joint's camera-space rotation),
translation error (mm, the face centroid in camera space, which unlike ``translation_mm`` does not depend on
how the pose is split between the root and the neck/head joints), focal error (%).
One thread: BLAS is limited to one thread before any work is done.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

IMAGE_W, IMAGE_H = 640, 480


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="fewer and shorter sequences (a few seconds)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the synthetic data")
    parser.add_argument("--landmark-set", default="landmarks320", help="landmark set to fit (default: landmarks320)")
    parser.add_argument("--sequences", type=int, default=None, help="tracking sequences per mode (default 3, quick 2)")
    parser.add_argument("--frames", type=int, default=None, help="frames per tracking sequence (default 100, quick 30)")
    parser.add_argument("--keyframes", type=int, default=None, help="keyframes per identity/focal run (default 60)")


# ---------------------------------------------------------------------------------------------- synthesis
@dataclass
class Sequence:
    """Ground truth of one synthetic sequence: per-frame FitParams, noisy Landmarks and clean px."""

    intrinsics: object
    params: list
    landmarks: list
    clean_px: list


def _rot(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return ry @ rx @ rz


def _smooth(rng, n: int, n_waves: int = 3, min_period: float = 40.0, max_period: float = 200.0) -> np.ndarray:
    """A smooth signal in [-1, 1] over n frames (sum of sinusoids, normalised)."""
    t = np.arange(n)
    s = np.zeros(n)
    for _ in range(n_waves):
        s += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * t / rng.uniform(min_period, max_period) + rng.uniform(0, 6.3))
    return s / max(np.abs(s).max(), 1e-9)


def make_sequence(model, vertex_ids, rng, n_frames: int, *, noise: str = "issue", hfov_deg: float | None = None,
                  depth_range=(300.0, 1200.0), identity=None) -> Sequence:
    from tracker.face.forward import posed_vertices, project
    from tracker.fitting.rotation import rotation_log
    from tracker.types import FitParams, Intrinsics, Landmarks

    hfov = rng.uniform(40.0, 80.0) if hfov_deg is None else hfov_deg
    intr = Intrinsics.from_fov(IMAGE_W, IMAGE_H, hfov)
    beta = rng.normal(size=model.n_identity) if identity is None else identity
    n_exp = model.n_expression
    active = rng.choice(n_exp, size=8, replace=False)
    psi = np.zeros((n_frames, n_exp))
    for j in active:
        psi[:, j] = np.clip(rng.uniform(0.3, 1.0) * _smooth(rng, n_frames) + rng.uniform(-0.3, 0.2), 0.0, 1.0)
    yaw = np.radians(70.0) * _smooth(rng, n_frames)
    pitch = np.radians(40.0) * _smooth(rng, n_frames)
    roll = np.radians(15.0) * _smooth(rng, n_frames)
    z0, z1 = depth_range
    z = z0 + (z1 - z0) * (0.5 + 0.5 * _smooth(rng, n_frames, min_period=60.0))
    gaze = 0.25 * np.stack([_smooth(rng, n_frames), _smooth(rng, n_frames)], axis=1)
    params, lmks, clean = [], [], []
    n_l = len(vertex_ids)
    for i in range(n_frames):
        # a zero root rotation looks into the camera; yaw about camera y, pitch about x, roll about z
        r = _rot(yaw[i], pitch[i], roll[i])
        # keep the face inside the image: offset at most 25 % of the half-width of the view at that depth
        half_w = z[i] * (IMAGE_W / 2) / intr.fx
        half_h = z[i] * (IMAGE_H / 2) / intr.fy
        x_off = 0.25 * half_w * math.sin(0.05 * i + 1.0)
        y_off = 0.2 * half_h * math.cos(0.04 * i)
        joints = np.zeros((4, 3))
        joints[2] = joints[3] = [gaze[i, 1], gaze[i, 0], 0.0]
        p = FitParams(beta, psi[i], rotation_log(r), np.array([x_off, y_off, z[i]]), joints, intr.fx)
        uv = project(posed_vertices(model, p, vertex_ids), intr)
        if noise == "1px":
            sigma = np.ones(n_l)
            mu = uv + rng.normal(size=uv.shape)
        else:
            sigma = rng.uniform(0.5, 3.0, n_l)
            mu = uv + rng.normal(size=uv.shape) * sigma[:, None]
            occ = rng.random(n_l) < 0.10
            ang = rng.uniform(0, 2 * np.pi, occ.sum())
            mu[occ] += rng.uniform(10, 40, occ.sum())[:, None] * np.stack([np.cos(ang), np.sin(ang)], 1)
            sigma[occ] = rng.uniform(10, 30, occ.sum())
        params.append(p)
        lmks.append(Landmarks(mu, sigma))
        clean.append(uv)
    return Sequence(intr, params, lmks, clean)


# ---------------------------------------------------------------------------------------------- metrics
def _rigid_align_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |R a + t - b| (mm) after the best rotation and translation (Kabsch, no scale)."""
    ca, cb = a.mean(0), b.mean(0)
    u, _, vt = np.linalg.svd((a - ca).T @ (b - cb))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return float(np.linalg.norm((a - ca) @ r.T + cb - b, axis=1).mean())


def _head_rotation(model, p) -> np.ndarray:
    from tracker.fitting.landmark_model import pose_skeleton
    from tracker.fitting.rotation import rodrigues
    from tracker.types import MODEL_TO_CAMERA_AXES

    joints = model.joints_neutral_cm.astype(np.float64) + np.einsum(
        "i,ikc->kc", p.identity, model.joints_identity_basis_cm.astype(np.float64))
    sk = pose_skeleton(joints, np.asarray(p.joints, dtype=np.float64), np.asarray(model.joint_parents))
    return rodrigues(p.root_rotation) @ MODEL_TO_CAMERA_AXES @ sk.a[1]


class _Metrics:
    def __init__(self):
        self.rows: dict[str, list[float]] = {k: [] for k in (
            "wall_ms", "cpu_ms", "iterations", "landmark_rmse_px", "vertex_error_mm", "expression_mae",
            "rotation_error_deg", "translation_error_mm", "focal_error_pct")}
        self.failed = 0
        self.frames = 0

    def add_frame(self, model, face_ids, gt, fit, clean_px, focal_true):
        from tracker.face.forward import posed_vertices
        from tracker.fitting.rotation import geodesic_deg

        self.frames += 1
        if not fit.converged and not np.isfinite(fit.cost):
            self.failed += 1
            return
        self.rows["landmark_rmse_px"].append(float(np.sqrt(np.mean(np.sum((fit.landmarks_px - clean_px) ** 2, 1)))))
        va = posed_vertices(model, fit.params, face_ids)
        vb = posed_vertices(model, gt, face_ids)
        self.rows["vertex_error_mm"].append(_rigid_align_error(va, vb))
        self.rows["translation_error_mm"].append(float(np.linalg.norm(va.mean(0) - vb.mean(0))))
        self.rows["expression_mae"].append(float(np.abs(fit.params.expression - gt.expression).mean()))
        self.rows["rotation_error_deg"].append(geodesic_deg(_head_rotation(model, fit.params),
                                                            _head_rotation(model, gt)))
        self.rows["focal_error_pct"].append(100.0 * abs(fit.params.focal_px - focal_true) / focal_true)

    def summary(self) -> dict:
        out: dict[str, float | int] = {"frames": self.frames, "failed_frames": self.failed}
        for k in ("wall_ms", "cpu_ms"):
            v = np.asarray(self.rows[k])
            if v.size:
                out[f"{k}_per_frame_median"] = float(np.median(v))
                out[f"{k}_per_frame_p90"] = float(np.percentile(v, 90))
        for k in ("iterations", "landmark_rmse_px", "vertex_error_mm", "expression_mae", "rotation_error_deg",
                  "translation_error_mm", "focal_error_pct"):
            v = np.asarray(self.rows[k])
            if v.size:
                out[f"{k}_mean" if k != "iterations" else "iterations_mean"] = float(v.mean())
                if k in ("vertex_error_mm", "rotation_error_deg"):
                    out[f"{k}_median"] = float(np.median(v))
                    out[f"{k}_p90"] = float(np.percentile(v, 90))
        return out


# ---------------------------------------------------------------------------------------------- modes
def _track(fitter, model, face_ids, seq: Sequence, identity, m: _Metrics) -> None:
    prev = None
    for gt, lmk, clean in zip(seq.params, seq.landmarks, seq.clean_px):
        t0, c0 = time.perf_counter(), time.thread_time()
        res = fitter.fit_frame(lmk, seq.intrinsics, prev, identity=identity)
        m.rows["wall_ms"].append(1e3 * (time.perf_counter() - t0))
        m.rows["cpu_ms"].append(1e3 * (time.thread_time() - c0))
        m.rows["iterations"].append(res.iterations)
        m.add_frame(model, face_ids, gt, res, clean, seq.intrinsics.fx)
        prev = res.params if np.isfinite(res.cost) else None


def _batch(fitter, model, face_ids, seqs, m: _Metrics, *, keyframes: bool) -> dict:
    from tracker.types import DEFAULT_HFOV_DEG, Intrinsics

    extra = {"focal_std_px": [], "focal_error_pct": [], "identity_rmse": []}
    for seq in seqs:
        n = len(seq.params)
        t0, c0 = time.perf_counter(), time.thread_time()
        if keyframes:
            start = Intrinsics.from_fov(IMAGE_W, IMAGE_H, DEFAULT_HFOV_DEG)
            res = fitter.fit_keyframes(seq.landmarks, start, fit_identity=True, fit_focal=True)
        else:
            res = fitter.fit_sequence(seq.landmarks, seq.intrinsics, fit_identity=True)
        wall, cpu = 1e3 * (time.perf_counter() - t0) / n, 1e3 * (time.thread_time() - c0) / n
        for gt, fr, clean in zip(seq.params, res.frames, seq.clean_px):
            m.rows["wall_ms"].append(wall)
            m.rows["cpu_ms"].append(cpu)
            m.rows["iterations"].append(fr.iterations)
            m.add_frame(model, face_ids, gt, fr, clean, seq.intrinsics.fx)
        extra["focal_error_pct"].append(100.0 * abs(res.focal_px - seq.intrinsics.fx) / seq.intrinsics.fx)
        if res.focal_std_px is not None:
            extra["focal_std_px"].append(res.focal_std_px)
        extra["identity_rmse"].append(float(np.sqrt(np.mean((res.identity - seq.params[0].identity) ** 2))))
    out = {}
    for k, v in extra.items():
        if v:
            out[f"sequence_{k}_mean"] = float(np.mean(v))
            out[f"sequence_{k}_max"] = float(np.max(v))
    return out


def _landmark_set(model, name: str):
    from tracker.face.landmark_sets import load_landmark_set

    return load_landmark_set(name)


def run(args) -> dict:
    from tracker.threads import limit_to_one_thread

    threads = limit_to_one_thread()
    from tracker.face.build import load_head_model
    from tracker.fitting import FaceFitter

    quick = bool(getattr(args, "quick", False))
    seed = int(getattr(args, "seed", 0))
    model = load_head_model()
    lset = _landmark_set(model, getattr(args, "landmark_set", "landmarks320"))
    fitter = FaceFitter(model, lset)
    face_ids = np.flatnonzero(model.vertex_part == model.part_names.index("Face"))
    rng = np.random.default_rng(seed)
    n_seq, n_frames = (2, 30) if quick else (3, 100)
    n_kf_runs, n_kf = (1, 30) if quick else (2, 60)
    n_off, n_off_frames = (1, 20) if quick else (2, 40)
    n_seq = getattr(args, "sequences", None) or n_seq
    n_frames = getattr(args, "frames", None) or n_frames
    n_kf = getattr(args, "keyframes", None) or n_kf
    if min(n_seq, n_frames, n_kf) < 1:
        raise ValueError("--sequences, --frames and --keyframes must be >= 1")
    n_off_frames = min(n_off_frames, max(n_frames, 2))
    ids = lset.vertex_ids
    results: dict = {"landmark_set": lset.name, "landmarks": len(lset), "blas_threads": threads,
                     "sequences": n_seq, "frames_per_sequence": n_frames}
    t_start = time.perf_counter()
    for mode, noise, known_id in (("tracking", "issue", True), ("tracking_1px", "1px", True),
                                  ("tracking_mean_identity", "issue", False)):
        m = _Metrics()
        for _ in range(n_seq):
            seq = make_sequence(model, ids, rng, n_frames, noise=noise)
            _track(fitter, model, face_ids, seq, seq.params[0].identity if known_id else np.zeros(model.n_identity), m)
        results[mode] = m.summary()
        log.info("%s done after %.1f s", mode, time.perf_counter() - t_start)
    # keyframes: 60 independent views of one person with depth variation (0.3-1.2 m) in one camera
    m = _Metrics()
    kf_seqs = []
    for _ in range(n_kf_runs):
        long = make_sequence(model, ids, rng, n_kf * 4)
        pick = np.linspace(0, n_kf * 4 - 1, n_kf).astype(int)
        kf_seqs.append(Sequence(long.intrinsics, [long.params[i] for i in pick],
                                [long.landmarks[i] for i in pick], [long.clean_px[i] for i in pick]))
    extra = _batch(fitter, model, face_ids, kf_seqs, m, keyframes=True)
    results["keyframes"] = {**m.summary(), **extra, "keyframes_per_run": n_kf}
    log.info("keyframes done after %.1f s", time.perf_counter() - t_start)
    m = _Metrics()
    off = [make_sequence(model, ids, rng, n_off_frames) for _ in range(n_off)]
    extra = _batch(fitter, model, face_ids, off, m, keyframes=False)
    results["offline"] = {**m.summary(), **extra, "frames_per_run": n_off_frames}
    results["total_s"] = time.perf_counter() - t_start
    return results
