"""Region of interest: the eyes and mouth mapped to a fixed triangle of the crop (paper, Fig. 16).

The real-time ROI is a rotation plus non-uniform scaling: the eye centres land on two fixed points and the
mouth on a fixed horizontal line (its horizontal position is free, so profile faces are not sheared).
Turned towards profile, where the eyes close up in the image, the eye distance is bounded below by the mouth
distance, so the crop keeps the head's size.
Training crops and run-time crops both come from :func:`roi_from_points`, so they agree exactly.

Crop coordinates: pixels of an ``S`` x ``S`` crop (OpenCV pixel centres). The network works in normalised
coordinates ``n = (u + 0.5) / S * 2 - 1`` in [-1, 1] over the crop (:func:`crop_to_normalized`).
"""

from __future__ import annotations

import cv2
import numpy as np

from tracker.types import Roi

#: Template, as fractions of the crop side: eye-centre midpoint, eye distance, eye-line-to-mouth distance.
#: Chosen so that the whole head (top of the skull to below the chin, ear to ear) fits a frontal crop.
TEMPLATE_EYE_MID = (0.5, 0.44)
TEMPLATE_EYE_DISTANCE = 0.22
TEMPLATE_MOUTH_DISTANCE = 0.245
#: Bounds on the (mouth distance / eye distance) ratio relative to the template's, for degenerate inputs
#: (profile faces, a mouth on the eye line).
MOUTH_RATIO_RANGE = (0.6, 1.6)
#: Allowed crop zooms (:func:`roi_from_points`): a zoom z scales the template by z about the crop centre, so the
#: face fills z times more of the crop. A landmark model is trained for one zoom and carries it in its metadata.
ZOOM_RANGE = (0.75, 1.6)

# iBUG 68 indices that define the three ROI points.
_IBUG_RIGHT_EYE = slice(36, 42)  # subject's right eye: the left one in a frontal image
_IBUG_LEFT_EYE = slice(42, 48)
_IBUG_MOUTH_CORNERS = (48, 54)


def roi_points_from_ibug68(pts68: np.ndarray) -> np.ndarray:
    """(68, 2) iBUG points -> (3, 2): subject's right eye centre, left eye centre, mouth centre."""
    pts68 = np.asarray(pts68, dtype=np.float64)
    if pts68.shape != (68, 2):
        raise ValueError(f"expected (68, 2) iBUG points, got {pts68.shape}")
    return np.stack([pts68[_IBUG_RIGHT_EYE].mean(0), pts68[_IBUG_LEFT_EYE].mean(0),
                     pts68[list(_IBUG_MOUTH_CORNERS)].mean(0)])


def template(zoom: float = 1.0) -> tuple[tuple[float, float], float, float]:
    """(eye-centre midpoint, eye distance, eye-line-to-mouth distance) as fractions of the crop side, for a crop
    zoomed by ``zoom`` about its centre (1: :data:`TEMPLATE_EYE_MID`, ...). Raises ValueError outside
    :data:`ZOOM_RANGE`."""
    zoom = float(zoom)
    if not ZOOM_RANGE[0] <= zoom <= ZOOM_RANGE[1]:
        raise ValueError(f"crop zoom must be in [{ZOOM_RANGE[0]}, {ZOOM_RANGE[1]}], got {zoom}")
    mid = (0.5 + (TEMPLATE_EYE_MID[0] - 0.5) * zoom, 0.5 + (TEMPLATE_EYE_MID[1] - 0.5) * zoom)
    return mid, TEMPLATE_EYE_DISTANCE * zoom, TEMPLATE_MOUTH_DISTANCE * zoom


def template_points(size: int, zoom: float = 1.0) -> np.ndarray:
    """(3, 2) crop pixels where :func:`roi_from_points` puts [right eye, left eye, mouth] of a frontal face."""
    (mx, my), eye, mouth = template(zoom)
    cx, cy = mx * size - 0.5, my * size - 0.5
    half = 0.5 * eye * size
    return np.array([[cx - half, cy], [cx + half, cy], [cx, cy + mouth * size]])


def roi_from_points(points: np.ndarray, size: int, zoom: float = 1.0) -> Roi:
    """ROI from (3, 2) image points [right eye, left eye, mouth] (subject's sides) for an S x S crop.

    ``zoom``: the crop zoom of the landmark model (:func:`template`; 1 keeps the whole head in a frontal crop).
    Raises ValueError for non-finite points, eyes that coincide with the mouth on them, or a zoom outside
    :data:`ZOOM_RANGE`.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (3, 2):
        raise ValueError(f"expected (3, 2) ROI points, got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("ROI points must be finite")
    if size < 8:
        raise ValueError(f"crop size must be at least 8 px, got {size}")
    (tx, ty), t_eye, t_mouth = template(zoom)
    right_eye, left_eye, mouth = points
    mid = 0.5 * (right_eye + left_eye)
    eye_vec = left_eye - right_eye
    mouth_vec = mouth - mid
    template_ratio = TEMPLATE_MOUTH_DISTANCE / TEMPLATE_EYE_DISTANCE
    lo, hi = MOUTH_RATIO_RANGE
    # Turned far from the camera, the eyes close up in the image while the mouth stays as far from them as
    # before: the eye distance is bounded below by the mouth's (the same ratio bound, read the other way),
    # and the eye axis turns towards the normal of the eye-to-mouth line as the eyes close up, so a profile
    # crop keeps the head's size instead of zooming in on the eye.
    image_eye_dist = float(np.hypot(*eye_vec))
    mouth_len = float(np.hypot(*mouth_vec))
    eye_dist = max(image_eye_dist, mouth_len / (hi * template_ratio))
    if eye_dist < 1e-3:
        raise ValueError("ROI points are degenerate: the eyes coincide and the mouth is on them")
    short = eye_dist - image_eye_dist
    if short > 0.0:
        m_hat = mouth_vec / mouth_len  # mouth_len > 0: it exceeds the (non-negative) image eye distance
        eye_vec = eye_vec + short * np.array([m_hat[1], -m_hat[0]])
        if np.hypot(*eye_vec) < 1e-6 * eye_dist:  # the eyes ran the wrong way round: take the mouth's normal
            eye_vec = np.array([m_hat[1], -m_hat[0]])
    ex = eye_vec / np.hypot(*eye_vec)
    ey = np.array([-ex[1], ex[0]])  # image "down" for an upright face
    mouth_dist = float(np.clip(mouth_vec @ ey, lo * template_ratio * eye_dist, hi * template_ratio * eye_dist))
    sx = size * t_eye / eye_dist
    sy = size * t_mouth / mouth_dist
    a = np.stack([ex * sx, ey * sy])  # (2, 2)
    centre = np.array([tx * size - 0.5, ty * size - 0.5])
    matrix = np.hstack([a, (centre - a @ mid)[:, None]])
    return Roi(matrix=matrix, size=int(size))


def warp_to_crop(image: np.ndarray, roi: Roi) -> np.ndarray:
    """Cut the ROI out of an image: (H, W[, C]) -> (S, S[, C]), same dtype, black outside the image.

    Only the part of the image the crop covers is read (a view, plus a margin for the filters), so the cost
    does not grow with the frame size. Large downscales go through an image pyramid of that part first, so an
    8K frame does not alias.
    """
    if image.ndim not in (2, 3) or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    h, w = image.shape[:2]
    levels = 0  # pyrDown halvings so that one crop pixel covers at most 2 image pixels
    while roi.scale_px / 2.0 ** levels > 2.0 and min(h, w) >= 4 * 2 ** levels:
        levels += 1
    # The covered region: the crop's corners in the image, grown by the bilinear and pyramid filter support
    # (2 px per level at that level's scale), its origin on the pyramid's grid so the pixels stay in phase.
    s = roi.size
    corners = roi.crop_to_image(np.array([[-0.5, -0.5], [s - 0.5, -0.5], [-0.5, s - 0.5], [s - 0.5, s - 0.5]]))
    margin = 2 + 4 * 2 ** levels
    grid = 2 ** levels
    x0 = max(0, int(np.floor(corners[:, 0].min())) - margin) // grid * grid
    y0 = max(0, int(np.floor(corners[:, 1].min())) - margin) // grid * grid
    x1 = min(w, int(np.ceil(corners[:, 0].max())) + margin + 1)
    y1 = min(h, int(np.ceil(corners[:, 1].max())) + margin + 1)
    if x1 <= x0 or y1 <= y0:  # the crop lies wholly outside the image
        return np.zeros((s, s) + image.shape[2:], dtype=image.dtype)
    src = image[y0:y1, x0:x1]
    # crop = A p + b with p = p_region + (x0, y0)
    matrix = roi.matrix.copy()
    matrix[:, 2] += matrix[:, :2] @ np.array([x0, y0], dtype=np.float64)
    for _ in range(levels):
        if min(src.shape[:2]) < 2:
            break
        # One pyrDown halves the image; with OpenCV's pixel centres p = 2 q + 0.5, so crop = 2A q + (A 0.5 + b).
        src = cv2.pyrDown(src)
        matrix = np.hstack([matrix[:, :2] * 2.0, (matrix[:, 2] + matrix[:, :2] @ np.array([0.5, 0.5]))[:, None]])
    return cv2.warpAffine(src, matrix, (s, s), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def crop_to_normalized(uv: np.ndarray, size: int) -> np.ndarray:
    """(..., 2) crop px -> (..., 2) normalised [-1, 1] coordinates."""
    return (np.asarray(uv, dtype=np.float64) + 0.5) / size * 2.0 - 1.0


def normalized_to_crop(n: np.ndarray, size: int) -> np.ndarray:
    """(..., 2) normalised [-1, 1] coordinates -> (..., 2) crop px."""
    return (np.asarray(n, dtype=np.float64) + 1.0) * 0.5 * size - 0.5
