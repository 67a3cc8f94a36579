"""The refine pass's ROI weights from the head model (H1's landmark sets), cached per landmark set.

Kept apart from :mod:`tracker.landmarks.refine` so the pure math there needs no head model.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _weights(landmark_set: str) -> np.ndarray | None:
    from tracker.landmarks.refine import roi_weights_from_model

    try:
        from tracker.face.build import load_head_model
        from tracker.face.landmark_sets import load_landmark_set
    except ImportError as exc:
        log.warning("no refine pass: the head model's landmark sets are not available (%s)", exc)
        return None
    try:
        model = load_head_model()
        lm = load_landmark_set(landmark_set)
        ibug = load_landmark_set("landmarks68")
    except Exception as exc:  # a missing cache or data folder: run without the refine pass
        log.warning("no refine pass: cannot load the head model or landmark set '%s' (%s)", landmark_set, exc)
        return None
    return roi_weights_from_model(lm.vertex_ids, ibug.vertex_ids, model.neutral_cm)


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
