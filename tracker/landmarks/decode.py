"""Network output -> image pixels. Pure numpy; see the ONNX contract in :mod:`tracker.landmarks`."""

from __future__ import annotations

import numpy as np

from tracker.roi import crop_to_normalized, normalized_to_crop
from tracker.types import Landmarks, Roi

#: log sigma is clipped to this range before exponentiating (a broken model must not give inf/0 sigmas).
LOG_SIGMA_RANGE = (-12.0, 6.0)


def sigma_to_px(log_sigma: np.ndarray, size: int, scale_px: float) -> np.ndarray:
    """(...,) log sigma in normalised crop units -> (...,) sigma in image px.

    Normalised units span 2 over ``size`` crop px, and one crop px is ``scale_px`` image px (geometric mean of
    the ROI's two axis scales), so ``sigma_px = exp(log_sigma) * size / 2 * scale_px``.
    """
    log_sigma = np.clip(np.asarray(log_sigma, dtype=np.float64), *LOG_SIGMA_RANGE)
    return np.exp(log_sigma) * (0.5 * size) * float(scale_px)


def sigma_from_px(sigma_px: np.ndarray, size: int, scale_px: float) -> np.ndarray:
    """Inverse of :func:`sigma_to_px` without the log: (...,) sigma in image px -> normalised crop units."""
    return np.asarray(sigma_px, dtype=np.float64) / (0.5 * size * float(scale_px))


def decode_output(output: np.ndarray, roi: Roi) -> Landmarks:
    """One crop's network output (L, 3) [x_norm, y_norm, log_sigma] -> Landmarks in image px.

    Raises ValueError for a wrong shape or non-finite positions.
    """
    output = np.asarray(output, dtype=np.float64)
    if output.ndim != 2 or output.shape[1] != 3:
        raise ValueError(f"expected network output of shape (L, 3), got {output.shape}")
    if not np.all(np.isfinite(output[:, :2])):
        raise ValueError("network output contains non-finite landmark positions")
    mu_crop = normalized_to_crop(output[:, :2], roi.size)
    mu_px = roi.crop_to_image(mu_crop)
    sigma_px = sigma_to_px(np.nan_to_num(output[:, 2], nan=LOG_SIGMA_RANGE[1]), roi.size, roi.scale_px)
    return Landmarks(mu_px=mu_px, sigma_px=sigma_px)


def encode_landmarks(mu_px: np.ndarray, sigma_px: np.ndarray, roi: Roi) -> np.ndarray:
    """Inverse of :func:`decode_output`: image-px landmarks (L, 2) and sigmas (L,) -> (L, 3) network units."""
    xy = crop_to_normalized(roi.image_to_crop(mu_px), roi.size)
    log_sigma = np.log(sigma_from_px(sigma_px, roi.size, roi.scale_px))
    return np.concatenate([xy, log_sigma[:, None]], axis=1)


def image_to_network_input(crops_bgr: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 BGR crops -> (N, 3, S, S) float32 RGB in [0, 1] (the ONNX input)."""
    crops_bgr = np.asarray(crops_bgr)
    if crops_bgr.ndim != 4 or crops_bgr.shape[3] != 3:
        raise ValueError(f"expected (N, S, S, 3) BGR crops, got {crops_bgr.shape}")
    n, h, w, _ = crops_bgr.shape
    x = np.empty((n, 3, h, w), np.float32)  # one pass into a contiguous array (astype of the view took 9x longer)
    rgb_nchw = crops_bgr[..., ::-1].transpose(0, 3, 1, 2)
    if crops_bgr.dtype == np.uint8:
        np.multiply(rgb_nchw, np.float32(1.0 / 255.0), out=x, casting="unsafe")
    else:
        x[...] = rgb_nchw
    return x
