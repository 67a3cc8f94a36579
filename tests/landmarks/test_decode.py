"""Decoding network output to image pixels: known values and round trips."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.landmarks.decode import (decode_output, encode_landmarks, image_to_network_input, sigma_from_px,
                                      sigma_to_px)
from tracker.roi import roi_from_points
from tracker.types import Roi


def test_identity_roi_known_values():
    # identity map: crop px == image px, S = 100
    roi = Roi(matrix=np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), size=100)
    out = np.array([[-1.0, -1.0, np.log(0.1)], [0.0, 0.0, 0.0], [1.0, 0.5, np.log(0.02)]])
    lm = decode_output(out, roi)
    # n = (u + 0.5) / S * 2 - 1  ->  u = (n + 1) * S / 2 - 0.5
    np.testing.assert_allclose(lm.mu_px, [[-0.5, -0.5], [49.5, 49.5], [99.5, 74.5]])
    # sigma_px = exp(log sigma) * S / 2 * scale
    np.testing.assert_allclose(lm.sigma_px, [5.0, 50.0, 1.0])


def test_scaled_translated_roi_known_values():
    # image = 3 * crop + (10, 20): crop = (image - (10, 20)) / 3
    roi = Roi(matrix=np.array([[1 / 3, 0.0, -10 / 3], [0.0, 1 / 3, -20 / 3]]), size=64)
    lm = decode_output(np.array([[0.0, 0.0, np.log(0.5)]]), roi)
    np.testing.assert_allclose(lm.mu_px, [[3 * 31.5 + 10, 3 * 31.5 + 20]])
    np.testing.assert_allclose(lm.sigma_px, [0.5 * 32 * 3])
    assert roi.scale_px == pytest.approx(3.0)


def test_round_trip_through_a_rotated_anisotropic_roi():
    rng = np.random.default_rng(3)
    roi = roi_from_points(np.array([[210.0, 300.0], [330.0, 280.0], [260.0, 440.0]]), 160)
    out = np.concatenate([rng.uniform(-1, 1, (320, 2)), rng.uniform(-6, 0, (320, 1))], axis=1)
    lm = decode_output(out, roi)
    np.testing.assert_allclose(encode_landmarks(lm.mu_px, lm.sigma_px, roi), out, atol=1e-9)
    np.testing.assert_allclose(sigma_from_px(sigma_to_px(out[:, 2], 160, 2.5), 160, 2.5), np.exp(out[:, 2]))


def test_extreme_log_sigma_is_clipped_and_bad_output_rejected():
    roi = Roi(matrix=np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), size=10)
    lm = decode_output(np.array([[0.0, 0.0, 1e6], [0.0, 0.0, -1e6], [0.0, 0.0, np.nan]]), roi)
    assert np.all(np.isfinite(lm.sigma_px)) and np.all(lm.sigma_px > 0)
    with pytest.raises(ValueError, match=r"shape \(L, 3\)"):
        decode_output(np.zeros((5, 2)), roi)
    with pytest.raises(ValueError, match="non-finite"):
        decode_output(np.array([[np.inf, 0.0, 0.0]]), roi)


def test_network_input_is_rgb_in_unit_range():
    crop = np.zeros((1, 4, 4, 3), np.uint8)
    crop[..., 0] = 255  # blue in BGR
    crop[..., 2] = 51  # red
    x = image_to_network_input(crop)
    assert x.dtype == np.float32 and x.shape == (1, 3, 4, 4) and x.flags.c_contiguous
    np.testing.assert_allclose(x[0, :, 0, 0], [0.2, 0.0, 1.0], atol=1e-7)
    with pytest.raises(ValueError, match="BGR crops"):
        image_to_network_input(np.zeros((4, 4, 3), np.uint8))
