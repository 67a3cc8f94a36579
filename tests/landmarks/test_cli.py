"""``python main.py landmarks``: real photo, no face, blank, 1x1, 8K and unreadable files each get a clear result.

Run with a tiny ONNX model the test builds (the trained model's accuracy is tested in test_golden.py).
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tests.landmarks.tiny_model import build_tiny_model
from tracker.cli import main


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "landmark_model.onnx"
    build_tiny_model(path, size=64, n_landmarks=12, metadata={"input_size": 64, "landmark_set": "", "version": "t"})
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory, shared_data):
    d = tmp_path_factory.mktemp("images")
    photo = shared_data / "300w-train" / "images" / "lfpw_image_0001.jpg"
    cv2.imwrite(str(d / "blank.png"), np.zeros((480, 640, 3), np.uint8))
    cv2.imwrite(str(d / "one.png"), np.full((1, 1, 3), 128, np.uint8))
    cv2.imwrite(str(d / "8k.jpg"), np.full((4320, 7680, 3), 90, np.uint8))
    (d / "broken.jpg").write_bytes(b"not a jpeg")
    return {"photo": str(photo), "blank": str(d / "blank.png"), "one": str(d / "one.png"),
            "8k": str(d / "8k.jpg"), "broken": str(d / "broken.jpg"), "missing": str(d / "missing.png")}


def _run_json(capsys, argv):
    status = main(argv)
    cap = capsys.readouterr()
    return status, [json.loads(line) for line in cap.out.splitlines() if line.startswith("{")], cap.err


def test_photo_gives_landmarks_in_pixels(capsys, tiny_model, images):
    status, outs, _ = _run_json(capsys, ["landmarks", "--json", "--no-fit", "--model", str(tiny_model),
                                         images["photo"]])
    assert status == 0 and len(outs) == 1
    out = outs[0]
    assert out["face"] is True and out["file"] == images["photo"]
    mu, sigma = np.array(out["landmarks_px"]), np.array(out["sigma_px"])
    assert mu.shape == (12, 2) and sigma.shape == (12,) and np.all(sigma > 0)
    assert np.all(np.isfinite(mu)) and 0.5 <= out["detection_score"] <= 1.0
    assert out["fit"] == {"error": "fit skipped (--no-fit)"} and out["ibug68_px"] is None


def test_no_face_blank_tiny_and_8k_images(capsys, tiny_model, images):
    status, outs, _ = _run_json(capsys, ["landmarks", "--json", "--no-fit", "--model", str(tiny_model),
                                         images["blank"], images["one"], images["8k"]])
    assert status == 0 and len(outs) == 3
    for out, key in zip(outs, ("blank", "one", "8k")):
        assert out == {"file": images[key], "face": False, "reason": "no face found by the detector",
                       "width": out["width"], "height": out["height"]}
    assert (outs[1]["width"], outs[1]["height"]) == (1, 1)
    assert (outs[2]["width"], outs[2]["height"]) == (7680, 4320)


def test_a_candidate_the_network_is_unsure_about_is_no_face(capsys, tmp_path, images):
    model = tmp_path / "unsure.onnx"
    bias = np.zeros((12, 3))
    bias[:, 2] = np.log(0.5)  # sigma: a quarter of the crop
    build_tiny_model(model, size=64, n_landmarks=12, weight=np.zeros((3, 12, 3)), bias=bias,
                     metadata={"input_size": 64, "landmark_set": "", "version": "t"})
    status, outs, _ = _run_json(capsys, ["landmarks", "--json", "--no-fit", "--model", str(model), images["photo"]])
    assert status == 0 and outs[0]["face"] is False
    assert "the landmark network rejects it: landmarks too uncertain" in outs[0]["reason"]


def test_unreadable_files_are_one_error_line_each(capsys, tiny_model, images):
    status, outs, err = _run_json(capsys, ["landmarks", "--json", "--no-fit", "--model", str(tiny_model),
                                           images["broken"], images["missing"], images["blank"]])
    assert status == 1 and len(outs) == 1 and outs[0]["face"] is False
    assert f"main.py landmarks: error: cannot read {images['broken']}: not an image OpenCV can read" in err
    assert f"main.py landmarks: error: cannot read {images['missing']}: no such file" in err


def test_readable_output_and_bad_options(capsys, tiny_model, images, tmp_path):
    assert main(["landmarks", "--no-fit", "--model", str(tiny_model), images["photo"], images["blank"]]) == 0
    out = capsys.readouterr().out
    assert "face (detector score" in out and "no face (no face found by the detector)" in out
    assert main(["landmarks", "--model", str(tmp_path / "none.onnx"), images["photo"]]) == 1
    assert "landmark model not found" in capsys.readouterr().err
    assert main(["landmarks", "--hfov", "0", "--model", str(tiny_model), images["photo"]]) == 1
    assert "--hfov must be in [1, 179]" in capsys.readouterr().err


def test_fit_and_ibug68_with_a_model_that_outputs_a_face(capsys, tmp_path, shared_data, head_model):
    """A tiny network that always answers the 300-W face of the photo (in its own crop frame): the fitted
    model's 68 projected points must follow the network's landmarks (landmarks68 set: the same points)."""
    import csv

    from tracker.roi import crop_to_normalized, roi_from_points, roi_points_from_ibug68

    with open(shared_data / "300w-train" / "landmarks68.csv") as fh:
        row = next(r for r in csv.reader(fh) if r[0] == "lfpw_image_0001.jpg")
    gt = np.array(row[1:], dtype=np.float64).reshape(68, 2)
    roi = roi_from_points(roi_points_from_ibug68(gt), 64)
    model = tmp_path / "landmark_model.onnx"
    bias = np.concatenate([crop_to_normalized(roi.image_to_crop(gt), 64), np.full((68, 1), np.log(0.01))], axis=1)
    build_tiny_model(model, size=64, n_landmarks=68, weight=np.zeros((3, 68, 3)), bias=bias,
                     metadata={"input_size": 64, "landmark_set": "landmarks68", "version": "t"})
    photo = str(shared_data / "300w-train" / "images" / "lfpw_image_0001.jpg")
    status, outs, _ = _run_json(capsys, ["landmarks", "--json", "--model", str(model), photo])
    assert status == 0 and outs[0]["face"] is True
    out = outs[0]
    mu, fit68 = np.array(out["landmarks_px"]), np.array(out["ibug68_px"])
    assert fit68.shape == (68, 2) and np.all(np.isfinite(fit68))
    io = np.linalg.norm(mu[36] - mu[45])
    assert np.linalg.norm(fit68 - mu, axis=1).mean() / io < 0.08
    fit = out["fit"]
    assert fit["hfov_deg"] == 45.0 and fit["iterations"] >= 1 and fit["translation_mm"][2] > 0
    assert out["tracking_lost"] in (True, False) and isinstance(out["lost_reason"], str)

