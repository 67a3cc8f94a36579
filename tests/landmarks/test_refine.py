"""ROI from the network's own landmarks: affine weights and the locate loop."""

from __future__ import annotations

import numpy as np

from tracker.landmarks.refine import fit_roi_weights, locate_face, nearest_landmarks, roi_points_from_landmarks
from tracker.roi import roi_from_points


def test_nearest_landmarks_picks_the_closest_in_3d():
    verts = np.zeros((200, 3))
    verts[:, 0] = np.arange(200)  # vertex i at x = i
    ibug = np.arange(68)  # right eye 36-41 -> x mean 38.5, left 42-47 -> 44.5, mouth (48, 54) -> 51
    near = nearest_landmarks(np.arange(100, 200), ibug, verts, k=3)
    np.testing.assert_array_equal(near, [[0, 1, 2]] * 3)  # landmarks 100, 101, 102 are nearest to all
    near = nearest_landmarks(np.array([30, 39, 45, 52, 90]), ibug, verts, k=1)
    np.testing.assert_array_equal(near[:, 0], [1, 2, 3])


def test_fitted_weights_are_affine_and_exact_for_an_affine_relation():
    """ROI points that are exact affine combinations of the landmarks are recovered, in any pose."""
    rng = np.random.default_rng(0)
    m, n_l = 60, 30
    base = rng.normal(size=(n_l, 2)) * 30
    true_w = np.zeros((3, n_l))
    true_w[0, [0, 1, 2]] = [0.5, 0.3, 0.2]
    true_w[1, [3, 4]] = [0.6, 0.4]
    true_w[2, [5, 6, 7]] = [1.2, -0.5, 0.3]
    lms, rois = [], []
    for _ in range(m):
        a = rng.normal(size=(2, 2)) + np.eye(2) * 2
        pts = (base + rng.normal(size=base.shape) * 3) @ a.T + rng.normal(size=2) * 100
        lms.append(pts)
        rois.append(true_w @ pts)
    cand = np.tile(np.arange(10), (3, 1))
    w = fit_roi_weights(np.array(lms), np.array(rois), cand, ridge=1e-10)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-9)
    np.testing.assert_allclose(w, true_w, atol=1e-6)
    # roi points commute with affine image transforms
    mu = rng.uniform(0, 300, (n_l, 2))
    a, t = np.array([[1.2, 0.3], [-0.2, 0.9]]), np.array([15.0, -7.0])
    np.testing.assert_allclose(roi_points_from_landmarks(mu @ a.T + t, w), roi_points_from_landmarks(mu, w) @ a.T + t,
                               atol=1e-9)


def test_weights_for_the_real_landmark_sets(head_model):
    from tracker.face.landmark_sets import load_landmark_set
    from tracker.landmarks.model_roi import ibug68_roi_weights, roi_weights_for, sample_model_projections

    w68 = roi_weights_for("landmarks68", 68)
    np.testing.assert_allclose(w68, ibug68_roi_weights())
    w = roi_weights_for("landmarks320", 320)
    assert w.shape == (3, 320)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-9)
    # on other random heads than those it was fitted on: ROI points within 3 % of the eye distance
    lm, ibug = load_landmark_set("landmarks320"), load_landmark_set("landmarks68")
    uv, roi = sample_model_projections(head_model, lm.vertex_ids, ibug.vertex_ids, 40, seed=123)
    err = np.linalg.norm(np.einsum("rl,mld->mrd", w, uv) - roi, axis=2)
    eye = np.linalg.norm(roi[:, 1] - roi[:, 0], axis=1)
    assert (err / eye[:, None]).max() < 0.03
    assert roi_weights_for("landmarks320", 68) is None and roi_weights_for("", 320) is None


class _FakeDetection:
    score = 0.9

    def roi_points(self):
        return np.array([[90.0, 100.0], [150.0, 100.0], [120.0, 160.0]])


class _FakeDetector:
    def __init__(self, found=True):
        self.found = found

    def detect(self, image):
        return [_FakeDetection()] if self.found else []


class _ShiftPredictor:
    """Returns landmarks whose ROI points are the detector's, 5 px to the right."""

    input_size = 64

    def __init__(self):
        self.rois = []

    def predict(self, image, roi):
        from tracker.types import Landmarks

        self.rois.append(roi)
        pts = np.array([[90.0, 100.0], [150.0, 100.0], [120.0, 160.0]])
        mu = np.vstack([pts + [5.0, 0.0]] * 2)  # L = 6: two copies
        return Landmarks(mu_px=mu, sigma_px=np.ones(6))


def test_locate_face_refines_once_from_the_landmarks():
    weights = np.zeros((3, 6))
    weights[0, [0, 3]] = 0.5
    weights[1, [1, 4]] = 0.5
    weights[2, [2, 5]] = 0.5
    pred = _ShiftPredictor()
    located = locate_face(np.zeros((200, 200, 3), np.uint8), _FakeDetector(), pred, weights)
    assert len(pred.rois) == 2 and located.detection_score == 0.9
    expected = roi_from_points(np.array([[95.0, 100.0], [155.0, 100.0], [125.0, 160.0]]), 64)
    np.testing.assert_allclose(located.roi.matrix, expected.matrix, atol=1e-9)
    assert locate_face(np.zeros((10, 10, 3), np.uint8), _FakeDetector(False), pred, weights) is None
