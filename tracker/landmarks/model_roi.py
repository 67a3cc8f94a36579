"""The refine pass's ROI weights, fitted on the head model (H1's landmark sets) and cached on disk.

The weights (3, L) give the iBUG ROI points (eye centres, mouth-corner midpoint) as affine combinations of
the network's L landmarks (:mod:`tracker.landmarks.refine`). They are fitted on :data:`N_SAMPLES` projections
of the head model with random identity (N(0, 1)), sparse random expressions, and head rotations up to
+-70 degrees yaw, +-30 pitch, +-25 roll, over the :data:`K_NEAREST` landmarks nearest to each point.
Accuracy on 200 other random samples: mean 0.2 %, max 1.6 % of the eye distance (for landmarks320).
For the ``landmarks68`` set the weights are exact (the iBUG definition itself).
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np

log = logging.getLogger(__name__)

N_SAMPLES = 300
K_NEAREST = 80
RIDGE = 1e-4
#: Bumped when the sampling or the fit changes (part of the cache file name).
WEIGHTS_VERSION = 1


def ibug68_roi_weights() -> np.ndarray:
    """(3, 68) exact weights for iBUG 68 landmarks: eye means of 36-41 / 42-47, mouth corners 48 and 54."""
    w = np.zeros((3, 68))
    w[0, 36:42] = 1.0 / 6.0
    w[1, 42:48] = 1.0 / 6.0
    w[2, [48, 54]] = 0.5
    return w


def sample_model_projections(model, landmark_ids: np.ndarray, ibug_ids: np.ndarray, n: int,
                             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random posed heads -> ((n, L, 2) landmark px, (n, 3, 2) iBUG ROI points px) at 45 degrees HFOV, 500 mm."""
    from tracker.face.forward import posed_vertices, project
    from tracker.roi import roi_points_from_ibug68
    from tracker.types import FitParams, Intrinsics

    rng = np.random.default_rng(seed)
    intr = Intrinsics.from_fov(640, 480)
    ids = np.concatenate([np.asarray(landmark_ids), np.asarray(ibug_ids)])
    n_l = len(landmark_ids)
    lms, rois = [], []
    for _ in range(n):
        expression = rng.uniform(0, 1, model.n_expression) * (rng.random(model.n_expression) < 0.2)
        params = FitParams.neutral(model.n_identity, model.n_expression, intr.fx).replace(
            identity=rng.normal(size=model.n_identity), expression=expression,
            root_rotation=np.deg2rad(rng.uniform([-30, -70, -25], [30, 70, 25])),
            translation_mm=np.array([0.0, 0.0, 500.0]))
        uv = project(posed_vertices(model, params, ids), intr)
        lms.append(uv[:n_l])
        rois.append(roi_points_from_ibug68(uv[n_l:]))
    return np.array(lms), np.array(rois)


@lru_cache(maxsize=4)
def _weights(landmark_set: str) -> np.ndarray | None:
    from tracker.landmarks.refine import fit_roi_weights, nearest_landmarks
    from tracker.paths import cache_dir

    if landmark_set == "landmarks68":
        return ibug68_roi_weights()
    try:
        from tracker.face.build import load_head_model
        from tracker.face.landmark_sets import load_landmark_set

        lm = load_landmark_set(landmark_set)
        ibug = load_landmark_set("landmarks68")
        model = load_head_model()
    except Exception as exc:  # a missing cache, data folder or landmark set: run without the refine pass
        log.warning("no refine pass: cannot load the head model or landmark set '%s' (%s)", landmark_set, exc)
        return None
    key = f"roi_weights_{landmark_set}_{model.version}_{len(lm)}_v{WEIGHTS_VERSION}.npy"
    path = cache_dir() / key
    if path.is_file():
        try:
            w = np.load(path)
            if w.shape == (3, len(lm)):
                return w
        except (OSError, ValueError) as exc:
            log.info("recomputing ROI weights (%s)", exc)
    uv, roi_pts = sample_model_projections(model, lm.vertex_ids, ibug.vertex_ids, N_SAMPLES)
    w = fit_roi_weights(uv, roi_pts, nearest_landmarks(lm.vertex_ids, ibug.vertex_ids, model.neutral_cm, K_NEAREST),
                        RIDGE)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, w)
        tmp.replace(path)
    except OSError as exc:
        log.info("cannot cache ROI weights in %s (%s)", path, exc)
    return w


def roi_weights_for(landmark_set: str, n_landmarks: int) -> np.ndarray | None:
    """(3, L) ROI weights for the named landmark set, or None when the set is unknown or has another size."""
    if not landmark_set:
        return None
    w = _weights(landmark_set)
    if w is None or w.shape[1] != n_landmarks:
        if w is not None:
            log.warning("landmark set '%s' has %d landmarks but the model outputs %d: no refine pass",
                        landmark_set, w.shape[1], n_landmarks)
        return None
    return w


def nearest_landmark_to_ibug(landmark_set: str, n_landmarks: int) -> np.ndarray | None:
    """(68,) for each iBUG point, the index of the landmark nearest to its vertex on the neutral mesh (the
    same vertex where the set contains it); None when the set or the head model is unavailable."""
    if landmark_set == "landmarks68" and n_landmarks == 68:
        return np.arange(68)
    try:
        from tracker.face.build import load_head_model
        from tracker.face.landmark_sets import load_landmark_set

        lm = load_landmark_set(landmark_set)
        ibug = load_landmark_set("landmarks68")
        model = load_head_model()
    except Exception as exc:  # noqa: BLE001 - the caller falls back to another protocol
        log.info("no iBUG-to-landmark map for '%s' (%s)", landmark_set, exc)
        return None
    if len(lm) != n_landmarks:
        return None
    verts = np.asarray(model.neutral_cm, dtype=np.float64)
    d = np.linalg.norm(verts[ibug.vertex_ids][:, None] - verts[lm.vertex_ids][None], axis=2)  # (68, L)
    return np.argmin(d, axis=1)
