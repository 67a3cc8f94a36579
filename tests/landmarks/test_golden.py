"""Golden test of the trained model (assets/landmark_model.onnx) on real held-out 300-W photos.

Not compared with a stored output: the fitted model's iBUG 68 points and the network's own landmarks at the
iBUG vertices are compared with the 300-W ground truth, with generous pixel tolerances (in units of the
ground truth's outer-eye-corner distance). The interim model of step 2069 gives on the first 30 held-out images:
fitted points 17-67 6.9 % mean (max 10.6 %), the network's iBUG-vertex landmarks 6.9 % (max 10.7 %), fitted
eye centres at most 23 % (the first interim model, step 397: 8.0 %, 7.6 %, 14 %); the bounds below hold
for the first 6 images with room for a retrained model.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.landmarks.photos import held_out_300w

N_IMAGES = 6
#: mean error of the fitted iBUG points 17-67 (no jaw contour) over the images, in eye-corner distances
MAX_FIT_INNER = 0.15
#: mean error of the network's landmarks that are iBUG vertices (17-67 ones), in eye-corner distances
MAX_NET_INNER = 0.15
#: eye centres (mean of the six eye points) of the fitted model, each image
MAX_EYE_CENTRE = 0.3


@pytest.fixture(scope="module")
def pipeline(head_model):
    from tracker.detect import FaceDetector
    from tracker.face.landmark_sets import load_landmark_set
    from tracker.fitting.solver import FaceFitter
    from tracker.landmarks import LandmarkPredictor
    from tracker.landmarks.model_roi import roi_weights_for

    predictor = LandmarkPredictor()
    lm_set = load_landmark_set(predictor.info.landmark_set)
    detector = FaceDetector()
    yield {"predictor": predictor, "detector": detector, "set": lm_set, "ibug": load_landmark_set("landmarks68"),
           "weights": roi_weights_for(predictor.info.landmark_set, predictor.n_landmarks),
           "fitter": FaceFitter(head_model, lm_set), "model": head_model}
    detector.close()


def test_trained_model_on_held_out_photos(pipeline, shared_data):
    from tracker.face.forward import posed_vertices, project
    from tracker.landmarks.refine import locate_face
    from tracker.types import Intrinsics

    p = pipeline
    assert p["weights"] is not None, "no refine pass for the trained model's landmark set"
    shared = np.flatnonzero(np.isin(p["ibug"].vertex_ids, p["set"].vertex_ids))
    net_index = np.array([np.flatnonzero(p["set"].vertex_ids == p["ibug"].vertex_ids[i])[0] for i in shared])
    inner = shared >= 17
    fit_err, net_err = [], []
    for path, gt in held_out_300w(shared_data, N_IMAGES):
        image = cv2.imread(str(path))
        io = np.linalg.norm(gt[36] - gt[45])
        located = locate_face(image, p["detector"], p["predictor"], p["weights"])
        assert located is not None, f"no face in {path.name}"
        intr = Intrinsics.from_fov(image.shape[1], image.shape[0], 45.0)
        fit = p["fitter"].fit_frame(located.landmarks, intr, None)
        pts68 = project(posed_vertices(p["model"], fit.params, p["ibug"].vertex_ids), intr)
        fit_err.append(np.linalg.norm(pts68[17:] - gt[17:], axis=1).mean() / io)
        for eye in (slice(36, 42), slice(42, 48)):
            assert np.linalg.norm(pts68[eye].mean(0) - gt[eye].mean(0)) / io < MAX_EYE_CENTRE, path.name
        mu = located.landmarks.mu_px[net_index[inner]]
        net_err.append(np.linalg.norm(mu - gt[shared[inner]], axis=1).mean() / io)
    assert np.mean(fit_err) < MAX_FIT_INNER, fit_err
    assert np.mean(net_err) < MAX_NET_INNER, net_err


def test_trained_model_tells_faces_from_non_faces(pipeline, shared_data):
    """BlazeFace finds a 'face' in this noise image; the trained network's sigmas reject it, not the photos."""
    from tracker.landmarks.lost import tracking_lost
    from tracker.landmarks.refine import locate_face

    p = pipeline
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    located = locate_face(noise, p["detector"], p["predictor"], p["weights"])
    assert located is not None, "the detector no longer fires on this noise image: pick another seed"
    assert tracking_lost(located.landmarks, located.roi).lost
    for path, _ in held_out_300w(shared_data, 3):
        located = locate_face(cv2.imread(str(path)), p["detector"], p["predictor"], p["weights"])
        assert not tracking_lost(located.landmarks, located.roi).lost, path.name
