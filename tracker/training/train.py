"""Train the dense landmark network (paper Sec. 3.1: MobileNetV2, Gaussian NLL of Eq. 1, AdamW).

Command::

    python -m tracker.training.train --out runs/NAME [--resume] [--data a.npz b.npz] [--val v.npz]
                                     [--steps N] [--batch 32] [--lr 2e-3] [--input-size 128] [--width 0.5]
                                     [--crop-zoom Z]

- Training data: ``--data`` npz files (``tracker.training.data`` format), else every training set that
  ``tracker.training.data`` lists. Any sample of a held-out image (tracker/splits.py: held-out 300-W
  files and the held-out videos) is dropped from training, whatever file it comes from.
- Validation: ``--val`` npz files plus the held-out samples found in the training files; plain run-time crops,
  at most ``--val-max`` per source. ``best.pt`` is picked on the NME of ``--select-source`` (default
  ``300w-train``: held-out 300-W ground truth from ``tracker.training.ibug``), else on the NME of all.
- Schedule: linear warm-up, then cosine decay to 1% over ``--steps``, or over ``--budget-minutes`` of training
  time (validation excluded), which ends on time on a shared CPU. ``--resume`` continues
  ``runs/NAME/last.pt`` (model, optimiser, step); ``--init CKPT`` starts from a checkpoint's weights with a
  fresh schedule (e.g. when more data arrives); a narrower one is widened (Net2WiderNet) and one of another
  input size gets its spatial head resampled to the new grid (:func:`resize_input_state_dict`); a head that the
  checkpoint lacks (``--spatial-channels K``, ``--fine-channels K``) starts at zero, so the run starts from the
  checkpoint's function.
- Crops: :func:`tracker.roi.roi_from_points` at ``--crop-zoom`` (default: the zoom of the ``--init`` or
  ``--resume`` checkpoint, else 1); the zoom is saved in the checkpoint's config and exported to the sidecar,
  so the run time cuts the same crops. The image cache does not depend on it (it keeps 1.6 / Z cached pixels
  per crop pixel).
- Every ``--ckpt-minutes`` a checkpoint ``last.pt``; every ``--val-minutes`` a validation pass, appended to
  ``log.csv`` (step, epoch, training seconds, lr, train loss, val loss, val NME, img/s) and ``best.pt`` on a new best NME.
  Stop it any time (SIGINT/SIGTERM write a last checkpoint first).

NME: mean over validation images of the mean distance between predicted and labelled landmarks (weight > 0),
divided by the distance between the ROI eye centres (inter-pupil), in percent.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import os
import re
import signal
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from tracker.paths import cache_dir
from tracker.roi import normalized_to_crop, roi_from_points, template
from tracker.splits import HELD_OUT_VIDEOS, is_held_out_300w
from tracker.training.augment import AugmentConfig
from tracker.training.dataset import CropDataset, ImageCache, LabelledSet, load_mirror, mean_target
from tracker.training.loss import gaussian_nll
from tracker.training.network import LandmarkNet, NetworkConfig, resize_input_state_dict, widen_state_dict

log = logging.getLogger(__name__)

#: seconds the training loop waits for a batch from ``--workers`` before it stops (with a last checkpoint)
LOADER_TIMEOUT_S = 300.0
LOG_FIELDS = ("step", "epoch", "seconds", "lr", "train_loss", "val_loss", "val_nme", "img_per_s")
_VIDEO_RE = re.compile(r"(^|[/_.-])(" + "|".join(re.escape(v.rsplit(".", 1)[0]) for v in sorted(HELD_OUT_VIDEOS))
                       + r")([/_.-]|$)")


def is_held_out_path(path: str) -> bool:
    """True for an image that belongs to the validation split: a held-out 300-W file or a held-out video's frame."""
    p = str(path).replace("\\", "/")
    if "300w" in p.lower() and is_held_out_300w(p.rsplit("/", 1)[-1]):
        return True
    return bool(_VIDEO_RE.search(p))


@dataclass
class TrainOptions:
    out: Path
    data: list[Path]
    val: list[Path]
    resume: bool = False
    init: Path | None = None
    input_size: int = 128
    width_mult: float = 0.5
    spatial_channels: int = 0
    fine_channels: int = 0
    crop_zoom: float | None = None  # None: that of the --resume / --init checkpoint, else 1
    landmark_set: str = "landmarks320"
    batch: int = 32
    lr: float = 2e-3
    head_lr_mult: float = 0.1
    weight_decay: float = 1e-2
    steps: int = 6000
    warmup: int = 200
    ckpt_minutes: float = 3.0
    val_minutes: float = 5.0
    val_max: int = 300
    max_minutes: float = 0.0
    budget_minutes: float = 0.0
    threads: int = 1
    seed: int = 0
    select_source: str = "300w-train"
    reset_best: bool = False
    device: str = "cpu"
    augment: dict = field(default_factory=dict)
    pack: Path | None = None
    workers: int = 0


def augment_config(overrides: dict) -> AugmentConfig:
    """The default augmentation with some fields replaced (``--augment p_occluder=0.15 p_blur=0.1``)."""
    known = {f.name for f in fields(AugmentConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown augmentation setting(s) {unknown}; known: {sorted(known)}")
    bad = sorted(k for k, v in overrides.items()
                 if not (np.isfinite(v) and v >= 0 and (v <= 1 or not k.startswith("p_"))))
    if bad:
        raise ValueError(f"augmentation setting(s) {bad} out of range (>= 0; probabilities at most 1)")
    return replace(AugmentConfig(), **{k: float(v) for k, v in overrides.items()})


def lr_at(step: int, opts: TrainOptions, progress: float | None = None) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay from ``lr`` to ``lr / 100``.

    ``progress`` in [0, 1] is where the decay stands; by default ``step / steps`` (a step schedule), or the
    share of the training-time budget spent (``--budget-minutes``: a time schedule that ends on time
    whatever the throughput of a shared CPU).
    """
    if step < opts.warmup:
        return opts.lr * (step + 1) / opts.warmup
    if progress is None:
        progress = (step - opts.warmup) / max(1, opts.steps - opts.warmup)
    t = min(1.0, max(0.0, progress))
    return opts.lr * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t)))


def default_data_paths() -> tuple[list[Path], list[Path]]:
    """(train npz files, val npz files) listed by ``tracker.training.data``; ([], []) when it lists none."""
    try:
        from tracker.training import data as data_pkg
    except ImportError:
        return [], []
    fn = getattr(data_pkg, "dataset_paths", None)
    if fn is None:
        return [], []
    paths = {k: Path(v) for k, v in fn().items()}
    val = [p for k, p in paths.items() if "val" in k.lower() and p.is_file()]
    train = [p for k, p in paths.items() if "val" not in k.lower() and p.is_file()]
    return train, val


def load_sets(paths: list[Path]) -> LabelledSet:
    return LabelledSet.concat([LabelledSet.from_npz(p) for p in paths]).valid()


def split_train_val(train: LabelledSet, val: LabelledSet | None) -> tuple[LabelledSet, LabelledSet]:
    """Move held-out images (tracker/splits.py) from the training set to the validation set."""
    held = np.array([is_held_out_path(p) for p in train.images], dtype=bool)
    if val is None and not held.any():
        raise ValueError("no validation data: give --val or training files that contain held-out images")
    moved = train.subset(np.flatnonzero(held))
    val = moved if val is None else (LabelledSet.concat([val, moved]) if held.any() else val)
    return train.subset(np.flatnonzero(~held)), val


class Validator:
    """Plain run-time crops of (a sample of) the validation set, decoded once; loss and NME of a model."""

    def __init__(self, data: LabelledSet, cache: ImageCache, size: int, max_n: int, seed: int = 0,
                 select_source: str = "", zoom: float = 1.0) -> None:
        self.select_source = select_source
        rng = np.random.default_rng(seed)
        idx = []
        for src in np.unique(data.source):  # at most max_n per source
            mine = np.flatnonzero(data.source == src)
            idx.append(rng.choice(mine, size=min(max_n, len(mine)), replace=False))
        idx = np.sort(np.concatenate(idx))
        ds = CropDataset(data, cache, size, mirror=None, augment=None, zoom=zoom)
        self.images, self.targets, self.weights = ds.batch(idx)
        self.size = size
        self.sources = data.source[idx]
        # per-sample ROI in cache coords, to measure errors in (cached) image pixels
        self.roi_inv, self.eye_dist = [], []
        for i in idx:
            pts = cache.to_cache(int(i), data.roi_points[i].astype(np.float64))
            self.roi_inv.append(roi_from_points(pts, size, zoom).inverse)
            self.eye_dist.append(float(np.linalg.norm(pts[1] - pts[0])))
        self.roi_inv = np.stack(self.roi_inv)
        self.eye_dist = np.asarray(self.eye_dist)

    def evaluate(self, model: LandmarkNet, batch: int = 64) -> dict:
        model.eval()
        preds = []
        with torch.no_grad():
            for s in range(0, len(self.images), batch):
                x = torch.from_numpy(self.images[s:s + batch]).to(next(model.parameters()).device)
                preds.append(model(x).cpu().numpy())
        model.train()
        pred = np.concatenate(preds)
        loss = float(gaussian_nll(torch.from_numpy(pred), torch.from_numpy(self.targets),
                                  torch.from_numpy(self.weights)))
        nme = self.nme(pred)
        out = {"val_loss": loss, "val_nme_all": float(np.mean(nme))}
        for src in np.unique(self.sources):
            out[f"val_nme_{src}"] = float(np.mean(nme[self.sources == src]))
        # the NME that picks the best checkpoint: that of the selection source when present
        out["val_nme"] = out.get(f"val_nme_{self.select_source}", out["val_nme_all"])
        sig = np.exp(pred[..., 2])
        err = np.linalg.norm(pred[..., :2] - self.targets, axis=-1)
        m = self.weights > 0
        out["within_1sigma"] = float(np.mean((err <= sig)[m]))
        out["within_2sigma"] = float(np.mean((err <= 2 * sig)[m]))
        return out

    def nme(self, pred: np.ndarray) -> np.ndarray:
        """(M,) per-image NME in percent (errors in image pixels / ROI eye-centre distance)."""
        def to_img(n):
            c = normalized_to_crop(n, self.size)
            return np.einsum("mij,mlj->mli", self.roi_inv[:, :, :2], c) + self.roi_inv[:, None, :, 2]

        err = np.linalg.norm(to_img(pred[..., :2]) - to_img(self.targets), axis=-1)
        m = self.weights > 0
        per = (err * m).sum(1) / np.maximum(m.sum(1), 1)
        return 100.0 * per / self.eye_dist


class _Batches(torch.utils.data.Dataset):
    """Batch k of an endless stream of augmented batches, made in a worker process: epoch k // (M // B) in the
    order of a permutation seeded by (seed, epoch), each batch's augmentation seeded by (seed, k). Returns uint8
    crops (B, S, S, 3), targets (B, L, 2) and weights (B, L) as tensors."""

    def __init__(self, dataset: CropDataset, batch: int, seed: int) -> None:
        self.dataset, self.batch, self.seed = dataset, batch, seed
        self.per_epoch = max(1, len(dataset) // batch)
        self._epoch, self._perm = -1, None

    def __len__(self) -> int:
        return 1 << 40

    def __getitem__(self, k: int):
        epoch, j = divmod(int(k), self.per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset))
        idx = self._perm[j * self.batch:(j + 1) * self.batch]
        rng = np.random.default_rng([self.seed, 1 << 20, int(k)])
        return tuple(torch.from_numpy(a) for a in self.dataset.batch_uint8(idx, rng))


def _loader(dataset: CropDataset, opts: TrainOptions, first_step: int) -> torch.utils.data.DataLoader:
    """``--workers`` processes making batches ahead of the training step (for a GPU, which the one-process
    loop of a CPU run cannot feed). They are forked, sharing the image cache; OpenCV's thread pool is shut down
    first, so the children run OpenCV on their one thread (a forked child that uses or resets the parent's pool
    waits forever for threads it does not have)."""
    import cv2

    cv2.setNumThreads(0)
    return torch.utils.data.DataLoader(_Batches(dataset, opts.batch, opts.seed), batch_size=None,
                                       sampler=range(first_step, 1 << 40), num_workers=opts.workers,
                                       prefetch_factor=4, persistent_workers=True, timeout=LOADER_TIMEOUT_S,
                                       multiprocessing_context="fork",
                                       pin_memory=opts.device.startswith("cuda"))


def make_optimizer(model: LandmarkNet, opts: TrainOptions) -> torch.optim.AdamW:
    """AdamW; the wide linear head gets ``head_lr_mult`` times the learning rate (Adam moves every one of its
    ~1280 inputs' weights by about the learning rate at once, which makes the first steps unstable)."""
    head = model.head_parameters()
    ids = {id(p) for p in head}
    body = [p for p in model.parameters() if id(p) not in ids]
    return torch.optim.AdamW([{"params": body, "lr_mult": 1.0}, {"params": head, "lr_mult": opts.head_lr_mult}],
                             lr=opts.lr, weight_decay=opts.weight_decay)


def save_checkpoint(path: Path, model: LandmarkNet, opt: torch.optim.Optimizer, step: int, epoch: float,
                    best: float, opts: TrainOptions, summary: dict, trained_s: float = 0.0,
                    best_summary: dict | None = None) -> None:
    """``summary``: the validation figures of these weights (what an export writes into the sidecar);
    ``best_summary``: those of the best checkpoint so far (kept across ``--resume``)."""
    tmp = path.with_suffix(".tmp")
    torch.save({"trained_s": trained_s, "model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "epoch": epoch,
                "best_nme": best, "config": model.config.to_dict(), "landmark_set": opts.landmark_set,
                "summary": summary, "best_summary": summary if best_summary is None else best_summary,
                "options": {k: str(v) for k, v in vars(opts).items()}}, str(tmp))
    tmp.replace(path)


def resolve_crop_zoom(requested: float | None, start: dict | None, source: Path | None) -> float:
    """The crop zoom to train at: ``requested`` (``--crop-zoom``), else that of ``start``, the checkpoint the
    weights come from (``source``: ``last.pt`` with ``--resume``, else ``--init``), else 1. A requested zoom that
    differs from the checkpoint's is logged."""
    own = None if start is None else float(start.get("config", {}).get("crop_zoom", 1.0))
    if requested is None:
        return 1.0 if own is None else own
    if own is not None and own != float(requested):
        log.warning("%s was trained at crop zoom %.3g; training on at %.3g", source, own, requested)
    return float(requested)


def train(opts: TrainOptions) -> dict:
    """Run (or resume) training; returns the summary of the best checkpoint."""
    torch.set_num_threads(opts.threads)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    data_paths, val_paths = list(opts.data), list(opts.val)
    if not data_paths and opts.pack is None:
        data_paths, default_val = default_data_paths()
        val_paths = val_paths or default_val
    if not data_paths and opts.pack is None:
        raise ValueError("no training data: pass --data FILE.npz (see tracker.training.data)")
    caches = None
    if opts.pack is not None:
        from tracker.training.pack import load_pack

        log.info("training on the packed data in %s", opts.pack)
        sets, caches, meta = load_pack(opts.pack, threads=max(1, opts.workers))
        if int(meta.get("input_size", opts.input_size)) != opts.input_size:
            log.warning("%s was cut for input size %s; training at %d (its pixel density is that of the other "
                        "size)", opts.pack, meta.get("input_size"), opts.input_size)
        train_set, val_set = sets["train"], sets["val"]
    else:
        log.info("training files: %s; validation files: %s", [str(p) for p in data_paths],
                 [str(p) for p in val_paths])
        train_set, val_set = split_train_val(load_sets(data_paths), load_sets(val_paths) if val_paths else None)
    n_lm = train_set.n_landmarks
    log.info("%d training and %d validation samples, %d landmarks", len(train_set), len(val_set), n_lm)
    last = out / "last.pt"
    resume = opts.resume and last.is_file()
    source = last if resume else opts.init  # the checkpoint the weights come from, read once
    from_onnx = not resume and source is not None and Path(source).suffix.lower() == ".onnx"
    if from_onnx:
        from tracker.training.onnx_init import config_from_sidecar

        own_cfg = config_from_sidecar(source)
        if (own_cfg.input_size, own_cfg.width_mult, own_cfg.spatial_channels, own_cfg.fine_channels,
                own_cfg.n_landmarks) != (opts.input_size, opts.width_mult, opts.spatial_channels,
                                         opts.fine_channels, n_lm):
            raise ValueError(f"{source} is a network of input {own_cfg.input_size}, width {own_cfg.width_mult}, "
                             f"spatial channels {own_cfg.spatial_channels}, fine channels {own_cfg.fine_channels}, "
                             f"{own_cfg.n_landmarks} landmarks: give the same --input-size, --width-mult, "
                             "--spatial-channels and --fine-channels (a .pt checkpoint can start a new head)")
        start = {"config": own_cfg.to_dict(), "onnx": str(source)}
    else:
        start = torch.load(str(source), map_location="cpu", weights_only=False) if source is not None else None
    cfg = NetworkConfig(opts.input_size, n_lm, opts.width_mult, opts.spatial_channels,
                        resolve_crop_zoom(opts.crop_zoom, start, source), opts.fine_channels)
    if cfg.crop_zoom != 1.0:
        log.info("crop zoom %.3g: the face fills %.3g times more of the crop than the default template",
                 cfg.crop_zoom, cfg.crop_zoom)
    if caches is not None:
        train_cache, val_cache = caches["train"], caches["val"]
    else:
        cdir = cache_dir() / "landmark_training" / "images"
        train_cache = ImageCache.build(train_set, cfg.input_size, cdir)
        val_cache = ImageCache.build(val_set, cfg.input_size, cdir)
    mirror = load_mirror(opts.landmark_set, n_lm)
    if mirror is None:
        log.warning("no mirror permutation for %s: mirror augmentation is off", opts.landmark_set)
    dataset = CropDataset(train_set, train_cache, cfg.input_size, mirror, augment_config(opts.augment),
                          seed=opts.seed, zoom=cfg.crop_zoom)
    validator = Validator(val_set, val_cache, cfg.input_size, opts.val_max, select_source=opts.select_source,
                          zoom=cfg.crop_zoom)

    plain = CropDataset(train_set, train_cache, cfg.input_size, None, zoom=cfg.crop_zoom)  # for the initial head
    device = torch.device(opts.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    model = LandmarkNet(cfg).to(device)
    opt = make_optimizer(model, opts)
    step, epoch, best, trained_s = 0, 0.0, float("inf"), 0.0
    summary: dict = {}    # the best checkpoint's validation figures
    latest: dict = {}     # the latest validation's (of the weights last.pt holds, at the end)
    if resume:
        ckpt = start  # loaded on the CPU: load_state_dict moves weights and optimiser state to the device
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step, epoch, best = int(ckpt["step"]), float(ckpt["epoch"]), float(ckpt["best_nme"])
        trained_s = float(ckpt.get("trained_s", 0.0))
        if opts.reset_best:
            best = float("inf")
        summary = ckpt.get("best_summary", ckpt.get("summary", {}))
        latest = ckpt.get("summary", {})
        log.info("resumed %s at step %d (best NME %.2f)", last, step, best)
    elif from_onnx:
        from tracker.training.onnx_init import load_onnx_weights, recalibrate_batchnorm

        load_onnx_weights(model, Path(start["onnx"]))
        # on augmented crops: those the exported network's running statistics came from (on plain crops the
        # batch statistics of training would differ from them, and move the function at the first steps)
        rng0 = np.random.default_rng(opts.seed)
        idx = rng0.choice(len(dataset), size=min(512, len(dataset)), replace=False)
        recalibrate_batchnorm(model, (torch.from_numpy(dataset.batch(idx[s:s + 64], rng0)[0]).to(device)
                                      for s in range(0, len(idx), 64)))
        log.info("initialised from the exported network %s (batch norms recalibrated on %d augmented crops)",
                 source, len(idx))
    elif start is not None:
        ckpt = start
        own = model.state_dict()
        weights = ckpt["model"]
        src_cfg = NetworkConfig(**ckpt["config"]) if "config" in ckpt else None
        if src_cfg is not None and src_cfg.width_mult < cfg.width_mult:
            weights = widen_state_dict(weights, src_cfg, replace(src_cfg, width_mult=cfg.width_mult),
                                       seed=opts.seed)
            log.info("widened %s from width %.2f to %.2f (same function)", opts.init, src_cfg.width_mult,
                     cfg.width_mult)
            src_cfg = replace(src_cfg, width_mult=cfg.width_mult)
        if (src_cfg is not None and src_cfg.input_size != cfg.input_size
                and src_cfg.spatial_channels == cfg.spatial_channels and src_cfg.width_mult == cfg.width_mult):
            weights = resize_input_state_dict(weights, src_cfg, replace(src_cfg, input_size=cfg.input_size))
            log.info("resized %s from input %d to %d (spatial head resampled)", opts.init, src_cfg.input_size,
                     cfg.input_size)
        same = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(same, strict=False)
        if "head.weight" not in same:  # another landmark set: keep the backbone, start the head afresh
            model.set_initial_landmarks(mean_target(plain))
        log.info("initialised %d of %d tensors from %s", len(same), len(own), opts.init)
    else:
        model.set_initial_landmarks(mean_target(plain))

    log_path = out / "log.csv"
    new_log = not log_path.is_file()
    log_file = open(log_path, "a", newline="")
    writer = csv.writer(log_file)
    if new_log:
        writer.writerow(LOG_FIELDS)
        log_file.flush()

    stop = {"flag": False}

    def on_signal(signum, frame):  # noqa: ARG001
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    rng = np.random.default_rng(opts.seed + step)
    perm = rng.permutation(len(dataset))
    pos = int((epoch % 1.0) * len(dataset))
    t_start = time.time()
    t_ckpt = t_val = t_rate = time.time()
    seen_since = 0
    losses: list[float] = []
    model.train()
    t_last = time.time()

    def progress() -> float | None:
        return trained_s / (60.0 * opts.budget_minutes) if opts.budget_minutes > 0 else None

    loader = iter(_loader(dataset, opts, step)) if opts.workers > 0 else None
    loader_error: Exception | None = None
    while not stop["flag"]:
        if opts.budget_minutes > 0:
            if progress() >= 1.0:
                break
        elif step >= opts.steps:
            break
        if opts.max_minutes and time.time() - t_start > 60 * opts.max_minutes:
            break
        if loader is not None:
            try:
                crops, targets, weights = next(loader)
            except Exception as exc:  # a worker raised, died or made no batch within LOADER_TIMEOUT_S
                loader_error = exc
                break
            x = crops.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
            targets, weights = targets.numpy(), weights.numpy()
            n_batch = len(targets)
        else:
            if pos + opts.batch > len(perm):
                perm, pos = rng.permutation(len(dataset)), 0
            idx = perm[pos:pos + opts.batch]
            pos += opts.batch
            images, targets, weights = dataset.batch(idx, rng)
            x = torch.from_numpy(images).to(device)
            n_batch = len(idx)
        lr = lr_at(step, opts, progress())
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_mult", 1.0)
        pred = model(x)
        loss = gaussian_nll(pred, torch.from_numpy(targets).to(device), torch.from_numpy(weights).to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        epoch += n_batch / len(dataset)
        seen_since += n_batch
        losses.append(float(loss.detach()))
        now = time.time()
        trained_s += now - t_last
        t_last = now
        last_step = (step == opts.steps) if opts.budget_minutes <= 0 else progress() >= 1.0
        if now - t_val > 60 * opts.val_minutes or last_step:
            rate = seen_since / max(now - t_rate, 1e-9)
            metrics = validator.evaluate(model)
            row = (step, f"{epoch:.3f}", f"{trained_s:.0f}", f"{lr:.3e}", f"{np.mean(losses):.4f}",
                   f"{metrics['val_loss']:.4f}", f"{metrics['val_nme']:.3f}", f"{rate:.1f}")
            writer.writerow(row)
            log_file.flush()
            log.info("step %d epoch %.2f lr %.2e train %.3f val %.3f NME %.2f%% (%s) %.1f img/s", step, epoch, lr,
                     np.mean(losses), metrics["val_loss"], metrics["val_nme"],
                     ", ".join(f"{k[8:]} {v:.2f}" for k, v in metrics.items() if k.startswith("val_nme_")), rate)
            log.info("share of errors within 1 / 2 sigma: %.2f / %.2f", metrics["within_1sigma"],
                     metrics["within_2sigma"])
            losses, seen_since, t_rate = [], 0, time.time()
            latest = {"step": step, "epoch": round(epoch, 3), "train_samples": len(train_set),
                      "val_samples": len(validator.images), "train_img_per_s": round(rate, 1),
                      **{k: round(v, 4) for k, v in metrics.items()}}
            if metrics["val_nme"] < best:
                best = metrics["val_nme"]
                summary = latest
                save_checkpoint(out / "best.pt", model, opt, step, epoch, best, opts, summary, trained_s)
            t_val = time.time()
            trained_s -= t_val - now  # validation time is not training time
            t_last = t_val
        if last_step:
            break
        if time.time() - t_ckpt > 60 * opts.ckpt_minutes:
            save_checkpoint(last, model, opt, step, epoch, best, opts, latest, trained_s, summary)
            t_ckpt = time.time()
    # last.pt's own figures are those of the latest validation (at the end of a schedule: of these weights)
    save_checkpoint(last, model, opt, step, epoch, best, opts, latest, trained_s, summary)
    log_file.close()
    if loader_error is not None:
        raise ValueError(f"the batch workers failed at step {step} ({loader_error}); {last} holds that step: "
                         "--resume continues from it")
    log.info("stopped at step %d; best validation NME %.2f%%", step, best)
    return summary


def parse_args(argv: list[str] | None = None) -> TrainOptions:
    d = TrainOptions(out=Path("runs/landmarks"), data=[], val=[])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, log.csv)")
    p.add_argument("--data", type=Path, nargs="*", default=[], help="training npz files")
    p.add_argument("--val", type=Path, nargs="*", default=[], help="validation npz files")
    p.add_argument("--resume", action="store_true", help="continue OUT/last.pt")
    p.add_argument("--reset-best", action="store_true",
                   help="with --resume: forget the best NME so far (the validation data changed)")
    p.add_argument("--init", type=Path, default=None, help="start from this checkpoint's weights, fresh schedule")
    for name in ("input_size", "spatial_channels", "fine_channels", "batch", "steps", "warmup", "val_max", "threads",
                 "seed"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    p.add_argument("--crop-zoom", type=float, default=None, metavar="Z",
                   help="train on crops zoomed by Z (tracker.roi.template; default: that of the --init or --resume "
                        "checkpoint, else 1)")
    for name in ("width_mult", "lr", "head_lr_mult", "weight_decay", "ckpt_minutes", "val_minutes", "max_minutes",
                 "budget_minutes"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(d, name))
    p.add_argument("--landmark-set", default=d.landmark_set)
    p.add_argument("--device", default=d.device, help="torch device: cpu (default) or cuda on a GPU machine")
    p.add_argument("--pack", type=Path, default=None,
                   help="train on a folder written by tracker.training.pack instead of --data / --val")
    p.add_argument("--workers", type=int, default=d.workers,
                   help="processes that make the augmented batches (0: the training process itself)")
    p.add_argument("--select-source", default=d.select_source,
                   help="validation source whose NME picks best.pt (default: held-out 300-W ground truth)")
    p.add_argument("--augment", nargs="*", default=[], metavar="NAME=VALUE",
                   help="change augmentation settings of tracker.training.augment.AugmentConfig, e.g. p_occluder=0.15")
    a = p.parse_args(argv)
    augment = {}
    for item in a.augment:
        name, eq, value = item.partition("=")
        if not eq:
            p.error(f"--augment {item}: expected NAME=VALUE")
        try:
            augment[name] = float(value)
        except ValueError as exc:
            p.error(f"--augment {item}: {exc}")
    try:
        augment_config(augment)
    except ValueError as exc:
        p.error(f"--augment: {exc}")
    a.augment = augment
    for f in a.data + a.val:
        if not f.is_file():
            p.error(f"no such file: {f}")
    try:
        dev = torch.device(a.device)
    except RuntimeError:
        p.error(f"unknown torch device '{a.device}' (use cpu or cuda)")
    if dev.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available here")
    if a.init is not None and not a.init.is_file():
        p.error(f"no checkpoint at {a.init}")
    if a.pack is not None and (a.data or a.val):
        p.error("--pack replaces --data and --val: give one or the other")
    if a.pack is not None and not (a.pack / "labels.npz").is_file():
        p.error(f"no packed data at {a.pack} (python -m tracker.training.pack writes it)")
    if a.workers < 0:
        p.error("--workers must be at least 0")
    if a.crop_zoom is not None:
        try:
            template(a.crop_zoom)
        except ValueError as exc:
            p.error(f"--crop-zoom: {exc}")
    return TrainOptions(**{k: v for k, v in vars(a).items()})


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    opts = parse_args(argv)
    try:
        summary = train(opts)
    except (ValueError, FileNotFoundError) as e:
        log.error("%s", e)
        return 2
    log.info("best: %s", summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
