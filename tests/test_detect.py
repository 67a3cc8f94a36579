"""tracker.detect on real 300-W photos and on images with no face."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from tracker.detect import Detection, FaceDetector
from tracker.roi import roi_points_from_ibug68


@pytest.fixture(scope="module")
def detector():
    det = FaceDetector()
    yield det
    det.close()


def _rows(shared_data, n):
    with open(shared_data / "300w-train" / "landmarks68.csv") as fh:
        reader = csv.reader(fh)
        next(reader)
        rows = [next(reader) for _ in range(n)]
    return [(shared_data / "300w-train" / "images" / r[0], np.array(r[1:], float).reshape(68, 2)) for r in rows]


def test_face_found_with_eyes_where_the_ground_truth_says(detector, shared_data):
    for path, pts68 in _rows(shared_data, 5):
        image = cv2.imread(str(path))
        dets = detector.detect(image)
        assert dets, f"no face found in {path.name}"
        d = dets[0]
        assert d.keypoints_px.shape == (6, 2) and d.box_px.shape == (4,) and 0.5 <= d.score <= 1.0
        gt = roi_points_from_ibug68(pts68)
        eye_dist = np.linalg.norm(gt[1] - gt[0])
        got = d.roi_points()
        # subject's right eye (iBUG 36-41) is BlazeFace keypoint 0, left eye keypoint 1
        err = np.linalg.norm(got - gt, axis=1) / eye_dist
        assert err[0] < 0.2 and err[1] < 0.2, (path.name, err)
        assert err[2] < 0.35, (path.name, err)
        x0, y0, x1, y1 = d.box_px
        assert x0 < gt[0, 0] < gt[1, 0] < x1 and y0 < gt[:, 1].min() and gt[:, 1].max() < y1


def test_gray_small_and_huge_versions_of_a_real_photo(detector, shared_data):
    path, pts68 = _rows(shared_data, 1)[0]
    image = cv2.imread(str(path))
    gt = roi_points_from_ibug68(pts68)
    eye_dist = np.linalg.norm(gt[1] - gt[0])
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    dets = detector.detect(gray)
    assert dets and np.linalg.norm(dets[0].roi_points()[:2] - gt[:2], axis=1).max() < 0.2 * eye_dist
    # the photo in the middle of an 8K black frame, enlarged 4x: keypoints come back in the 8K frame's pixels
    big = np.zeros((4320, 7680, 3), np.uint8)
    up = cv2.resize(image, None, fx=4, fy=4, interpolation=cv2.INTER_LINEAR)
    oy, ox = 1000, 3000
    big[oy:oy + up.shape[0], ox:ox + up.shape[1]] = up
    dets = detector.detect(big)
    assert dets, "no face in the 8K frame"
    gt_big = (gt + 0.5) * 4 - 0.5 + np.array([ox, oy])
    assert np.linalg.norm(dets[0].roi_points()[:2] - gt_big[:2], axis=1).max() < 0.2 * 4 * eye_dist
    # a small face in a large frame (needs the full-range fallback or is simply found)
    small = np.zeros((1080, 1920, 3), np.uint8)
    half = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    small[500:500 + half.shape[0], 900:900 + half.shape[1]] = half
    dets = detector.detect(small)
    assert dets, "no face when it is small in a 1080p frame"


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (7, 5, 3), (480, 640, 3), (4320, 7680, 3)])
def test_blank_and_degenerate_images_give_no_face(detector, shape):
    assert detector.detect(np.zeros(shape, np.uint8)) == []
    assert detector.detect(np.full(shape, 255, np.uint8)) == []


def test_no_face_in_a_gradient_or_a_checkerboard(detector):
    # (pure noise can fool BlazeFace at score ~0.6; the landmark sigmas then report tracking as lost)
    ramp = np.tile(np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None], (480, 1, 3))
    assert detector.detect(ramp) == []
    board = ((np.indices((480, 640)) // 40).sum(0) % 2 * 255).astype(np.uint8)
    assert detector.detect(board) == []


def test_bad_input_is_a_clear_error(detector):
    with pytest.raises(ValueError, match="expected an"):
        detector.detect(np.zeros((10, 10, 5), np.uint8))
    with pytest.raises(ValueError, match="min_score"):
        FaceDetector(min_score=2.0)


def test_roi_points_move_the_mouth_towards_the_mouth_corners():
    kp = np.array([[100.0, 100.0], [160.0, 100.0], [130.0, 130.0], [130.0, 160.0], [80, 110], [180, 110]])
    d = Detection(box_px=np.array([70.0, 60.0, 190.0, 190.0]), keypoints_px=kp, score=0.9)
    pts = d.roi_points()
    np.testing.assert_allclose(pts[:2], kp[:2])
    assert pts[2, 0] == pytest.approx(130.0) and pts[2, 1] < 160.0
