"""Run-time dense landmarks: an onnxruntime session, preprocessing, decoding to image pixels.

ONNX contract (between the trainer, ``tracker/training/``, and this package):

- File: ``assets/landmark_model.onnx``, with ``assets/landmark_model.json`` beside it:
  ``{"input_size": S, "landmark_set": "landmarks320", "crop_zoom": Z, "version": ...}`` (more keys allowed;
  no ``crop_zoom``: 1).
- Input ``"image"``: float32 ``(N, 3, S, S)``, RGB, values in [0, 1]; the network normalises internally.
  The crop is cut exactly as for training: :func:`tracker.roi.roi_from_points` with the model's zoom Z (eyes
  and mouth mapped to a fixed triangle, scaled by Z about the crop centre) and :func:`tracker.roi.warp_to_crop`.
- Output ``"landmarks"``: float32 ``(N, L, 3)``: ``x, y`` in normalised crop coordinates [-1, 1]
  (:func:`tracker.roi.crop_to_normalized`: ``n = (u + 0.5) / S * 2 - 1``) and ``log sigma``, sigma in the
  same normalised units (a circular Gaussian, paper Eq. 1).
- ``S`` and ``L`` are read from the ONNX input/output shapes, and from the JSON when the ONNX leaves them
  symbolic; the two must agree.

- Optional ``"lip_refiner": "mouth_model.onnx"`` in that JSON: a second network beside it, with the same input and
  output contract for its lip landmarks on a mouth crop (:mod:`.mouth_roi`), that :meth:`LandmarkPredictor.predict`
  applies after the first (:mod:`.mouth`: inverse-variance fusion of the two predictions of each lip landmark);
  optional ``"refiners": [...]``: more networks of that kind for other regions (the eyes).
- Optional ``"int8_model"``: an 8-bit copy of the network, run on CPUs with 8-bit dot products
  (:func:`.predictor.resolve_precision`); each refiner's JSON may name its own.

Decoding (:mod:`tracker.landmarks.decode`): ``mu_px = roi.crop_to_image(normalized_to_crop(xy, S))`` and
``sigma_px = exp(log_sigma) * S / 2 * roi.scale_px``.

Modules: :mod:`.decode` (pure functions), :mod:`.predictor` (:class:`LandmarkPredictor`), :mod:`.lost` (tracking-lost
decision and its measured thresholds), :mod:`.refine` (detector -> ROI -> network -> ROI from the network's own
eye and mouth landmarks), :mod:`.model_roi` (those ROI weights, fitted on the head model), :mod:`.mouth_roi` and
:mod:`.mouth` (the region refiners: lips, eyes), :mod:`.bench` (``python main.py bench landmarks``), :mod:`.label_translation`
(ridge map to the iBUG 68 points, NME), :mod:`.mediapipe_baseline` (Face Mesh under the same protocol). Nothing
heavy is imported here: ``onnxruntime`` is imported when a predictor is made.
"""

from tracker.landmarks.decode import decode_output, sigma_to_px
from tracker.landmarks.lost import LostDecision, LostThresholds, tracking_lost
from tracker.landmarks.predictor import LandmarkModelError, LandmarkPredictor, default_model_path

__all__ = ["LandmarkPredictor", "LandmarkModelError", "default_model_path", "decode_output", "sigma_to_px",
           "LostDecision", "LostThresholds", "tracking_lost"]
