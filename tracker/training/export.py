"""Export a trained :class:`LandmarkNet` to ONNX (the run-time contract) and check it against torch.

ONNX contract: input ``image`` float32 (N, 3, S, S) RGB in [0, 1]; output ``landmarks`` float32 (N, L, 3):
x, y in normalised crop coordinates and log sigma. Dynamic batch axis, opset 18.

Command: ``python -m tracker.training.export --checkpoint runs/NAME/best.pt [--out assets/landmark_model.onnx]``
writes the ONNX file and its JSON sidecar (``.json`` beside it).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
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
    import onnxruntime as ort

    s = model.config.input_size
    x = np.random.default_rng(seed).random((batch, 3, s, s), dtype=np.float32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    got = sess.run(["landmarks"], {"image": x})[0]
    with torch.no_grad():
        want = model.eval()(torch.from_numpy(x)).numpy()
    if got.shape != want.shape:
        raise RuntimeError(f"ONNX output shape {got.shape} differs from torch's {want.shape}")
    one = x[:1]
    for _ in range(5):
        sess.run(None, {"image": one})
    times = []
    for _ in range(max(1, n_timing)):
        t0 = time.perf_counter()
        sess.run(None, {"image": one})
        times.append(time.perf_counter() - t0)
    return ExportCheck(float(np.abs(got - want).max()), 1000.0 * float(np.median(times)))


def load_checkpoint_model(checkpoint: Path) -> tuple[LandmarkNet, dict]:
    """(model in eval mode, checkpoint dict) from a checkpoint written by ``tracker.training.train``."""
    ckpt = torch.load(str(checkpoint), map_location="cpu", weights_only=False)
    if "config" not in ckpt or "model" not in ckpt:
        raise ValueError(f"{checkpoint} is not a landmark-network checkpoint (no 'config'/'model')")
    model = LandmarkNet(NetworkConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


def write_sidecar(path: Path, config: NetworkConfig, landmark_set: str, trained: dict) -> Path:
    """The JSON beside the ONNX file that the run time reads."""
    meta = {"input_size": config.input_size, "landmark_set": landmark_set, "n_landmarks": config.n_landmarks,
            "width_mult": config.width_mult, "spatial_channels": config.spatial_channels,
            "crop_zoom": config.crop_zoom, "version": FORMAT_VERSION,
            "trained": trained}
    out = Path(path).with_suffix(".json")
    out.write_text(json.dumps(meta, indent=2) + "\n")
    return out


def export_checkpoint(checkpoint: Path, out: Path = DEFAULT_ONNX, tolerance: float = 1e-3) -> dict:
    """Checkpoint -> ONNX + JSON sidecar, checked against torch. Returns the sidecar's content."""
    model, ckpt = load_checkpoint_model(checkpoint)
    export_onnx(model, out)
    check = check_onnx(model, out)
    if check.max_abs_diff > tolerance:
        raise RuntimeError(f"ONNX differs from torch by {check.max_abs_diff:.2e} > {tolerance:.0e}")
    trained = dict(ckpt.get("summary", {}))
    trained.update({"onnx_max_abs_diff": check.max_abs_diff, "onnx_ms_per_crop_1thread": round(check.ms_per_crop, 3)})
    write_sidecar(out, model.config, ckpt.get("landmark_set", "landmarks320"), trained)
    log.info("exported %s (max |onnx - torch| = %.2e, %.2f ms per crop)", out, check.max_abs_diff, check.ms_per_crop)
    return json.loads(Path(out).with_suffix(".json").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="runs/NAME/best.pt or last.pt")
    parser.add_argument("--out", type=Path, default=DEFAULT_ONNX)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not args.checkpoint.is_file():
        parser.error(f"no checkpoint at {args.checkpoint}")
    torch.set_num_threads(1)
    meta = export_checkpoint(args.checkpoint, args.out)
    print(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
