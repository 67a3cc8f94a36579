"""Face detection with MediaPipe BlazeFace: the only run-time module that imports mediapipe.

The detector starts tracking (first frame, or after tracking is lost): its eye and mouth keypoints give the
first ROI (:func:`tracker.roi.roi_from_points`), which the landmark network then refines.

Keypoint order (BlazeFace, ``mediapipe.solutions.face_detection.FaceKeyPoint``):
0 right eye, 1 left eye, 2 nose tip, 3 mouth centre, 4 right ear tragion, 5 left ear tragion, where "right"
is the *subject's* right (the eye on the image's left in a frontal photo). Checked against the 300-W
ground truth (iBUG 36-41 is the subject's right eye) in ``tests/test_detect.py``.

BlazeFace's "mouth centre" lies on average 0.03 eye distances below the iBUG mouth-corner midpoint used for
training crops (600 images of the 300-W training split; spread 0.1 eye distances); :meth:`Detection.roi_points`
moves it up by :data:`MOUTH_OFFSET_EYE_DIST`. The refine pass (ROI from the network's own landmarks) removes
the rest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

#: BlazeFace keypoint indices.
KP_RIGHT_EYE, KP_LEFT_EYE, KP_NOSE, KP_MOUTH, KP_RIGHT_EAR, KP_LEFT_EAR = range(6)
#: Offset of the iBUG mouth-corner midpoint from BlazeFace's mouth keypoint, in eye distances along the face's
#: "down" axis (negative: up). Mean over the 300-W training split (not the held-out images).
MOUTH_OFFSET_EYE_DIST = -0.03
#: Images are shrunk so their longest side is at most this before detection (BlazeFace works at 128 / 192 px;
#: shrinking first keeps 8K frames fast and is lossless for it).
MAX_DETECT_SIDE = 1280
#: Images smaller than this (either side) cannot hold a detectable face: they are answered with no detection.
MIN_DETECT_SIDE = 16


@dataclass(frozen=True, eq=False)
class Detection:
    """One face. ``box_px``: (4,) x0, y0, x1, y1; ``keypoints_px``: (6, 2) in BlazeFace order; ``score`` in [0, 1]."""

    box_px: np.ndarray
    keypoints_px: np.ndarray
    score: float

    def roi_points(self) -> np.ndarray:
        """(3, 2) [subject's right eye, subject's left eye, mouth centre] as :func:`tracker.roi.roi_from_points`
        expects; the mouth is moved to the iBUG mouth-corner midpoint convention (:data:`MOUTH_OFFSET_EYE_DIST`)."""
        kp = np.asarray(self.keypoints_px, dtype=np.float64)
        right, left, mouth = kp[KP_RIGHT_EYE], kp[KP_LEFT_EYE], kp[KP_MOUTH]
        eye_vec = left - right
        eye_dist = float(np.hypot(*eye_vec))
        if eye_dist > 1e-6:
            down = np.array([-eye_vec[1], eye_vec[0]]) / eye_dist
            mouth = mouth + MOUTH_OFFSET_EYE_DIST * eye_dist * down
        return np.stack([right, left, mouth])

    @property
    def width_px(self) -> float:
        return float(self.box_px[2] - self.box_px[0])


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W) gray, (H, W, 3) BGR or (H, W, 4) BGRA uint8/float -> contiguous (H, W, 3) uint8 RGB."""
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating):
            scale = 255.0 if image.size and float(np.nanmax(image)) <= 1.0 else 1.0
            image = np.clip(np.nan_to_num(image) * scale, 0, 255).astype(np.uint8)
        else:
            image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image[:, :, ::-1])
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    raise ValueError(f"expected an (H, W), (H, W, 3) BGR or (H, W, 4) BGRA image, got shape {image.shape}")


class FaceDetector:
    """MediaPipe BlazeFace. ``detect(image_bgr)`` returns the faces, best score first ([] when none).

    The short-range model (``model_selection=0``, faces within about 2 m) runs first; when it finds nothing,
    the full-range model (``model_selection=1``) is tried, which finds small faces in large frames: a 300-W
    face with 35 px between the eyes in a 1080p frame is found only by the fallback (``tests/test_detect.py``);
    at 21 px neither finds it.
    """

    def __init__(self, min_score: float = 0.5, full_range_fallback: bool = True):
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        from mediapipe.python.solutions import face_detection

        self.min_score = float(min_score)
        self._short = face_detection.FaceDetection(min_detection_confidence=self.min_score, model_selection=0)
        self._full = (face_detection.FaceDetection(min_detection_confidence=self.min_score, model_selection=1)
                      if full_range_fallback else None)

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """(H, W, 3) BGR (or gray / BGRA) image -> detections in its pixels, best first."""
        import cv2

        rgb = _to_rgb(image_bgr)
        h, w = rgb.shape[:2]
        if min(h, w) < MIN_DETECT_SIDE:
            return []
        scale = 1.0
        if max(h, w) > MAX_DETECT_SIDE:
            scale = MAX_DETECT_SIDE / max(h, w)
            rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        sh, sw = rgb.shape[:2]
        # pixel-centre convention: small-image px p_s <-> full-image px (p_s + 0.5) * (W / w_s) - 0.5
        fx, fy = w / sw, h / sh
        found = self._run(self._short, rgb)
        if not found and self._full is not None:
            found = self._run(self._full, rgb)
        out = []
        for score, box_rel, kp_rel in found:
            box = np.array([box_rel[0] * sw * fx, box_rel[1] * sh * fy, box_rel[2] * sw * fx, box_rel[3] * sh * fy])
            kp = np.stack([kp_rel[:, 0] * sw * fx, kp_rel[:, 1] * sh * fy], axis=1)
            # relative coordinates are in [0, 1] over the image's extent: pixel centre of x_rel is x_rel*W - 0.5
            out.append(Detection(box_px=box - 0.5, keypoints_px=kp - 0.5, score=float(score)))
        out.sort(key=lambda d: -d.score)
        return out

    @staticmethod
    def _run(graph, rgb: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray]]:
        result = graph.process(rgb)
        found = []
        for det in result.detections or []:
            loc = det.location_data
            bb = loc.relative_bounding_box
            box = np.array([bb.xmin, bb.ymin, bb.xmin + bb.width, bb.ymin + bb.height], dtype=np.float64)
            kp = np.array([[k.x, k.y] for k in loc.relative_keypoints], dtype=np.float64)
            if kp.shape != (6, 2) or not np.all(np.isfinite(kp)):
                continue
            found.append((float(det.score[0]) if det.score else 0.0, box, kp))
        return found

    def close(self) -> None:
        for graph in (self._short, self._full):
            if graph is not None:
                graph.close()
        self._short = self._full = None

    def __enter__(self) -> "FaceDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
