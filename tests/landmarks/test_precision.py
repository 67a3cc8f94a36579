"""The 8-bit copies of the networks: which file runs (precision), and the committed copies on real photos."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tests.landmarks.photos import held_out_300w
from tests.landmarks.tiny_model import build_tiny_model
from tracker.landmarks import LandmarkModelError, LandmarkPredictor
from tracker.landmarks import predictor as predictor_module
from tracker.landmarks.predictor import resolve_precision
from tracker.roi import roi_from_points, roi_points_from_ibug68


@pytest.fixture()
def no_env(monkeypatch):
    monkeypatch.delenv("TRACKER_PRECISION", raising=False)
    return monkeypatch


@pytest.mark.parametrize("requested, has_int8, fast_cpu, expected", [
    ("auto", True, True, "int8"), ("auto", True, False, "float"), ("auto", False, True, "float"),
    ("int8", True, False, "int8"), ("float", True, True, "float"), ("FLOAT", False, False, "float"),
    (None, True, True, "int8"),
])
def test_precision_follows_the_request_the_copy_and_the_cpu(no_env, requested, has_int8, fast_cpu, expected):
    no_env.setattr(predictor_module, "cpu_has_int8_dot", lambda: fast_cpu)
    assert resolve_precision(requested, has_int8) == expected


def test_precision_from_the_environment_and_bad_values(no_env):
    no_env.setattr(predictor_module, "cpu_has_int8_dot", lambda: True)
    no_env.setenv("TRACKER_PRECISION", "float")
    assert resolve_precision(None, True) == "float"
    assert resolve_precision("int8", True) == "int8"  # an explicit request wins over the environment
    no_env.setenv("TRACKER_PRECISION", "fp16")
    with pytest.raises(ValueError, match="precision must be one of auto, int8, float"):
        resolve_precision(None, True)
    with pytest.raises(LandmarkModelError, match="names no 8-bit copy"):
        resolve_precision("int8", False)


def test_cpu_check_answers_on_this_machine():
    assert isinstance(predictor_module.cpu_has_int8_dot(), bool)


def _pair(tmp_path, int8_file: bool = True):
    """A tiny float model whose JSON names an 8-bit copy: a second tiny model with other outputs, so the test sees
    which file ran."""
    path = tmp_path / "landmark_model.onnx"
    _, bias_float = build_tiny_model(path, size=32, n_landmarks=6, seed=1)
    bias_copy = None
    if int8_file:
        _, bias_copy = build_tiny_model(tmp_path / "landmark_model_int8.onnx", size=32, n_landmarks=6, seed=2,
                                        metadata={})
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["int8_model"] = "landmark_model_int8.onnx"
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path, bias_float, bias_copy


def test_the_predictor_runs_the_file_its_precision_names(tmp_path, no_env):
    path, bias_float, bias_copy = _pair(tmp_path)
    black = np.zeros((1, 32, 32, 3), np.uint8)
    as_int8 = LandmarkPredictor(path, precision="int8")
    as_float = LandmarkPredictor(path, precision="float")
    assert (as_int8.precision, as_float.precision) == ("int8", "float")
    np.testing.assert_allclose(as_int8.predict_crops(black)[0], bias_copy, atol=1e-6)
    np.testing.assert_allclose(as_float.predict_crops(black)[0], bias_float, atol=1e-6)
    no_env.setattr(predictor_module, "cpu_has_int8_dot", lambda: False)
    assert LandmarkPredictor(path).precision == "float"  # auto on a CPU without 8-bit dot products
    with pytest.raises(LandmarkModelError, match="precision must be one of"):
        LandmarkPredictor(path, precision="half")


def test_a_missing_copy_is_a_clear_error_only_when_it_would_run(tmp_path, no_env):
    path, _, _ = _pair(tmp_path, int8_file=False)
    with pytest.raises(LandmarkModelError, match="names an 8-bit copy .* that is not there"):
        LandmarkPredictor(path, precision="int8")
    assert LandmarkPredictor(path, precision="float").precision == "float"


def test_global_precision_option_reaches_the_predictors(tmp_path, no_env, capsys):
    from tracker.cli import main

    image = tmp_path / "blank.png"
    cv2.imwrite(str(image), np.zeros((64, 64, 3), np.uint8))
    assert main(["--precision", "float", "landmarks", str(image), "--json", "--no-fit"]) == 0
    import os

    assert os.environ["TRACKER_PRECISION"] == "float"
    with pytest.raises(SystemExit):
        main(["--precision", "int4", "landmarks", str(image)])
    assert "invalid choice" in capsys.readouterr().err


def test_committed_int8_copies_agree_with_the_float_networks_on_real_photos(shared_data, no_env):
    """Held-out 300-W photos, ROI from the ground truth: the 8-bit networks (face and lips) move the landmarks by a
    small fraction of the inter-ocular distance, and their error against the human labels stays the float's."""
    from tracker.landmarks.model_roi import nearest_landmark_to_ibug

    q = LandmarkPredictor(precision="int8")
    f = LandmarkPredictor(precision="float")
    assert q.precision == "int8" and q.refiners and all(r.precision == "int8" for r in q.refiners)
    assert f.precision == "float" and f.refiners and all(r.precision == "float" for r in f.refiners)
    ib = nearest_landmark_to_ibug(q.info.landmark_set, q.n_landmarks)[27:68]
    shift, err_q, err_f, sigma_ratio = [], [], [], []
    for path, gt in held_out_300w(shared_data, 30):
        image = cv2.imread(str(path))
        roi = roi_from_points(roi_points_from_ibug68(gt), q.input_size, q.crop_zoom)
        d = np.linalg.norm(gt[45] - gt[36])
        a, b = q.predict(image, roi), f.predict(image, roi)
        shift.append(np.linalg.norm(a.mu_px - b.mu_px, axis=1).mean() / d)
        err_q.append(np.linalg.norm(a.mu_px[ib] - gt[27:68], axis=1).mean() / d)
        err_f.append(np.linalg.norm(b.mu_px[ib] - gt[27:68], axis=1).mean() / d)
        sigma_ratio.append(np.median(a.sigma_px / b.sigma_px))
    assert np.mean(shift) < 0.005, np.mean(shift)  # under 0.5 % of the inter-ocular distance
    assert np.mean(err_q) < np.mean(err_f) * 1.03, (np.mean(err_q), np.mean(err_f))
    assert abs(np.median(sigma_ratio) - 1.0) < 0.05
