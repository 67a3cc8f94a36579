"""Stage 1 of the pseudo-labels: MediaPipe Face Mesh (0.10.21, static images, refined: 478 points) per image.

Results are cached per source in chunks (``<out>/mediapipe/<source>/chunk_NNNN.npz``), so an interrupted run
resumes where it stopped. Points are in image pixels; z is MediaPipe's depth times the image width (so it has
roughly the scale of x), relative to the head centre.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

CHUNK = 400


class FaceMeshRunner:
    """A static-image MediaPipe Face Mesh; ``__call__(bgr) -> (478, 3) float32 or None``."""

    def __init__(self, min_confidence: float = 0.5):
        import mediapipe as mp

        self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                     refine_landmarks=True,
                                                     min_detection_confidence=min_confidence)

    def __call__(self, bgr: np.ndarray) -> np.ndarray | None:
        h, w = bgr.shape[:2]
        res = self._mesh.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if not res.multi_face_landmarks:
            return None
        lm = res.multi_face_landmarks[0].landmark
        pts = np.array([(p.x * w, p.y * h, p.z * w) for p in lm], np.float32)
        # Measured on 300-W (1-based labels, see sources.GT300W_OFFSET_PX): x * width needs no half-pixel shift
        # to agree with the labels in OpenCV's pixel-centre convention (median offset below 0.3 px).
        return pts

    def close(self) -> None:
        self._mesh.close()


def run_mediapipe(paths_list: list[str], cache: Path, limit: int | None = None) -> dict[str, np.ndarray]:
    """MediaPipe points for each image path (resumable). Returns {path: (478, 3)} for faces found."""
    cache.mkdir(parents=True, exist_ok=True)
    paths_list = list(paths_list)[:limit] if limit else list(paths_list)
    results: dict[str, np.ndarray] = {}
    runner = None
    try:
        for c0 in range(0, len(paths_list), CHUNK):
            chunk = paths_list[c0:c0 + CHUNK]
            file = cache / f"chunk_{c0 // CHUNK:04d}_{len(chunk)}.npz"
            if file.is_file():
                z = np.load(file)
                if list(z["images"]) == chunk:
                    for p, ok, pts in zip(z["images"], z["found"], z["points"]):
                        if ok:
                            results[str(p)] = pts
                    continue
            if runner is None:
                runner = FaceMeshRunner()
            t0 = time.perf_counter()
            found = np.zeros(len(chunk), bool)
            pts_all = np.zeros((len(chunk), 478, 3), np.float32)
            for i, p in enumerate(chunk):
                img = cv2.imread(p, cv2.IMREAD_COLOR)
                if img is None:
                    log.warning("cannot read %s", p)
                    continue
                pts = runner(img)
                if pts is not None:
                    found[i], pts_all[i] = True, pts
                    results[p] = pts
            tmp = file.with_suffix(".tmp.npz")
            np.savez(tmp, images=np.array(chunk), found=found, points=pts_all)
            tmp.replace(file)
            log.info("%s chunk %d: %d/%d faces, %.1f ms/image", cache.name, c0 // CHUNK, found.sum(), len(chunk),
                     1000 * (time.perf_counter() - t0) / len(chunk))
    finally:
        if runner is not None:
            runner.close()
    return results
