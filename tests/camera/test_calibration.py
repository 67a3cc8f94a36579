"""Board calibration on synthetic renders with known intrinsics, the failure messages, and undistortion."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.camera.board import BoardSpec, look_at_pose, random_board_poses, render_board_view
from tracker.camera.calibration import (BoardCalibrationOptions, BoardViewCollector, CalibrationError,
                                        FrameUndistorter, calibrate_board, distort_points, pinhole,
                                        undistort_landmarks, undistort_points)
from tracker.types import Frame, Intrinsics, Landmarks

CAM = Intrinsics(480, 360, 430.0, 430.0, 243.0, 176.0, (-0.18, 0.06, 0.0008, -0.0004, 0.0))
CB = BoardSpec.parse("checkerboard:9x6:20mm")
CHARUCO = BoardSpec.parse("charuco:9x7:20mm:15mm")


@pytest.fixture(scope="module")
def checker_views():
    rng = np.random.default_rng(11)
    return [render_board_view(CB, CAM, r, t, rng=rng) for r, t in random_board_poses(CB, CAM, 9, rng)]


def test_checkerboard_calibrates_within_tolerance(checker_views):
    res = calibrate_board(checker_views, CB)
    k = res.intrinsics
    assert res.n_views == 9 and res.per_view_errors.shape == (9,)
    assert abs(k.fx / CAM.fx - 1) < 0.005 and abs(k.fy / CAM.fy - 1) < 0.005, res.summary()
    assert abs(k.cx - CAM.cx) < 2.0 and abs(k.cy - CAM.cy) < 2.0
    assert abs(k.dist_coeffs[0] - CAM.dist_coeffs[0]) < 0.02
    assert res.rms_reprojection_px < 0.3
    assert (k.width, k.height) == (480, 360)
    assert abs(res.hfov_deg - CAM.hfov_deg) < 0.3
    assert 0 < res.fx_std_px < 5
    assert "RMS reprojection" in res.summary()


def test_charuco_calibrates_within_tolerance():
    cam = pinhole(CAM)
    rng = np.random.default_rng(5)
    frames = [Frame(np.repeat(render_board_view(CHARUCO, cam, r, t, rng=rng)[:, :, None], 3, 2), i, i)
              for i, (r, t) in enumerate(random_board_poses(CHARUCO, cam, 8, rng))]
    res = calibrate_board(frames, str(CHARUCO))
    assert abs(res.intrinsics.fx / cam.fx - 1) < 0.005, res.summary()
    assert max(abs(c) for c in res.intrinsics.dist_coeffs) < 0.02
    assert res.rms_reprojection_px < 0.3


def test_no_board_in_view():
    rng = np.random.default_rng(0)
    blanks = [rng.integers(90, 160, (360, 480), dtype=np.uint8) for _ in range(3)]
    with pytest.raises(CalibrationError, match=r"no board in view: the checkerboard:9x6:20mm board was not found "
                                               r"in any of the 3 images"):
        calibrate_board(blanks, CB)


def test_too_few_views_says_how_many(checker_views):
    with pytest.raises(CalibrationError, match=r"too few board views: 3 usable views .* at least 6 are needed "
                                               r"\(show the board at 3 more"):
        calibrate_board(checker_views[:3], CB)


def test_duplicates_are_skipped_and_counted(checker_views):
    rng = np.random.default_rng(1)
    repeated = checker_views[:4] + [np.clip(v.astype(int) + rng.integers(-3, 4, v.shape), 0, 255).astype(np.uint8)
                                     for v in checker_views[:4]]
    col = BoardViewCollector(CB)
    states = [col.add(img) for img in repeated]
    assert states == ["kept"] * 4 + ["duplicate"] * 4
    assert col.status() == "4 views kept (8 of 8 images showed the board, 4 near-duplicates skipped)"
    with pytest.raises(CalibrationError, match="too few board views: 4 usable views"):
        calibrate_board(repeated, CB)


def _views_at(tilts, rng):
    cam = pinhole(CAM)
    out = []
    for i, (tx, ty) in enumerate(tilts):
        rot, t = look_at_pose(CB, 480.0 + 25.0 * i, tx, ty, roll_deg=-30.0 + 10.0 * i,
                              offset_mm=(25.0 * (i % 3 - 1), 20.0 * (i % 2) - 10.0))
        out.append(render_board_view(CB, cam, rot, t, rng=rng))
    return out


def test_fronto_parallel_views_are_degenerate():
    rng = np.random.default_rng(2)
    views = _views_at([(0.0, 0.0)] * 7, rng)
    with pytest.raises(CalibrationError, match=r"degenerate pose set: all 7 views show the board nearly face-on"):
        calibrate_board(views, CB)


def test_same_tilt_views_are_degenerate():
    rng = np.random.default_rng(3)
    views = _views_at([(25.0, 0.0)] * 7, rng)
    with pytest.raises(CalibrationError, match=r"degenerate pose set: all 7 views tilt the board the same way"):
        calibrate_board(views, CB, BoardCalibrationOptions(min_view_change=0.01))


def test_image_size_change_is_an_error(checker_views):
    col = BoardViewCollector(CB)
    col.add(checker_views[0])
    with pytest.raises(CalibrationError, match="all images must have the same size: got 240x180 after 480x360"):
        col.add(checker_views[0][::2, ::2])


def test_undistort_round_trip():
    rng = np.random.default_rng(4)
    pts = rng.uniform([0, 0], [480, 360], (50, 2))
    back = undistort_points(distort_points(pts, CAM), CAM)
    np.testing.assert_allclose(back, pts, atol=1e-3)
    np.testing.assert_allclose(undistort_points(pts, pinhole(CAM)), pts)
    # the centre of distortion stays put; a corner point moves outward under barrel undistortion
    centre = np.array([[CAM.cx, CAM.cy]])
    np.testing.assert_allclose(undistort_points(centre, CAM), centre, atol=1e-6)
    corner = undistort_points(np.array([[10.0, 10.0]]), CAM)
    assert corner[0, 0] < 10.0 and corner[0, 1] < 10.0
    lm = Landmarks(distort_points(pts, CAM), np.ones(50))
    und = undistort_landmarks(lm, CAM)
    np.testing.assert_allclose(und.mu_px, pts, atol=1e-3)
    assert undistort_landmarks(lm, pinhole(CAM)) is lm


def test_frame_undistorter_straightens_a_distorted_render():
    rot, t = look_at_pose(CB, 450.0, 10.0, -20.0)
    distorted = render_board_view(CB, CAM, rot, t, noise_std=0.0)
    ideal = render_board_view(CB, pinhole(CAM), rot, t, noise_std=0.0)
    fixed = FrameUndistorter(CAM)(distorted)
    inner = (slice(40, 320), slice(40, 440))
    before = np.abs(distorted.astype(int) - ideal)[inner].mean()
    after = np.abs(fixed.astype(int) - ideal)[inner].mean()
    assert after < 0.35 * before, (before, after)


# ----------------------------------------------------------------------------------------------------------
# python main.py calibrate


def test_cli_board_from_image_folder(checker_views, tmp_path, monkeypatch, capsys):
    import json

    import cv2

    from tracker.camera import profiles
    from tracker.cli import main

    monkeypatch.setenv("TRACKER_CONFIG", str(tmp_path / "cfg"))
    folder = tmp_path / "shots"
    folder.mkdir()
    for i, view in enumerate(checker_views):
        cv2.imwrite(str(folder / f"view{i:02d}.png"), view)
    cv2.imwrite(str(folder / "nothing.png"), np.full((360, 480), 128, np.uint8))
    assert main(["calibrate", "--source", str(folder), "--method", "board", "--board", str(CB), "--json"]) == 0
    out = capsys.readouterr().out
    assert "nothing.png: no board" in out and "view00.png: kept" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["camera_id"] == "shots" and result["n_views"] == 9
    assert abs(result["fx"] / CAM.fx - 1) < 0.005
    saved = profiles.load_profile("shots", 480, 360)
    assert saved is not None and saved.fx == pytest.approx(result["fx"])

    assert main(["calibrate", "--list"]) == 0
    assert capsys.readouterr().out.startswith("shots 480x360: f=")
    assert main(["calibrate", "--camera-id", "shots", "--size", "480x360", "--set-hfov", "65"]) == 0
    assert profiles.load_profile("shots", 480, 360).hfov_deg == pytest.approx(65.0)
    assert main(["calibrate", "--camera-id", "shots", "--size", "480x360", "--delete"]) == 0
    assert profiles.load_profile("shots", 480, 360) is None


@pytest.mark.parametrize("argv, message", [
    (["calibrate", "--method", "board"], "--source is needed"),
    (["calibrate", "--source", "0"], "--method face or --method board is needed"),
    (["calibrate", "--source", "SRC", "--method", "board", "--board", "checkerboard:9x6"],
     "board spec must look like"),
    (["calibrate", "--source", "/nonexistent/clip.mp4", "--method", "board"],
     "no such video file, session folder or camera index"),
    (["calibrate", "--source", "FOLDER", "--method", "face"], "a folder of images works only with --method board"),
    (["calibrate", "--source", "EMPTY", "--method", "board"], "no images"),
    (["calibrate", "--source", "FOLDER", "--method", "board", "--frames", "0"], "--frames must be positive"),
    (["calibrate", "--source", "FOLDER", "--method", "board"], "no board in view: the checkerboard:9x6:25mm board "
                                                                "was not found in any of the 2 images"),
    (["calibrate", "--camera-id", "x", "--size", "big", "--delete"], "--size must look like 640x480"),
    (["calibrate", "--camera-id", "x", "--size", "640x480", "--delete"], "no profile for camera 'x' at 640x480"),
])
def test_cli_errors(argv, message, tmp_path, monkeypatch, capsys):
    import cv2

    from tracker.cli import main

    monkeypatch.setenv("TRACKER_CONFIG", str(tmp_path / "cfg"))
    folder, empty = tmp_path / "imgs", tmp_path / "empty"
    folder.mkdir()
    empty.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((120, 160), 100 + i, np.uint8))
    argv = [str(folder) if a == "FOLDER" else str(empty) if a == "EMPTY" else a for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("main.py calibrate: error: ") and message in err, err


def test_cli_board_from_video(checker_views, tmp_path, monkeypatch, capsys):
    """A video of the board (each view held for 3 frames, MPEG-4 compressed): held frames are near-duplicates."""
    import json

    import cv2

    from tracker.cli import main

    monkeypatch.setenv("TRACKER_CONFIG", str(tmp_path / "cfg"))
    path = tmp_path / "board.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (480, 360))
    assert writer.isOpened()
    for view in checker_views:
        for _ in range(3):
            writer.write(cv2.cvtColor(view, cv2.COLOR_GRAY2BGR))
    writer.release()
    assert main(["calibrate", "--source", str(path), "--method", "board", "--board", str(CB), "--every", "1",
                 "--camera-id", "video cam", "--json"]) == 0
    out = capsys.readouterr().out
    assert "9 views kept (27 of 27 images showed the board, 18 near-duplicates skipped)" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert abs(result["fx"] / CAM.fx - 1) < 0.01 and result["profile"].endswith("video_cam_480x360.json")
