"""Board specs, synthetic renders and detection against the true projected corners."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.camera.board import (BoardSpec, detect_board, look_at_pose, project_board_corners,
                                  random_board_poses, render_board_view)
from tracker.types import Intrinsics

CAM = Intrinsics(480, 360, 420.0, 420.0, 241.0, 178.0, (-0.15, 0.05, 0.0005, -0.0005, 0.0))


def test_parse_round_trip():
    cb = BoardSpec.parse("checkerboard:9x6:25mm")
    assert (cb.kind, cb.cols, cb.rows, cb.square_mm) == ("checkerboard", 9, 6, 25.0)
    assert cb.squares == (10, 7) and cb.n_corners == 54
    assert BoardSpec.parse(str(cb)) == cb
    ch = BoardSpec.parse("charuco:7x5:3cm:22mm")
    assert (ch.cols, ch.rows, ch.square_mm, ch.marker_mm, ch.dictionary) == (7, 5, 30.0, 22.0, "DICT_5X5_100")
    assert ch.n_corners == 24
    assert BoardSpec.parse(str(ch)) == ch


@pytest.mark.parametrize("text, message", [
    ("chess:9x6:25mm", "board spec must look like"),
    ("checkerboard:9by6:25mm", "is not COLSxROWS"),
    ("checkerboard:9x6:wide", "is not a length"),
    ("checkerboard:1x6:25mm", "needs at least 2x2 inner corners"),
    ("charuco:7x5:30mm:40mm", "marker size must be positive and smaller than the square"),
    ("charuco:7x5:30mm:22mm:DICT_NOPE", "unknown ArUco dictionary"),
])
def test_parse_errors(text, message):
    with pytest.raises(ValueError, match=message):
        BoardSpec.parse(text)


def test_object_points_layout():
    spec = BoardSpec.parse("checkerboard:4x3:20mm")
    pts = spec.object_points()
    assert pts.shape == (12, 3)
    np.testing.assert_allclose(pts[0], [20, 20, 0])
    np.testing.assert_allclose(pts[3], [80, 20, 0])
    np.testing.assert_allclose(pts[4], [20, 40, 0])


def test_texture_corner_placement():
    """The texture's first inner corner sits where the docstring says (pixel-centre convention)."""
    spec = BoardSpec.parse("checkerboard:4x3:20mm")
    tex, ppm, margin = spec.texture(px_per_mm=3.0)
    x = margin - 0.5 + ppm * 20.0  # first inner corner, between pixels floor(x) and ceil(x)
    i = int(round(x + 0.5))
    assert tex[i - 1, i - 1] == 0 and tex[i, i] == 0 and tex[i - 1, i] == 255 and tex[i, i - 1] == 255


@pytest.mark.parametrize("board", ["checkerboard:9x6:20mm", "charuco:7x5:30mm:22mm"])
def test_detection_matches_true_corners(board):
    spec = BoardSpec.parse(board)
    rng = np.random.default_rng(3)
    for rot, t in random_board_poses(spec, CAM, 2, rng):
        img = render_board_view(spec, CAM, rot, t, rng=rng)
        det = detect_board(img, spec)
        assert det is not None
        assert len(det) >= (spec.n_corners if spec.kind == "checkerboard" else 16)
        true = project_board_corners(spec, CAM, rot, t)
        err = np.linalg.norm(det.image_points - true[det.ids], axis=1)
        if spec.kind == "checkerboard":  # a symmetric board may be found starting from the far corner
            err = min(err, np.linalg.norm(det.image_points - true[::-1], axis=1), key=np.mean)
        assert err.mean() < 0.08 and err.max() < 0.3, (err.mean(), err.max())
        np.testing.assert_allclose(det.object_points, spec.object_points()[det.ids])


def test_no_board_gives_none():
    spec = BoardSpec.parse("checkerboard:9x6:20mm")
    rng = np.random.default_rng(0)
    blank = rng.integers(100, 140, (360, 480), dtype=np.uint8)
    assert detect_board(blank, spec) is None
    assert detect_board(blank, BoardSpec.parse("charuco:7x5:30mm:22mm")) is None


def test_render_colour_input_and_background():
    spec = BoardSpec.parse("checkerboard:5x4:20mm")
    rot, t = look_at_pose(spec, 400.0, 20.0, -15.0)
    img = render_board_view(spec, Intrinsics.from_fov(320, 240, 60.0), rot, t, noise_std=0.0, background=77)
    assert img.shape == (240, 320) and img.dtype == np.uint8
    assert img[0, 0] == 77
    bgr = np.repeat(img[:, :, None], 3, axis=2)
    det = detect_board(bgr, spec)
    assert det is not None and len(det) == 20
    with pytest.raises(ValueError, match="expected an"):
        detect_board(np.zeros((4, 4, 4), np.uint8), spec)


def test_large_frames_are_searched_scaled_down_and_refined_at_full_resolution():
    spec = BoardSpec.parse("checkerboard:9x6:25mm")
    cam = Intrinsics(1920, 1080, 1400.0, 1400.0, 960.0, 540.0, (-0.1, 0.02, 0.0, 0.0, 0.0))
    rng = np.random.default_rng(0)
    rot, t = random_board_poses(spec, cam, 1, rng)[0]
    img = render_board_view(spec, cam, rot, t, rng=rng, supersample=1)
    det = detect_board(img, spec)
    assert det is not None and det.image_size == (1920, 1080)
    true = project_board_corners(spec, cam, rot, t)
    err = min(np.linalg.norm(det.image_points - true, axis=1), np.linalg.norm(det.image_points - true[::-1], axis=1),
              key=np.mean)
    assert err.mean() < 0.08 and err.max() < 0.3, (err.mean(), err.max())
