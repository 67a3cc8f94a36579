"""warp_to_crop reads only the region the crop covers: the same pixels as warping the whole frame."""

import numpy as np

from tracker.roi import roi_from_points, warp_to_crop


def _whole_frame_warp(image, roi):
    """The reference: the pyramid and warp over the whole frame (what warp_to_crop did before it cut a region)."""
    import cv2

    matrix, src = roi.matrix.copy(), image
    while roi.scale_px / (image.shape[1] / src.shape[1]) > 2.0 and min(src.shape[:2]) >= 4:
        src = cv2.pyrDown(src)
        matrix = np.hstack([matrix[:, :2] * 2.0, (matrix[:, 2] + matrix[:, :2] @ np.array([0.5, 0.5]))[:, None]])
    return cv2.warpAffine(src, matrix, (roi.size, roi.size), flags=cv2.INTER_LINEAR)


def _textured(h, w, seed=0):
    import cv2

    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 1.5)


def test_region_crop_equals_whole_frame_crop_inside_the_image():
    image = _textured(1080, 1920)
    for eye_dist, angle in ((60.0, 0.0), (300.0, 0.3), (900.0, -0.2)):  # 0, 1-2 and 3 pyramid levels
        c, sn = np.cos(angle), np.sin(angle)
        mid = np.array([960.0, 500.0])
        pts = np.array([mid - eye_dist / 2 * np.array([c, sn]), mid + eye_dist / 2 * np.array([c, sn]),
                        mid + eye_dist * 1.1 * np.array([-sn, c])])
        roi = roi_from_points(pts, 128)
        ours, ref = warp_to_crop(image, roi), _whole_frame_warp(image, roi)
        diff = np.abs(ours.astype(int) - ref.astype(int))
        assert diff.max() <= 1, (eye_dist, diff.max())


def test_crop_partly_and_wholly_outside_the_image():
    image = _textured(200, 300)
    roi = roi_from_points(np.array([[-20.0, 50.0], [20.0, 50.0], [0.0, 95.0]]), 64)  # half off the left edge
    crop = warp_to_crop(image, roi)
    assert crop.shape == (64, 64, 3)
    assert crop[:, :10].max() == 0 and crop[:, 40:].mean() > 50  # black off the image, image content on it
    far = roi_from_points(np.array([[5000.0, 50.0], [5040.0, 50.0], [5020.0, 95.0]]), 64)
    assert not warp_to_crop(image, far).any()
