"""The landmark network at run time: an onnxruntime session on the CPU (one thread by default)."""

from __future__ import annotations

import json
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracker.landmarks.decode import decode_output, image_to_network_input
from tracker.paths import ASSETS_DIR
from tracker.types import Landmarks, Roi

log = logging.getLogger(__name__)

INPUT_NAME = "image"
OUTPUT_NAME = "landmarks"
#: Values of ``precision`` (and of the ``TRACKER_PRECISION`` environment variable).
PRECISIONS = ("auto", "int8", "float")


def make_session(path: Path, threads: int):
    """An onnxruntime CPU session for one of the project's networks: ``threads`` intra-op threads, sequential,
    every graph optimisation. Raises onnxruntime's own exceptions for unreadable files."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class LandmarkModelError(ValueError):
    """The ONNX model is missing, unreadable, or does not follow the contract in :mod:`tracker.landmarks`."""


def default_model_path() -> Path:
    return ASSETS_DIR / "landmark_model.onnx"


def cpu_has_int8_dot() -> bool:
    """Whether the CPU multiplies 8-bit numbers into 32-bit sums without saturating: x86 with VNNI (AVX512-VNNI or
    AVX-VNNI), or 64-bit ARM. Older x86 CPUs (AVX2 without VNNI) sum pairs of 8-bit products in 16 bits, which can
    saturate and move the landmarks of an 8-bit model; they run the float model."""
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        return True
    if machine not in ("x86_64", "amd64", "i686", "x86"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_vnni", "avx_vnni"})
    except OSError:
        pass
    try:
        from numpy.core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy without the table: be safe
        return False
    return bool(features.get("AVX512VNNI") or features.get("AVXVNNI"))


def resolve_precision(precision: str | None, has_int8: bool) -> str:
    """"int8" or "float" for a requested ``precision`` (None: ``TRACKER_PRECISION``, else "auto"). "auto" runs the
    8-bit copy when the model has one and :func:`cpu_has_int8_dot`; "int8" insists on it (LandmarkModelError without
    one); "float" runs the float model. ValueError for any other value."""
    requested = (precision if precision is not None else os.environ.get("TRACKER_PRECISION") or "auto").lower()
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if requested == "int8" and not has_int8:
        raise LandmarkModelError("precision int8 asked for, but the landmark model's JSON names no 8-bit copy "
                                 "(make one with python -m tracker.training.quantize)")
    if requested == "auto":
        return "int8" if has_int8 and cpu_has_int8_dot() else "float"
    return requested


@dataclass(frozen=True)
class ModelInfo:
    """What the predictor knows about its model: crop side S, landmark count L, crop zoom, and the JSON
    metadata."""

    path: Path
    input_size: int
    n_landmarks: int
    landmark_set: str
    version: str
    batch_dynamic: bool
    crop_zoom: float = 1.0


def load_metadata(model_path: Path) -> dict:
    """The JSON beside ``model_path`` (``landmark_model.json`` for ``landmark_model.onnx``), {} when absent."""
    meta_path = Path(model_path).with_suffix(".json")
    if not meta_path.is_file():
        return {}
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LandmarkModelError(f"cannot read landmark model metadata {meta_path}: {exc}") from exc
    if not isinstance(meta, dict):
        raise LandmarkModelError(f"landmark model metadata {meta_path} must be a JSON object")
    return meta


def _dim(value) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def _crop_zoom(path: Path, meta: dict) -> float:
    """The metadata's ``crop_zoom`` (1 when absent), checked against :data:`tracker.roi.ZOOM_RANGE`."""
    from tracker.roi import template

    value = meta.get("crop_zoom", 1.0)
    try:
        zoom = float(value)
        template(zoom)
    except (TypeError, ValueError) as exc:
        raise LandmarkModelError(f"landmark model metadata of {path}: bad crop_zoom {value!r} ({exc})") from exc
    return zoom


class LandmarkPredictor:
    """Dense landmarks for a face ROI. ``predict(image_bgr, roi) -> Landmarks`` in image pixels.

    model_path: the ONNX file (default ``assets/landmark_model.onnx``); threads: onnxruntime intra-op threads.
    Raises :class:`LandmarkModelError` when the file is missing or its inputs/outputs break the contract.

    When the model's JSON names refiners (``"lip_refiner": "mouth_model.onnx"`` and ``"refiners": [...]``, files
    beside the model), :meth:`predict` re-reads their regions (the lips, the eyes) with them
    (:mod:`tracker.landmarks.mouth`); ``refine=False`` leaves them out.

    When it names an 8-bit copy (``"int8_model"``, :mod:`tracker.training.quantize`), ``precision`` picks the file
    that runs (:func:`resolve_precision`; "auto" by default); :attr:`precision` says which one did.
    """

    def __init__(self, model_path: str | Path | None = None, threads: int = 1, refine: bool = True,
                 precision: str | None = None):
        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.is_file():
            raise LandmarkModelError(
                f"landmark model not found: {path} (train one with the training package, or pass its path)")
        if int(threads) < 1:
            raise LandmarkModelError(f"threads must be at least 1, got {threads}")
        meta = load_metadata(path)
        int8_name = meta.get("int8_model")
        try:
            self.precision = resolve_precision(precision, bool(int8_name))
        except ValueError as exc:
            raise LandmarkModelError(str(exc)) from exc
        run_path = path.parent / str(int8_name) if self.precision == "int8" else path
        if not run_path.is_file():
            raise LandmarkModelError(f"landmark model {path} names an 8-bit copy {run_path} that is not there "
                                     "(run python -m tracker.training.quantize, or use precision float)")
        try:
            self._session = make_session(run_path, threads)
        except Exception as exc:  # onnxruntime raises its own exception types for corrupt files
            raise LandmarkModelError(f"cannot load landmark model {run_path}: {exc}") from exc
        self.info = self._check_contract(path, meta)
        self.threads = int(threads)
        self.refiners = self._load_refiners(path, meta, threads) if refine else []
        #: the refiner of the lips, None without one
        self.lip_refiner = next((r for r in self.refiners if r.region == "lips"), None)
        log.debug("landmark model %s (%s): S=%d L=%d", path, self.precision, self.info.input_size,
                  self.info.n_landmarks)

    def _load_refiners(self, path: Path, meta: dict, threads: int) -> list:
        from tracker.landmarks.mouth import LipRefiner, LipRefinerError

        names = ([meta["lip_refiner"]] if meta.get("lip_refiner") else []) + list(meta.get("refiners") or [])
        refiners, seen = [], np.zeros(self.info.n_landmarks, bool)
        for name in names:
            try:
                refiner = LipRefiner(path.parent / str(name), threads=threads, precision=self.precision)
                refiner.check_compatible(self.info)
            except LipRefinerError as exc:
                raise LandmarkModelError(f"landmark model {path} names a refiner that cannot be used: {exc}") from exc
            if seen[refiner.lips].any():
                raise LandmarkModelError(f"landmark model {path}: refiner {name} re-reads landmarks that another "
                                         "refiner it names reads too")
            seen[refiner.lips] = True
            refiners.append(refiner)
        return refiners

    def _check_contract(self, path: Path, meta: dict) -> ModelInfo:
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name: o for o in self._session.get_outputs()}
        if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
            raise LandmarkModelError(
                f"landmark model {path} must have input '{INPUT_NAME}' and output '{OUTPUT_NAME}', "
                f"has inputs {sorted(inputs)} and outputs {sorted(outputs)}")
        ishape, oshape = list(inputs[INPUT_NAME].shape), list(outputs[OUTPUT_NAME].shape)
        if len(ishape) != 4 or (_dim(ishape[1]) not in (None, 3)):
            raise LandmarkModelError(f"landmark model input '{INPUT_NAME}' must be (N, 3, S, S), got {ishape}")
        if len(oshape) != 3 or (_dim(oshape[2]) not in (None, 3)):
            raise LandmarkModelError(f"landmark model output '{OUTPUT_NAME}' must be (N, L, 3), got {oshape}")
        size = _dim(ishape[2]) or _dim(ishape[3])
        if _dim(ishape[2]) and _dim(ishape[3]) and ishape[2] != ishape[3]:
            raise LandmarkModelError(f"landmark model input must be square, got {ishape}")
        meta_size = meta.get("input_size")
        if size is None:
            size = meta_size
        elif meta_size is not None and int(meta_size) != size:
            raise LandmarkModelError(f"landmark model input is {size} px but its metadata says {meta_size}")
        if not isinstance(size, int) or size < 8:
            raise LandmarkModelError(f"landmark model input size unknown or too small: {size}")
        n_landmarks = _dim(oshape[1])
        if n_landmarks is None:
            n_landmarks = int(self._session.run([OUTPUT_NAME], {INPUT_NAME: np.zeros((1, 3, size, size), np.float32)})
                              [0].shape[1])
        if "input_size" in meta and "n_landmarks" in meta and int(meta["n_landmarks"]) != n_landmarks:
            raise LandmarkModelError(
                f"landmark model outputs {n_landmarks} landmarks but its metadata says {meta['n_landmarks']}")
        return ModelInfo(path=path, input_size=int(size), n_landmarks=int(n_landmarks),
                         landmark_set=str(meta.get("landmark_set", "")), version=str(meta.get("version", "")),
                         batch_dynamic=_dim(ishape[0]) is None, crop_zoom=_crop_zoom(path, meta))

    @property
    def input_size(self) -> int:
        """Crop side S in pixels."""
        return self.info.input_size

    @property
    def n_landmarks(self) -> int:
        return self.info.n_landmarks

    @property
    def crop_zoom(self) -> float:
        """The zoom of the crops the model was trained on: pass it to :func:`tracker.roi.roi_from_points`."""
        return self.info.crop_zoom

    def crop(self, image_bgr: np.ndarray, roi: Roi) -> np.ndarray:
        """(H, W[, 3]) image -> (S, S, 3) uint8 BGR crop of the ROI (gray images are expanded to 3 channels)."""
        from tracker.roi import warp_to_crop

        if roi.size != self.input_size:
            raise ValueError(f"ROI is {roi.size} px but the landmark model takes {self.input_size} px crops")
        return warp_to_crop(_as_bgr(image_bgr), roi)

    def predict_crops(self, crops_bgr: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 BGR crops -> (N, L, 3) raw network output (normalised x, y, log sigma)."""
        crops_bgr = np.asarray(crops_bgr)
        s = self.input_size
        if crops_bgr.ndim != 4 or crops_bgr.shape[1:] != (s, s, 3):
            raise ValueError(f"expected (N, {s}, {s}, 3) BGR crops, got {crops_bgr.shape}")
        x = image_to_network_input(crops_bgr)
        if self.info.batch_dynamic or x.shape[0] == 1:
            return self._session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        return np.concatenate([self._session.run([OUTPUT_NAME], {INPUT_NAME: x[i:i + 1]})[0]
                               for i in range(x.shape[0])])

    def predict(self, image_bgr: np.ndarray, roi: Roi) -> Landmarks:
        """Landmarks (mu_px (L, 2), sigma_px (L,)) in the image's pixels for the face in ``roi``."""
        image = _as_bgr(image_bgr)
        out = self.predict_crops(self.crop(image, roi)[None])[0]
        landmarks = decode_output(out, roi)
        for refiner in self.refiners:  # disjoint regions: each reads the landmark network's own positions
            landmarks = refiner.refine(image, roi, landmarks)
        return landmarks


def _as_bgr(image_bgr: np.ndarray) -> np.ndarray:
    """(H, W[, 1|3|4]) uint8 image -> (H, W, 3) BGR (gray expanded, alpha dropped); ValueError otherwise."""
    import cv2

    image = np.asarray(image_bgr)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) BGR image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    return image
