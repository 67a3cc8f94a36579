"""The mouth crop: a window of the face crop around the lips, for the lip refiner (:mod:`tracker.landmarks.mouth`).

The face crop (:func:`tracker.roi.roi_from_points`) holds the whole head; its lips span about a quarter of it.
The mouth crop is the part of the face crop centred on the lips' centroid (the face network's prediction at run
time), ``MOUTH_HALF`` = (half width, half height) in the face crop's normalised units ([-1, 1] over the crop),
resampled from the image at ``MOUTH_SIZE`` x ``MOUTH_SIZE`` px (the refiner's sidecar may say otherwise): at 64 px,
0.9 (across) and 1.1 (up and down) times the face crop's pixel density, at 80 px 1.1 and 1.4. It keeps the face
crop's orientation (its roll and its two scales), so it is one more affine map of the image
(:class:`tracker.types.Roi`) and :func:`tracker.roi.warp_to_crop` cuts it.
"""

from __future__ import annotations

import numpy as np

from tracker.roi import normalized_to_crop
from tracker.types import Roi

#: Side of the mouth crop in pixels.
MOUTH_SIZE = 64
#: Half width and half height of the mouth crop in the face crop's normalised units: the lips reach 0.41 across and
#: 0.26 up or down from their centroid at most on held-out 300-W (median 0.26 and 0.11), plus room for the
#: centroid's own error.
MOUTH_HALF = (0.45, 0.36)
#: The same for one eye with its brow, iris and pupil (the eye refiners): those 37 landmarks reach 0.32 across and
#: 0.26 up or down from their centroid at the 99th percentile of the 300-W training photos (median 0.21 and 0.20),
#: plus room for the centroid's own error. At 64 px: 1.1 (across) and 1.3 (up and down) times the face crop's pixel
#: density.
EYE_HALF = (0.36, 0.30)


def mouth_roi(face_roi: Roi, centre_n, size: int = MOUTH_SIZE, half=MOUTH_HALF) -> Roi:
    """The mouth crop's map: image px -> (size x size) mouth-crop px, centred on ``centre_n`` (2,), a point in
    ``face_roi``'s normalised crop coordinates. Raises ValueError for a non-finite centre or a bad size."""
    c_n = np.asarray(centre_n, dtype=np.float64)
    if c_n.shape != (2,) or not np.all(np.isfinite(c_n)):
        raise ValueError(f"the mouth centre must be 2 finite numbers, got {centre_n!r}")
    if size < 8:
        raise ValueError(f"mouth crop size must be at least 8 px, got {size}")
    hx, hy = (float(h) for h in half)
    if not (hx > 0 and hy > 0):
        raise ValueError(f"mouth crop half sizes must be positive, got {half!r}")
    s = face_roi.size
    c = normalized_to_crop(c_n, s)  # face crop px
    # face crop px -> mouth crop px: m = K (u - c) + (size / 2 - 0.5), K = diag(size / (h * s))
    k = np.array([size / (hx * s), size / (hy * s)])
    a = face_roi.matrix[:, :2] * k[:, None]
    b = k * (face_roi.matrix[:, 2] - c) + (0.5 * size - 0.5)
    return Roi(matrix=np.hstack([a, b[:, None]]), size=int(size))
