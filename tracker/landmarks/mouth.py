"""Region refiners at run time: small ONNX networks that re-read the lips (or one eye) from a crop of their own.

The landmark network sees the whole head in one S x S crop, where the lips span about 40 px. The refiner
(``assets/mouth_model.onnx``, trained by :mod:`tracker.training.mouth`) looks at a window of that crop around the
lips (:func:`tracker.landmarks.mouth_roi.mouth_roi`, centred on the landmark network's own lip centroid), sampled
from the image at a higher pixel density, and predicts the same lip landmarks with their sigmas. Each lip landmark
becomes the inverse-variance weighted mean of the two predictions. Its sigma is the smaller of the two, not the
independent-errors combination ``(1/s1^2 + 1/s2^2)^-1/2``: the two networks learned from the same labels and read the
same pixels, so their errors are correlated, and that combination made the held-out 300-W inner points
overconfident (75 % within 2 sigma instead of 84 % without the refiner).

The sidecar JSON (``mouth_model.json``) says which landmarks it predicts (``lips``: indices into the landmark
network's set ``landmark_set``; ``region``: their name, "lips" when absent), the crop (``input_size``, ``half``) and
the face crop it was trained behind (``face_input_size``, ``face_crop_zoom``). A refiner whose landmark set or face
crop differs from the landmark model's is refused (:class:`LipRefinerError`).

The eye refiners (``eye_L_model.onnx``, ``eye_R_model.onnx``; region ``eye_L`` / ``eye_R``: one eye's lid, brow,
iris and pupil) are the same kind of network on a window around that eye, run and fused the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tracker.landmarks.decode import decode_output, image_to_network_input
from tracker.landmarks.mouth_roi import mouth_roi
from tracker.landmarks.predictor import INPUT_NAME, OUTPUT_NAME, make_session
from tracker.paths import ASSETS_DIR
from tracker.roi import crop_to_normalized, warp_to_crop
from tracker.types import Landmarks, Roi


class LipRefinerError(ValueError):
    """A refiner's files are missing, unreadable, or do not fit the landmark model."""


def default_refiner_path() -> Path:
    return ASSETS_DIR / "mouth_model.onnx"


class LipRefiner:
    """``refine(image_bgr, face_roi, landmarks) -> Landmarks`` with one region's landmarks (:attr:`region`: the lips,
    or an eye) re-read from a crop around them."""

    def __init__(self, model_path: str | Path | None = None, threads: int = 1, precision: str = "float"):
        """``precision`` "int8" runs the 8-bit copy that the JSON names (``"int8_model"``) when there is one, as the
        landmark predictor's "int8" does (:mod:`tracker.training.quantize`); "float" the float file."""
        path = Path(model_path) if model_path is not None else default_refiner_path()
        meta_path = path.with_suffix(".json")
        if not path.is_file() or not meta_path.is_file():
            raise LipRefinerError(f"refiner not found: {path} and {meta_path} are both needed")
        try:
            meta = json.loads(meta_path.read_text())
            self.lips = np.asarray(meta["lips"], dtype=np.int64)
            self.size = int(meta["input_size"])
            self.half = tuple(float(h) for h in meta["half"])
            self.landmark_set = str(meta["landmark_set"])
            self.face_input_size = int(meta["face_input_size"])
            self.face_crop_zoom = float(meta["face_crop_zoom"])
            self.region = str(meta.get("region", "lips"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LipRefinerError(f"cannot read refiner metadata {meta_path}: {exc}") from exc
        if self.lips.ndim != 1 or len(self.lips) == 0 or len(self.half) != 2 or self.size < 8:
            raise LipRefinerError(f"refiner metadata {meta_path} is malformed")
        if precision not in ("int8", "float"):
            raise LipRefinerError(f"refiner precision must be int8 or float, got {precision!r}")
        int8_name = meta.get("int8_model")
        self.precision = "int8" if precision == "int8" and int8_name else "float"
        run_path = path.parent / str(int8_name) if self.precision == "int8" else path
        try:
            self._session = make_session(run_path, threads)
        except Exception as exc:  # onnxruntime's own exception types for corrupt or missing files
            raise LipRefinerError(f"cannot load refiner {run_path}: {exc}") from exc
        self.path = path

    def check_compatible(self, info) -> None:
        """Raise :class:`LipRefinerError` unless the landmark model (:class:`~tracker.landmarks.predictor.ModelInfo`)
        has the landmark set and face crop this refiner was trained behind."""
        if (info.landmark_set != self.landmark_set or info.input_size != self.face_input_size
                or abs(info.crop_zoom - self.face_crop_zoom) > 1e-6 or int(self.lips.max()) >= info.n_landmarks):
            raise LipRefinerError(
                f"refiner {self.path} was trained behind a {self.face_input_size} px '{self.landmark_set}' model "
                f"at crop zoom {self.face_crop_zoom}, not this landmark model ({info.input_size} px "
                f"'{info.landmark_set}', zoom {info.crop_zoom})")

    def mouth_roi(self, face_roi: Roi, mu_px: np.ndarray) -> Roi:
        """The mouth crop around the lips of (L, 2) landmarks ``mu_px`` in the face crop ``face_roi``."""
        centre = crop_to_normalized(face_roi.image_to_crop(mu_px[self.lips]), face_roi.size).mean(0)
        return mouth_roi(face_roi, centre, self.size, self.half)

    def predict_crop(self, crop_bgr: np.ndarray) -> np.ndarray:
        """(S, S, 3) uint8 BGR mouth crop -> (n_lips, 3) raw output (normalised x, y, log sigma)."""
        return self._session.run([OUTPUT_NAME], {INPUT_NAME: image_to_network_input(crop_bgr[None])})[0][0]

    def refine(self, image_bgr: np.ndarray, face_roi: Roi, landmarks: Landmarks) -> Landmarks:
        """The landmarks with each lip landmark fused with the refiner's (inverse-variance weights; sigma: the smaller
        of the two)."""
        mu = landmarks.mu_px
        if not np.all(np.isfinite(mu[self.lips])):
            return landmarks
        roi = self.mouth_roi(face_roi, mu)
        try:
            lips = decode_output(self.predict_crop(warp_to_crop(image_bgr, roi)), roi)
        except ValueError:  # non-finite output: keep the landmark network's lips
            return landmarks
        p, s2 = lips.mu_px, lips.sigma_px.astype(np.float64)
        s1 = landmarks.sigma_px[self.lips].astype(np.float64)
        w1, w2 = 1.0 / np.maximum(s1, 1e-9) ** 2, 1.0 / np.maximum(s2, 1e-9) ** 2
        mu_new = mu.copy()
        sigma_new = landmarks.sigma_px.copy()
        mu_new[self.lips] = ((mu[self.lips] * w1[:, None] + p * w2[:, None]) / (w1 + w2)[:, None]).astype(mu.dtype)
        sigma_new[self.lips] = np.minimum(s1, s2).astype(sigma_new.dtype)
        return Landmarks(mu_px=mu_new, sigma_px=sigma_new)
