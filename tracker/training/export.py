"""Export a trained :class:`LandmarkNet` to ONNX (the run-time contract) and check it against torch.

ONNX contract: input ``image`` float32 (N, 3, S, S) RGB in [0, 1]; output ``landmarks`` float32 (N, L, 3):
x, y in normalised crop coordinates and log sigma. Dynamic batch axis, opset 18.

Command: ``python -m tracker.training.export --checkpoint runs/NAME/best.pt [--out assets/landmark_model.onnx]
[--calibrate-sigma FILE.npz ... [--human-labels SOURCE ...] | --sigma-scale S]`` writes the ONNX file and its JSON
sidecar (``.json`` beside it).

``--lip-refiner mouth_model.onnx`` names the lip refiner (:mod:`tracker.training.mouth`) in the sidecar, and
``--refiners eye_L_model.onnx eye_R_model.onnx`` the eye refiners.

``--calibrate-sigma`` scales every sigma by one factor (temperature scaling; positions unchanged) so that on the
held-out real faces of the given labelled files (``tracker/splits.py``; the trainer's validation crops, renders left
out) the errors' median is that of a calibrated circular Gaussian, sqrt(2 ln 2) sigma (39.3 % within 1 sigma).
With ``--human-labels SOURCE``, the landmarks that the rows of those sources label (e.g. ``300w-train``: the
300-W inner points' ground truth) get their own factor, measured on those rows alone, and the others one measured
on the other rows (pseudo-labels, whose own errors make the sigmas they call for larger).
A network trained for many epochs grows more confident on faces like its training faces than on new ones, and
the tracker's lost test and the fitter's weights read those sigmas.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tracker.paths import ASSETS_DIR
from tracker.training.network import LandmarkNet, NetworkConfig

log = logging.getLogger(__name__)

DEFAULT_ONNX = ASSETS_DIR / "landmark_model.onnx"
#: Bumped whenever the network's input/output contract changes.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ExportCheck:
    """Largest absolute difference between ONNX and torch outputs, and ONNX ms per crop on one thread."""

    max_abs_diff: float
    ms_per_crop: float


def export_onnx(model: LandmarkNet, path: Path) -> Path:
    """Write ``model`` (put in eval mode) to ``path`` as ONNX with a dynamic batch axis."""
    model = model.eval()
    s = model.config.input_size
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.rand(2, 3, s, s)
    tmp = path.with_suffix(".tmp.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: stable for this network
        torch.onnx.export(model, (dummy,), str(tmp), input_names=["image"], output_names=["landmarks"],
                          dynamic_axes={"image": {0: "batch"}, "landmarks": {0: "batch"}}, opset_version=18,
                          dynamo=False)
    tmp.replace(path)
    return path


def check_onnx(model: LandmarkNet, path: Path, batch: int = 4, n_timing: int = 50, seed: int = 0) -> ExportCheck:
    """Run the ONNX file and the torch model on the same random batch; time one crop on one thread."""
    from tracker.landmarks.bench import session_ms
    from tracker.landmarks.predictor import make_session

    s = model.config.input_size
    x = np.random.default_rng(seed).random((batch, 3, s, s), dtype=np.float32)
    sess = make_session(Path(path), 1)
    got = sess.run(["landmarks"], {"image": x})[0]
    with torch.no_grad():
        want = model.eval()(torch.from_numpy(x)).numpy()
    if got.shape != want.shape:
        raise RuntimeError(f"ONNX output shape {got.shape} differs from torch's {want.shape}")
    return ExportCheck(float(np.abs(got - want).max()), session_ms(sess, x[:1], n_timing))


def load_checkpoint_model(checkpoint: Path) -> tuple[LandmarkNet, dict]:
    """(model in eval mode, checkpoint dict) from a checkpoint written by ``tracker.training.train``."""
    ckpt = torch.load(str(checkpoint), map_location="cpu", weights_only=False)
    if "config" not in ckpt or "model" not in ckpt:
        raise ValueError(f"{checkpoint} is not a landmark-network checkpoint (no 'config'/'model')")
    model = LandmarkNet(NetworkConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


def write_sidecar(path: Path, config: NetworkConfig, landmark_set: str, trained: dict,
                  lip_refiner: str | None = None, refiners: list[str] | tuple = ()) -> Path:
    """The JSON beside the ONNX file that the run time reads. ``lip_refiner``: the file name (beside the model) of
    the lip refiner the run time applies after it (:mod:`tracker.landmarks.mouth`); None: none. ``refiners``: the
    file names of more refiners (the eyes')."""
    meta = {"input_size": config.input_size, "landmark_set": landmark_set, "n_landmarks": config.n_landmarks,
            "width_mult": config.width_mult, "spatial_channels": config.spatial_channels,
            "fine_channels": config.fine_channels,
            "crop_zoom": config.crop_zoom, "version": FORMAT_VERSION,
            "trained": trained}
    if lip_refiner:
        meta["lip_refiner"] = str(lip_refiner)
    if refiners:
        meta["refiners"] = [str(r) for r in refiners]
    out = Path(path).with_suffix(".json")
    out.write_text(json.dumps(meta, indent=2) + "\n")
    return out


#: median of |error| / sigma for a circular 2D Gaussian with per-axis sigma
CALIBRATED_MEDIAN_RATIO = float(np.sqrt(2.0 * np.log(2.0)))


def sigma_scale_for(model: LandmarkNet, files: list[Path], batch: int = 64,
                    human_sources: tuple[str, ...] = ()) -> tuple[np.ndarray, dict]:
    """((L,) factors that calibrate the sigmas, {group: (factor, landmarks, labelled points measured)}) on the
    held-out real faces of ``files`` (see the module docstring)."""
    from tracker.paths import cache_dir
    from tracker.training.dataset import ImageCache
    from tracker.training.train import Validator, load_sets, split_train_val

    _, held = split_train_val(load_sets(files), None)
    held = held.subset(np.flatnonzero(held.source != "synthetic"))
    if not len(held):
        raise ValueError("no held-out real faces in the calibration files")
    cfg = model.config
    cache = ImageCache.build(held, cfg.input_size, cache_dir() / "landmark_training" / "images")
    v = Validator(held, cache, cfg.input_size, max_n=len(held), zoom=cfg.crop_zoom)
    model.eval()
    with torch.no_grad():
        pred = np.concatenate([model(torch.from_numpy(v.images[s:s + batch])).numpy()
                               for s in range(0, len(v.images), batch)])
    ratio = np.linalg.norm(pred[..., :2] - v.targets, axis=-1) / np.exp(pred[..., 2])
    labelled = v.weights > 0
    human_rows = np.isin(v.sources, list(human_sources))
    human_lms = labelled[human_rows].any(axis=0) if human_rows.any() else np.zeros(cfg.n_landmarks, bool)
    groups = {"human-labelled landmarks": (human_rows[:, None] & labelled & human_lms, human_lms),
              "other landmarks" if human_lms.any() else "all landmarks":
                  (~human_rows[:, None] & labelled & ~human_lms, ~human_lms)}
    scale, info = np.ones(cfg.n_landmarks), {}
    for name, (cells, lms) in groups.items():
        if not lms.any():
            continue
        if not cells.any():
            raise ValueError(f"no held-out labels for the {name}")
        f = float(np.median(ratio[cells]) / CALIBRATED_MEDIAN_RATIO)
        scale[lms] = f
        info[name] = (round(f, 4), int(lms.sum()), int(cells.sum()))
    return scale, info


def export_checkpoint(checkpoint: Path, out: Path = DEFAULT_ONNX, tolerance: float = 1e-3,
                      sigma_scale: float | None = None, calibrate_on: list[Path] | None = None,
                      human_sources: tuple[str, ...] = (), lip_refiner: str | None = None,
                      refiners: list[str] | tuple = ()) -> dict:
    """Checkpoint -> ONNX + JSON sidecar, checked against torch. Returns the sidecar's content. ``sigma_scale``:
    multiply the sigmas by it; ``calibrate_on`` (and ``human_sources``): labelled files to measure the factors on
    (module docstring); ``lip_refiner``, ``refiners``: the refiner files the sidecar names (:func:`write_sidecar`)."""
    model, ckpt = load_checkpoint_model(checkpoint)
    scaled = {}
    if calibrate_on:
        factors, info = sigma_scale_for(model, calibrate_on, human_sources=tuple(human_sources))
        model.scale_sigma(factors)
        scaled["sigma_scale"] = {name: f for name, (f, _, _) in info.items()}
        scaled["sigma_scale_from"] = (
            f"held-out real faces of {', '.join(Path(f).name for f in calibrate_on)}: median error / sigma made "
            "sqrt(2 ln 2); " + "; ".join(f"{name}: {n_lm} landmarks, {n} labelled points"
                                         + (f" of {', '.join(human_sources)}" if name.startswith("human") else "")
                                         for name, (_, n_lm, n) in info.items()))
        log.info("sigma scale %s", scaled["sigma_scale"])
    elif sigma_scale is not None and sigma_scale != 1.0:
        model.scale_sigma(sigma_scale)
        scaled["sigma_scale"] = round(float(sigma_scale), 4)
    export_onnx(model, out)
    check = check_onnx(model, out)
    if check.max_abs_diff > tolerance:
        raise RuntimeError(f"ONNX differs from torch by {check.max_abs_diff:.2e} > {tolerance:.0e}")
    trained = dict(ckpt.get("summary", {}))
    trained.update(scaled)
    trained.update({"onnx_max_abs_diff": check.max_abs_diff, "onnx_ms_per_crop_1thread": round(check.ms_per_crop, 3)})
    write_sidecar(out, model.config, ckpt.get("landmark_set", "landmarks320"), trained, lip_refiner, refiners)
    log.info("exported %s (max |onnx - torch| = %.2e, %.2f ms per crop)", out, check.max_abs_diff, check.ms_per_crop)
    return json.loads(Path(out).with_suffix(".json").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="runs/NAME/best.pt or last.pt")
    parser.add_argument("--out", type=Path, default=DEFAULT_ONNX)
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--sigma-scale", type=float, default=None, metavar="S", help="multiply every sigma by S")
    how.add_argument("--calibrate-sigma", type=Path, nargs="+", default=None, metavar="NPZ",
                     help="scale the sigmas to be calibrated on the held-out real faces of these labelled files")
    parser.add_argument("--human-labels", nargs="+", default=[], metavar="SOURCE",
                        help="with --calibrate-sigma: sources whose rows hold human labels (e.g. 300w-train); their "
                             "landmarks get a factor of their own")
    parser.add_argument("--lip-refiner", default=None, metavar="FILE.onnx",
                        help="name the lip refiner beside the model that the run time applies after it (e.g. "
                             "mouth_model.onnx, trained by python -m tracker.training.mouth); default: none")
    parser.add_argument("--refiners", nargs="+", default=[], metavar="FILE.onnx",
                        help="more refiners beside the model, applied after the lip refiner (e.g. eye_L_model.onnx "
                             "eye_R_model.onnx: python -m tracker.training.mouth --region eye_L ...)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not args.checkpoint.is_file():
        parser.error(f"no checkpoint at {args.checkpoint}")
    if args.sigma_scale is not None and not (np.isfinite(args.sigma_scale) and args.sigma_scale > 0):
        parser.error("--sigma-scale must be a positive number")
    if args.human_labels and not args.calibrate_sigma:
        parser.error("--human-labels goes with --calibrate-sigma")
    for f in args.calibrate_sigma or []:
        if not f.is_file():
            parser.error(f"no such file: {f}")
    torch.set_num_threads(1)
    try:
        meta = export_checkpoint(args.checkpoint, args.out, sigma_scale=args.sigma_scale,
                                 calibrate_on=args.calibrate_sigma, human_sources=tuple(args.human_labels),
                                 lip_refiner=args.lip_refiner, refiners=args.refiners)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
