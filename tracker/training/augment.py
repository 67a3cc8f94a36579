"""Augmentations for the landmark network's training crops (numpy / OpenCV, uint8 RGB).

Geometric ones act before the crop is cut (mirror of the source image with the landmark permutation, jitter
of the ROI points: per-point noise plus a random similarity), so the crop is still made by the run-time
functions. Photometric ones act on the S x S crop: synthetic occluders (patches of other training images),
colour, grey, blur, low resolution, noise and JPEG.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities (p_*) and spreads; distances relative to the face size (eye-mouth scale)."""

    p_mirror: float = 0.5
    point_noise: float = 0.03
    rotation_deg: float = 10.0
    max_rotation_deg: float = 35.0
    log_scale: float = 0.10
    translation: float = 0.06
    p_occluder: float = 0.35
    p_grey: float = 0.08
    p_blur: float = 0.25
    p_lowres: float = 0.15
    p_noise: float = 0.3
    p_jpeg: float = 0.35


def mirror_sample(image: np.ndarray, landmarks: np.ndarray, weights: np.ndarray, roi_points: np.ndarray,
                  mirror: np.ndarray):
    """Flip an image left-right with its labels.

    image (H, W, C); landmarks (L, 2) px; weights (L,); roi_points (3, 2) [right eye, left eye, mouth];
    mirror (L,): landmark i of the flipped face is landmark ``mirror[i]`` of the original.
    Returns (image, landmarks, weights, roi_points) of the flipped face; the eyes swap roles.
    """
    w = image.shape[1]
    flipped = image[:, ::-1]

    def flip(p: np.ndarray) -> np.ndarray:
        q = np.array(p, dtype=np.float64, copy=True)
        q[..., 0] = (w - 1) - q[..., 0]
        return q

    lm = flip(landmarks)[mirror]
    pts = flip(roi_points)[[1, 0, 2]]
    return flipped, lm, np.asarray(weights)[mirror], pts


def jitter_roi_points(points: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """(3, 2) ROI points -> jittered (3, 2): per-point noise, then rotation, scale and shift about their centroid."""
    points = np.asarray(points, dtype=np.float64)
    mid = 0.5 * (points[0] + points[1])
    size = max(float(np.linalg.norm(points[1] - points[0])), float(np.linalg.norm(points[2] - mid)), 1e-3)
    p = points + rng.normal(0.0, cfg.point_noise * size, (3, 2))
    angle = np.radians(np.clip(rng.normal(0.0, cfg.rotation_deg), -cfg.max_rotation_deg, cfg.max_rotation_deg))
    scale = float(np.exp(np.clip(rng.normal(0.0, cfg.log_scale), -2.5 * cfg.log_scale, 2.5 * cfg.log_scale)))
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]]) * scale
    centre = p.mean(0)
    shift = rng.normal(0.0, cfg.translation * size, 2)
    out = (p - centre) @ rot.T + centre + shift
    if np.linalg.norm(out[1] - out[0]) < 1e-2:  # never hand degenerate points to roi_from_points
        return points
    return out


def _occlude(crop: np.ndarray, rng: np.random.Generator, source: np.ndarray) -> np.ndarray:
    """Paste a random patch of ``source`` (or a flat colour) as a rectangle or ellipse onto the crop."""
    s = crop.shape[0]
    ph, pw = (rng.uniform(0.15, 0.55, 2) * s).astype(int) + 2
    if rng.random() < 0.8 and source.shape[0] > 4 and source.shape[1] > 4:
        sh, sw = source.shape[:2]
        y0, x0 = int(rng.integers(0, max(1, sh - 4))), int(rng.integers(0, max(1, sw - 4)))
        patch = source[y0:y0 + max(4, sh // 3), x0:x0 + max(4, sw // 3)]
        patch = cv2.resize(np.ascontiguousarray(patch), (pw, ph), interpolation=cv2.INTER_LINEAR)
    else:
        patch = np.empty((ph, pw, 3), np.uint8)
        patch[:] = rng.integers(0, 256, 3)
    y, x = int(rng.integers(-ph // 3, s - ph // 2)), int(rng.integers(-pw // 3, s - pw // 2))
    mask = np.zeros((ph, pw), np.float32)
    if rng.random() < 0.5:
        cv2.ellipse(mask, (pw // 2, ph // 2), (pw // 2, ph // 2), 0, 0, 360, 1.0, -1)
    else:
        mask[:] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), 1.0)[..., None]
    ys, xs = slice(max(y, 0), min(y + ph, s)), slice(max(x, 0), min(x + pw, s))
    py, px = slice(ys.start - y, ys.stop - y), slice(xs.start - x, xs.stop - x)
    if ys.stop <= ys.start or xs.stop <= xs.start:
        return crop
    region = crop[ys, xs].astype(np.float32)
    m = mask[py, px]
    crop = crop.copy()
    crop[ys, xs] = (region * (1 - m) + patch[py, px].astype(np.float32) * m).astype(np.uint8)
    return crop


def augment_crop(crop: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig,
                 occluder_source: Callable[[np.random.Generator], np.ndarray] | None = None) -> np.ndarray:
    """(S, S, 3) uint8 RGB crop -> augmented crop, same shape and dtype."""
    s = crop.shape[0]
    if occluder_source is not None and rng.random() < cfg.p_occluder:
        crop = _occlude(crop, rng, occluder_source(rng))
    x = crop.astype(np.float32) / 255.0
    # colour: contrast about the mean, brightness, per-channel gains, gamma
    mean = x.mean()
    x = (x - mean) * np.exp(rng.normal(0, 0.2)) + mean + rng.normal(0, 0.08)
    x = x * np.exp(rng.normal(0, 0.08, 3)).astype(np.float32)
    x = np.clip(x, 0, 1) ** np.float32(np.exp(rng.normal(0, 0.2)))
    if rng.random() < cfg.p_grey:
        x[:] = x.mean(axis=2, keepdims=True)
    if rng.random() < cfg.p_blur:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.4, 1.6))
    if rng.random() < cfg.p_lowres:
        k = rng.uniform(0.3, 0.8)
        small = cv2.resize(x, (max(8, int(s * k)), max(8, int(s * k))), interpolation=cv2.INTER_AREA)
        x = cv2.resize(small, (s, s), interpolation=cv2.INTER_LINEAR)
    if rng.random() < cfg.p_noise:
        x = x + rng.normal(0, rng.uniform(0.008, 0.04), x.shape).astype(np.float32)
    out = np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < cfg.p_jpeg:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 91))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out
