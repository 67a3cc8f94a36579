"""MediaPipe Face Mesh (mediapipe 0.10.21, 478 landmarks) as the baseline of the landmark benchmark.

Used only by the benchmark (the run-time detector is :mod:`tracker.detect`). Static-image mode with refined
landmarks (irises), one face. Its output gets the same label-translation protocol as our network: a
normalising frame from its own eyes and mouth (:func:`roi_points_from_mesh`), then a ridge map to the 68
iBUG points fitted on the training part of 300-W.
"""

from __future__ import annotations

import numpy as np

#: Face Mesh indices: subject's right eye corners (33 outer, 133 inner) and lids (159 upper, 145 lower),
#: left eye (263, 362, 386, 374), mouth corners (61, 291).
MESH_RIGHT_EYE = (33, 133, 159, 145)
MESH_LEFT_EYE = (263, 362, 386, 374)
MESH_MOUTH_CORNERS = (61, 291)


def roi_points_from_mesh(pts: np.ndarray) -> np.ndarray:
    """(478 or 468, 2) Face Mesh points in px -> (3, 2) [subject's right eye, left eye, mouth centre]."""
    pts = np.asarray(pts, dtype=np.float64)
    return np.stack([pts[list(MESH_RIGHT_EYE)].mean(0), pts[list(MESH_LEFT_EYE)].mean(0),
                     pts[list(MESH_MOUTH_CORNERS)].mean(0)])


class FaceMeshRunner:
    """``landmarks(image_bgr) -> (478, 2) px`` or None when no face is found."""

    def __init__(self, min_detection_confidence: float = 0.5):
        from mediapipe.python.solutions import face_mesh

        self._mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                        min_detection_confidence=min_detection_confidence)

    def landmarks(self, image_bgr: np.ndarray) -> np.ndarray | None:
        import cv2

        img = image_bgr if image_bgr.ndim == 3 else cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
        h, w = img.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(img[:, :, ::-1]))
        if not result.multi_face_landmarks:
            return None
        lm = result.multi_face_landmarks[0].landmark
        # normalised [0, 1] over the image extent -> OpenCV pixel centres
        return np.array([[p.x * w - 0.5, p.y * h - 0.5] for p in lm], dtype=np.float64)

    def close(self) -> None:
        self._mesh.close()
