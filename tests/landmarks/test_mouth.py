"""The region refiners (lips, eyes): the mouth crop's geometry, the fusion at run time (tiny ONNX models with known outputs), its
errors, and the committed refiner on real held-out 300-W photos."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tests.landmarks.photos import held_out_300w
from tests.landmarks.tiny_model import build_tiny_model
from tracker.landmarks import LandmarkModelError, LandmarkPredictor
from tracker.landmarks.decode import decode_output
from tracker.landmarks.mouth_roi import MOUTH_HALF, mouth_roi
from tracker.roi import crop_to_normalized, normalized_to_crop, roi_from_points, roi_points_from_ibug68, warp_to_crop

FACE_POINTS = np.array([[150.0, 140.0], [230.0, 135.0], [195.0, 230.0]])
LIPS = [2, 5, 7]


def test_mouth_crop_is_centred_on_the_lips_and_inverts():
    face = roi_from_points(FACE_POINTS, 160, 1.25)
    centre = np.array([0.05, 0.42])
    roi = mouth_roi(face, centre, 80)
    assert roi.size == 80 and mouth_roi(face, centre).size == 64
    # the centre (face crop coordinates) lands in the middle of the mouth crop
    centre_img = face.crop_to_image(normalized_to_crop(centre, 160))
    np.testing.assert_allclose(crop_to_normalized(roi.image_to_crop(centre_img), 80), [0.0, 0.0], atol=1e-9)
    # the crop's right and bottom edges are MOUTH_HALF away from it in the face crop's normalised units
    for axis in (0, 1):
        edge = centre.copy()
        edge[axis] += MOUTH_HALF[axis]
        got = crop_to_normalized(roi.image_to_crop(face.crop_to_image(normalized_to_crop(edge, 160))), 80)
        np.testing.assert_allclose(got[axis], 1.0, atol=1e-9)
        np.testing.assert_allclose(got[1 - axis], 0.0, atol=1e-9)
    pts = np.random.default_rng(0).uniform(0, 400, (20, 2))
    np.testing.assert_allclose(roi.crop_to_image(roi.image_to_crop(pts)), pts, atol=1e-9)
    # more pixels per face-crop pixel than the face crop: the mouth crop magnifies it
    assert roi.scale_px < face.scale_px
    with pytest.raises(ValueError, match="mouth centre"):
        mouth_roi(face, [np.nan, 0.0])
    with pytest.raises(ValueError, match="at least 8"):
        mouth_roi(face, centre, 4)


def _models(tmp_path, refiner_meta: dict | None = None, refiner_name: str = "mouth.onnx"):
    face_path = tmp_path / "landmark_model.onnx"
    fw, fb = build_tiny_model(face_path, size=64, n_landmarks=10, seed=1,
                              metadata={"input_size": 64, "landmark_set": "tiny", "lip_refiner": refiner_name})
    meta = {"input_size": 32, "n_landmarks": 3, "lips": LIPS, "half": list(MOUTH_HALF), "landmark_set": "tiny",
            "face_input_size": 64, "face_crop_zoom": 1.0}
    meta.update(refiner_meta or {})
    mw, mb = build_tiny_model(tmp_path / "mouth.onnx", size=32, n_landmarks=3, seed=2, metadata=meta)
    return face_path, (fw, fb), (mw, mb)


def test_lips_are_the_inverse_variance_mean_of_both_networks(tmp_path):
    face_path, _, (mw, mb) = _models(tmp_path)
    refined = LandmarkPredictor(face_path)
    plain = LandmarkPredictor(face_path, refine=False)
    assert refined.lip_refiner is not None and plain.lip_refiner is None
    image = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    roi = roi_from_points(FACE_POINTS, 64)
    base = plain.predict(image, roi)
    got = refined.predict(image, roi)
    # the refiner's own answer, computed by hand: the mouth crop around the face network's lips, its mean colour
    centre = crop_to_normalized(roi.image_to_crop(base.mu_px[LIPS]), 64).mean(0)
    mroi = mouth_roi(roi, centre, 32)
    rgb = warp_to_crop(image, mroi)[..., ::-1].reshape(-1, 3).mean(0) / 255.0
    mouth = decode_output(mb + np.einsum("c,cld->ld", rgb, mw), mroi)
    w1, w2 = base.sigma_px[LIPS] ** -2, mouth.sigma_px ** -2
    want = (base.mu_px[LIPS] * w1[:, None] + mouth.mu_px * w2[:, None]) / (w1 + w2)[:, None]
    np.testing.assert_allclose(got.mu_px[LIPS], want, atol=1e-3)
    # sigma: the smaller of the two (the networks' errors are correlated, so not (w1 + w2) ** -0.5)
    np.testing.assert_allclose(got.sigma_px[LIPS], np.minimum(base.sigma_px[LIPS], mouth.sigma_px), rtol=1e-4)
    assert not np.allclose(base.sigma_px[LIPS], mouth.sigma_px, rtol=0.05)  # the test tells the two apart
    others = np.setdiff1d(np.arange(10), LIPS)
    np.testing.assert_array_equal(got.mu_px[others], base.mu_px[others])
    np.testing.assert_array_equal(got.sigma_px[others], base.sigma_px[others])
    # gray frames go through the same path
    assert np.all(np.isfinite(refined.predict(image[..., 1], roi).mu_px))


def test_a_refiner_that_does_not_fit_the_model_is_a_clear_error(tmp_path):
    face_path, _, _ = _models(tmp_path, {"landmark_set": "landmarks320"})
    with pytest.raises(LandmarkModelError, match="refiner.*'landmarks320'"):
        LandmarkPredictor(face_path)
    assert LandmarkPredictor(face_path, refine=False).lip_refiner is None
    face_path, _, _ = _models(tmp_path, {"lips": [2, 5, 70]})
    with pytest.raises(LandmarkModelError, match="names a refiner that cannot be used"):
        LandmarkPredictor(face_path)
    face_path, _, _ = _models(tmp_path, refiner_name="missing.onnx")
    with pytest.raises(LandmarkModelError, match="refiner not found"):
        LandmarkPredictor(face_path)
    face_path, _, _ = _models(tmp_path)
    (tmp_path / "mouth.json").write_text("{not json")
    with pytest.raises(LandmarkModelError, match="cannot read refiner metadata"):
        LandmarkPredictor(face_path)


def test_committed_refiner_reads_the_lips_of_real_photos(shared_data):
    """On held-out 300-W photos: the default model loads its refiner; the refined lips at the iBUG mouth vertices
    are close to the human labels, and closer on average than the face network's alone."""
    from tracker.landmarks.model_roi import nearest_landmark_to_ibug

    refined = LandmarkPredictor()
    plain = LandmarkPredictor(refine=False)
    assert refined.lip_refiner is not None
    ib = nearest_landmark_to_ibug(refined.info.landmark_set, refined.n_landmarks)[48:68]
    errs = {"refined": [], "plain": []}
    for path, gt in held_out_300w(shared_data, 40):
        image = cv2.imread(str(path))
        roi = roi_from_points(roi_points_from_ibug68(gt), refined.input_size, refined.crop_zoom)
        d = np.linalg.norm(gt[45] - gt[36])
        for name, p in (("refined", refined), ("plain", plain)):
            errs[name].append(np.linalg.norm(p.predict(image, roi).mu_px[ib] - gt[48:68], axis=1).mean() / d)
    refined_err, plain_err = np.mean(errs["refined"]), np.mean(errs["plain"])
    assert refined_err < 0.06, refined_err
    assert refined_err < plain_err, (refined_err, plain_err)


def test_every_named_refiner_reads_its_own_region(tmp_path):
    """A lip refiner and a second refiner (``"refiners"``) over other landmarks: each region is fused with its own
    network's answer, the rest is the landmark network's; two refiners over the same landmarks are refused."""
    face_path, _, _ = _models(tmp_path)
    eye = [0, 8]
    meta = {"input_size": 32, "n_landmarks": 2, "lips": eye, "region": "eye_L", "half": [0.36, 0.30],
            "landmark_set": "tiny", "face_input_size": 64, "face_crop_zoom": 1.0}
    build_tiny_model(tmp_path / "eye.onnx", size=32, n_landmarks=2, seed=3, metadata=meta)
    face_meta = json.loads(face_path.with_suffix(".json").read_text())
    face_path.with_suffix(".json").write_text(json.dumps({**face_meta, "refiners": ["eye.onnx"]}))
    both = LandmarkPredictor(face_path)
    assert [r.region for r in both.refiners] == ["lips", "eye_L"] and both.lip_refiner is both.refiners[0]
    plain = LandmarkPredictor(face_path, refine=False)
    assert plain.refiners == [] and plain.lip_refiner is None
    image = np.random.default_rng(1).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    roi = roi_from_points(FACE_POINTS, 64)
    base, got = plain.predict(image, roi), both.predict(image, roi)
    want = both.refiners[1].refine(image, roi, both.refiners[0].refine(image, roi, base))
    np.testing.assert_array_equal(got.mu_px, want.mu_px)
    for idx in (LIPS, eye):
        assert np.all(np.abs(got.mu_px[idx] - base.mu_px[idx]) > 1e-6)  # both regions moved
    others = np.setdiff1d(np.arange(10), LIPS + eye)
    np.testing.assert_array_equal(got.mu_px[others], base.mu_px[others])
    build_tiny_model(tmp_path / "eye.onnx", size=32, n_landmarks=2, seed=3, metadata={**meta, "lips": [0, 5]})
    with pytest.raises(LandmarkModelError, match="another refiner it names reads too"):
        LandmarkPredictor(face_path)
