"""tracker.roi: template placement, the warp and its inverse, the pyramid path for large downscales."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from tracker.roi import (TEMPLATE_EYE_DISTANCE, TEMPLATE_EYE_MID, TEMPLATE_MOUTH_DISTANCE, ZOOM_RANGE,
                         crop_to_normalized, normalized_to_crop, roi_from_points, roi_points_from_ibug68,
                         template_points, warp_to_crop)


def _template(size: int) -> np.ndarray:
    cx, cy = TEMPLATE_EYE_MID[0] * size - 0.5, TEMPLATE_EYE_MID[1] * size - 0.5
    half = 0.5 * TEMPLATE_EYE_DISTANCE * size
    return np.array([[cx - half, cy], [cx + half, cy], [cx, cy + TEMPLATE_MOUTH_DISTANCE * size]])


def test_template_points_are_the_default_template():
    np.testing.assert_allclose(template_points(128), _template(128), atol=1e-12)


@pytest.mark.parametrize("zoom", [0.8, 1.25, 1.5])
def test_zoom_scales_the_crop_about_its_centre(zoom):
    pts = np.array([[210.0, 300.0], [330.0, 280.0], [275.0, 420.0]])
    plain, zoomed = roi_from_points(pts, 128), roi_from_points(pts, 128, zoom)
    # the whole head, not only the three points: normalised crop coordinates grow by the zoom about the centre
    head = np.array([[180.0, 150.0], [400.0, 520.0], [275.0, 360.0], [120.0, 330.0]])
    np.testing.assert_allclose(crop_to_normalized(zoomed.image_to_crop(head), 128),
                               zoom * crop_to_normalized(plain.image_to_crop(head), 128), atol=1e-9)
    assert zoomed.scale_px == pytest.approx(plain.scale_px / zoom, rel=1e-9)
    np.testing.assert_allclose(zoomed.image_to_crop(pts)[:2], template_points(128, zoom)[:2], atol=1e-9)


def test_zoom_outside_its_range_is_a_clear_error():
    pts = np.array([[210.0, 300.0], [330.0, 280.0], [275.0, 420.0]])
    for bad in (ZOOM_RANGE[0] - 0.01, ZOOM_RANGE[1] + 0.01, 0.0, float("nan")):
        with pytest.raises(ValueError, match="crop zoom must be in"):
            roi_from_points(pts, 128, bad)


def test_points_land_on_the_template_triangle():
    pts = np.array([[210.0, 300.0], [330.0, 280.0], [275.0, 420.0]])
    roi = roi_from_points(pts, 160)
    crop = roi.image_to_crop(pts)
    tpl = _template(160)
    np.testing.assert_allclose(crop[:2], tpl[:2], atol=1e-9)
    # the mouth lands on the template's horizontal line; its horizontal position is free
    assert crop[2, 1] == pytest.approx(tpl[2, 1], abs=1e-9)


def test_rotation_scale_translation_are_removed():
    base = np.array([[100.0, 100.0], [160.0, 100.0], [130.0, 170.0]])
    ang = np.deg2rad(35.0)
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    moved = (base - base.mean(0)) @ rot.T * 2.5 + np.array([800.0, 600.0])
    a, b = roi_from_points(base, 128), roi_from_points(moved, 128)
    np.testing.assert_allclose(a.image_to_crop(base), b.image_to_crop(moved), atol=1e-9)
    assert b.scale_px == pytest.approx(2.5 * a.scale_px, rel=1e-9)


def test_round_trip_of_points():
    rng = np.random.default_rng(1)
    roi = roi_from_points(np.array([[50.0, 60.0], [90.0, 52.0], [74.0, 110.0]]), 192)
    pts = rng.uniform(-100, 400, (50, 2))
    np.testing.assert_allclose(roi.crop_to_image(roi.image_to_crop(pts)), pts, atol=1e-9)
    n = rng.uniform(-1, 1, (50, 2))
    np.testing.assert_allclose(crop_to_normalized(normalized_to_crop(n, 192), 192), n, atol=1e-12)
    # the crop's pixel centres span [-1 + 1/S, 1 - 1/S]
    np.testing.assert_allclose(crop_to_normalized(np.array([0.0, 191.0]), 192), [-1 + 1 / 192, 1 - 1 / 192])


def _blob_image(h: int, w: int, centre: np.ndarray, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    d2 = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2
    img = np.zeros((h, w, 3), np.uint8)
    img[d2 <= radius ** 2] = (40, 120, 250)
    return img


def _centroid(crop: np.ndarray) -> np.ndarray:
    g = crop[..., 2].astype(np.float64)
    yy, xx = np.mgrid[0:g.shape[0], 0:g.shape[1]]
    return np.array([(g * xx).sum() / g.sum(), (g * yy).sum() / g.sum()])


def test_warp_agrees_with_image_to_crop_for_a_known_pixel():
    img = np.zeros((240, 320, 3), np.uint8)
    img[131, 177] = (10, 20, 250)  # pixel (x=177, y=131)
    pts = np.array([[140.0, 120.0], [200.0, 118.0], [172.0, 175.0]])
    roi = roi_from_points(pts, 64)  # about 1 crop px per 0.94 image px: no pyramid
    crop = warp_to_crop(img, roi)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    expected = roi.image_to_crop(np.array([177.0, 131.0]))
    np.testing.assert_allclose(_centroid(crop), expected, atol=0.35)
    # colours pass through unchanged in order (BGR stays BGR)
    iy, ix = np.unravel_index(np.argmax(crop[..., 2]), crop.shape[:2])
    assert crop[iy, ix, 2] > crop[iy, ix, 0]


@pytest.mark.parametrize("scale", [1.0, 5.0, 30.0])
def test_warp_keeps_a_blob_where_the_transform_puts_it(scale):
    """Also on the image-pyramid path (scale > 2 image px per crop px), on an 8K-sized frame for 30."""
    size = 96
    eye_d = TEMPLATE_EYE_DISTANCE * size * scale
    h, w = (4320, 7680) if scale == 30.0 else (int(6 * eye_d) + 50, int(6 * eye_d) + 80)
    mid = np.array([w * 0.45, h * 0.5])
    pts = np.array([mid - [eye_d / 2, 0], mid + [eye_d / 2, 0], mid + [3.0, eye_d * 1.1]])
    blob = mid + np.array([0.3 * eye_d, 0.4 * eye_d])
    img = _blob_image(h, w, blob, radius=3.0 * scale)
    roi = roi_from_points(pts, size)
    crop = warp_to_crop(img, roi)
    np.testing.assert_allclose(_centroid(crop), roi.image_to_crop(blob), atol=0.3)


def test_gray_and_tiny_images():
    roi = roi_from_points(np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 1.0]]), 32)
    crop = warp_to_crop(np.full((1, 1), 200, np.uint8), roi)
    assert crop.shape == (32, 32) and crop.max() > 0
    with pytest.raises(ValueError, match="expected an"):
        warp_to_crop(np.zeros((0, 5, 3), np.uint8), roi)


def test_invalid_points_are_rejected_with_a_message():
    with pytest.raises(ValueError, match="eyes coincide"):
        roi_from_points(np.array([[5.0, 5.0], [5.0, 5.0], [5.0, 5.0]]), 64)
    with pytest.raises(ValueError, match="finite"):
        roi_from_points(np.array([[np.nan, 5.0], [9.0, 5.0], [5.0, 9.0]]), 64)
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        roi_from_points(np.zeros((2, 2)), 64)
    with pytest.raises(ValueError, match="at least 8"):
        roi_from_points(np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 1.0]]), 4)


def test_profile_crop_keeps_the_head_size():
    """Eyes closing up (the head turning to profile) with the mouth where it was: the crop's scale follows the
    mouth distance instead of zooming in on the eyes, it is continuous where the bound starts, and the crop's
    axes turn towards the eye-to-mouth line; coincident eyes with a mouth below them still give a crop."""
    size = 128
    mouth = np.array([100.0, 160.0])
    mouth_d = 60.0
    ratio_hi = 1.6 * TEMPLATE_MOUTH_DISTANCE / TEMPLATE_EYE_DISTANCE
    frontal = roi_from_points(np.array([[70.0, 100.0], [130.0, 100.0], mouth]), size)
    rois = {}
    for eye_d in (60.0, mouth_d / ratio_hi + 1e-6, mouth_d / ratio_hi - 1e-6, 10.0, 2.0, 0.0):
        pts = np.array([[100.0 - eye_d / 2, 100.0], [100.0 + eye_d / 2, 100.0], mouth])
        rois[eye_d] = roi_from_points(pts, size)
        assert np.all(np.isfinite(rois[eye_d].matrix))
        # the mouth is never put further from the eye line than in the frontal crop's units allow
        x_scale = np.linalg.norm(rois[eye_d].matrix[0, :2])
        assert x_scale <= size * TEMPLATE_EYE_DISTANCE * ratio_hi / mouth_d * (1 + 1e-6)
    np.testing.assert_allclose(rois[60.0].matrix, frontal.matrix, atol=1e-9)
    # continuous where the bound starts to act
    np.testing.assert_allclose(rois[mouth_d / ratio_hi + 1e-6].matrix, rois[mouth_d / ratio_hi - 1e-6].matrix,
                               atol=1e-5)
    # the mouth is on the crop's vertical through the eyes' midpoint, at the template's line
    for eye_d in (10.0, 2.0, 0.0):
        m = rois[eye_d].image_to_crop(mouth)
        assert m[1] == pytest.approx(_template(size)[2, 1], abs=1e-6)
        assert m[0] == pytest.approx(_template(size)[2, 0], abs=1e-6)
    # an eye tilted away from the mouth's normal: the axis turns the more the closer the eyes are
    tilted = [roi_from_points(np.array([[100.0 - d / 2, 100.0 - d / 2], [100.0 + d / 2, 100.0 + d / 2], mouth]),
                              size) for d in (40.0, 10.0, 1.0)]
    angles = [abs(np.degrees(np.arctan2(r.matrix[0, 1], r.matrix[0, 0]))) for r in tilted]
    assert angles[0] == pytest.approx(45.0, abs=1e-6) and angles[0] > angles[1] > angles[2]


def test_mouth_on_the_eye_line_is_clamped():
    roi = roi_from_points(np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 0.0]]), 64)
    assert np.all(np.isfinite(roi.matrix)) and roi.scale_px > 0


def test_ibug_points_on_real_ground_truth(shared_data):
    with open(shared_data / "300w-train" / "landmarks68.csv") as fh:
        row = next(iter(csv.DictReader(fh)))
    pts = np.array([[float(row[f"x{i}"]), float(row[f"y{i}"])] for i in range(68)])
    roi_pts = roi_points_from_ibug68(pts)
    np.testing.assert_allclose(roi_pts[0], pts[36:42].mean(0))
    assert roi_pts[0, 0] < roi_pts[1, 0]  # subject's right eye is on the image's left in a frontal photo
    assert roi_pts[2, 1] > roi_pts[:2, 1].max()
