"""8-bit copies of the landmark network and its refiners, for CPUs with 8-bit dot-product instructions.

Post-training static quantization with onnxruntime (QDQ format): convolution weights signed 8-bit per output
channel, activations unsigned 8-bit with ranges measured on calibration crops. The crops are cut as at run time
(BlazeFace -> ROI -> network -> ROI from its landmarks -> crop) from training images, never from the held-out
300-W images the benchmark scores. Kept in float (:func:`float_nodes`): the stem and the first inverted-residual
block (the 3-channel input and the first feature maps quantize worst) and the residual additions. The linear heads
get 8-bit weights with their inputs quantized per frame instead (:func:`heads_to_dynamic`): a static range for the
pooled 1280 features moved landmarks by 1.2 px where the rest moves them by 0.25 px.

The refiners (:mod:`tracker.landmarks.mouth`: lips, eyes) that the model's JSON names get the same treatment, each
calibrated on its windows of the same faces.

Command: ``python -m tracker.training.quantize [--model assets/landmark_model.onnx] [--images DIR ...] [--n 400]``
writes ``NAME_int8.onnx`` beside each network and names it in the network's JSON (``"int8_model"``), with the check
it passed: landmark shifts against the float network on crops set aside from calibration, in crop pixels. Re-run
it after every export (the exports rewrite the JSONs). The run time picks the copy by CPU
(:func:`tracker.landmarks.predictor.resolve_precision`).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from tracker.paths import ASSETS_DIR, data_dir

log = logging.getLogger(__name__)

DEFAULT_MODEL = ASSETS_DIR / "landmark_model.onnx"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
#: Node-name parts (the exporter's names, torch module paths) of the linear heads: kept out of the static
#: quantization, then given 8-bit weights by :func:`heads_to_dynamic`.
HEAD_PARTS = ("/head/", "/spatial_head/", "/fine_head/")
#: Node-name parts of what the static quantization leaves alone; see the module docstring.
FLOAT_NODE_PARTS = ("/features/features.0/", "/features/features.1/", "/Add", *HEAD_PARTS, "/Reshape")
#: Largest mean landmark shift (crop pixels) against the float model that the check lets through.
MAX_MEAN_SHIFT_PX = 0.6


def float_nodes(model_path: Path) -> list[str]:
    """Names of the nodes of the exported landmark network that stay float (:data:`FLOAT_NODE_PARTS`); ValueError
    for a graph that is not this project's export (no stem)."""
    import onnx

    names = [n.name for n in onnx.load(str(model_path)).graph.node]
    keep = [n for n in names if any(p in n for p in FLOAT_NODE_PARTS)]
    if not any(FLOAT_NODE_PARTS[0] in n for n in keep):
        raise ValueError(f"{model_path} is not an export of tracker.training.network (no node named like "
                         f"'{FLOAT_NODE_PARTS[0]}...')")
    return keep


def heads_to_dynamic(path: Path, out: Path) -> int:
    """Give the linear heads (``Gemm`` nodes of :data:`HEAD_PARTS`) of the model at ``path`` 8-bit weights, per
    output, with their inputs quantized per frame (onnxruntime's dynamic quantization: ``MatMulInteger``): a static
    range moved the landmarks too far, float weights cost 8 MB of memory traffic per frame. Writes ``out``; returns
    how many heads."""
    import onnx
    from onnx import helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(path))
    weights = {i.name: i for i in model.graph.initializer}
    nodes, heads = [], []
    for n in model.graph.node:
        if n.op_type != "Gemm" or not any(p in n.name for p in HEAD_PARTS):
            nodes.append(n)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if attrs.get("transB", 0) != 1 or attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 \
                or attrs.get("beta", 1.0) != 1.0 or n.input[1] not in weights:
            raise ValueError(f"{path}: head {n.name} is not a plain linear layer")
        w_t = numpy_helper.from_array(np.ascontiguousarray(numpy_helper.to_array(weights[n.input[1]]).T),
                                      n.input[1] + "_t")
        model.graph.initializer.append(w_t)
        matmul = helper.make_node("MatMul", [n.input[0], w_t.name], [n.output[0] + "_matmul"], name=n.name + "_MatMul")
        nodes += [matmul, helper.make_node("Add", [matmul.output[0], n.input[2]], [n.output[0]], name=n.name + "_Add")]
        heads.append(matmul.name)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {i for n in model.graph.node for i in n.input}
    kept = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    with tempfile.TemporaryDirectory() as tmp:
        matmuls = Path(tmp) / "matmul.onnx"
        onnx.save(model, str(matmuls))
        quantize_dynamic(str(matmuls), str(Path(tmp) / "q.onnx"), per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"], nodes_to_quantize=heads)
        shutil.move(str(Path(tmp) / "q.onnx"), str(out))
    return len(heads)


def calibration_images(folders: list[Path], n: int) -> list[Path]:
    """``n`` images spread evenly over the sorted images of ``folders``."""
    files = sorted(p for d in folders for p in Path(d).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images in {', '.join(map(str, folders))}")
    step = max(1, len(files) // max(1, n))
    return files[::step][:n]


def run_time_crops(images: list[Path], model_path: Path) -> tuple[np.ndarray, dict]:
    """((N, S, S, 3) face crops, {refiner file: (N, s, s, 3) crops}) of the faces in ``images``, cut as the run time
    cuts them with the float landmark model and the float refiners its JSON names (each refiner's window around the
    landmark network's own landmarks of its region)."""
    import cv2

    from tracker.detect import FaceDetector
    from tracker.landmarks.bench import load_roi_weights
    from tracker.landmarks.predictor import LandmarkPredictor
    from tracker.landmarks.refine import locate_face
    from tracker.roi import warp_to_crop

    predictor = LandmarkPredictor(model_path, threads=1, refine=True, precision="float")
    refiners, predictor.refiners = predictor.refiners, []  # the windows read the unrefined landmarks
    weights, detector = load_roi_weights(predictor), FaceDetector()
    faces, regions = [], {r.path: [] for r in refiners}
    try:
        for f in images:
            image = cv2.imread(str(f))
            located = locate_face(image, detector, predictor, weights) if image is not None else None
            if located is None:
                continue
            faces.append(predictor.crop(image, located.roi))
            for r in refiners:
                regions[r.path].append(warp_to_crop(image, r.mouth_roi(located.roi, located.landmarks.mu_px)))
    finally:
        detector.close()
    if not faces:
        raise ValueError("no face found in the calibration images")
    return np.stack(faces), {path: np.stack(crops) for path, crops in regions.items()}


def _outputs(session, x: np.ndarray) -> np.ndarray:
    return np.concatenate([session.run(None, {"image": x[i:i + 1]})[0] for i in range(len(x))])


def quantize(model_path: Path, out: Path, crops: np.ndarray, check_share: float = 0.25) -> dict:
    """Quantize ``model_path`` to ``out`` with the first (1 - check_share) of ``crops`` for calibration and check
    it on the rest. Returns the check (shifts in crop pixels, ms per crop for both files)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from tracker.landmarks.bench import session_ms
    from tracker.landmarks.decode import image_to_network_input
    from tracker.landmarks.predictor import make_session

    x = image_to_network_input(crops)
    n_check = max(1, int(round(len(x) * check_share))) if len(x) > 1 else 0
    calib, held = x[:len(x) - n_check], x[len(x) - n_check:] if n_check else x

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= len(calib):
                return None
            self.i += 1
            return {"image": calib[self.i - 1:self.i]}

    keep = float_nodes(model_path)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(model_path), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(Path(tmp) / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=keep)
        heads = heads_to_dynamic(Path(tmp) / "q.onnx", Path(tmp) / "qh.onnx")
        shutil.move(str(Path(tmp) / "qh.onnx"), str(out))  # the temporary folder may be on another file system
    f_sess, q_sess = make_session(model_path, 1), make_session(out, 1)
    ref, got = _outputs(f_sess, held), _outputs(q_sess, held)
    half = x.shape[-1] / 2.0  # normalised units -> pixels of the crop
    shift = np.linalg.norm(got[..., :2] - ref[..., :2], axis=-1) * half
    return {"calibration_crops": int(len(calib)), "check_crops": int(len(held)), "float_nodes": len(keep),
            "dynamic_heads": heads,
            "shift_px_mean": round(float(shift.mean()), 4), "shift_px_p99": round(float(np.percentile(shift, 99)), 4),
            "log_sigma_diff_mean": round(float(np.abs(got[..., 2] - ref[..., 2]).mean()), 5),
            "ms_per_crop_float": round(session_ms(f_sess, held[:1], 200, 10), 3),
            "ms_per_crop_int8": round(session_ms(q_sess, held[:1], 200, 10), 3)}


def name_in_sidecar(model_path: Path, out: Path, record: dict) -> Path:
    """Write ``"int8_model": out's name`` and ``"int8": record`` into the model's JSON (its indentation kept)."""
    meta_path = Path(model_path).with_suffix(".json")
    text = meta_path.read_text()
    meta = json.loads(text)
    meta["int8_model"] = Path(out).name
    meta["int8"] = record
    lines = text.splitlines()
    indent = len(lines[1]) - len(lines[1].lstrip()) if len(lines) > 1 and lines[1].strip() else 2  # keep the file's
    meta_path.write_text(json.dumps(meta, indent=indent) + "\n")
    return meta_path


def int8_path(model_path: Path) -> Path:
    """``NAME_int8.onnx`` beside ``NAME.onnx``."""
    return Path(model_path).with_name(Path(model_path).stem + "_int8.onnx")


def quantize_models(model_path: Path, folders: list[Path], n: int) -> dict:
    """Quantize the landmark model and the refiners its JSON names (each to :func:`int8_path`), check each and
    name the copies in their JSONs. Returns {file name: check}; ValueError when a copy moves landmarks by more than
    :data:`MAX_MEAN_SHIFT_PX` on average (nothing is named then)."""
    faces, regions = run_time_crops(calibration_images(folders, n), model_path)
    jobs = [(Path(model_path), faces), *regions.items()]
    where = ", ".join("/".join(Path(f).parts[-2:]) for f in folders)
    records = {}
    for path, crops in jobs:
        record = quantize(path, int8_path(path), crops)
        if record["shift_px_mean"] > MAX_MEAN_SHIFT_PX:
            int8_path(path).unlink(missing_ok=True)
            raise ValueError(f"the 8-bit copy of {path.name} moves landmarks by {record['shift_px_mean']} px on "
                             f"average (limit {MAX_MEAN_SHIFT_PX}); not written")
        record["calibrated_on"] = f"{len(crops)} run-time crops of {n} images spread over {where}"
        records[path.name] = record
    for path, _ in jobs:
        name_in_sidecar(path, int8_path(path), records[path.name])
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="the float landmark model (ONNX)")
    parser.add_argument("--images", type=Path, nargs="+", default=None, metavar="DIR",
                        help="folders of training face images to calibrate on (default: DATA/ytf-frames/images; "
                             "never the benchmark's held-out 300-W images)")
    parser.add_argument("--n", type=int, default=400, help="calibration images (a quarter is kept for the check)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not args.model.is_file() or not args.model.with_suffix(".json").is_file():
        parser.error(f"{args.model} and its JSON sidecar are both needed")
    if args.n < 8:
        parser.error("--n must be at least 8")
    folders = args.images
    if folders is None:
        data = data_dir()
        if data is None:
            parser.error("no data folder: set TRACKER_DATA or pass --images")
        folders = [data / "ytf-frames" / "images"]
    try:
        records = quantize_models(args.model, folders, args.n)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(records, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
