"""The landmark benchmark end to end on a few real 300-W images (tiny test model: checks the protocol, not
the accuracy of a trained network)."""

from __future__ import annotations

import argparse
import json

import pytest

from tests.landmarks.tiny_model import build_tiny_model
from tracker.landmarks import bench


def test_bench_runs_all_parts_on_a_few_images(tmp_path):
    model = tmp_path / "landmark_model.onnx"
    build_tiny_model(model, size=64, n_landmarks=12, metadata={"input_size": 64, "landmark_set": "", "version": "t"})
    p = argparse.ArgumentParser()
    bench.add_arguments(p)
    args = p.parse_args(["--limit", "3", "--model", str(model), "--timing-runs", "20"])
    res = bench.run(args)
    json.dumps(res)  # JSON-able
    net = res["network"]
    assert net["threads"] == 1 and net["input_size"] == 64 and net["n_landmarks"] == 12
    assert 0 < net["ms_per_crop_median"] < 50
    ours, mesh = res["nme_300w"]["ours"], res["nme_300w"]["mediapipe_face_mesh"]
    for r in (ours, mesh):
        assert r["held_out_images"] == 3 and r["training_images"] >= 5
        assert 0 <= r["failure_rate"] <= 1
        assert r["nme_mean"] > 0 and r["nme_median"] > 0
        regions = r["nme_mean_by_region"]
        assert set(regions) == {"jaw", "brows", "nose", "eyes", "mouth"}
        counts = {"jaw": 17, "brows": 10, "nose": 9, "eyes": 12, "mouth": 20}
        assert sum(counts[k] * v for k, v in regions.items()) / 68 == pytest.approx(r["nme_mean"])
    # MediaPipe under label translation is accurate on these easy photos
    assert mesh["faces_found"] == 3 and mesh["nme_mean"] < 10
    cal = res["calibration"]
    assert 0 <= cal["within_1_sigma"] <= cal["within_2_sigma"] <= 1 and cal["n_errors"] > 0
    lost = res["tracking_lost"]["median_sigma_norm"]
    assert lost["faces"]["n"] == ours["faces_found"] and lost["non_faces"]["n"] == 2 * ours["faces_found"] + 3
    assert 0 <= lost["faces"]["share_flagged_lost"] <= 1 and lost["faces"]["p5"] <= lost["faces"]["p95"]


def test_bench_without_a_model_still_runs_the_baseline(tmp_path):
    p = argparse.ArgumentParser()
    bench.add_arguments(p)
    res = bench.run(p.parse_args(["--limit", "2", "--model", str(tmp_path / "none.onnx")]))
    assert "landmark model not found" in res["network"]["error"]
    assert "ours" not in res["nme_300w"] and res["nme_300w"]["mediapipe_face_mesh"]["faces_found"] == 2


def test_turn_ratio_grows_towards_profile():
    from tracker.roi import TEMPLATE_EYE_DISTANCE, TEMPLATE_MOUTH_DISTANCE

    mouth = TEMPLATE_MOUTH_DISTANCE / TEMPLATE_EYE_DISTANCE * 60.0
    ratios = [bench.turn_ratio([[100 - e / 2, 50.0], [100 + e / 2, 50.0], [100.0, 50.0 + mouth]])
              for e in (60.0, 40.0, 20.0, 0.0)]
    assert ratios[0] == pytest.approx(1.0) and ratios[1] == pytest.approx(1.5) and ratios[2] == pytest.approx(3.0)
    assert ratios[3] == float("inf")


def test_direct_300w_with_the_committed_network(shared_data):
    """The direct check on three held-out images with the real network: a trained model's inner points land
    within a few percent of the ground truth; the same landmarks given to the wrong iBUG points (the map
    reversed) do not."""
    from tracker.landmarks.model_roi import nearest_landmark_to_ibug
    from tracker.landmarks.predictor import LandmarkPredictor

    predictor = LandmarkPredictor()
    samples = [s for s in bench._read_300w(shared_data, 3) if s.held_out]
    index = nearest_landmark_to_ibug(predictor.info.landmark_set, predictor.n_landmarks)
    res = bench.direct_300w(samples, shared_data / "300w-train" / "images", predictor, index)
    assert res["images"] == 3 and res["points"] == 41
    assert 0.5 < res["nme_mean"] < 10
    assert 0 < res["mean_point_offset"] < res["nme_mean"]
    assert 0 < res["nme_mean_offsets_removed"] < 1.2 * res["nme_mean"]
    wrong = bench.direct_300w(samples, shared_data / "300w-train" / "images", predictor, index[::-1].copy())
    assert wrong["nme_mean"] > 2 * res["nme_mean"]
    assert set(res["roi_jitter"]) == {f"{k:g}" for k in bench.JITTER_SCALES}
    assert all(v["n"] == 3 * bench.JITTER_DRAWS for v in res["roi_jitter"].values())
    cal = res["calibration"]  # errors against human labels, in units of the network's sigmas
    assert cal["n_errors"] == 3 * 41 and 0 < cal["within_1_sigma"] < cal["within_2_sigma"] <= 1
    assert wrong["calibration"]["within_2_sigma"] < cal["within_2_sigma"]


def test_direct_300w_roi_jitter_tolerance(shared_data):
    """``roi_jitter``: with no jitter (k = 0) the error is the plain direct error; a wildly wrong ROI (k = 8:
    rotations up to the 35 degree clip, shifts of half the face) makes the error far larger."""
    from tracker.landmarks.model_roi import nearest_landmark_to_ibug
    from tracker.landmarks.predictor import LandmarkPredictor

    predictor = LandmarkPredictor()
    samples = [s for s in bench._read_300w(shared_data, 3) if s.held_out]
    index = nearest_landmark_to_ibug(predictor.info.landmark_set, predictor.n_landmarks)
    res = bench.direct_300w(samples, shared_data / "300w-train" / "images", predictor, index,
                            jitter_scales=(0.0, 8.0), jitter_draws=2)
    still, wild = res["roi_jitter"]["0"], res["roi_jitter"]["8"]
    assert still["nme_mean"] == pytest.approx(res["nme_mean"], rel=1e-6) and still["failure_rate"] == 0.0
    assert wild["n"] == 6 and wild["nme_mean"] > 2 * still["nme_mean"]
