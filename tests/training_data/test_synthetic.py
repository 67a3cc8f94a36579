"""Synthetic samples: deterministic, exact labels, and the build writes a valid dataset."""

from __future__ import annotations

import cv2
import numpy as np

from tracker.face.forward import posed_vertices, project
from tracker.roi import roi_points_from_ibug68
from tracker.training.data import schema
from tracker.training.data.correspondence import load_correspondence
from tracker.training.data.mediapipe_run import FaceMeshRunner
from tracker.training.data.pseudo_labels import fit_items, make_fitter
from tracker.training.data.sources import items_300w
from tracker.training.data.synthetic import SyntheticGenerator, TexturePool, _write_split


def _generator(head_model, shared_data):
    items = [it for it in items_300w(shared_data) if it.split == "train"][:4]
    runner = FaceMeshRunner()
    try:
        mp = {it.path: runner(cv2.imread(it.path)) for it in items}
    finally:
        runner.close()
    corr = load_correspondence()
    table = fit_items(head_model, make_fitter(head_model, corr), items, mp)
    pool = TexturePool.from_tables([table], lambda p: True)
    return SyntheticGenerator(head_model, head_model.ibug68_vertex_ids, corr, pool, [it.path for it in items]), pool


def test_samples_are_deterministic_with_exact_labels(head_model, shared_data, tmp_path):
    gen, pool = _generator(head_model, shared_data)
    assert len(pool) >= 1
    img, lm, roi = gen.sample(7)
    img2, lm2, roi2 = gen.sample(7)
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, img2)
    np.testing.assert_array_equal(lm, lm2)
    # the labels are the model's vertices under the sample's own camera
    rng = np.random.default_rng(7)
    params, intr = gen._params(rng, 256)
    px = project(posed_vertices(head_model, params, head_model.ibug68_vertex_ids), intr)
    np.testing.assert_allclose(lm, px, atol=1e-3)
    np.testing.assert_allclose(roi, roi_points_from_ibug68(px), atol=1e-3)
    assert not np.array_equal(gen.sample(8)[1], lm)

    d = _write_split(gen, 3, tmp_path / "val", 100, "synthetic")
    schema.validate(d, n_landmarks=68)
    assert np.all(d["weights"] == 1.0)
    path = schema.write_dataset(tmp_path / "synthetic_val.npz", d)
    back = schema.load_dataset(path)
    assert cv2.imread(str(back["images"][0])).shape == (256, 256, 3)
    # a second call reuses the written chunk
    again = _write_split(gen, 3, tmp_path / "val", 100, "synthetic")
    np.testing.assert_array_equal(again["landmarks_px"], d["landmarks_px"])
