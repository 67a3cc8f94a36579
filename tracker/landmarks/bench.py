"""``python main.py bench landmarks [--json] [--limit N]``: speed, accuracy on real faces, sigma calibration.

(a) ``network``: ms per crop of the ONNX network on one thread (onnxruntime ``intra_op_num_threads=1``),
    single crops, median over repeated runs after a warm-up.
(b) ``nme_300w``: inter-ocular NME (%) on the held-out 300-W images (:func:`tracker.splits.is_held_out_300w`),
    with label translation (:mod:`tracker.landmarks.label_translation`) fitted on the training part; the same
    protocol for MediaPipe Face Mesh's 478 landmarks on the same images. Our landmarks come from
    BlazeFace -> ROI -> network -> one refine pass -> network (:func:`tracker.landmarks.refine.locate_face`).
    Mean and median are over the images where the method found a face; ``failure_rate`` counts, over all
    held-out images, those where no face was found plus those with NME above ``FAILURE_NME``.
(c) ``calibration``: the share of landmark errors within 1 and 2 sigma (a calibrated circular Gaussian gives
    39.3 % and 86.5 %), on synthetic validation renders with exact labels (``synthetic_val.npz`` of
    ``tracker.training.data``, ground-truth ROI, every landmark with a positive weight) when they exist;
    otherwise on the held-out 300-W images: the label-translated 68 points against the sigma of the network's
    landmark at (or nearest to) each iBUG vertex -- that version also counts annotation noise and the
    translation's own error, so it is only a rough check.
(d) ``direct_300w``: the network's inner landmarks against the held-out 300-W ground truth directly (no label
    translation, ROI from the ground truth): the error, each point's mean offset, and the error without it; and
    ``roi_jitter``: the same error with the ROI points jittered as in training (``jitter_roi_points`` with the
    default :class:`~tracker.training.augment.AugmentConfig`'s spreads scaled by k), i.e. how the network copes
    with a poor ROI (a fast head turn between two frames).
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracker.roi import MOUTH_RATIO_RANGE, TEMPLATE_EYE_DISTANCE, TEMPLATE_MOUTH_DISTANCE

log = logging.getLogger(__name__)

#: An image whose NME (percent of the outer-eye-corner distance) is above this counts as a failure.
FAILURE_NME = 8.0
#: Normalising frame size for the methods' own frames (any value gives the same normalised coordinates).
FRAME_SIZE = 128


def add_arguments(p) -> None:
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="use at most N held-out and 4N training images (quick runs)")
    p.add_argument("--model", default=None, help="ONNX landmark model (default assets/landmark_model.onnx)")
    p.add_argument("--no-mediapipe", action="store_true", help="skip the MediaPipe Face Mesh baseline")
    p.add_argument("--synthetic", default=None, metavar="NPZ",
                   help="synthetic validation renders (default: synthetic_val.npz of tracker.training.data)")
    p.add_argument("--timing-runs", type=int, default=200, help="network runs per timing round (default 200, 7 rounds)")


@dataclass
class _Sample:
    name: str
    held_out: bool
    gt: np.ndarray  # (68, 2) px
    ours: tuple | None = None  # (roi, mu_px (L, 2), sigma_px (L,))
    mesh: np.ndarray | None = None  # (478, 2) px


def _pin_one_thread() -> None:
    from tracker.threads import limit_to_one_thread

    limit_to_one_thread()  # BLAS (already loaded with numpy) to one thread, and the environment for later libraries
    import cv2

    cv2.setNumThreads(1)


def _read_300w(data: Path, limit: int | None) -> list[_Sample]:
    from tracker.splits import is_held_out_300w

    rows = []
    with open(data / "300w-train" / "landmarks68.csv") as fh:
        reader = csv.reader(fh)
        next(reader)
        for r in reader:
            rows.append(_Sample(r[0], is_held_out_300w(r[0]), np.array(r[1:], dtype=np.float64).reshape(68, 2)))
    if limit is not None:
        held = [s for s in rows if s.held_out][:limit]
        train = [s for s in rows if not s.held_out][:4 * limit]
        rows = train + held
    return rows


def session_ms(session, one: np.ndarray, runs: int = 50, warmup: int = 5) -> float:
    """Median ms of ``runs`` runs of an onnxruntime session on the input ``one`` (``image``), after ``warmup``."""
    for _ in range(warmup):
        session.run(None, {"image": one})
    times = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        session.run(None, {"image": one})
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def time_network(predictor, runs: int = 300, rounds: int = 7) -> dict:
    """ms per frame's network work at batch 1 after 20 warm-up runs, on random crops, with the model files the
    predictor runs (its :attr:`precision`). With refiners (:mod:`tracker.landmarks.mouth`: lips, eyes) each run is
    the face crop, then one crop per refiner; their shares are reported too.

    ``rounds`` rounds of ``runs`` runs, a pause of 0.2 s between them: a shared machine's speed changes from one
    second to the next (one file measured 1.3-2.3 ms in consecutive rounds), so ``ms_per_crop_median`` is the median
    of the rounds' medians, and ``ms_per_crop_rounds`` lists them."""
    s = predictor.input_size
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (8, 1, s, s, 3), dtype=np.uint8)
    refiners = list(getattr(predictor, "refiners", []))
    regions = [rng.integers(0, 256, (8, r.size, r.size, 3), dtype=np.uint8) for r in refiners]
    for i in range(20):
        predictor.predict_crops(crops[i % 8])
        for r, c in zip(refiners, regions):
            r.predict_crop(c[i % 8])
    times, t_refiners, round_medians = [], [[] for _ in refiners], []
    for k in range(max(1, rounds)):
        if k:
            time.sleep(0.2)
        start = len(times)
        for i in range(runs):
            t0 = time.perf_counter()
            predictor.predict_crops(crops[i % 8])
            for r, c, t in zip(refiners, regions, t_refiners):
                t1 = time.perf_counter()
                r.predict_crop(c[i % 8])
                t.append((time.perf_counter() - t1) * 1e3)
            times.append((time.perf_counter() - t0) * 1e3)
        round_medians.append(float(np.median(times[start:])))
    t = np.array(times)
    out = {"ms_per_crop_median": float(np.median(round_medians)), "ms_per_crop_rounds": round_medians,
           "ms_per_crop_mean": float(t.mean()), "ms_per_crop_p90": float(np.percentile(t, 90)),
           "threads": predictor.threads, "input_size": s, "n_landmarks": predictor.n_landmarks, "runs": runs,
           "rounds": len(round_medians)}
    for r, tr in zip(refiners, t_refiners):
        out.setdefault("refiner_ms_median", {})[r.region] = float(np.median(tr))
        out.setdefault("refiner_input_size", {})[r.region] = r.size
    return out


def evaluate_translation(samples: list[_Sample], get) -> dict:
    """Label translation + NME for one method. ``get(sample) -> (roi, pts (L, 2) px) | None``."""
    from tracker.landmarks.label_translation import (apply_ridge, fit_translation, from_frame, point_errors,
                                                     region_means, to_frame)

    train = [(s, get(s)) for s in samples if not s.held_out]
    train = [(s, g) for s, g in train if g is not None]
    held = [s for s in samples if s.held_out]
    if len(train) < 5 or not held:
        return {"error": f"too few images: {len(train)} training, {len(held)} held out"}
    x = np.stack([to_frame(g[1], g[0]).ravel() for _, g in train])
    y = np.stack([to_frame(s.gt, g[0]).ravel() for s, g in train])
    w, lam = fit_translation(x, y)
    preds, gts = [], []
    for s in held:
        g = get(s)
        if g is None:
            continue
        preds.append(from_frame(apply_ridge(to_frame(g[1], g[0]).ravel()[None], w)[0].reshape(68, 2), g[0]))
        gts.append(s.gt)
    errors = point_errors(np.stack(preds), np.stack(gts)) if preds else np.zeros((0, 68))
    nmes = errors.mean(axis=1)  # nme_interocular
    by_region = region_means(errors) if preds else {}
    n_fail = (len(held) - len(nmes)) + int(np.sum(nmes > FAILURE_NME))
    out = {"held_out_images": len(held), "faces_found": int(len(nmes)), "training_images": len(train),
           "ridge_lambda": lam,
           "nme_mean": float(nmes.mean()) if len(nmes) else float("nan"),
           "nme_median": float(np.median(nmes)) if len(nmes) else float("nan"),
           "nme_mean_by_region": by_region,
           "failure_rate": n_fail / len(held), "failure_nme_threshold": FAILURE_NME}
    return out, w


def _calibration_shares(err_px: np.ndarray, sigma_px: np.ndarray) -> dict:
    r = np.asarray(err_px).ravel() / np.asarray(sigma_px).ravel()
    return {"within_1_sigma": float(np.mean(r <= 1.0)), "within_2_sigma": float(np.mean(r <= 2.0)),
            "n_errors": int(r.size), "expected_calibrated": {"within_1_sigma": 0.393, "within_2_sigma": 0.865}}


@dataclass(frozen=True, eq=False)
class LabelledImages:
    """The npz contract of ``tracker.training.data``: images (M,), landmarks_px (M, L, 2), weights (M, L),
    roi_points (M, 3, 2)."""

    images: np.ndarray
    landmarks_px: np.ndarray
    weights: np.ndarray
    roi_points: np.ndarray

    def __len__(self) -> int:
        return int(len(self.images))

    @classmethod
    def from_npz(cls, path: Path) -> "LabelledImages":
        with np.load(path, allow_pickle=False) as z:
            return cls(z["images"].astype(str), z["landmarks_px"].astype(np.float64),
                       z["weights"].astype(np.float64), z["roi_points"].astype(np.float64))


def synthetic_validation_set(path: str | Path | None = None) -> LabelledImages | None:
    """The synthetic validation renders (``synthetic_val.npz`` of ``tracker.training.data``), or None."""
    if path is None:
        try:
            from tracker.training.data import dataset_paths
        except ImportError:
            return None
        path = dataset_paths().get("synthetic_val")
        if path is None:
            return None
    try:
        return LabelledImages.from_npz(Path(path))
    except (OSError, KeyError, ValueError) as exc:
        log.warning("cannot read synthetic validation data %s: %s", path, exc)
        return None


def calibration_synthetic(predictor, labelled, limit: int | None) -> dict:
    """Share of errors within 1 and 2 sigma on labelled images with exact labels (weights > 0 only)."""
    import cv2

    from tracker.roi import roi_from_points

    n = len(labelled) if limit is None else min(len(labelled), 4 * limit)
    errs, sigmas, turn, rel = [], [], [], []
    for i in range(n):
        img = cv2.imread(str(labelled.images[i]))
        if img is None:
            continue
        pts = np.asarray(labelled.roi_points[i], dtype=np.float64)
        roi = roi_from_points(pts, predictor.input_size, predictor.crop_zoom)
        lm = predictor.predict(img, roi)
        ok = labelled.weights[i] > 0
        errs.append(np.linalg.norm(lm.mu_px[ok] - labelled.landmarks_px[i][ok], axis=1))
        sigmas.append(lm.sigma_px[ok])
        mouth_d = _eye_mouth_distances(pts)[1]
        turn.append(turn_ratio(pts))
        rel.append(100.0 * float(errs[-1].mean()) / max(mouth_d, 1e-6))
    if not errs:
        return {"error": "no readable synthetic validation images"}
    out = _calibration_shares(np.concatenate(errs), np.concatenate(sigmas))
    out.update({"data": "synthetic validation renders (exact labels), ground-truth ROI", "images": len(errs)})
    turn, rel = np.asarray(turn), np.asarray(rel)
    edges = (0.0,) + TURN_BINS + (np.inf,)
    out["error_by_turn"] = {
        "protocol": "mean landmark error per render in % of the eye-midpoint-to-mouth distance, by turn ratio r "
                    "(mouth / eye distance relative to the ROI template's; about 1 frontal, large near profile)",
        "all": {"n": len(rel), "error": float(rel.mean())},
        **{f"r {lo:g}-{hi:g}": {"n": int(m.sum()), "error": float(rel[m].mean()) if m.any() else float("nan")}
           for lo, hi in zip(edges[:-1], edges[1:]) for m in [(turn >= lo) & (turn < hi)]}}
    return out


#: Scales of the default training ROI jitter for ``direct_300w``'s ``roi_jitter``, and draws per image.
JITTER_SCALES = (0.5, 1.0, 1.5)
JITTER_DRAWS = 2


def direct_300w(samples: list[_Sample], image_dir: Path, predictor, ibug_index: np.ndarray,
                images: dict | None = None, jitter_scales=JITTER_SCALES, jitter_draws: int = JITTER_DRAWS,
                seed: int = 0) -> dict:
    """The network's inner landmarks (iBUG 27-67 through ``ibug_index``) against held-out 300-W ground truth,
    directly: no label translation, ROI from the ground truth's eyes and mouth. The mean offset of each point
    (in a frame along the eye line) is reported, and the error left once it is removed: a consistent offset from
    the 300-W convention shows in the first, not in the second. ``images``: already decoded images by name (the
    others are read from ``image_dir``). ``roi_jitter``: for each scale k of ``jitter_scales``, the mean error and
    the share of images above :data:`FAILURE_NME` with the ROI points jittered by k times the default training
    spreads (``jitter_draws`` draws per image, one generator seeded with ``seed``). ``calibration``: the share of
    the inner points' errors within 1 and 2 of the network's sigmas (real faces, human labels)."""
    from dataclasses import replace

    import cv2

    from tracker.roi import roi_from_points, roi_points_from_ibug68
    from tracker.training.augment import AugmentConfig, jitter_roi_points

    inner = np.arange(27, 68)

    def predict(img, points):
        return predictor.predict(img, roi_from_points(points, predictor.input_size, predictor.crop_zoom))

    def residual(lm, gt, rot, d) -> np.ndarray:
        """(41, 2) inner-point residuals (% of d, in the eye-line frame ``rot``) of landmarks ``lm``."""
        return 100.0 * (lm.mu_px[ibug_index[inner]] - gt[inner]) @ rot.T / d

    res = []
    kept = []
    sigma = []  # the inner points' sigmas, % of d like the residuals
    for s in samples:
        if not s.held_out:
            continue
        img = (images or {}).get(s.name)
        if img is None:
            img = cv2.imread(str(image_dir / s.name))
        if img is None:
            continue
        eye = s.gt[45] - s.gt[36]
        d = float(np.linalg.norm(eye))
        ex = eye / d
        kept.append((img, roi_points_from_ibug68(s.gt), s.gt, np.array([ex, [-ex[1], ex[0]]]), d))
        lm = predict(img, kept[-1][1])
        res.append(residual(lm, *kept[-1][2:]))
        sigma.append(100.0 * lm.sigma_px[ibug_index[inner]] / d)
    if not res:
        return {"error": "no readable held-out images"}
    default = AugmentConfig()
    rng = np.random.default_rng(seed)
    jitter = {}
    for k in jitter_scales:
        cfg = replace(default, point_noise=default.point_noise * k, rotation_deg=default.rotation_deg * k,
                      log_scale=default.log_scale * k, translation=default.translation * k)
        errs = []
        for _ in range(jitter_draws):
            for img, roi_pts, gt, rot, d in kept:
                r = residual(predict(img, jitter_roi_points(roi_pts, rng, cfg)), gt, rot, d)
                errs.append(float(np.linalg.norm(r, axis=1).mean()))
        errs = np.array(errs)
        jitter[f"{k:g}"] = {"n": int(len(errs)), "nme_mean": float(errs.mean()),
                            "failure_rate": float((errs > FAILURE_NME).mean())}
    r = np.stack(res)  # (M, 41, 2) % of the outer-eye-corner distance
    offset = r.mean(axis=0)
    return {"images": len(res), "points": int(len(inner)),
            "nme_mean": float(np.linalg.norm(r, axis=2).mean()),
            "mean_point_offset": float(np.linalg.norm(offset, axis=1).mean()),
            "nme_mean_offsets_removed": float(np.linalg.norm(r - offset, axis=2).mean()),
            "roi_jitter": jitter,
            "calibration": _calibration_shares(np.linalg.norm(r, axis=2), np.stack(sigma)),
            "protocol": "held-out 300-W, ROI from the ground truth's eyes and mouth, the network's landmark nearest "
                        "each inner iBUG point (27-67) on the neutral head against that point, no label "
                        "translation; % of the outer-eye-corner distance; offsets: each point's mean residual "
                        "in a frame along the eye line; roi_jitter: keyed by k, the error with the ROI points "
                        "jittered by k times the default training spreads (tracker.training.augment), "
                        f"{jitter_draws} draws per image, failure: error above {FAILURE_NME}%; calibration: "
                        "the inner points' pixel errors against the network's sigmas (plain ROI)"}


#: Turn-ratio bin edges of ``error_by_turn`` (the middle one: where :func:`tracker.roi.roi_from_points` starts to
#: bound the eye distance by the mouth's).
TURN_BINS = (1.3, MOUTH_RATIO_RANGE[1], 2.5)


def turn_ratio(points: np.ndarray) -> float:
    """(3, 2) ROI points -> mouth distance / eye distance relative to the ROI template's (about 1 for a frontal
    face, growing as the head turns towards profile; inf for coincident eyes)."""
    eye, mouth = _eye_mouth_distances(points)
    return mouth / eye / (TEMPLATE_MOUTH_DISTANCE / TEMPLATE_EYE_DISTANCE) if eye > 0 else float("inf")


def _eye_mouth_distances(points: np.ndarray) -> tuple[float, float]:
    """(3, 2) ROI points -> (eye distance, distance of the mouth from the eyes' midpoint) in px."""
    points = np.asarray(points, dtype=np.float64)
    return (float(np.linalg.norm(points[1] - points[0])),
            float(np.linalg.norm(points[2] - 0.5 * (points[0] + points[1]))))


def calibration_300w(samples: list[_Sample], w: np.ndarray, ibug_index: np.ndarray | None) -> dict:
    """Fallback: label-translated 68 points on held-out 300-W against a sigma for each of them.

    ``ibug_index`` (68,): the network landmark nearest to each iBUG point (its sigma is used); None: the
    sigmas are propagated through the ridge map instead (``var_k = sum_j W_jk^2 sigma_j^2``, mean of x and y).
    """
    from tracker.landmarks.decode import sigma_from_px
    from tracker.landmarks.label_translation import apply_ridge, from_frame, to_frame

    wx = w[:-1]  # (2L, 136)
    errs, sigmas = [], []
    for s in samples:
        if not s.held_out or s.ours is None:
            continue
        roi, mu, sig_px = s.ours
        pred = from_frame(apply_ridge(to_frame(mu, roi).ravel()[None], w)[0].reshape(68, 2), roi)
        if ibug_index is not None:
            sig_out_px = sig_px[ibug_index]
        else:
            var_in = np.repeat(sigma_from_px(sig_px, roi.size, roi.scale_px) ** 2, 2)  # x and y of each landmark
            var_out = (wx ** 2 * var_in[:, None]).sum(0).reshape(68, 2).mean(1)
            sig_out_px = np.sqrt(var_out) * 0.5 * roi.size * roi.scale_px
        errs.append(np.linalg.norm(pred - s.gt, axis=1))
        sigmas.append(sig_out_px)
    if not errs:
        return {"error": "no held-out 300-W faces found"}
    out = _calibration_shares(np.concatenate(errs), np.concatenate(sigmas))
    how = ("the sigma of the network landmark at (or nearest to) each iBUG vertex" if ibug_index is not None
           else "sigma propagated through the ridge map")
    out.update({"data": f"held-out 300-W, label-translated 68 points against {how} (no synthetic validation "
                        "renders found; the errors include annotation noise and the translation's own error)",
                "images": len(errs)})
    return out


def _non_face_rois(image: np.ndarray, face_roi, size: int, rng: np.random.Generator, zoom: float = 1.0) -> list:
    """ROIs with no face in them: the face's ROI moved sideways by 1.5 crop widths (background, hair, the
    black border), and a small ROI in a random corner of the image."""
    from tracker.roi import roi_from_points, template_points

    h, w = image.shape[:2]
    pts = face_roi.crop_to_image(template_points(size, zoom))
    shift = (face_roi.crop_to_image(np.array([[size, 0.0]])) - face_roi.crop_to_image(np.zeros((1, 2))))[0] * 1.5
    rois = [roi_from_points(pts + shift * rng.choice([-1.0, 1.0]), size, zoom)]
    eye = max(w, h) / 12.0
    cx, cy = rng.choice([eye, w - eye]), rng.choice([eye, h - eye])
    rois.append(roi_from_points(np.array([[cx - eye / 2, cy], [cx + eye / 2, cy], [cx, cy + 1.1 * eye]]), size,
                                zoom))
    return rois


def _fit_residual(fitter, landmarks, image_shape) -> float:
    """Median squared normalised residual of a fresh fit (:func:`tracker.landmarks.lost.median_sq_residual`)."""
    from tracker.landmarks.lost import median_sq_residual
    from tracker.types import Intrinsics

    intr = Intrinsics.from_fov(image_shape[1], image_shape[0], 45.0)
    fit = fitter.fit_frame(landmarks, intr, None)
    return median_sq_residual(landmarks, fit.landmarks_px)


def _stats(values: np.ndarray, thr: float) -> dict:
    return {"n": int(len(values)), "p5": float(np.percentile(values, 5)), "p50": float(np.median(values)),
            "p95": float(np.percentile(values, 95)), "share_flagged_lost": float(np.mean(values > thr))}


def lost_statistics(samples: list[_Sample], images: dict, predictor, fitter=None) -> dict:
    """Median sigma (normalised crop units) and, with a fitter, the fit's median squared normalised residual,
    on held-out faces and on crops with no face, against the thresholds of :mod:`tracker.landmarks.lost`."""
    from tracker.landmarks.decode import decode_output
    from tracker.landmarks.lost import LostThresholds, median_sigma_norm
    from tracker.types import Roi

    thr = LostThresholds()
    rng = np.random.default_rng(0)
    faces, non_faces, fit_faces, fit_non = [], [], [], []
    for s in samples:
        if not s.held_out or s.ours is None or s.name not in images:
            continue
        roi = s.ours[0]
        image = images[s.name]
        faces.append(float(np.median(s.ours[2])) / (0.5 * roi.size * roi.scale_px))
        if fitter is not None:
            from tracker.types import Landmarks

            fit_faces.append(_fit_residual(fitter, Landmarks(s.ours[1], s.ours[2]), image.shape))
        for r in _non_face_rois(image, roi, predictor.input_size, rng, predictor.crop_zoom):
            lm = predictor.predict(image, r)
            non_faces.append(median_sigma_norm(lm, r))
            if fitter is not None:
                fit_non.append(_fit_residual(fitter, lm, image.shape))
    size = predictor.input_size
    ident = Roi(matrix=np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), size=size)
    for crop in (np.zeros((size, size, 3), np.uint8), np.full((size, size, 3), 255, np.uint8),
                 rng.integers(0, 256, (size, size, 3), dtype=np.uint8)):
        lm = decode_output(predictor.predict_crops(crop[None])[0], ident)
        non_faces.append(median_sigma_norm(lm, ident))
    faces, non_faces = np.array(faces), np.array(non_faces)
    if not len(faces):
        return {"error": "no faces"}
    out = {"median_sigma_norm": {"threshold": thr.max_median_sigma_norm,
                                 "faces": _stats(faces, thr.max_median_sigma_norm),
                                 "non_faces": _stats(non_faces, thr.max_median_sigma_norm),
                                 "separating_threshold": float(np.sqrt(np.percentile(faces, 99)
                                                                       * np.percentile(non_faces, 5)))}}
    if fit_faces:
        t = thr.max_median_sq_residual
        out["fit_median_sq_residual"] = {"threshold": t, "faces": _stats(np.array(fit_faces), t),
                                         "non_faces": _stats(np.array(fit_non), t)}
    out["protocol"] = ("per crop: median sigma in normalised crop units, and the median over landmarks of "
                       "|fit - mu|^2 / sigma^2 after a fresh fit (45 degree HFOV); faces: held-out 300-W through "
                       "the detector and refine pass; non-faces: each face's ROI moved 1.5 crop widths sideways, "
                       "a small ROI in an image corner, and black, white and noise crops (sigma only); "
                       "separating_threshold: geometric mean of the faces' 99th and the non-faces' 5th percentile")
    return out


def run(args) -> dict:
    _pin_one_thread()
    import cv2

    from tracker.cli import CommandError
    from tracker.detect import FaceDetector
    from tracker.landmarks.mediapipe_baseline import FaceMeshRunner, roi_points_from_mesh
    from tracker.landmarks.predictor import LandmarkModelError, LandmarkPredictor
    from tracker.landmarks.refine import locate_face
    from tracker.paths import data_dir
    from tracker.roi import roi_from_points

    data = data_dir()
    if data is None or not (data / "300w-train" / "landmarks68.csv").is_file():
        raise CommandError("300-W data not found: set TRACKER_DATA to a folder with 300w-train/landmarks68.csv")
    limit = getattr(args, "limit", None)
    if limit is not None and limit < 2:
        raise CommandError("--limit must be at least 2")
    results: dict = {}
    predictor = None
    try:
        predictor = LandmarkPredictor(getattr(args, "model", None), threads=1)
    except LandmarkModelError as exc:
        results["network"] = {"error": str(exc)}
    if predictor is not None:
        results["network"] = time_network(predictor, getattr(args, "timing_runs", 200))
        results["network"]["precision"] = predictor.precision
        if predictor.precision == "int8":  # the float model's time beside it, for comparison
            float_predictor = LandmarkPredictor(getattr(args, "model", None), threads=1, precision="float")
            results["network"]["float_ms_per_crop_median"] = time_network(
                float_predictor, getattr(args, "timing_runs", 200))["ms_per_crop_median"]
        roi_weights = load_roi_weights(predictor)

    samples = _read_300w(data, limit)
    image_dir = data / "300w-train" / "images"
    use_mesh = not getattr(args, "no_mediapipe", False)
    detector = FaceDetector() if predictor is not None else None
    mesh = FaceMeshRunner() if use_mesh else None
    t_ours, t_mesh = [], []
    kept_images: dict = {}
    t_start = time.perf_counter()
    for i, s in enumerate(samples):
        img = cv2.imread(str(image_dir / s.name))
        if img is None:
            log.warning("unreadable image %s", s.name)
            continue
        if predictor is not None:
            t0 = time.perf_counter()
            loc = locate_face(img, detector, predictor, roi_weights)
            t_ours.append(time.perf_counter() - t0)
            if loc is not None:
                s.ours = (loc.roi, loc.landmarks.mu_px, loc.landmarks.sigma_px)
                if s.held_out:
                    kept_images[s.name] = img
        if mesh is not None:
            t0 = time.perf_counter()
            s.mesh = mesh.landmarks(img)
            t_mesh.append(time.perf_counter() - t0)
        if (i + 1) % 200 == 0:
            log.info("bench landmarks: %d / %d images (%.0f s)", i + 1, len(samples), time.perf_counter() - t_start)
    if detector is not None:
        detector.close()
    if mesh is not None:
        mesh.close()

    nme: dict = {}
    w_ours = None
    if predictor is not None:
        res = evaluate_translation(samples, lambda s: None if s.ours is None else (s.ours[0], s.ours[1]))
        if isinstance(res, tuple):
            res, w_ours = res
        res["ms_per_image_detect_and_2_network_passes"] = 1e3 * float(np.mean(t_ours)) if t_ours else None
        res["refined_roi"] = roi_weights is not None
        nme["ours"] = res
    if mesh is not None:
        def mesh_get(s):
            if s.mesh is None:
                return None
            try:
                return roi_from_points(roi_points_from_mesh(s.mesh), FRAME_SIZE), s.mesh
            except ValueError:
                return None
        res = evaluate_translation(samples, mesh_get)
        if isinstance(res, tuple):
            res = res[0]
        res["ms_per_image_static_mode"] = 1e3 * float(np.mean(t_mesh)) if t_mesh else None
        nme["mediapipe_face_mesh"] = res
    nme["protocol"] = ("inter-ocular NME (% of GT outer-eye-corner distance 36-45) on held-out 300-W; ridge map "
                       "from each method's landmarks (in a frame from its own eyes+mouth) to the 68 points, fitted "
                       f"on the 300-W training part; mean/median over faces found; failure = no face or NME > "
                       f"{FAILURE_NME}%")
    results["nme_300w"] = nme

    if predictor is not None:
        from tracker.landmarks.model_roi import nearest_landmark_to_ibug

        ibug_index = nearest_landmark_to_ibug(predictor.info.landmark_set, predictor.n_landmarks)
        results["direct_300w"] = (direct_300w(samples, image_dir, predictor, ibug_index, kept_images)
                                  if ibug_index is not None else
                                  {"error": f"no iBUG-to-landmark map for the set '{predictor.info.landmark_set}'"})
        synth = synthetic_validation_set(getattr(args, "synthetic", None))
        if synth is not None and len(synth) > 0 and synth.landmarks_px.shape[1] != predictor.n_landmarks:
            log.warning("synthetic validation data has %d landmarks, the network %d: not used",
                        synth.landmarks_px.shape[1], predictor.n_landmarks)
            synth = None
        if synth is not None and len(synth) > 0:
            results["calibration"] = calibration_synthetic(predictor, synth, limit)
        elif w_ours is not None:
            results["calibration"] = calibration_300w(samples, w_ours, ibug_index)
        else:
            results["calibration"] = {"error": "no data for the calibration"}
        results["tracking_lost"] = lost_statistics(samples, kept_images, predictor, _make_fitter(predictor))
    return results


def _make_fitter(predictor):
    """H2's fitter for the network's landmark set, or None when the head model or set is unavailable."""
    try:
        from tracker.face.build import load_head_model
        from tracker.face.landmark_sets import load_landmark_set
        from tracker.fitting.solver import FaceFitter

        lm_set = load_landmark_set(predictor.info.landmark_set)
        if len(lm_set) != predictor.n_landmarks:
            return None
        return FaceFitter(load_head_model(), lm_set)
    except Exception as exc:  # noqa: BLE001 - the fit statistics are optional
        log.info("no fit statistics: %s", exc)
        return None


def load_roi_weights(predictor) -> np.ndarray | None:
    """(3, L) weights for the refine pass from the head model and landmark sets; None when unavailable."""
    from tracker.landmarks.model_roi import roi_weights_for

    return roi_weights_for(predictor.info.landmark_set, predictor.n_landmarks)
