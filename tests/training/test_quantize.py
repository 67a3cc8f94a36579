"""8-bit copies of the networks (tracker.training.quantize): made from the committed float networks on real video
frames, named in their JSONs, and run by the predictor."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from tests.landmarks.tiny_model import build_tiny_model
from tracker.landmarks import LandmarkPredictor
from tracker.paths import ASSETS_DIR
from tracker.training.quantize import calibration_images, float_nodes, main, quantize_models

_META = json.loads((ASSETS_DIR / "landmark_model.json").read_text())
#: the committed float networks: the landmark network and the refiners its JSON names
NETWORKS = ["landmark_model.onnx", _META["lip_refiner"], *_META.get("refiners", [])]


@pytest.fixture(scope="module")
def quantized(shared_data, tmp_path_factory):
    """The committed float networks copied without their 8-bit copies, then quantized on 16 video frames."""
    folder = tmp_path_factory.mktemp("q")
    for onnx_file in NETWORKS:
        shutil.copy(ASSETS_DIR / onnx_file, folder / onnx_file)
        meta = json.loads((ASSETS_DIR / onnx_file).with_suffix(".json").read_text())
        meta.pop("int8_model", None), meta.pop("int8", None)
        (folder / onnx_file).with_suffix(".json").write_text(json.dumps(meta))
    records = quantize_models(folder / "landmark_model.onnx", [shared_data / "ytf-frames" / "images"], 16)
    return folder, records


def test_both_networks_get_a_checked_copy_named_in_their_json(quantized):
    folder, records = quantized
    assert set(records) == set(NETWORKS) and len(NETWORKS) >= 2
    for name, record in records.items():
        copy = folder / name.replace(".onnx", "_int8.onnx")
        assert copy.is_file() and copy.stat().st_size < 0.9 * (folder / name).stat().st_size
        meta = json.loads((folder / name).with_suffix(".json").read_text())
        assert meta["int8_model"] == copy.name and meta["int8"] == record
        assert record["calibration_crops"] + record["check_crops"] >= 12
        assert 0 < record["shift_px_mean"] < 0.6 and record["float_nodes"] > 0


def test_the_predictor_runs_the_new_copies_close_to_the_float_networks(quantized, shared_data):
    folder, _ = quantized
    q = LandmarkPredictor(folder / "landmark_model.onnx", precision="int8")
    f = LandmarkPredictor(folder / "landmark_model.onnx", precision="float")
    assert q.refiners and all(r.precision == "int8" for r in q.refiners)
    image = cv2.imread(str(calibration_images([shared_data / "ytf-frames" / "images"], 40)[-1]))
    from tracker.detect import FaceDetector
    from tracker.landmarks.bench import load_roi_weights
    from tracker.landmarks.refine import locate_face

    detector = FaceDetector()
    located = locate_face(image, detector, f, load_roi_weights(f))
    detector.close()
    assert located is not None
    a, b = q.predict(image, located.roi), f.predict(image, located.roi)
    roi = located.roi
    shift = np.linalg.norm(roi.image_to_crop(a.mu_px) - roi.image_to_crop(b.mu_px), axis=1)  # pixels of the crop
    assert 0 < np.median(shift) < 1.0, np.median(shift)


def test_foreign_graphs_and_missing_data_are_clear_errors(tmp_path, capsys):
    build_tiny_model(tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="not an export of tracker.training.network"):
        float_nodes(tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="no images in"):
        calibration_images([tmp_path / "empty"], 10)
    with pytest.raises(SystemExit):
        main(["--model", str(tmp_path / "nothing.onnx")])
    assert "and its JSON sidecar are both needed" in capsys.readouterr().err
