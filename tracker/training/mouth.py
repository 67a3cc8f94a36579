"""The region refiners: small networks that re-read the lips (or an eye) from a crop of their own
(:mod:`tracker.landmarks.mouth_roi`).

``python -m tracker.training.mouth --out DIR --data A.npz [B.npz ...] --val V.npz --init CKPT.pt [--minutes M]``
trains it on the landmark network's labelled sets (the same npz files and image cache as
:mod:`tracker.training.train`; held-out images are moved to the validation side the same way), writing
``DIR/last.pt`` after every validation (every 10 minutes) and at the end. ``python -m tracker.training.mouth export
--checkpoint DIR/last.pt [--out assets/mouth_model.onnx] [--calibrate-sigma FILE.npz ...]`` writes the ONNX file
and its JSON sidecar; the landmark model's sidecar names it (``python -m tracker.training.export ... --lip-refiner
mouth_model.onnx``) for the run time to apply it (:mod:`tracker.landmarks.mouth`).

Network (:class:`MouthNet`): four 3x3 convolutions of stride 2 (``plain``, the default: few dense operations, about
a tenth of the landmark network's time per crop) or the landmark network's MobileNetV2 up to its stride-16 stage
(``mobilenet``, initialised from a trained landmark network; a quarter of its time), a 1x1 convolution, and one
linear layer from the flattened (S/16 x S/16) map to the lip landmarks' x, y (normalised mouth-crop coordinates) and
log sigma: the landmark network's output contract, for the lips alone. Loss: the Gaussian NLL of
:mod:`tracker.training.loss` (:func:`mouth_loss`).

Samples: the face crop's ROI points jittered as in the landmark network's training; the mouth crop centred on the
labelled lips' centroid plus noise (the face network's own centroid error at run time), mirrored with the
landmark permutation, with the usual photometric augmentations.

``--region eye_L`` or ``eye_R`` trains the same kind of network for one eye with its lid, brow, iris and pupil
(:data:`REGIONS`) on a window around them (:data:`tracker.landmarks.mouth_roi.EYE_HALF`); a mirrored sample shows it
the other eye, flipped. Export it beside the landmark model (``export --out assets/eye_L_model.onnx``) and name it
in the landmark model's JSON (``tracker.training.export ... --refiners eye_L_model.onnx eye_R_model.onnx``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tracker.landmarks.mouth_roi import EYE_HALF, MOUTH_HALF, MOUTH_SIZE, mouth_roi
from tracker.roi import crop_to_normalized, roi_from_points, warp_to_crop
from tracker.training.augment import AugmentConfig, augment_crop
from tracker.training.dataset import labelled_sample
from tracker.training.loss import gaussian_nll
from tracker.training.network import (_MEAN, _STD, LandmarkNet, NetworkConfig, _conv_bn, scale_head_sigma,
                                      set_head_landmarks)

log = logging.getLogger(__name__)

#: Spread (face-crop normalised units, per axis) of the noise added to the lips' centroid in training: about twice
#: the face network's centroid error on held-out 300-W.
CENTRE_NOISE = 0.03


#: Regions a refiner can read: name -> (window half sizes, landmark regions of the set, side tag in the landmark
#: names or None). An eye refiner reads one eye with its lid, brow, iris and pupil.
REGIONS = {"lips": (MOUTH_HALF, ("lips_outer", "lips_inner"), None),
           "eye_L": (EYE_HALF, ("eyelid", "eyebrow", "iris", "pupil"), "_L_"),
           "eye_R": (EYE_HALF, ("eyelid", "eyebrow", "iris", "pupil"), "_R_")}


def region_indices(landmark_set: str = "landmarks320", region: str = "lips") -> np.ndarray:
    """Indices of a refiner region's landmarks (:data:`REGIONS`) in a landmark set, in order."""
    from tracker.paths import ASSETS_DIR

    if region not in REGIONS:
        raise ValueError(f"unknown refiner region {region!r} (one of {', '.join(REGIONS)})")
    _, regions, side = REGIONS[region]
    meta = json.loads((ASSETS_DIR / "landmarks" / f"{landmark_set}.json").read_text())
    idx = [i for i, (name, r) in enumerate(zip(meta["names"], meta["regions"]))
           if str(r) in regions and (side is None or side in str(name))]
    if not idx:
        raise ValueError(f"landmark set {landmark_set} has no landmarks of the region {region}")
    return np.asarray(idx, dtype=np.int64)


def lip_indices(landmark_set: str = "landmarks320") -> np.ndarray:
    """Indices of the lip landmarks (regions ``lips_*``) of a landmark set, in order."""
    return region_indices(landmark_set, "lips")


@dataclass(frozen=True)
class MouthConfig:
    input_size: int = MOUTH_SIZE
    n_landmarks: int = 44
    width_mult: float = 0.5
    reduce_channels: int = 64
    half: tuple = MOUTH_HALF
    face_input_size: int = 160
    face_crop_zoom: float = 1.25
    #: "mobilenet": the landmark network's layers up to stride 16; "plain": four 3x3 convolutions of stride 2 with
    #: ``plain_channels`` (few, dense operations: a fraction of the run time at batch 1)
    backbone: str = "plain"
    plain_channels: tuple = (24, 32, 64, 96)


class MouthNet(nn.Module):
    """(N, 3, S, S) RGB in [0, 1] -> (N, L, 3): x, y in normalised mouth-crop coordinates, log sigma."""

    def __init__(self, cfg: MouthConfig) -> None:
        super().__init__()
        self.config = cfg
        if cfg.backbone == "mobilenet":
            base = LandmarkNet(NetworkConfig(input_size=160, n_landmarks=1, width_mult=cfg.width_mult))
            self.features = base.features[:base._fine_end]
        elif cfg.backbone == "plain":
            chans = (3, *(int(c) for c in cfg.plain_channels))
            self.features = nn.Sequential(*(_conv_bn(a, b, 3, 2) for a, b in zip(chans[:-1], chans[1:])))
            for m in self.features.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out")
        else:
            raise ValueError(f"unknown mouth backbone {cfg.backbone!r}")
        with torch.no_grad():
            f = self.features(torch.zeros(1, 3, cfg.input_size, cfg.input_size))
        self.reduce = _conv_bn(f.shape[1], cfg.reduce_channels, 1, 1)
        self.head = nn.Linear(cfg.reduce_channels * f.shape[2] * f.shape[3], cfg.n_landmarks * 3)
        nn.init.normal_(self.head.weight, std=1e-4)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.set_initial_landmarks(np.zeros((cfg.n_landmarks, 2)))

    def set_initial_landmarks(self, mean_xy: np.ndarray) -> None:
        set_head_landmarks(self.head, mean_xy)

    def load_backbone(self, state: dict) -> int:
        """Copy the landmark network's layers that this one shares (``features.*``); returns how many tensors."""
        own = self.state_dict()
        same = {k: v for k, v in state.items() if k in own and k.startswith("features.") and own[k].shape == v.shape}
        self.load_state_dict(same, strict=False)
        return len(same)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = (image - self.mean) / self.std
        f = self.reduce(self.features(x))
        return self.head(f.flatten(1)).view(-1, self.config.n_landmarks, 3)


class MouthDataset:
    """Mouth crops of a labelled set (:class:`tracker.training.dataset.LabelledSet` and its image cache)."""

    def __init__(self, data, cache, cfg: MouthConfig, lips: np.ndarray, mirror: np.ndarray | None,
                 augment: AugmentConfig | None) -> None:
        self.data, self.cache, self.cfg = data, cache, cfg
        self.lips = np.asarray(lips)
        self.mirror = mirror
        self.augment = augment
        self.centre_noise = CENTRE_NOISE if augment is not None else 0.0

    def __len__(self) -> int:
        return len(self.data)

    def sample(self, i: int, rng: np.random.Generator):
        aug = self.augment
        img, lm, w, pts = labelled_sample(self.data, self.cache, i, rng, aug, self.mirror)
        face = roi_from_points(pts, self.cfg.face_input_size, self.cfg.face_crop_zoom)
        lips, wl = lm[self.lips], w[self.lips]
        lips_n = crop_to_normalized(face.image_to_crop(lips), face.size)
        if wl.sum() > 0:  # the labelled lips' centroid (rows labelled only where a human marked them: 20 points)
            centre = (lips_n * wl[:, None]).sum(0) / wl.sum()
        else:  # nothing to learn from this row: any window will do
            centre = crop_to_normalized(face.image_to_crop(pts[2:3]), face.size)[0]
        if self.centre_noise:
            centre = centre + rng.normal(0.0, self.centre_noise, 2)
        roi = mouth_roi(face, centre, self.cfg.input_size, self.cfg.half)
        crop = warp_to_crop(np.ascontiguousarray(img), roi)
        target = crop_to_normalized(roi.image_to_crop(lips), roi.size).astype(np.float32)
        if aug is not None:
            crop = augment_crop(crop, rng, aug, lambda r: self.cache.image(int(r.integers(len(self.cache)))))
        return crop, target, w[self.lips]

    def batch(self, index, rng: np.random.Generator):
        s = [self.sample(int(i), rng) for i in index]
        crops = np.stack([a[0] for a in s]).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        return crops, np.stack([a[1] for a in s]), np.stack([a[2] for a in s])


def mouth_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The Gaussian NLL plus a penalty on outputs far outside the crop or sigmas above e^2 half crops.

    The NLL clamps log sigma (its gradient is zero above 3), so a crop whose output once jumped that far would
    never be pulled back; the penalty keeps every output in reach of the NLL's gradient."""
    ls = pred[..., 2]
    far = torch.relu(ls - 2.0).square() + torch.relu(pred[..., :2].abs() - 2.0).square().sum(-1)
    return gaussian_nll(pred, target, weights) + 0.1 * far.mean()


def _validation_outputs(model: MouthNet, val: MouthDataset, n: int):
    """(outputs (B, L, 3), targets, weights) as numpy, batch by batch, for plain crops of the first ``n`` samples
    (model in eval mode meanwhile)."""
    model.eval()
    idx = np.arange(min(n, len(val)))
    rng = np.random.default_rng(0)
    try:
        with torch.no_grad():
            for s in range(0, len(idx), 128):
                x, t, w = val.batch(idx[s:s + 128], rng)
                yield model(torch.from_numpy(x)).numpy(), t, w
    finally:
        model.train()


def evaluate(model: MouthNet, val: MouthDataset, n: int = 1024) -> dict:
    """Loss and mean error (% of the mouth crop's half size) on plain crops of the first ``n`` validation samples."""
    losses, errs, ws = [], [], []
    for p, t, w in _validation_outputs(model, val, n):
        losses.append(float(gaussian_nll(*(torch.from_numpy(a) for a in (p, t, w)))) * float(w.sum()))
        errs.append((np.linalg.norm(p[..., :2] - t, axis=2) * w).sum())
        ws.append(float(w.sum()))
    return {"val_loss": float(sum(losses) / sum(ws)), "val_err": float(100 * sum(errs) / sum(ws))}


def sigma_factor(model: MouthNet, val: MouthDataset, n: int = 2048) -> tuple[float, int]:
    """The factor that makes the median of error / sigma on plain validation crops sqrt(2 ln 2) (a calibrated
    circular Gaussian's), and how many labelled points it was measured on."""
    from tracker.training.export import CALIBRATED_MEDIAN_RATIO

    r = np.concatenate([(np.linalg.norm(p[..., :2] - t, axis=2) / np.exp(p[..., 2]))[w > 0]
                        for p, t, w in _validation_outputs(model, val, n)])
    return float(np.median(r) / CALIBRATED_MEDIAN_RATIO), int(r.size)


def export(checkpoint: Path, out: Path, calibrate: list[Path] | None = None) -> dict:
    """Write the refiner as ONNX (the landmark network's contract: ``image`` (N, 3, S, S) RGB in [0, 1] ->
    ``landmarks`` (N, n_lips, 3)) and its JSON sidecar; sigmas scaled on the held-out rows of ``calibrate``."""
    from tracker.paths import cache_dir
    from tracker.training.dataset import ImageCache
    from tracker.training.export import check_onnx, export_onnx
    from tracker.training.train import is_held_out_path, load_sets

    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"no checkpoint at {checkpoint}")
    ckpt = torch.load(str(checkpoint), map_location="cpu", weights_only=False)
    cfg = MouthConfig(**{**ckpt["config"], "half": tuple(ckpt["config"]["half"])})
    model = MouthNet(cfg)
    model.load_state_dict(ckpt["model"])
    lips = np.asarray(ckpt["lips"], dtype=np.int64)
    trained = {"checkpoint": str(checkpoint), "steps": int(ckpt.get("step", 0)), "history": ckpt.get("history", [])}
    if calibrate:
        data = load_sets(list(calibrate))
        data = data.subset(np.flatnonzero([is_held_out_path(p) for p in data.images]))
        if len(data) == 0:
            raise ValueError("no held-out rows to calibrate the sigmas on")
        cache = ImageCache.build(data, cfg.face_input_size, cache_dir() / "landmark_training" / "images")
        factor, n_points = sigma_factor(model, MouthDataset(data, cache, cfg, lips, None, None))
        scale_head_sigma(model.head, factor)
        trained["sigma_scale"] = round(factor, 4)
        trained["sigma_scale_from"] = f"{n_points} labelled points of {len(data)} held-out rows of " + \
            ", ".join(Path(p).name for p in calibrate)
    out = Path(out)
    export_onnx(model, out)
    check = check_onnx(model, out)
    trained.update({"onnx_max_abs_diff": check.max_abs_diff, "onnx_ms_per_crop_1thread": round(check.ms_per_crop, 3)})
    meta = {"input_size": cfg.input_size, "n_landmarks": int(len(lips)), "lips": lips.tolist(),
            "region": str(ckpt.get("region", "lips")),
            "half": list(cfg.half), "landmark_set": ckpt.get("landmark_set", "landmarks320"),
            "face_input_size": cfg.face_input_size, "face_crop_zoom": cfg.face_crop_zoom,
            "backbone": cfg.backbone, "width_mult": cfg.width_mult, "reduce_channels": cfg.reduce_channels,
            "trained": trained}
    if cfg.backbone == "plain":
        meta["plain_channels"] = list(cfg.plain_channels)
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    log.info("exported %s (max |onnx - torch| = %.2e, %.2f ms per crop)", out, check.max_abs_diff, check.ms_per_crop)
    return meta


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:
        p = argparse.ArgumentParser(prog="python -m tracker.training.mouth export")
        p.add_argument("--checkpoint", required=True)
        p.add_argument("--out", default=str(Path(__file__).resolve().parents[2] / "assets" / "mouth_model.onnx"))
        p.add_argument("--calibrate-sigma", nargs="*", default=None, metavar="FILE.npz")
        a = p.parse_args(argv[1:])
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        try:
            export(Path(a.checkpoint), Path(a.out), [Path(x) for x in a.calibrate_sigma] if a.calibrate_sigma else None)
        except (ValueError, FileNotFoundError, KeyError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    try:
        return train_main(argv)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def train_main(argv: list[str]) -> int:
    from tracker.paths import cache_dir
    from tracker.training.dataset import ImageCache
    from tracker.training.dataset import load_mirror
    from tracker.training.train import augment_config, load_sets, split_train_val

    p = argparse.ArgumentParser(prog="python -m tracker.training.mouth", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--val", nargs="+", required=True)
    p.add_argument("--init", required=True, help="landmark network checkpoint (.pt) for the backbone")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backbone", choices=("mobilenet", "plain"), default="plain",
                   help="mobilenet: the landmark network's layers to stride 16, from --init; plain: four 3x3 "
                        "convolutions of stride 2, from scratch (cheaper at run time)")
    p.add_argument("--input-size", type=int, default=MOUTH_SIZE, help="mouth crop side in px")
    p.add_argument("--region", choices=tuple(REGIONS), default="lips",
                   help="what the refiner reads: the lips (default), or one eye with its brow, iris and pupil")
    p.add_argument("--plain-channels", type=int, nargs=4, default=[24, 32, 64, 96])
    p.add_argument("--resume-weights", default=None, help="start from this mouth checkpoint's weights")
    p.add_argument("--augment", nargs="*", default=[], metavar="KEY=VALUE")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        overrides = {k: float(v) for k, v in (item.split("=", 1) for item in a.augment)}
    except ValueError:
        raise ValueError(f"--augment expects NAME=VALUE items, got {a.augment}") from None
    aug = augment_config(overrides)  # checked before any data is read
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if not Path(a.init).is_file():
        raise FileNotFoundError(f"no landmark network checkpoint at {a.init}")
    ckpt = torch.load(a.init, map_location="cpu", weights_only=False)
    fcfg = NetworkConfig(**ckpt["config"])
    landmark_set = ckpt.get("landmark_set", "landmarks320")
    lips = region_indices(landmark_set, a.region)
    cfg = MouthConfig(input_size=a.input_size, n_landmarks=len(lips), width_mult=fcfg.width_mult,
                      half=REGIONS[a.region][0],
                      face_input_size=fcfg.input_size, face_crop_zoom=fcfg.crop_zoom, backbone=a.backbone,
                      plain_channels=tuple(a.plain_channels))
    train_set, val_set = split_train_val(load_sets([Path(x) for x in a.data]), load_sets([Path(x) for x in a.val]))
    cdir = cache_dir() / "landmark_training" / "images"
    train_cache = ImageCache.build(train_set, fcfg.input_size, cdir)
    val_cache = ImageCache.build(val_set, fcfg.input_size, cdir)
    mirror = load_mirror(landmark_set, train_set.n_landmarks)
    ds = MouthDataset(train_set, train_cache, cfg, lips, mirror, aug)
    val = MouthDataset(val_set, val_cache, cfg, lips, None, None)
    model = MouthNet(cfg)
    n = model.load_backbone(ckpt["model"]) if cfg.backbone == "mobilenet" else 0
    rng = np.random.default_rng(a.seed)
    if a.resume_weights:
        model.load_state_dict(torch.load(a.resume_weights, map_location="cpu", weights_only=False)["model"])
    # head bias: mean target of plain crops
    plain = MouthDataset(train_set, train_cache, cfg, lips, None, None)
    _, t0, w0 = plain.batch(rng.choice(len(plain), 512, replace=False), rng)
    if not a.resume_weights:
        model.set_initial_landmarks((t0 * w0[..., None]).sum(0) / np.maximum(w0.sum(0), 1e-9)[:, None])
    log.info("refiner (%s): %d backbone tensors from %s; %d train, %d val samples; %d landmarks", a.region, n,
             a.init, len(ds), len(val), len(lips))
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    budget = a.minutes * 60.0
    t_start = time.time()
    step, hist = 0, []
    last_val = t_start

    def save() -> None:
        tmp = out / "last.pt.tmp"
        torch.save({"model": model.state_dict(), "config": cfg.__dict__, "step": step, "history": hist,
                    "landmark_set": landmark_set, "lips": lips.tolist(), "region": a.region, "init": str(a.init),
                    "options": vars(a)}, tmp)
        tmp.replace(out / "last.pt")

    while True:
        el = time.time() - t_start
        if el >= budget:
            break
        frac = el / budget
        lr = a.lr * (min(1.0, (step + 1) / 200) * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac))))
        for g in opt.param_groups:
            g["lr"] = lr
        x, t, w = ds.batch(rng.integers(0, len(ds), a.batch), rng)
        loss = mouth_loss(model(torch.from_numpy(x)), torch.from_numpy(t), torch.from_numpy(w))
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 100 == 0:
            log.info("step %d %.0f s lr %.2e loss %.3f %.0f img/s", step, el, lr, float(loss.detach()),
                     step * a.batch / max(el, 1e-9))
        if time.time() - last_val > 600:
            ev = evaluate(model, val)
            hist.append({"step": step, "seconds": time.time() - t_start, **ev})
            log.info("val %s", ev)
            save()
            last_val = time.time()
    ev = evaluate(model, val)
    hist.append({"step": step, "seconds": time.time() - t_start, **ev})
    log.info("final val %s", ev)
    save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
