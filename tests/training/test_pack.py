"""Training on another machine: packed data, batches made by worker processes, and starting from the exported
network (real 300-W images, the committed ONNX model)."""

from __future__ import annotations

import csv
import json

import numpy as np
import onnxruntime as ort
import torch

from tracker.paths import ASSETS_DIR
from tracker.training.dataset import CropDataset, ImageCache, LabelledSet
from tracker.training.export import export_checkpoint
from tracker.training.ibug import labelled_from_68, read_csv68
from tracker.training.network import LandmarkNet
from tracker.training.onnx_init import config_from_sidecar, load_onnx_weights, recalibrate_batchnorm
from tracker.training.pack import load_pack, main as pack_main, pack
from tracker.training.train import TrainOptions, _Batches, is_held_out_path, parse_args, train

MODEL = ASSETS_DIR / "landmark_model.onnx"


def _real68(shared_data, n: int) -> LabelledSet:
    names, pts = read_csv68(shared_data / "300w-train" / "landmarks68.csv")
    keep = [i for i, name in enumerate(names) if not is_held_out_path(name)][:n]
    return LabelledSet(**labelled_from_68([names[i] for i in keep], pts[keep], np.arange(68), 68, "300w-train"))


def test_exported_network_loads_back_and_keeps_its_function(shared_data, tmp_path):
    cfg = config_from_sidecar(MODEL)
    model = LandmarkNet(cfg)
    load_onnx_weights(model, MODEL)
    data = _real68(shared_data, 24)
    plain = CropDataset(data, ImageCache.build(data, cfg.input_size, tmp_path), cfg.input_size, None,
                        zoom=cfg.crop_zoom)
    x = plain.batch(np.arange(len(data)))[0]
    sess = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    model.eval()
    with torch.no_grad():
        assert np.abs(model(torch.from_numpy(x)).numpy() - ref).max() < 1e-4
    recalibrate_batchnorm(model, [torch.from_numpy(x[:12]), torch.from_numpy(x[12:])])
    with torch.no_grad():
        assert np.abs(model(torch.from_numpy(x)).numpy() - ref).max() < 1e-4  # eval: the same function
        model.train()
        train_mode = model(torch.from_numpy(x)).numpy()
    # train mode normalises with the batch's statistics: close to the exported function on real crops (a
    # network whose batch norms were left at identity moves its landmarks by about a tenth of the crop)
    err = np.linalg.norm(train_mode[..., :2] - ref[..., :2], axis=-1)
    assert np.median(err) < 0.01, np.median(err)


def test_pack_round_trip_gives_the_same_crops_and_labels(shared_data, tmp_path):
    data = _real68(shared_data, 6)
    doubled = LabelledSet.concat([data, data.subset(np.array([0, 1]))])  # repeated rows are stored once
    size = 64
    files = pack({"train": doubled, "val": data.subset(np.array([2]))}, size, tmp_path / "pack", quality=95,
                 part_mb=0.004)
    assert len(files) >= 3 and files[0].name == "labels.npz"  # the tiny part size splits the images
    sets, caches, meta = load_pack(tmp_path / "pack")
    assert meta["entries"] == 6 and len(sets["train"]) == 8 and len(sets["val"]) == 1
    ref = CropDataset(doubled, ImageCache.build(doubled, size, tmp_path / "cache"), size, None)
    got = CropDataset(sets["train"], caches["train"], size, None)
    a_img, a_t, a_w = ref.batch(np.arange(8))
    b_img, b_t, b_w = got.batch(np.arange(8))
    assert np.abs(a_t - b_t).max() < 2e-3  # landmarks kept to 1/32 px
    assert np.array_equal(a_w, b_w)
    assert np.abs(a_img - b_img).mean() < 0.02  # JPEG q95 and a coarser cut: about the same pixels
    # a broken pack is a clear error
    (tmp_path / "pack" / "images_01.npz").unlink()
    try:
        load_pack(tmp_path / "pack")
    except FileNotFoundError as exc:
        assert "images_01.npz" in str(exc)
    else:
        raise AssertionError("a missing image file was not noticed")


def test_train_from_a_pack_with_worker_processes_and_from_an_onnx_model(shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRACKER_CACHE", str(tmp_path / "cache"))
    data = _real68(shared_data, 8)
    npz = tmp_path / "tiny.npz"
    np.savez(npz, images=data.images, landmarks_px=data.landmarks_px, weights=data.weights,
             roi_points=data.roi_points, source=data.source)
    assert pack_main(["--out", str(tmp_path / "pack"), "--data", str(npz), "--val", str(npz), "--input-size",
                      "64"]) == 0
    common = dict(input_size=64, width_mult=0.25, landmark_set="none", batch=4, warmup=2, val_minutes=0.0,
                  val_max=8, pack=tmp_path / "pack", data=[], val=[])
    train(TrainOptions(out=tmp_path / "run", steps=4, workers=2, **common))
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(float(r["val_nme"])) for r in rows)
    # --init from an exported network: its weights, then training goes on from them
    export_checkpoint(tmp_path / "run" / "last.pt", tmp_path / "exp" / "m.onnx")
    train(TrainOptions(out=tmp_path / "again", steps=1, init=tmp_path / "exp" / "m.onnx", **common))
    before = torch.load(str(tmp_path / "run" / "last.pt"), weights_only=False)["model"]
    after = torch.load(str(tmp_path / "again" / "last.pt"), weights_only=False)["model"]
    assert np.abs(after["head.bias"].numpy() - before["head.bias"].numpy()).max() < 1e-2
    # an exported network of another shape, and a pack given with --data, are refused
    try:
        train(TrainOptions(out=tmp_path / "bad", steps=1, init=MODEL, **common))
    except ValueError as exc:
        assert "input 160" in str(exc)
    else:
        raise AssertionError("a mismatched --init network was accepted")
    try:
        parse_args(["--out", str(tmp_path / "x"), "--pack", str(tmp_path / "pack"), "--data", str(npz)])
    except SystemExit:
        assert "--pack replaces --data" in capsys.readouterr().err
    else:
        raise AssertionError("--pack with --data was accepted")


def test_a_failing_batch_worker_stops_training_with_a_checkpoint(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_CACHE", str(tmp_path / "cache"))
    data = _real68(shared_data, 6)
    pack({"train": data, "val": data.subset(np.array([0, 1]))}, 64, tmp_path / "pack")
    real_getitem = _Batches.__getitem__

    def getitem(self, k):
        if k >= 2:
            raise OSError("disk gone")
        return real_getitem(self, k)

    monkeypatch.setattr(_Batches, "__getitem__", getitem)  # the workers are forked: they see it
    opts = TrainOptions(out=tmp_path / "run", data=[], val=[], pack=tmp_path / "pack", workers=1, steps=10,
                        input_size=64, width_mult=0.25, landmark_set="none", batch=2, warmup=1, val_minutes=100.0,
                        val_max=8)
    try:
        train(opts)
    except ValueError as exc:
        assert "batch workers failed at step 2" in str(exc) and "disk gone" in str(exc)
    else:
        raise AssertionError("a failing worker did not stop the run")
    assert torch.load(str(tmp_path / "run" / "last.pt"), weights_only=False)["step"] == 2


def test_sigma_temperature_scaling_calibrates_on_held_out_faces(shared_data, tmp_path, monkeypatch):
    from tracker.training.export import export_checkpoint, main as export_main, sigma_scale_for
    from tracker.training.network import NetworkConfig

    monkeypatch.setenv("TRACKER_CACHE", str(tmp_path / "cache"))
    names, pts = read_csv68(shared_data / "300w-train" / "landmarks68.csv")
    keep = [i for i, name in enumerate(names) if is_held_out_path(name)][:6]
    held = labelled_from_68([names[i] for i in keep], pts[keep], np.arange(68), 68, "300w-train")
    npz = tmp_path / "held.npz"
    np.savez(npz, **held)
    torch.manual_seed(0)
    model = LandmarkNet(NetworkConfig(64, 68, 0.25)).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x).numpy()
        model.scale_sigma(2.0)
        after = model(x).numpy()
    assert np.array_equal(before[..., :2], after[..., :2])  # positions untouched
    assert np.allclose(after[..., 2] - before[..., 2], np.log(2.0), atol=1e-5)
    factor, info = sigma_scale_for(model, [npz])
    assert list(info) == ["all landmarks"] and info["all landmarks"][1:] == (68, 6 * 68) and np.all(factor > 0)
    assert np.all(factor == factor[0])  # one factor for all
    model.scale_sigma(factor)  # now calibrated on those faces: the factor measured again is 1
    assert np.abs(sigma_scale_for(model, [npz])[0] - 1.0).max() < 1e-3
    # human labels of some landmarks on some rows: those landmarks get their own factor
    mixed = dict(held)
    mixed["source"] = np.array(["human"] * 3 + ["pseudo"] * 3)
    mixed["weights"] = held["weights"].copy()
    mixed["weights"][:3, :27] = 0.0
    np.savez(tmp_path / "mixed.npz", **mixed)
    model.scale_sigma(np.linspace(0.5, 2.0, 68))  # miscalibrate, differently per landmark
    factors, groups = sigma_scale_for(model, [tmp_path / "mixed.npz"], human_sources=("human",))
    assert groups["human-labelled landmarks"][1:] == (41, 3 * 41)
    assert groups["other landmarks"][1:] == (27, 3 * 27)
    assert np.all(factors[27:] == factors[27]) and np.all(factors[:27] == factors[0]) and factors[0] != factors[27]
    model.scale_sigma(factors)
    assert np.abs(sigma_scale_for(model, [tmp_path / "mixed.npz"], human_sources=("human",))[0] - 1.0).max() < 1e-3
    model.scale_sigma(1.0 / np.linspace(0.5, 2.0, 68) / factors)  # back to the calibrated network
    # the export applies it and says so in the sidecar
    ckpt = tmp_path / "m.pt"
    torch.save({"model": model.state_dict(), "config": model.config.to_dict(), "landmark_set": "none",
                "summary": {}}, str(ckpt))
    meta = export_checkpoint(ckpt, tmp_path / "out" / "m.onnx", calibrate_on=[npz])
    assert abs(meta["trained"]["sigma_scale"]["all landmarks"] - 1.0) < 1e-3
    assert "held.npz" in meta["trained"]["sigma_scale_from"]
    assert export_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "s" / "m.onnx"), "--sigma-scale", "1.5"]) == 0
    assert json.loads((tmp_path / "s" / "m.json").read_text())["trained"]["sigma_scale"] == 1.5
    only_train = tmp_path / "train_only.npz"  # no held-out face: a clear error, not a crash
    tr = _real68(shared_data, 3)
    np.savez(only_train, images=tr.images, landmarks_px=tr.landmarks_px, weights=tr.weights,
             roi_points=tr.roi_points, source=tr.source)
    assert export_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "e" / "m.onnx"),
                        "--calibrate-sigma", str(only_train)]) == 2


def test_average_checkpoints_interpolates_weights_and_refuses_other_networks(tmp_path, capsys):
    from tracker.training.average import average_checkpoints, main as average_main
    from tracker.training.network import NetworkConfig

    def save(seed, cfg, name):
        torch.manual_seed(seed)
        m = LandmarkNet(cfg)
        torch.save({"model": m.state_dict(), "config": cfg.to_dict(), "landmark_set": "none", "summary": {},
                    "optimizer": {"state": {}}}, str(tmp_path / name))
        return m.state_dict()

    cfg = NetworkConfig(64, 68, 0.25)
    a, b = save(0, cfg, "a.pt"), save(1, cfg, "b.pt")
    avg = average_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"], [0.25, 0.75])
    k = "head.weight"
    assert torch.allclose(avg["model"][k], 0.25 * a[k] + 0.75 * b[k])
    assert "optimizer" not in avg and avg["config"] == cfg.to_dict()
    same = average_checkpoints([tmp_path / "a.pt", tmp_path / "a.pt"])
    assert all(torch.equal(same["model"][n], a[n]) for n in a)
    save(2, NetworkConfig(64, 68, 0.5), "wide.pt")
    assert average_main(["--out", str(tmp_path / "x.pt"), str(tmp_path / "a.pt"), str(tmp_path / "wide.pt")]) == 2
    assert "another network" in capsys.readouterr().err
    assert average_main(["--out", str(tmp_path / "x.pt"), str(tmp_path / "a.pt"), str(tmp_path / "b.pt"),
                         "--weights", "0.5", "0.6"]) == 2
    assert average_main(["--out", str(tmp_path / "x.pt"), str(tmp_path / "a.pt"), str(tmp_path / "b.pt")]) == 0
    # a checkpoint written before a config field existed has that field's default
    old_cfg = {k: v for k, v in cfg.to_dict().items() if k != "fine_channels"}
    torch.save({"model": b, "config": old_cfg, "landmark_set": "none", "summary": {}}, str(tmp_path / "old.pt"))
    assert average_checkpoints([tmp_path / "a.pt", tmp_path / "old.pt"])["config"] == cfg.to_dict()
    # a checkpoint without the fine head is its network with a zero fine head: weights 1 / 0 give its function
    fcfg = NetworkConfig(64, 68, 0.25, fine_channels=2)
    f = save(3, fcfg, "fine.pt")
    torch.nn.init.normal_(f["fine_head.weight"], std=0.05)
    torch.save({"model": f, "config": fcfg.to_dict(), "landmark_set": "none", "summary": {}}, str(tmp_path / "fine.pt"))
    mix = average_checkpoints([tmp_path / "a.pt", tmp_path / "fine.pt"], [0.25, 0.75])
    assert mix["config"] == fcfg.to_dict()
    assert torch.allclose(mix["model"]["fine_head.weight"], 0.75 * f["fine_head.weight"])
    assert torch.equal(mix["model"]["fine_reduce.0.weight"], f["fine_reduce.0.weight"])
    assert torch.allclose(mix["model"][k], 0.25 * a[k] + 0.75 * f[k])
    only_a = LandmarkNet(fcfg)
    only_a.load_state_dict(average_checkpoints([tmp_path / "a.pt", tmp_path / "fine.pt"], [1.0, 0.0])["model"])
    plain = LandmarkNet(cfg)
    plain.load_state_dict(a)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(only_a.eval()(x), plain.eval()(x), atol=1e-6)
    # the average exports and runs
    meta = export_checkpoint(tmp_path / "x.pt", tmp_path / "x.onnx")
    assert meta["trained"]["onnx_max_abs_diff"] < 1e-4
