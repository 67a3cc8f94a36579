"""LandmarkPredictor with a tiny ONNX model the test builds (exact known outputs)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.landmarks.tiny_model import build_tiny_model
from tracker.landmarks import LandmarkModelError, LandmarkPredictor
from tracker.landmarks.decode import decode_output
from tracker.roi import roi_from_points, warp_to_crop


@pytest.fixture()
def tiny(tmp_path):
    path = tmp_path / "landmark_model.onnx"
    weight, bias = build_tiny_model(path, size=64, n_landmarks=10)
    return path, weight, bias


def test_reads_size_and_count_from_the_model(tiny):
    path, _, _ = tiny
    p = LandmarkPredictor(path)
    assert p.input_size == 64 and p.n_landmarks == 10 and p.threads == 1
    assert p.info.landmark_set == "tiny" and p.info.batch_dynamic


def test_black_and_red_crops_give_the_known_outputs(tiny):
    path, weight, bias = tiny
    p = LandmarkPredictor(path)
    crops = np.zeros((2, 64, 64, 3), np.uint8)
    crops[1, ..., 2] = 255  # pure red in BGR -> RGB channel 0 = 1
    out = p.predict_crops(crops)
    assert out.shape == (2, 10, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], bias, atol=1e-6)
    np.testing.assert_allclose(out[1], bias + weight[0], atol=1e-6)


def test_predict_warps_runs_and_decodes(tiny):
    path, weight, bias = tiny
    p = LandmarkPredictor(path)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    roi = roi_from_points(np.array([[150.0, 140.0], [230.0, 135.0], [195.0, 230.0]]), 64)
    lm = p.predict(image, roi)
    crop = warp_to_crop(image, roi)
    mean_rgb = crop[..., ::-1].reshape(-1, 3).mean(0) / 255.0
    expected = decode_output(bias + np.einsum("c,cld->ld", mean_rgb, weight), roi)
    np.testing.assert_allclose(lm.mu_px, expected.mu_px, atol=1e-3)
    np.testing.assert_allclose(lm.sigma_px, expected.sigma_px, rtol=1e-4)
    # gray input is expanded to three equal channels
    gray = image[..., 1]
    lm_gray = p.predict(gray, roi)
    g = warp_to_crop(gray, roi).mean() / 255.0
    expected = decode_output(bias + g * weight.sum(0), roi)
    np.testing.assert_allclose(lm_gray.mu_px, expected.mu_px, atol=1e-3)


def test_fixed_batch_models_are_run_one_crop_at_a_time(tmp_path):
    path = tmp_path / "m.onnx"
    _, bias = build_tiny_model(path, size=32, n_landmarks=4, fixed_batch=True, metadata={})
    p = LandmarkPredictor(path, threads=2)
    out = p.predict_crops(np.zeros((3, 32, 32, 3), np.uint8))
    assert out.shape == (3, 4, 3)
    np.testing.assert_allclose(out[2], bias, atol=1e-6)


def test_missing_and_broken_models_are_clear_errors(tmp_path):
    with pytest.raises(LandmarkModelError, match="landmark model not found"):
        LandmarkPredictor(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(LandmarkModelError, match="cannot load landmark model"):
        LandmarkPredictor(bad)
    wrong = tmp_path / "wrong.onnx"
    build_tiny_model(wrong, input_name="input")
    with pytest.raises(LandmarkModelError, match="must have input 'image'"):
        LandmarkPredictor(wrong)
    mismatch = tmp_path / "mismatch.onnx"
    build_tiny_model(mismatch, size=64, metadata={"input_size": 128})
    with pytest.raises(LandmarkModelError, match="metadata says 128"):
        LandmarkPredictor(mismatch)
    with pytest.raises(LandmarkModelError, match="threads"):
        LandmarkPredictor(mismatch, threads=0)


def test_crop_zoom_comes_from_the_metadata(tmp_path):
    plain = tmp_path / "plain.onnx"
    build_tiny_model(plain, size=32, n_landmarks=4)
    assert LandmarkPredictor(plain).crop_zoom == 1.0  # no crop_zoom in the metadata: the default template
    zoomed = tmp_path / "zoomed.onnx"
    build_tiny_model(zoomed, size=32, n_landmarks=4, metadata={"input_size": 32, "crop_zoom": 1.25})
    assert LandmarkPredictor(zoomed).crop_zoom == 1.25
    for bad in (5.0, "big", None):
        broken = tmp_path / "broken.onnx"
        build_tiny_model(broken, size=32, n_landmarks=4, metadata={"input_size": 32, "crop_zoom": bad})
        with pytest.raises(LandmarkModelError, match="bad crop_zoom"):
            LandmarkPredictor(broken)


def test_wrong_roi_or_crop_size_is_a_clear_error(tiny):
    p = LandmarkPredictor(tiny[0])
    roi = roi_from_points(np.array([[10.0, 10.0], [20.0, 10.0], [15.0, 22.0]]), 128)
    with pytest.raises(ValueError, match="takes 64 px crops"):
        p.predict(np.zeros((40, 40, 3), np.uint8), roi)
    with pytest.raises(ValueError, match=r"\(N, 64, 64, 3\)"):
        p.predict_crops(np.zeros((1, 32, 32, 3), np.uint8))
