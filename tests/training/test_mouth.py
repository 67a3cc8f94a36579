"""The lip refiner's training side: mouth crops of real 300-W photos, its loss, a training step, ONNX export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tracker.landmarks.mouth import LipRefiner
from tracker.training.augment import AugmentConfig
from tracker.training.dataset import ImageCache, LabelledSet
from tracker.training.export import check_onnx, export_onnx
from tracker.training.ibug import IBUG_MIRROR, labelled_from_68, read_csv68
from tracker.training.loss import gaussian_nll
from tracker.landmarks.mouth_roi import EYE_HALF
from tracker.training.mouth import MouthConfig, MouthDataset, MouthNet, lip_indices, mouth_loss, region_indices
from tracker.training.train import is_held_out_path

IBUG_LIPS = np.arange(48, 68)


@pytest.fixture(scope="module")
def real68(shared_data):
    names, pts = read_csv68(shared_data / "300w-train" / "landmarks68.csv")
    keep = [i for i, n in enumerate(names) if not is_held_out_path(n)][:8]
    return LabelledSet(**labelled_from_68([names[i] for i in keep], pts[keep], np.arange(68), 68, "300w-train"))


@pytest.fixture(scope="module")
def cache(real68, tmp_path_factory):
    return ImageCache.build(real68, 64, tmp_path_factory.mktemp("cache"))


def _config(backbone: str = "mobilenet"):
    return MouthConfig(input_size=32, n_landmarks=20, face_input_size=64, face_crop_zoom=1.25, backbone=backbone)


def test_mouth_crops_hold_the_lips(real68, cache):
    cfg = MouthConfig(n_landmarks=20, face_input_size=64, face_crop_zoom=1.25)
    plain = MouthDataset(real68, cache, cfg, IBUG_LIPS, None, None)
    crops, targets, weights = plain.batch(np.arange(len(real68)), np.random.default_rng(0))
    assert crops.shape == (8, 3, 64, 64) and crops.dtype == np.float32
    assert targets.shape == (8, 20, 2) and np.all(weights == 1.0)
    # the labelled lips fill the middle of the crop: centroid at 0, inside the crop, about half its width
    np.testing.assert_allclose(targets.mean(1), 0.0, atol=1e-5)
    assert np.abs(targets).max() < 1.0
    width = targets[:, 6, 0] - targets[:, 0, 0]  # iBUG 54 - 48: the mouth corners
    assert np.all((width > 0.3) & (width < 1.6)), width
    # the crop's middle rows are the photo (the lips), not the black outside of an image
    assert np.all(crops[:, :, 28:36].mean(axis=(1, 2, 3)) > 0.1)
    aug = MouthDataset(real68, cache, cfg, IBUG_LIPS, IBUG_MIRROR, AugmentConfig())
    c2, t2, _ = aug.batch(np.arange(len(real68)), np.random.default_rng(1))
    assert c2.shape == crops.shape and not np.allclose(t2, targets)
    assert np.abs(t2.mean(1)).max() < 0.5  # the centre noise moves the window, not off the lips


def test_lip_indices_come_from_the_landmark_set_and_mirror_onto_each_other():
    from tracker.training.dataset import load_mirror

    lips = lip_indices("landmarks320")
    assert len(lips) == 44
    mirror = load_mirror("landmarks320", 320)
    assert sorted(mirror[lips].tolist()) == sorted(lips.tolist())  # a mirrored sample's lips are lips
    assert not np.all(mirror[lips] == lips)


def test_eye_regions_are_one_eye_each_and_mirror_onto_each_other():
    from tracker.training.dataset import load_mirror

    left, right = region_indices("landmarks320", "eye_L"), region_indices("landmarks320", "eye_R")
    assert len(left) == len(right) == 37 and not set(left) & set(right)
    mirror = load_mirror("landmarks320", 320)
    assert sorted(mirror[left].tolist()) == sorted(right.tolist())  # a mirrored sample's left eye was its right
    with pytest.raises(ValueError, match="unknown refiner region"):
        region_indices("landmarks320", "nose")


def test_eye_crops_hold_the_eye_and_brow(real68, cache):
    """iBUG 17-21 (one brow) and 36-41 (that eye) as a region: the window around them holds them all."""
    eye = np.r_[17:22, 36:42]
    cfg = MouthConfig(n_landmarks=len(eye), half=EYE_HALF, face_input_size=64, face_crop_zoom=1.25)
    crops, targets, _ = MouthDataset(real68, cache, cfg, eye, None, None).batch(np.arange(len(real68)),
                                                                                np.random.default_rng(0))
    np.testing.assert_allclose(targets.mean(1), 0.0, atol=1e-5)
    assert np.abs(targets).max() < 1.0
    width = targets[:, 8, 0] - targets[:, 5, 0]  # iBUG 39 - 36: the eye corners
    assert np.all((width > 0.2) & (width < 1.2)), width
    assert np.all(targets[:, :5, 1].mean(1) < targets[:, 5:, 1].mean(1))  # the brow above the eye


def test_the_loss_pulls_back_outputs_the_nll_has_given_up_on():
    target = torch.zeros(1, 2, 2)
    weights = torch.ones(1, 2)
    pred = torch.tensor([[[0.1, 0.0, -2.0], [0.0, 0.1, 40.0]]], requires_grad=True)
    mouth_loss(pred, target, weights).backward()
    assert pred.grad[0, 1, 2] > 0  # the NLL alone clamps log sigma: no gradient above 3
    pred2 = pred.detach().clone().requires_grad_(True)
    gaussian_nll(pred2, target, weights).backward()
    assert pred2.grad[0, 1, 2] == 0
    # inside the crop and at ordinary sigmas the two losses agree
    ok = torch.tensor([[[0.1, 0.0, -2.0], [0.0, 0.1, -3.0]]])
    assert float(mouth_loss(ok, target, weights)) == pytest.approx(float(gaussian_nll(ok, target, weights)))


@pytest.mark.parametrize("backbone", ["mobilenet", "plain"])
def test_training_steps_lower_the_loss_and_the_export_matches_torch(real68, cache, tmp_path, backbone):
    torch.manual_seed(0)
    cfg = _config(backbone)
    model = MouthNet(cfg)
    ds = MouthDataset(real68, cache, cfg, IBUG_LIPS, None, None)
    x, t, w = (torch.from_numpy(a) for a in ds.batch(np.arange(8), np.random.default_rng(0)))
    model.set_initial_landmarks(t.mean(0).numpy())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    first = float(mouth_loss(model(x), t, w).detach())
    for _ in range(15):
        loss = mouth_loss(model(x), t, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(mouth_loss(model(x), t, w).detach()) < first - 0.5
    path = export_onnx(model, tmp_path / "mouth.onnx")
    check = check_onnx(model, path)
    assert check.max_abs_diff < 1e-4 and check.ms_per_crop > 0
    # with its sidecar it is a refiner the run time loads
    (tmp_path / "mouth.json").write_text(json.dumps(
        {"input_size": 32, "lips": IBUG_LIPS.tolist(), "half": list(cfg.half), "landmark_set": "landmarks68",
         "face_input_size": 64, "face_crop_zoom": 1.25}))
    refiner = LipRefiner(path)
    assert refiner.size == 32 and len(refiner.lips) == 20
    assert refiner.predict_crop(np.zeros((32, 32, 3), np.uint8)).shape == (20, 3)


def test_an_unknown_backbone_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown mouth backbone"):
        MouthNet(MouthConfig(backbone="resnet"))
