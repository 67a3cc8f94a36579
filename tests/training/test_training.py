"""The landmark network, its loss, export, crops, augmentation and training loop (fast; real 300-W images)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tracker.landmarks.predictor import LandmarkPredictor
from tracker.roi import (TEMPLATE_EYE_DISTANCE, TEMPLATE_EYE_MID, normalized_to_crop, roi_from_points,
                         roi_points_from_ibug68)
from tracker.training.augment import AugmentConfig, augment_crop, jitter_roi_points, mirror_sample
from tracker.training.dataset import CropDataset, ImageCache, LabelledSet, mean_target
from tracker.training.export import check_onnx, export_checkpoint, export_onnx
from tracker.training.ibug import IBUG_MIRROR, labelled_from_68, read_csv68
from tracker.training.loss import gaussian_nll, gaussian_nll_numpy
from tracker.training.network import LandmarkNet, NetworkConfig, resize_input_state_dict, widen_state_dict
from tracker.training.train import (TrainOptions, augment_config, is_held_out_path, lr_at, make_optimizer,
                                   parse_args, split_train_val, train)


@pytest.fixture(scope="module")
def real68(shared_data):
    """Eight real 300-W training images with their 68 ground-truth points, as a 68-landmark labelled set."""
    names, pts = read_csv68(shared_data / "300w-train" / "landmarks68.csv")
    keep = [i for i, n in enumerate(names) if not is_held_out_path(n)][:8]
    arrays = labelled_from_68([names[i] for i in keep], pts[keep], np.arange(68), 68, "300w-train")
    return LabelledSet(**arrays)


@pytest.fixture(scope="module")
def real_cache(real68, tmp_path_factory):
    return ImageCache.build(real68, 64, tmp_path_factory.mktemp("cache"))


def test_network_output_shape_and_config_errors():
    model = LandmarkNet(NetworkConfig(input_size=64, n_landmarks=17, width_mult=0.25)).eval()
    with torch.no_grad():
        out = model(torch.rand(3, 3, 64, 64))
    assert out.shape == (3, 17, 3)
    assert torch.isfinite(out).all()
    with pytest.raises(ValueError, match="multiple of 32"):
        NetworkConfig(input_size=100)
    with pytest.raises(ValueError, match="width_mult"):
        NetworkConfig(width_mult=5.0)


def test_onnx_export_matches_torch(tmp_path):
    torch.manual_seed(0)
    model = LandmarkNet(NetworkConfig(input_size=64, n_landmarks=20, width_mult=0.25))
    torch.nn.init.normal_(model.head.weight, std=0.05)  # outputs that depend on the image, not just the bias
    model.train()
    with torch.no_grad():  # move the BatchNorm running statistics away from their defaults
        model(torch.rand(8, 3, 64, 64))
    path = export_onnx(model, tmp_path / "m.onnx")
    check = check_onnx(model, path, batch=3, n_timing=2)
    assert check.max_abs_diff < 1e-4
    assert check.ms_per_crop > 0
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image"]
    assert [o.name for o in sess.get_outputs()] == ["landmarks"]
    assert sess.run(None, {"image": np.zeros((5, 3, 64, 64), np.float32)})[0].shape == (5, 20, 3)


def test_spatial_head_starts_from_pooled_weights_and_exports(tmp_path):
    torch.manual_seed(1)
    pooled = LandmarkNet(NetworkConfig(input_size=64, n_landmarks=20, width_mult=0.25))
    torch.nn.init.normal_(pooled.head.weight, std=0.05)
    with torch.no_grad():  # BatchNorm statistics of real activations, so the features are not near zero
        pooled.train()(torch.rand(8, 3, 64, 64))
    spatial = LandmarkNet(NetworkConfig(input_size=64, n_landmarks=20, width_mult=0.25, spatial_channels=8))
    assert set(pooled.state_dict()) < set(spatial.state_dict())
    spatial.load_state_dict(pooled.state_dict(), strict=False)
    x = torch.rand(4, 3, 64, 64)
    pooled.eval(), spatial.eval()
    with torch.no_grad():  # the spatial head's linear layer starts at zero: the same function as the pooled net
        assert torch.equal(pooled(x), spatial(x))
    # both linear layers get the head's learning-rate multiplier
    opt = make_optimizer(spatial, TrainOptions(out=tmp_path, data=[], val=[], head_lr_mult=0.1))
    head_ids = {id(p) for p in opt.param_groups[1]["params"]}
    assert {id(spatial.spatial_head.weight), id(spatial.head.weight)} <= head_ids
    assert id(spatial.spatial_reduce[0].weight) not in head_ids
    # once trained, the spatial head adds to the pooled head's output
    torch.nn.init.normal_(spatial.spatial_head.weight, std=0.05)
    with torch.no_grad():
        spatial.spatial_reduce[1].running_var.fill_(1e-2)  # the untrained 1x1 convolution's outputs are small
        assert (spatial(x) - pooled(x)).abs().max() > 1e-3
    check = check_onnx(spatial, export_onnx(spatial, tmp_path / "s.onnx"), batch=2, n_timing=2)
    assert check.max_abs_diff < 1e-4
    with pytest.raises(ValueError, match="spatial_channels"):
        NetworkConfig(spatial_channels=-1)


def test_fine_head_starts_unchanged_reads_stride_16_and_round_trips_through_onnx(tmp_path):
    from tracker.training.export import write_sidecar
    from tracker.training.onnx_init import config_from_sidecar, load_onnx_weights

    torch.manual_seed(4)
    cfg = NetworkConfig(input_size=64, n_landmarks=20, width_mult=0.25, spatial_channels=4)
    spatial = LandmarkNet(cfg)
    torch.nn.init.normal_(spatial.head.weight, std=0.05)
    torch.nn.init.normal_(spatial.spatial_head.weight, std=0.05)
    with torch.no_grad():
        spatial.train()(torch.rand(8, 3, 64, 64))
    fine_cfg = NetworkConfig(input_size=64, n_landmarks=20, width_mult=0.25, spatial_channels=4, fine_channels=3)
    fine = LandmarkNet(fine_cfg)
    missing = fine.load_state_dict(spatial.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("fine_") for k in missing)
    # its linear layer reads K x (S/16) x (S/16) cells: the stride-16 map, four times the spatial head's cells
    assert fine.fine_head.in_features == 3 * (64 // 16) ** 2
    x = torch.rand(4, 3, 64, 64)
    spatial.eval(), fine.eval()
    with torch.no_grad():
        assert torch.equal(spatial(x), fine(x))  # zero-initialised: the same function
    opt = make_optimizer(fine, TrainOptions(out=tmp_path, data=[], val=[], head_lr_mult=0.1))
    head_ids = {id(p) for p in opt.param_groups[1]["params"]}
    assert id(fine.fine_head.weight) in head_ids and id(fine.fine_reduce[0].weight) not in head_ids
    torch.nn.init.normal_(fine.fine_head.weight, std=0.05)
    with torch.no_grad():
        fine.fine_reduce[1].running_var.fill_(1e-2)
        assert (fine(x) - spatial(x)).abs().max() > 1e-3
        f16 = fine.features[:fine._fine_end]((x - fine.mean) / fine.std)
        assert f16.shape[2:] == (64 // 16, 64 // 16)
        assert fine.features[fine._fine_end](f16).shape[2:] == (64 // 32, 64 // 32)  # the next stage: stride 32
    onnx_path = export_onnx(fine, tmp_path / "f.onnx")
    assert check_onnx(fine, onnx_path, batch=2, n_timing=2).max_abs_diff < 1e-4
    write_sidecar(onnx_path, fine_cfg, "landmarks320", {})
    assert config_from_sidecar(onnx_path) == fine_cfg
    back = LandmarkNet(fine_cfg)
    load_onnx_weights(back, onnx_path)  # batch norms folded into the convolutions: the same function
    with torch.no_grad():
        assert torch.allclose(back.eval()(x), fine(x), atol=1e-4)
    with pytest.raises(ValueError, match="fine head"):
        widen_state_dict(fine.state_dict(), fine_cfg, NetworkConfig(64, 20, 0.5, 4, fine_channels=3))
    with pytest.raises(ValueError, match="fine head"):
        resize_input_state_dict(fine.state_dict(), fine_cfg, NetworkConfig(96, 20, 0.25, 4, fine_channels=3))
    with pytest.raises(ValueError, match="fine_channels"):
        NetworkConfig(fine_channels=-1)


def test_widening_keeps_the_function_and_lets_the_copies_move_apart():
    torch.manual_seed(2)
    narrow_cfg = NetworkConfig(input_size=64, n_landmarks=20, width_mult=0.5, spatial_channels=4)
    wide_cfg = NetworkConfig(input_size=64, n_landmarks=20, width_mult=0.75, spatial_channels=4)
    narrow = LandmarkNet(narrow_cfg)
    torch.nn.init.normal_(narrow.head.weight, std=0.05)
    torch.nn.init.normal_(narrow.spatial_head.weight, std=0.05)
    with torch.no_grad():
        narrow.train()(torch.rand(8, 3, 64, 64))  # real BatchNorm statistics
    wide = LandmarkNet(wide_cfg)
    wide.load_state_dict(widen_state_dict(narrow.state_dict(), narrow_cfg, wide_cfg, seed=3))
    assert sum(p.numel() for p in wide.parameters()) > 1.2 * sum(p.numel() for p in narrow.parameters())
    x = torch.rand(6, 3, 64, 64)
    narrow.eval(), wide.eval()
    with torch.no_grad():
        want = narrow(x)
        assert want.abs().max() > 0.1
        torch.testing.assert_close(wide(x), want, atol=1e-5, rtol=1e-5)
    # in training mode too (a copied channel has its original's batch statistics)
    narrow.train(), wide.train()
    torch.testing.assert_close(wide(x), narrow(x), atol=1e-4, rtol=1e-4)
    # the copies of one channel get different gradients: a loss step moves them apart
    wide.zero_grad()
    wide(x).square().mean().backward()
    stem = wide.features[0][0].weight.grad  # 16 -> 24 channels: channels 16..23 copy channels of 0..15
    n_old = narrow.features[0][0].weight.shape[0]
    w0 = wide.features[0][0].weight.detach()
    for c in range(n_old, stem.shape[0]):
        orig = int(np.flatnonzero([torch.equal(w0[c], w0[k]) for k in range(n_old)])[0])
        assert not torch.allclose(stem[c], stem[orig])
    with pytest.raises(ValueError, match="narrow"):
        widen_state_dict(wide.state_dict(), wide_cfg, narrow_cfg)
    with pytest.raises(ValueError, match="input size"):
        widen_state_dict(narrow.state_dict(), narrow_cfg, NetworkConfig(input_size=96, n_landmarks=20,
                                                                        width_mult=0.75, spatial_channels=4))


def test_resizing_the_input_resamples_the_spatial_head():
    torch.manual_seed(4)
    small_cfg = NetworkConfig(input_size=64, n_landmarks=20, width_mult=0.5, spatial_channels=4)  # 2 x 2 cells
    big_cfg = NetworkConfig(input_size=96, n_landmarks=20, width_mult=0.5, spatial_channels=4)    # 3 x 3 cells
    small = LandmarkNet(small_cfg)
    torch.nn.init.normal_(small.spatial_head.weight, std=0.05)
    big = LandmarkNet(big_cfg)
    state = resize_input_state_dict(small.state_dict(), small_cfg, big_cfg)
    big.load_state_dict(state)  # strict: every shape fits the new grid
    for k, v in small.state_dict().items():
        if k != "spatial_head.weight":
            assert torch.equal(state[k], v), k
    assert state["spatial_head.weight"].shape == (60, 4 * 9)
    # a reduced feature map that is the same in every cell gives the same output on either grid
    cell = torch.randn(1, 4, 1, 1)
    with torch.no_grad():
        want = small.spatial_head(cell.expand(1, 4, 2, 2).flatten(1))
        got = big.spatial_head(cell.expand(1, 4, 3, 3).flatten(1))
        assert (want - small.spatial_head.bias).abs().max() > 0.01
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    same = resize_input_state_dict(small.state_dict(), small_cfg, small_cfg)  # same size: unchanged
    assert torch.equal(same["spatial_head.weight"], small.spatial_head.weight)
    with pytest.raises(ValueError, match="width"):
        resize_input_state_dict(small.state_dict(), small_cfg, NetworkConfig(input_size=96, n_landmarks=20,
                                                                            width_mult=0.75, spatial_channels=4))


def test_loss_known_values_and_reference():
    # landmark 0: sigma 1, error (3, 4) -> 0 + 25 / 2; landmark 1: sigma 2, no error -> log 4; weights 1 and 0.5
    pred = torch.tensor([[[3.0, 4.0, 0.0], [1.0, 1.0, float(np.log(2.0))]]])
    target = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    weights = torch.tensor([[1.0, 0.5]])
    want = (12.5 + 0.5 * np.log(4.0)) / 1.5
    assert float(gaussian_nll(pred, target, weights)) == pytest.approx(want, rel=1e-6)
    rng = np.random.default_rng(1)
    p, t, w = rng.normal(size=(4, 9, 3)), rng.normal(size=(4, 9, 2)), rng.random((4, 9))
    got = float(gaussian_nll(torch.from_numpy(p), torch.from_numpy(t), torch.from_numpy(w)))
    assert got == pytest.approx(gaussian_nll_numpy(p, t, w), rel=1e-9)
    # minimum over sigma at sigma^2 = |error|^2 / 2
    err = 0.3
    ls = torch.tensor(float(np.log(err / np.sqrt(2.0))), dtype=torch.float64, requires_grad=True)
    pr = torch.stack([torch.tensor(err, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64), ls])
    gaussian_nll(pr.view(1, 1, 3), torch.zeros(1, 1, 2, dtype=torch.float64),
                 torch.ones(1, 1, dtype=torch.float64)).backward()
    assert abs(float(ls.grad)) < 1e-9
    with pytest.raises(ValueError, match="all landmark weights are zero"):
        gaussian_nll(pred, target, torch.zeros(1, 2))
    with pytest.raises(ValueError, match="target must be"):
        gaussian_nll(pred, target[:, :1], weights)


def test_training_steps_lower_the_loss_on_a_tiny_batch(real68, real_cache):
    torch.manual_seed(0)
    ds = CropDataset(real68, real_cache, 64, mirror=None)
    images, targets, weights = (torch.from_numpy(a) for a in ds.batch(np.arange(4)))
    model = LandmarkNet(NetworkConfig(64, 68, 0.25))
    model.set_initial_landmarks(mean_target(ds))
    model.train()
    opt = make_optimizer(model, TrainOptions(out=Path("unused"), data=[], val=[]))
    for g in opt.param_groups:
        g["lr"] = 1e-3 * g["lr_mult"]
    losses = []
    for _ in range(6):
        loss = gaussian_nll(model(images), targets, weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 0.3, losses
    assert max(losses[1:]) < losses[0] + 1.0, losses  # no blow-up on the way


def test_crop_labels_land_where_the_roi_says(tmp_path):
    """Bright dots drawn at the labelled points appear in the crop at the labels' normalised positions."""
    img = np.zeros((300, 340, 3), np.uint8)
    pts = np.array([[120.3, 140.6], [190.8, 133.2], [160.1, 205.4], [95.5, 230.0]])  # eyes, mouth, a cheek
    for x, y in pts:
        cv2.circle(img, (int(round(x * 16)), int(round(y * 16))), 3 * 16, (255, 255, 255), -1, cv2.LINE_AA, 4)
    path = tmp_path / "dots.png"
    cv2.imwrite(str(path), img)
    data = LabelledSet(np.array([str(path)]), pts[None].astype(np.float32), np.ones((1, 4), np.float32),
                       pts[None, :3].astype(np.float32), np.array(["test"]))
    size = 128
    cache = ImageCache.build(data, size, tmp_path / "cache")
    s = CropDataset(data, cache, size, mirror=None).sample(0)
    uv = normalized_to_crop(s.target, size)
    # the eyes sit on the ROI template; the crop equals the run-time warp of the original image
    assert uv[0] == pytest.approx([size * (TEMPLATE_EYE_MID[0] - TEMPLATE_EYE_DISTANCE / 2) - 0.5,
                                   size * TEMPLATE_EYE_MID[1] - 0.5], abs=1e-6)
    roi = roi_from_points(pts[:3], size)
    assert np.allclose(uv, roi.image_to_crop(pts), atol=1e-6)
    # a zoomed crop scales the labels about the crop centre, as the run-time ROI of that zoom does
    zoomed = CropDataset(data, cache, size, mirror=None, zoom=1.25).sample(0)
    np.testing.assert_allclose(zoomed.target, 1.25 * s.target, atol=1e-5)
    assert np.allclose(normalized_to_crop(zoomed.target, size),
                       roi_from_points(pts[:3], size, 1.25).image_to_crop(pts), atol=1e-4)
    grey = s.crop[..., 0].astype(np.float64)
    for u, v in uv:
        y0, x0 = int(round(v)) - 6, int(round(u)) - 6
        patch = grey[y0:y0 + 13, x0:x0 + 13]
        ys, xs = np.mgrid[y0:y0 + 13, x0:x0 + 13]
        c = np.array([(xs * patch).sum(), (ys * patch).sum()]) / patch.sum()
        assert np.linalg.norm(c - [u, v]) < 0.35


def test_mirror_maps_the_landmark_permutation(real68):
    img = cv2.imread(str(real68.images[0]))
    lm = real68.landmarks_px[0].astype(np.float64)
    pts = real68.roi_points[0].astype(np.float64)
    f_img, f_lm, f_w, f_pts = mirror_sample(img, lm, real68.weights[0], pts, IBUG_MIRROR)
    w = img.shape[1]
    assert np.array_equal(f_img, img[:, ::-1])
    # landmark i of the flipped face is the reflection of landmark mirror[i]
    assert np.allclose(f_lm[:, 0], w - 1 - lm[IBUG_MIRROR, 0]) and np.allclose(f_lm[:, 1], lm[IBUG_MIRROR, 1])
    # the flipped face is still a face: subject's right eye (36-41) on the image's left, jaw 0 on the left
    assert f_lm[36:42, 0].mean() < f_lm[42:48, 0].mean() and f_lm[0, 0] < f_lm[16, 0]
    assert f_lm[48, 0] < f_lm[54, 0]
    # the ROI points swap eyes and equal the ROI of the flipped labels
    assert np.allclose(f_pts, roi_points_from_ibug68(f_lm), atol=1e-6)
    # a pixel marked under landmark mirror[i] of the original lies under landmark i of the flipped image
    marked = np.zeros(img.shape[:2], np.uint8)
    x, y = np.round(lm[IBUG_MIRROR[36]]).astype(int)
    marked[y, x] = 255
    fm = marked[:, ::-1]
    fy, fx = np.argwhere(fm)[0]
    assert np.hypot(fx - f_lm[36, 0], fy - f_lm[36, 1]) < 0.75
    # mirroring twice is the identity
    _, back, _, back_pts = mirror_sample(f_img, f_lm, f_w, f_pts, IBUG_MIRROR)
    assert np.allclose(back, lm) and np.allclose(back_pts, pts)


def test_augmentations_keep_shape_and_jitter_is_bounded():
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    cfg = AugmentConfig(p_occluder=1, p_grey=1, p_blur=1, p_lowres=1, p_noise=1, p_jpeg=1)
    out = augment_crop(crop, rng, cfg, lambda r: crop)
    assert out.shape == crop.shape and out.dtype == np.uint8
    pts = np.array([[100.0, 100.0], [160.0, 100.0], [130.0, 170.0]])
    moves = [np.abs(jitter_roi_points(pts, rng, AugmentConfig()) - pts).max() for _ in range(200)]
    assert 0 < np.median(moves) < 25 and max(moves) < 80


def test_augment_overrides_from_the_command_line(tmp_path, capsys):
    opts = parse_args(["--out", str(tmp_path), "--augment", "p_occluder=0.15", "rotation_deg=5"])
    cfg = augment_config(opts.augment)
    assert cfg.p_occluder == 0.15 and cfg.rotation_deg == 5.0 and cfg.p_blur == AugmentConfig().p_blur
    assert augment_config({}) == AugmentConfig()
    for bad, message in (("p_fog=0.1", "unknown augmentation setting"), ("p_blur=1.5", "out of range"),
                         ("rotation_deg=-1", "out of range"), ("p_blur", "expected NAME=VALUE"),
                         ("p_blur=lots", "could not convert")):
        with pytest.raises(SystemExit):
            parse_args(["--out", str(tmp_path), "--augment", bad])
        assert message in capsys.readouterr().err


def test_held_out_images_never_train(real68):
    assert is_held_out_path("/x/frames/lp_d9/000030.jpg") and is_held_out_path("/x/vr_3_000012.jpg")
    assert not is_held_out_path("/x/frames/lp_d90/000030.jpg") and not is_held_out_path("/x/vr_30.jpg")
    held = "/d/300w-train/images/lfpw_image_0007.jpg"
    from tracker.splits import is_held_out_300w
    assert is_held_out_path(held) == is_held_out_300w("lfpw_image_0007.jpg")
    data = LabelledSet.concat([real68, LabelledSet(np.array(["/d/frames/lp_d9/000001.jpg"]), real68.landmarks_px[:1],
                                                   real68.weights[:1], real68.roi_points[:1], np.array(["video"]))])
    tr, va = split_train_val(data, None)
    assert len(tr) == len(real68) and va.images.tolist() == ["/d/frames/lp_d9/000001.jpg"]
    with pytest.raises(ValueError, match="no validation data"):
        split_train_val(real68, None)


def test_lr_schedule_and_arguments(tmp_path):
    opts = TrainOptions(out=tmp_path, data=[], val=[], lr=1e-3, steps=1000, warmup=100)
    assert lr_at(0, opts) == pytest.approx(1e-5) and lr_at(99, opts) == pytest.approx(1e-3)
    assert lr_at(1000, opts) == pytest.approx(1e-5) and lr_at(550, opts) == pytest.approx(0.505e-3)
    # time schedule: the decay follows the share of the time budget spent, not the step
    assert lr_at(150, opts, progress=0.5) == pytest.approx(0.505e-3) and lr_at(150, opts, 1.0) == pytest.approx(1e-5)
    assert lr_at(10, opts, progress=0.9) == pytest.approx(1.1e-4)  # warm-up first
    with pytest.raises(SystemExit):
        parse_args(["--out", str(tmp_path), "--data", str(tmp_path / "missing.npz")])
    with pytest.raises(SystemExit):
        parse_args(["--out", str(tmp_path), "--device", "abacus"])
    assert parse_args(["--out", str(tmp_path), "--budget-minutes", "5"]).budget_minutes == 5.0


def test_train_resume_and_export_end_to_end(real68, tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_CACHE", str(tmp_path / "cache"))
    npz = tmp_path / "tiny.npz"
    np.savez(npz, images=real68.images, landmarks_px=real68.landmarks_px, weights=real68.weights,
             roi_points=real68.roi_points, source=real68.source)
    run = tmp_path / "run"
    common = dict(out=run, data=[npz], val=[npz], input_size=64, width_mult=0.25, landmark_set="none", batch=4,
                  warmup=2, val_minutes=0.0, val_max=8)
    train(TrainOptions(steps=3, **common))
    train(TrainOptions(steps=5, resume=True, **common))
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    assert all(float(r["img_per_s"]) > 0 and np.isfinite(float(r["val_nme"])) for r in rows)
    ckpt = torch.load(str(run / "last.pt"), weights_only=False)
    assert ckpt["step"] == 5
    # last.pt carries its own figures (the validation at step 5), the best checkpoint's are kept apart
    assert ckpt["summary"]["step"] == 5
    best_step = min(rows, key=lambda r: float(r["val_nme"]))["step"]
    assert ckpt["best_summary"]["step"] == int(best_step)
    assert export_checkpoint(run / "last.pt", tmp_path / "last" / "m.onnx")["trained"]["step"] == 5
    # a crop zoom is a property of the weights: --init passes it on unless it is given, export writes it
    zoom = dict(common, out=tmp_path / "zoom")
    train(TrainOptions(steps=1, init=run / "last.pt", crop_zoom=1.25, **zoom))
    train(TrainOptions(steps=1, init=tmp_path / "zoom" / "last.pt", **dict(zoom, out=tmp_path / "zoom2")))
    assert torch.load(str(tmp_path / "zoom2" / "last.pt"), weights_only=False)["config"]["crop_zoom"] == 1.25
    assert export_checkpoint(tmp_path / "zoom2" / "last.pt", tmp_path / "zoom2" / "m.onnx")["crop_zoom"] == 1.25
    assert LandmarkPredictor(tmp_path / "zoom2" / "m.onnx").crop_zoom == 1.25
    # --init from another input size: the weights carry over and the run trains at the new size
    train(TrainOptions(steps=1, init=run / "last.pt", **dict(common, out=tmp_path / "big", input_size=96)))
    big = torch.load(str(tmp_path / "big" / "last.pt"), weights_only=False)
    assert big["config"]["input_size"] == 96 and big["step"] == 1
    # a time budget ends the run by itself, after one last validation
    timed = dict(common, out=tmp_path / "timed")
    train(TrainOptions(steps=10**6, budget_minutes=0.02, **timed))
    rows = list(csv.DictReader(open(tmp_path / "timed" / "log.csv")))
    assert len(rows) >= 1 and float(rows[-1]["seconds"]) >= 1  # 1.2 s budget, logged in whole seconds
    assert float(rows[-1]["lr"]) < 0.02 * 2e-3  # the cosine has reached its floor (1% of the peak)
    meta = export_checkpoint(run / "best.pt", tmp_path / "out" / "model.onnx")
    assert meta["input_size"] == 64 and meta["n_landmarks"] == 68 and meta["trained"]["onnx_max_abs_diff"] < 1e-4
    assert json.loads((tmp_path / "out" / "model.json").read_text()) == meta
    assert list((tmp_path / "cache" / "landmark_training" / "images").glob("images_*.u8"))


def test_curves_plot_from_log(tmp_path):
    from tracker.training.plot import plot_logs, read_log
    from tracker.training.train import LOG_FIELDS

    log_path = tmp_path / "log.csv"
    with open(log_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(LOG_FIELDS)
        for k in range(1, 4):
            w.writerow([k * 10, k * 0.1, k * 60, 1e-3, -1.0 * k, -0.8 * k, 10.0 / k, 30.0])
    assert read_log(log_path)["val_nme"].tolist() == pytest.approx([10.0, 5.0, 10.0 / 3])
    out = plot_logs([log_path], tmp_path / "curves.png")
    img = cv2.imread(str(out))
    assert img is not None and img.shape[0] > 100 and img.shape[1] > 100
    with pytest.raises(ValueError, match="has no rows"):
        (tmp_path / "empty.csv").write_text(",".join(LOG_FIELDS) + "\n")
        read_log(tmp_path / "empty.csv")


def test_mirror_of_the_320_set_on_the_symmetric_head(head_model, tmp_path):
    """Mirroring an image of the (left-right symmetric) neutral head with landmarks320's permutation gives the
    same labels back, and the dataset's mirrored crop of it has the same targets as the plain crop."""
    from tracker.face.landmark_sets import load_landmark_set
    from tracker.training.dataset import load_mirror

    lset = load_landmark_set("landmarks320")
    mirror = load_mirror("landmarks320", len(lset))
    assert mirror is not None and sorted(mirror.tolist()) == list(range(len(lset)))
    xyz = head_model.neutral_cm[lset.vertex_ids]
    # orthographic front view, 20 px per cm, face centred in a 401 x 401 image (centre pixel 200)
    lm = np.stack([200 + 20 * xyz[:, 0], 200 - 20 * xyz[:, 1]], axis=1)
    ibug = head_model.neutral_cm[head_model.ibug68_vertex_ids]
    pts = roi_points_from_ibug68(np.stack([200 + 20 * ibug[:, 0], 200 - 20 * ibug[:, 1]], axis=1))
    img = np.zeros((401, 401, 3), np.uint8)
    _, f_lm, _, f_pts = mirror_sample(img, lm, np.ones(len(lset)), pts, mirror)
    assert np.abs(f_lm - lm).max() < 0.05 and np.abs(f_pts - pts).max() < 0.05
    # through the dataset: p_mirror = 1 and no jitter gives the same targets
    path = tmp_path / "blank.png"
    cv2.imwrite(str(path), img + 60)
    data = LabelledSet(np.array([str(path)]), lm[None].astype(np.float32), np.ones((1, len(lset)), np.float32),
                       pts[None].astype(np.float32), np.array(["head"]))
    cache = ImageCache.build(data, 128, tmp_path / "cache")
    no_jitter = AugmentConfig(p_mirror=1.0, point_noise=0, rotation_deg=0, log_scale=0, translation=0)
    flipped = CropDataset(data, cache, 128, mirror, no_jitter).sample(0)
    plain = CropDataset(data, cache, 128, None).sample(0)
    assert np.abs(flipped.target - plain.target).max() < 2e-3


def test_merge_puts_ground_truth_over_pseudo_labels_per_landmark(real68, tmp_path):
    from tracker.training.merge_labels import main as merge_main
    from tracker.training.merge_labels import merge, save

    # "pseudo-labels": the ground truth moved by 3 px, every point labelled at weight 0.6, on the first six images
    base = LabelledSet(real68.images[:6], real68.landmarks_px[:6] + 3.0, np.full((6, 68), 0.6, np.float32),
                       real68.roi_points[:6], np.full(6, "300w"))
    # "ground truth": the inner points only, on images 4-7 (two the base lacks), listed under two sources
    gt_w = np.zeros((4, 68), np.float32)
    gt_w[:, 27:] = 1.0
    gt = LabelledSet(real68.images[4:], real68.landmarks_px[4:], gt_w, real68.roi_points[4:],
                     np.array(["300w-train", "300w-train", "ytf-frames", "300w-train"]))
    merged, counts = merge(base, gt)
    assert counts == {"base": 6, "override": 4, "matched": 2, "appended": 2, "landmarks_replaced": 2 * 41}
    assert len(merged) == 8 and list(merged.images[6:]) == list(real68.images[6:])
    for i in range(4):  # untouched rows keep the base's labels
        np.testing.assert_array_equal(merged.landmarks_px[i], base.landmarks_px[i])
    for i in (4, 5):  # the inner points are the ground truth, the jaw and brows still the pseudo-labels
        np.testing.assert_array_equal(merged.landmarks_px[i, 27:], real68.landmarks_px[i, 27:])
        np.testing.assert_array_equal(merged.weights[i, 27:], 1.0)
        np.testing.assert_array_equal(merged.landmarks_px[i, :27], base.landmarks_px[i, :27])
        np.testing.assert_array_equal(merged.weights[i, :27], 0.6)
    # only one source: image 6 (ytf-frames) is neither merged nor appended
    merged, counts = merge(base, gt, ["300w-train"])
    assert counts["override"] == 3 and counts["appended"] == 1 and len(merged) == 7
    assert real68.images[6] not in merged.images
    # the command: files in, file out, a clear error for a source the file lacks or a missing file
    save(base, tmp_path / "base.npz")
    save(gt, tmp_path / "gt.npz")
    assert merge_main(["--base", str(tmp_path / "base.npz"), "--override", str(tmp_path / "gt.npz"),
                       "--out", str(tmp_path / "m.npz")]) == 0
    back = LabelledSet.from_npz(tmp_path / "m.npz")
    assert len(back) == 8 and np.allclose(back.landmarks_px[5, 30], real68.landmarks_px[5, 30])
    assert merge_main(["--base", str(tmp_path / "base.npz"), "--override", str(tmp_path / "gt.npz"),
                       "--override-source", "afw", "--out", str(tmp_path / "x.npz")]) == 2
    assert merge_main(["--base", str(tmp_path / "none.npz"), "--override", str(tmp_path / "gt.npz"),
                       "--out", str(tmp_path / "x.npz")]) == 2
    assert not (tmp_path / "x.npz").exists()
