"""ROI from the network's own landmarks: affine weights and the locate loop."""

from __future__ import annotations

import numpy as np

from tracker.landmarks.refine import locate_face, roi_points_from_landmarks, roi_weights_from_model
from tracker.roi import roi_from_points


def _toy_mesh():
    """A mesh whose iBUG vertices sit in known places; landmarks are a grid around them."""
    rng = np.random.default_rng(0)
    verts = rng.uniform(-8, 8, (500, 3))
    ibug = np.arange(68)
    verts[36:42] = [-3.0, 2.0, 5.0] + rng.normal(0, 0.3, (6, 3))
    verts[42:48] = [3.0, 2.0, 5.0] + rng.normal(0, 0.3, (6, 3))
    verts[48] = [-2.0, -4.0, 5.5]
    verts[54] = [2.0, -4.0, 5.5]
    landmarks = np.arange(100, 420)
    return verts, ibug, landmarks


def test_weights_are_affine_and_reproduce_the_roi_points_in_3d():
    verts, ibug, lmv = _toy_mesh()
    w = roi_weights_from_model(lmv, ibug, verts, k=8, ridge=1e-9)
    assert w.shape == (3, 320)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-9)
    targets = np.stack([verts[36:42].mean(0), verts[42:48].mean(0), verts[[48, 54]].mean(0)])
    # with 8 scattered neighbours (more than 3 + 1 constraints) the target is reproduced exactly
    np.testing.assert_allclose(w @ verts[lmv], targets, atol=1e-6)


def test_roi_points_commute_with_affine_image_transforms():
    verts, ibug, lmv = _toy_mesh()
    w = roi_weights_from_model(lmv, ibug, verts)
    rng = np.random.default_rng(2)
    mu = rng.uniform(0, 300, (320, 2))
    a = np.array([[1.2, 0.3], [-0.2, 0.9]])
    t = np.array([15.0, -7.0])
    np.testing.assert_allclose(roi_points_from_landmarks(mu @ a.T + t, w),
                               roi_points_from_landmarks(mu, w) @ a.T + t, atol=1e-9)


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
