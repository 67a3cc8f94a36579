"""The calibration dialog under Xvfb, fed synthetic data: the face mode with tracked frames of a guided head
motion, the board mode with rendered board views, and the profiles tab."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tracker.camera import profiles
from tracker.camera.board import BoardSpec, random_board_poses, render_board_view
from tracker.camera.calibration_bench import _rot_xy
from tracker.camera.face_calibration import FaceCalibrationError, FocalEstimate
from tracker.gui.calibration import CalibrationDialog
from tracker.types import FitParams, FitResult, Frame, Intrinsics, Landmarks, TrackedFrame

CAM = Intrinsics.from_fov(640, 480, 60.0)


@pytest.fixture(autouse=True)
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_CONFIG", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


def _tracked(i, yaw, pitch, depth):
    lm = Landmarks(np.random.default_rng(i).uniform(200, 400, (20, 2)), np.ones(20))
    params = FitParams.neutral(4, 53, CAM.fx, (0.0, 0.0, depth)).replace(root_rotation=_rot_xy(yaw, pitch))
    return TrackedFrame(Frame(np.zeros((2, 2, 3), np.uint8), i, i), CAM, None, lm,
                        FitResult(params, lm.mu_px, 1.0, 3, True), True)


def _protocol(n=80):
    t = (np.arange(n) + 0.5) / n
    yaw, pitch = 35 * np.sin(2 * np.pi * t), 20 * np.sin(4 * np.pi * t + 1)
    depth = 350 * (800 / 350) ** (0.5 * (1 - np.cos(3 * np.pi * t)))
    return [_tracked(i, yaw[i], pitch[i], depth[i]) for i in range(n)]


def _solver(frames):
    def solve(keyframes, intrinsics, initial):
        n = len(keyframes)
        return FocalEstimate(600.0 + 40.0 / n, 80.0 / math.sqrt(n), np.linspace(-1, 1, 4), n)
    return solve


def test_face_mode_converges_and_accept_saves_profiles(qtbot, config):
    dlg = CalibrationDialog(source="0", camera_id="testcam", face_frames=lambda: iter(_protocol()),
                            face_solver=_solver)
    qtbot.addWidget(dlg)
    dlg.show()
    assert dlg.tabs.tabText(0) == "From the face"
    dlg.face_start.click()
    qtbot.waitUntil(lambda: dlg.prompt_label.text() == "done: accept or retry", timeout=10000)
    assert dlg.coverage_bar.value() == 100
    assert dlg.face_accept.isEnabled()
    assert len(dlg._history) >= 2
    xs, ys = dlg.focal_curve.getData()
    assert len(xs) == len(dlg._history) and ys[-1] == pytest.approx(dlg._history[-1][1])
    hi = dlg.band_hi.getData()[1]
    assert hi[-1] == pytest.approx(dlg._history[-1][1] + dlg._history[-1][2])
    assert "horizontal FOV" in dlg.fov_label.text() and "keyframes" in dlg.face_status.text()
    assert dlg.fov_label.text().startswith(f"focal {dlg._history[-1][1]:.1f} \u00b1 ")
    assert dlg.bins_table.item(0, 2).text().startswith("left: ")
    dlg.face_accept.click()
    assert dlg.face_result is not None
    saved = profiles.find_profile("testcam", 640, 480)
    assert saved is not None and saved.method == "face"
    assert saved.intrinsics.fx == pytest.approx(dlg.face_result.focal_px)
    assert saved.focal_std_px == pytest.approx(dlg.face_result.focal_std_px)
    face = profiles.load_face_profile()
    np.testing.assert_allclose(face.identity, np.linspace(-1, 1, 4))
    assert "saved:" in dlg.face_status.text()
    assert dlg.profile_list.count() == 1 and dlg.profile_list.item(0).text().startswith("testcam 640x480")
    dlg.close()


def test_face_mode_retry_and_errors_are_shown(qtbot):
    def failing(frames):
        def solve(keyframes, intrinsics, initial):
            raise FaceCalibrationError("the focal fit failed: synthetic failure")
        return solve

    dlg = CalibrationDialog(source="0", face_frames=lambda: iter(_protocol()), face_solver=failing)
    qtbot.addWidget(dlg)
    dlg.face_start.click()
    qtbot.waitUntil(lambda: "synthetic failure" in dlg.face_status.text(), timeout=10000)
    assert dlg.prompt_label.text() == "calibration failed: retry"
    assert not dlg.face_accept.isEnabled()

    def broken():
        raise OSError("camera 7 could not be opened")

    dlg2 = CalibrationDialog(source="7", face_frames=broken, face_solver=_solver)
    qtbot.addWidget(dlg2)
    dlg2.face_start.click()
    qtbot.waitUntil(lambda: dlg2.face_status.text().startswith("error: camera 7 could not be opened"), timeout=5000)
    dlg.close()
    dlg2.close()


def test_board_mode_detects_calibrates_and_accepts(qtbot):
    spec = BoardSpec.parse("checkerboard:9x6:20mm")
    cam = Intrinsics(480, 360, 430.0, 430.0, 243.0, 176.0, (-0.1, 0.03, 0.0, 0.0, 0.0))
    rng = np.random.default_rng(2)
    views = [render_board_view(spec, cam, r, t, rng=rng) for r, t in random_board_poses(spec, cam, 7, rng)]
    blank = np.full((360, 480), 128, np.uint8)
    frames = [Frame(np.repeat(v[:, :, None], 3, 2), i, i) for i, v in enumerate([blank] + views)]
    dlg = CalibrationDialog(source="0", camera_id="boardcam", board_frames=lambda: iter(frames))
    qtbot.addWidget(dlg)
    dlg.tabs.setCurrentIndex(1)
    dlg.board_edit.setText(str(spec))
    dlg.board_start.click()
    qtbot.waitUntil(lambda: dlg.board_accept.isEnabled(), timeout=20000)
    qtbot.waitUntil(lambda: "end of the source" in dlg.board_status.text(), timeout=20000)
    assert dlg.board_counts.text().startswith("8 images, board found in 7 (54 corners in the last), 7 views kept")
    assert dlg.board_error.text().endswith("px RMS over 7 views")
    assert dlg.board_image.image.shape == (360, 480, 3)
    assert float(dlg.board_error.text().split()[0]) < 0.3
    dlg.board_accept.click()
    saved = profiles.find_profile("boardcam", 480, 360)
    assert saved is not None and saved.method == "board"
    assert abs(saved.intrinsics.fx / 430.0 - 1) < 0.01
    dlg.close()


def test_bad_board_spec_is_reported(qtbot):
    dlg = CalibrationDialog(source="0", board_frames=lambda: iter([]))
    qtbot.addWidget(dlg)
    dlg.board_edit.setText("checkerboard:nine:25mm")
    dlg.board_start.click()
    assert "is not COLSxROWS" in dlg.board_status.text()
    assert dlg.worker is None


def test_profiles_tab_edit_and_delete(qtbot):
    profiles.save_profile(profiles.CameraProfile("cam-x", Intrinsics.from_fov(640, 480, 50.0), "board",
                                                 rms_reprojection_px=0.2))
    dlg = CalibrationDialog(source="0")
    qtbot.addWidget(dlg)
    assert dlg.profile_list.count() == 1
    dlg.profile_list.setCurrentRow(0)
    assert dlg.hfov_spin.value() == pytest.approx(50.0, abs=0.05)
    dlg.hfov_spin.setValue(72.0)
    dlg.set_hfov_button.click()
    assert profiles.load_profile("cam-x", 640, 480).hfov_deg == pytest.approx(72.0)
    assert "manual" in dlg.profile_list.item(0).text()
    dlg.profile_list.setCurrentRow(0)
    dlg.delete_button.click()
    assert profiles.load_profile("cam-x", 640, 480) is None
    assert dlg.profile_list.item(0).text().startswith("no saved profiles")


def test_default_camera_id_and_parent_source(qtbot):
    from PyQt6 import QtWidgets

    class Window(QtWidgets.QWidget):
        class settings:  # noqa: N801 - mimics the main window's settings object
            source = "3"

    parent = Window()
    qtbot.addWidget(parent)
    dlg = CalibrationDialog(parent)
    assert dlg.source_edit.text() == "3" and dlg.camera_edit.text() == "camera3"
    assert CalibrationDialog._default_camera_id("/videos/clip.mp4") == "clip"


def _live():
    """An endless stream like a camera's (the guided motion over and over, about 200 frames per second)."""
    import itertools
    import time

    for tf in itertools.cycle(_protocol()):
        time.sleep(0.005)
        yield tf


def test_face_retry_starts_over(qtbot):
    dlg = CalibrationDialog(source="0", face_frames=_live, face_solver=_solver)
    qtbot.addWidget(dlg)
    dlg.face_start.click()
    qtbot.waitUntil(lambda: dlg.prompt_label.text() == "done: accept or retry", timeout=10000)
    first = list(dlg._history)
    dlg.face_retry.click()
    assert dlg._history == [] or dlg._history[0][0] == first[0][0]
    qtbot.waitUntil(lambda: dlg.prompt_label.text() == "done: accept or retry" and dlg.face_accept.isEnabled(),
                    timeout=10000)
    assert dlg._history[0] == first[0]
    assert dlg.worker is not None and dlg.worker.isRunning()
    dlg.close()
    assert dlg.worker is None


def test_default_run_stops_the_main_windows_tracking_and_reports_errors(qtbot, tmp_path):
    from PyQt6 import QtWidgets

    class Window(QtWidgets.QWidget):
        def __init__(self):
            super().__init__()
            self.worker, self.stopped = object(), 0

        def stop_worker(self):
            self.stopped += 1
            self.worker = None

    parent = Window()
    qtbot.addWidget(parent)
    dlg = CalibrationDialog(parent, source=str(tmp_path / "missing.mp4"))
    dlg.face_start.click()
    assert parent.stopped == 1
    assert "tracking in the main window was stopped" in dlg.face_status.text()
    qtbot.waitUntil(lambda: dlg.face_status.text().startswith("error: no such video file"), timeout=20000)
    dlg.tabs.setCurrentIndex(1)
    dlg.board_start.click()
    assert parent.stopped == 1  # nothing running any more
    qtbot.waitUntil(lambda: dlg.board_status.text().startswith("error: no such video file"), timeout=10000)
    dlg.close()


def test_hfov_std_matches_finite_difference():
    from tracker.gui.calibration import hfov_std_deg

    w, f, s = 640, 554.0, 6.0
    hfov = Intrinsics(w, 480, f, f, 0, 0).hfov_deg
    fd = (Intrinsics(w, 480, f - s, f - s, 0, 0).hfov_deg - Intrinsics(w, 480, f + s, f + s, 0, 0).hfov_deg) / 2
    assert hfov_std_deg(hfov, f, s) == pytest.approx(fd, rel=1e-3)
