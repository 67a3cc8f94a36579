"""Pseudo-labels on a real 300-W image: MediaPipe -> fit -> projected model landmarks near the ground truth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tracker.training.data import schema
from tracker.training.data.correspondence import load_correspondence
from tracker.training.data.mediapipe_run import FaceMeshRunner
from tracker.training.data.pseudo_labels import GT_RELIABLE, GazeFitter, LabelProjector, fit_items, make_fitter
from tracker.training.data.sources import ImageItem, items_300w


@pytest.fixture(scope="module")
def sample(shared_data):
    items = [it for it in items_300w(shared_data) if it.split == "val"][:3]
    runner = FaceMeshRunner()
    try:
        mp = {it.path: runner(cv2.imread(it.path)) for it in items}
    finally:
        runner.close()
    return items, mp


def _nme(pred, gt):
    iod = np.linalg.norm(gt[36:42].mean(0) - gt[42:48].mean(0))
    return np.linalg.norm(pred - gt, axis=1) / iod * 100


def test_mediapipe_only_fit_lands_near_ground_truth(head_model, sample):
    items, mp = sample
    assert all(v is not None and v.shape == (478, 3) for v in mp.values())
    no_gt = [ImageItem(it.path, it.source, it.split) for it in items]
    corr = load_correspondence()
    table = fit_items(head_model, make_fitter(head_model, corr), no_gt, mp, GazeFitter(head_model))
    assert len(table) == 3 and table.gaze_ok.all()
    labels = LabelProjector(head_model, head_model.ibug68_vertex_ids, corr).project(table)
    for it, pred in zip(items, labels["landmarks_px"]):
        nme = _nme(pred, it.gt68)
        # points defined alike in ICT and 300-W: a few px (inter-ocular distance ~60-90 px here)
        assert nme[GT_RELIABLE].mean() < 8.0, nme[GT_RELIABLE].mean()
        assert np.median(np.linalg.norm(pred - it.gt68, axis=1)[GT_RELIABLE]) < 6.0


def test_ground_truth_overrides_and_schema(head_model, sample):
    items, mp = sample
    corr = load_correspondence()
    table = fit_items(head_model, make_fitter(head_model, corr), items, mp, None)
    labels = LabelProjector(head_model, head_model.ibug68_vertex_ids, corr).project(table)
    schema.validate(labels, n_landmarks=68)
    for it, pred, w, roi in zip(items, labels["landmarks_px"], labels["weights"], labels["roi_points"]):
        np.testing.assert_allclose(pred[GT_RELIABLE], it.gt68[GT_RELIABLE], atol=1e-3)
        assert np.all(w[GT_RELIABLE] == 1.0)
        np.testing.assert_allclose(roi[0], it.gt68[36:42].mean(0), atol=1e-3)
        # the remaining points follow the fit, which the ground truth pulled close
        assert _nme(pred, it.gt68)[17:].mean() < 8.0


def test_schema_rejects_bad_weights():
    d = {"images": np.array(["/a.png"]), "landmarks_px": np.zeros((1, 4, 2), np.float32),
         "weights": np.full((1, 4), 1.5, np.float32), "roi_points": np.zeros((1, 3, 2), np.float32),
         "source": np.array(["x"])}
    with pytest.raises(ValueError, match="weights must be float32"):
        schema.validate(d)
    d["weights"] = np.ones((1, 4), np.float32)
    schema.validate(d, n_landmarks=4)
    with pytest.raises(ValueError, match="expected 5"):
        schema.validate(d, n_landmarks=5)
    del d["source"]
    with pytest.raises(ValueError, match="missing key 'source'"):
        schema.validate(d)
