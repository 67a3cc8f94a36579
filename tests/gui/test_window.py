"""The real window under Xvfb, with the real pipeline on a real clip: overlay pixels on the face, panels,
recording and replay, settings, errors in words, the demo when there is no camera."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PyQt6 import QtCore, QtGui, QtWidgets
from PyQt6.QtTest import QTest

from tracker.gui.main_window import MainWindow
from tracker.gui.settings import AppSettings

TRACK_TIMEOUT_MS = 60000


def _make_window(qtbot, model, tmp_path, **kwargs) -> MainWindow:
    settings = kwargs.pop("settings", None) or AppSettings(sessions_dir=str(tmp_path / "sessions"))
    w = MainWindow(model, settings, realtime=kwargs.pop("realtime", False), **kwargs)
    qtbot.addWidget(w)
    w.resize(1000, 700)
    w.show()
    qtbot.waitExposed(w)
    return w


def _wait(qtbot, w: MainWindow, condition, timeout: int = TRACK_TIMEOUT_MS) -> None:
    """qtbot.waitUntil, failing with what the window last said."""
    try:
        qtbot.waitUntil(condition, timeout=timeout)
    except qtbot.TimeoutError as exc:
        raise AssertionError(f"timed out; last error: {w.last_error!r}; status: "
                             f"{w.statusBar().currentMessage()!r}; track: {w.track_label.text()!r}") from exc


def _collect(w: MainWindow) -> list:
    shown: list = []
    w.frameShown.connect(shown.append)
    return shown


def _tracked(shown) -> list:
    return [it for it in shown if it.tracked.tracked]


def _rgb(image: QtGui.QImage) -> np.ndarray:
    """QImage -> (H, W, 3) uint8 RGB copy."""
    img = image.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    h, w, bpl = img.height(), img.width(), img.bytesPerLine()
    ptr = img.constBits()
    ptr.setsize(h * bpl)
    buf = np.frombuffer(ptr, dtype=np.uint8).reshape(h, bpl)
    return buf[:, : w * 3].reshape(h, w, 3).copy()


def _pause_on_tracked_frame(qtbot, w: MainWindow, shown) -> object:
    """Pause the worker on a tracked frame and return the DisplayFrame the window shows."""
    _wait(qtbot, w, lambda: len(_tracked(shown)) >= 6, TRACK_TIMEOUT_MS)
    for _ in range(20):
        w.worker.set_paused(True)
        qtbot.wait(400)  # the frame in flight arrives; nothing after it
        if w.last_frame is not None and w.last_frame.tracked.tracked:
            return w.last_frame
        w.worker.set_paused(False)
        n = len(shown)
        _wait(qtbot, w, lambda: len(shown) > n, TRACK_TIMEOUT_MS)
    raise AssertionError("no tracked frame to pause on")


def test_window_plays_a_clip_with_the_overlay_on_the_face(qtbot, head_model, clip, tmp_path):
    from tracker.detect import FaceDetector

    w = _make_window(qtbot, head_model, tmp_path)
    shown = _collect(w)
    w.open_source(str(clip))
    item = _pause_on_tracked_frame(qtbot, w, shown)
    tf = item.tracked
    frame = tf.frame.image

    # the same frame drawn without and with the overlay
    w.overlay.set_options(mesh=False, wireframe=False, landmarks=False)
    raw = _rgb(w.overlay.render_image())
    w.overlay.set_options(mesh=True, landmarks=False)
    with_mesh = _rgb(w.overlay.render_image())
    w.overlay.set_options(mesh=True, landmarks=True)
    assert raw.shape == with_mesh.shape and raw.shape[0] > 200

    # without the overlay the view shows the video frame itself, pixel for pixel where it lands
    rng = np.random.default_rng(0)
    px = np.column_stack([rng.uniform(20, tf.frame.width - 20, 300), rng.uniform(20, tf.frame.height - 20, 300)])
    at = np.rint(w.overlay.image_to_widget(px)).astype(int)
    drawn = raw[at[:, 1], at[:, 0]].astype(int)
    truth = frame[np.rint(px[:, 1]).astype(int), np.rint(px[:, 0]).astype(int)][:, ::-1].astype(int)
    assert np.median(np.abs(drawn - truth)) < 12

    # the overlay changed pixels, and they lie on the face the detector finds in the raw frame
    changed = np.abs(with_mesh.astype(int) - raw.astype(int)).max(axis=2) > 12
    ys, xs = np.nonzero(changed)
    assert len(xs) > 2000, f"the mesh changed only {len(xs)} pixels"
    with FaceDetector() as det:
        faces = det.detect(frame)
    assert faces, "the detector found no face in the test frame"
    x0, y0, x1, y1 = faces[0].box_px
    bw, bh = x1 - x0, y1 - y0
    img_pts = w.overlay.widget_to_image(np.column_stack([xs, ys]).astype(float))
    # the mesh covers forehead and ears too: allow the box grown by 40% of its size on each side
    inside = ((img_pts[:, 0] > x0 - 0.4 * bw) & (img_pts[:, 0] < x1 + 0.4 * bw)
              & (img_pts[:, 1] > y0 - 0.6 * bh) & (img_pts[:, 1] < y1 + 0.4 * bh))
    assert inside.mean() > 0.95, f"only {inside.mean():.0%} of the overlay lies on the face"
    # and it covers the middle of the face box
    cx = np.linspace(x0 + 0.25 * bw, x1 - 0.25 * bw, 12)
    cy = np.linspace(y0 + 0.25 * bh, y1 - 0.25 * bh, 12)
    grid = np.array([(x, y) for x in cx for y in cy])
    g = np.rint(w.overlay.image_to_widget(grid)).astype(int)
    assert changed[g[:, 1], g[:, 0]].mean() > 0.8

    # the landmarks, coloured by sigma, are drawn where the network put them
    with_landmarks = _rgb(w.overlay.render_image())
    lm_at = np.rint(w.overlay.image_to_widget(tf.landmarks.mu_px)).astype(int)
    ok = (lm_at[:, 0] >= 0) & (lm_at[:, 0] < raw.shape[1]) & (lm_at[:, 1] >= 0) & (lm_at[:, 1] < raw.shape[0])
    lm_at = lm_at[ok]
    assert np.mean(np.abs(with_landmarks[lm_at[:, 1], lm_at[:, 0]].astype(int)
                          - with_mesh[lm_at[:, 1], lm_at[:, 0]].astype(int)).max(axis=1) > 20) > 0.8

    # the panels show this frame's fit, plausibly
    p = tf.fit.params
    yaw = float(re.match(r"\s*([-+]?\d+\.\d)", w.pose_panel.text("yaw")).group(1))
    z = float(re.match(r"\s*([-+]?\d+\.\d)", w.pose_panel.text("z")).group(1))
    assert yaw == pytest.approx(item.euler_deg[0], abs=0.051) and abs(yaw) < 60
    assert z == pytest.approx(item.head_position_mm[2], abs=0.051) and 200 < z < 2000
    assert abs(item.head_position_mm[2] - p.translation_mm[2]) < 150  # the head pivot is near the model origin
    assert w.expressions.names == head_model.expression_names and len(w.expressions.names) == 53
    assert np.allclose(w.expressions.weights, np.clip(p.expression, 0, 1))
    assert np.all((w.expressions.weights >= 0) & (w.expressions.weights <= 1))
    w._update_speed()
    assert "network" in w.speed_panel.stages_label.text() and "fit" in w.speed_panel.stages_label.text()
    assert w.info.kind == "video" and w.info.length == 78
    assert w.slider.maximum() == 77 and w.position_label.text().endswith("/ 78")
    # the orbit view draws the head
    head = _rgb(w.head_view.render_image())
    assert (np.abs(head.astype(int) - np.array([28, 30, 36])).max(axis=2) > 30).mean() > 0.05


def test_record_then_replay_gives_the_same_parameters(qtbot, head_model, clip, tmp_path):
    from tracker.session.reader import SessionReader

    w = _make_window(qtbot, head_model, tmp_path)
    shown = _collect(w)
    w.open_source(str(clip))
    _wait(qtbot, w, lambda: len(shown) >= 2, TRACK_TIMEOUT_MS)
    w.activateWindow()
    assert QTest.qWaitForWindowActive(w, 5000)
    with qtbot.waitSignal(w.worker.recordingStarted, timeout=TRACK_TIMEOUT_MS) as started:
        qtbot.keyClick(w, QtCore.Qt.Key.Key_R, QtCore.Qt.KeyboardModifier.ControlModifier)  # the shortcut
    folder = Path(started.args[0])
    assert folder.parent == tmp_path / "sessions" and folder.name.startswith("session-")
    assert w.action_record.isChecked() and str(folder) in w.session_label.text()
    _wait(qtbot, w, lambda: w.worker._recorded >= 12, TRACK_TIMEOUT_MS)
    with qtbot.waitSignal(w.worker.recordingStopped, timeout=TRACK_TIMEOUT_MS):
        w.action_record.trigger()  # the toolbar button
    _wait(qtbot, w, lambda: w.last_session is not None, 5000)
    assert w.last_session == folder and str(folder) in w.session_label.text()
    assert not w.action_record.isChecked()
    live = {it.tracked.frame.index: it.tracked for it in shown if it.tracked.fit is not None}

    reader = SessionReader(folder)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["model_version"] == head_model.version and meta["status"] == "closed"
    assert len(reader) >= 12
    recorded = {r["index"]: r for r in reader.records}

    # replay: the recorded results come back, with a timeline
    w.stop_worker()
    replayed = _collect(w)
    w.open_source(str(folder))
    _wait(qtbot, w, lambda: w._ended and len(replayed) >= 1, TRACK_TIMEOUT_MS)  # as fast as it goes: drops
    assert w.info.kind == "session" and w.timeline.isVisible() and w.slider.maximum() == w.info.length - 1
    assert not w.action_record.isEnabled()
    compared = 0
    for it in replayed:
        idx = it.tracked.frame.index
        rec = recorded[idx]
        assert it.tracked.tracked == rec["tracked"]
        if rec["fit"] is not None:
            assert np.allclose(it.tracked.fit.params.expression, rec["fit"]["expression"])
            assert np.allclose(it.tracked.fit.params.translation_mm, rec["fit"]["translation_mm"])
            if idx in live:  # the same parameters as the live frame that was recorded
                assert np.allclose(it.tracked.fit.params.root_rotation, live[idx].fit.params.root_rotation)
                assert np.allclose(it.tracked.fit.params.expression, live[idx].fit.params.expression)
                compared += 1
    assert compared >= 1
    # seeking on the timeline while paused shows that frame and holds
    assert w.play_button.isChecked()  # at the end it shows "play"
    target = w.info.length - 3
    n = len(replayed)
    w.seek(target)
    _wait(qtbot, w, lambda: len(replayed) > n, TRACK_TIMEOUT_MS)
    qtbot.wait(300)
    assert len(replayed) == n + 1 and w.worker.run_object.positions[replayed[n].tracked.frame.index] == target
    assert w.slider.value() == target and w.position_label.text() == f"{target + 1} / {w.info.length}"
    # play goes on from there to the end
    w.play_button.setChecked(False)
    _wait(qtbot, w, lambda: w._ended, TRACK_TIMEOUT_MS)
    assert w.slider.value() == w.info.length - 1 and w.position_label.text() == f"{w.info.length} / {w.info.length}"


def test_settings_persist_between_runs(qtbot, head_model, tmp_path):
    w = _make_window(qtbot, head_model, tmp_path)
    w.action_wire.trigger()
    w.action_landmarks.trigger()
    assert w.overlay.show_wireframe and not w.overlay.show_landmarks
    w.open_source("demo")
    _wait(qtbot, w, lambda: w.info is not None, TRACK_TIMEOUT_MS)
    w.resize(780, 560)
    qtbot.wait(50)
    size = (w.width(), w.height())
    w.close()
    s = AppSettings.load()
    assert s.show_wireframe and not s.show_landmarks and s.show_mesh and s.source == "demo"
    assert s.geometry is not None and (tmp_path / "settings").is_dir()
    w2 = MainWindow(head_model, s)
    qtbot.addWidget(w2)
    assert w2.action_wire.isChecked() and not w2.action_landmarks.isChecked()
    assert w2.overlay.show_wireframe and not w2.overlay.show_landmarks
    assert (w2.width(), w2.height()) == size


def _status(w: MainWindow) -> str:
    return w.statusBar().currentMessage()


def test_errors_are_told_in_words(qtbot, head_model, tmp_path):
    w = _make_window(qtbot, head_model, tmp_path)
    w.open_source(str(tmp_path / "missing.mp4"))
    _wait(qtbot, w, lambda: "no such video file" in _status(w), 10000)
    assert "missing.mp4" in w.message_box.text()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    w.open_source(str(bad))
    _wait(qtbot, w, lambda: "cannot read video file" in _status(w), 10000)
    w.open_source("97")
    _wait(qtbot, w, lambda: "camera 97 could not be opened" in _status(w), 20000)
    # a recording that cannot start (the sessions "folder" is a file)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    w.open_source("demo")
    _wait(qtbot, w, lambda: w.frames_displayed > 0, TRACK_TIMEOUT_MS)
    w.start_recording(blocker / "session")
    _wait(qtbot, w, lambda: "could not start recording" in _status(w), 10000)
    assert not w.action_record.isChecked()


class _FullDisk:
    def __init__(self):
        self.closed = False

    def write(self, tf):
        raise OSError(28, "No space left on device", "/media/full/records.jsonl")

    def close(self):
        self.closed = True


def test_disk_full_while_recording_stops_the_recording_not_the_tracking(qtbot, head_model, tmp_path):
    w = _make_window(qtbot, head_model, tmp_path)
    w.open_source("demo")
    _wait(qtbot, w, lambda: w.frames_displayed > 0, TRACK_TIMEOUT_MS)
    rec = _FullDisk()
    w.worker._recorder_factory = lambda folder, tf: rec
    w.start_recording(tmp_path / "s")
    _wait(qtbot, w, lambda: "the disk is full" in _status(w), 10000)
    assert rec.closed and not w.action_record.isChecked()
    assert "recording stopped" in w.message_box.text()
    n = w.frames_displayed
    _wait(qtbot, w, lambda: w.frames_displayed > n + 2, TRACK_TIMEOUT_MS)  # still tracking


def test_no_camera_opens_the_demo_and_says_so(qtbot, head_model, tmp_path, monkeypatch):
    import tracker.camera.sources as sources

    monkeypatch.setattr(sources, "list_cameras", lambda *a, **k: [])
    w = _make_window(qtbot, head_model, tmp_path, realtime=True)
    with qtbot.waitSignal(w.sourceOpened, timeout=TRACK_TIMEOUT_MS):
        w.start(None)
    assert w.info.kind == "demo"
    assert "No camera found" in _status(w) and "demo" in _status(w)
    _wait(qtbot, w, lambda: w.frames_displayed > 2, TRACK_TIMEOUT_MS)


def test_the_source_dialog_lists_cameras_and_modes(qtbot):
    from tracker.camera.sources import CameraInfo
    from tracker.gui.source_dialog import SourceDialog

    dlg = SourceDialog([CameraInfo(0, "Integrated Camera"), CameraInfo(2, "USB Cam")], (1280, 720, 60))
    qtbot.addWidget(dlg)
    assert dlg.camera_list.count() == 2 and "USB Cam" in dlg.camera_list.item(1).text()
    dlg.camera_list.setCurrentRow(1)
    dlg.camera_button.click()
    assert dlg.choice.spec == "2" and dlg.choice.camera_mode == (1280, 720, 60)
    empty = SourceDialog([], (640, 480, 30))
    qtbot.addWidget(empty)
    assert not empty.camera_button.isEnabled() and "no camera found" in empty.camera_list.item(0).text()


def test_app_frame_rate_benchmark_runs(qtbot, clip):
    from tracker.gui.bench import app_fps

    result = app_fps(clip, 20, in_process=True)
    assert result["frames_drawn"] == 20 and result["fps"] > 1
    assert result["size"] == "640x480" and 0 <= result["tracked_share"] <= 1
    with pytest.raises(Exception, match="video file not found"):
        app_fps(clip.parent / "nope.mp4", 10)
    app = QtWidgets.QApplication.instance()
    assert app is not None and QtCore.QSettings().fileName() != ""


def test_the_calibration_dialog_opens_from_the_window(qtbot, head_model, tmp_path):
    w = _make_window(qtbot, head_model, tmp_path)
    assert w.action_calibrate.isEnabled()
    w.action_calibrate.trigger()
    dlg = w.calibration_dialog
    qtbot.addWidget(dlg)
    assert dlg.isVisible() and dlg.windowTitle() == "Camera calibration"
    dlg.close()


class _UnpluggedCamera:
    """An OpenCV-like capture that delivers frames of a real clip until ``unplugged`` is set, then nothing."""

    def __init__(self, clip, frames: int):
        import cv2

        cap = cv2.VideoCapture(str(clip))
        self.images = [cap.read()[1] for _ in range(frames)]
        cap.release()
        self.i = 0
        self.unplugged = False

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return True

    def set(self, *args):
        return True

    def get(self, prop):
        return 30.0

    def read(self):
        if not self.unplugged:
            self.i += 1
            time.sleep(1 / 30)
            return True, self.images[self.i % len(self.images)].copy()
        time.sleep(0.01)
        return False, None

    def release(self):
        pass


def test_camera_unplugged_while_recording_is_told_and_the_recording_kept(qtbot, head_model, clip, tmp_path):
    from tracker.camera.sources import CameraSource
    from tracker.gui.backend import TrackingRun
    from tracker.session.reader import SessionReader

    fake = _UnpluggedCamera(clip, 30)

    def factory(spec, mode, start_at):
        cam = CameraSource(0, capture_factory=lambda i: fake, stall_timeout_s=0.5)
        return TrackingRun(spec, mode, start_at, model=head_model, source=cam)

    w = _make_window(qtbot, head_model, tmp_path, run_factory=factory)
    shown = _collect(w)
    w.open_source("0")
    _wait(qtbot, w, lambda: len(shown) >= 1, TRACK_TIMEOUT_MS)
    assert w.info.kind == "camera"
    w.start_recording(tmp_path / "unplugged")
    _wait(qtbot, w, lambda: w.worker._recorded >= 5, TRACK_TIMEOUT_MS)
    fake.unplugged = True
    _wait(qtbot, w, lambda: "stopped delivering frames" in _status(w), TRACK_TIMEOUT_MS)
    assert "unplugged" in w.message_box.text()
    _wait(qtbot, w, lambda: w.last_session is not None, 10000)
    assert not w.action_record.isChecked()
    reader = SessionReader(tmp_path / "unplugged")
    meta = json.loads((tmp_path / "unplugged" / "meta.json").read_text())
    assert len(reader) >= 1 and meta["status"] == "closed"


def test_the_head_view_orbits_with_the_mouse_and_resets(qtbot, head_model, tmp_path):
    w = _make_window(qtbot, head_model, tmp_path)
    view = w.head_view
    _wait(qtbot, w, lambda: view.isExposed(), 5000)
    start = view.opts["rotation"]
    c = QtCore.QPoint(view.width() // 2, view.height() // 2)
    QTest.mousePress(view, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, c)
    for dx in (10, 20, 40, 60):
        QTest.mouseMove(view, c + QtCore.QPoint(dx, dx // 3))
    QTest.mouseRelease(view, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier,
                       c + QtCore.QPoint(60, 20))
    assert view.opts["rotation"] != start
    w.action_home.trigger()
    assert view.opts["rotation"] == QtGui.QQuaternion.fromEulerAngles(0, 0, 0)
