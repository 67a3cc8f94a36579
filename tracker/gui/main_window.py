"""The main window: wiring only. Views and panels draw; the worker thread tracks; this connects them.

Sources: camera, video file, recorded session (replayed with its recorded results and a timeline), demo.
Recording: a button and Ctrl+R; the status line shows the session folder. Errors from the worker arrive as
signals and are shown in words (status bar and a non-blocking message box), never as a crash.
"""

from __future__ import annotations

import datetime as _dt
import functools
import logging
import time
from collections import deque
from pathlib import Path
from typing import Callable

from PyQt6 import QtCore, QtGui, QtWidgets

from tracker.face.model import HeadModel
from tracker.gui.backend import ReplayRun, SourceInfo, TrackingRun, make_recorder, source_kind
from tracker.gui.display import DisplayFrame, FramePreparer
from tracker.gui.panels import ExpressionBars, PosePanel, SpeedPanel, TimePlots
from tracker.gui.settings import AppSettings
from tracker.gui.views import HeadView, OverlayView, container
from tracker.gui.worker import TrackingWorker

log = logging.getLogger(__name__)

#: how often the number panels follow the video (Hz)
PANEL_HZ = 15
#: how often the orbitable head view follows the video (Hz)
HEAD_VIEW_HZ = 15

#: run_factory(spec, camera_mode, start_at) -> a run (``info``, iterable of TrackedFrame, ``close()``)
RunFactory = Callable[[str, tuple[int, int, int], int], object]


def default_run_factory(spec: str, camera_mode: tuple[int, int, int], start_at: int, realtime: bool = True,
                        model: HeadModel | None = None):
    """Sessions replay their recorded results; everything else is tracked live (fitting ``model``).
    ``realtime``: files and sessions play at their own frame rate (False: as fast as possible)."""
    if source_kind(spec) == "session":
        return ReplayRun(spec, start_at=start_at, realtime=realtime)
    return TrackingRun(spec, camera_mode, start_at=start_at, realtime=realtime, model=model)


class MainWindow(QtWidgets.QMainWindow):
    """model: the head model for the mesh views (None: landmarks and numbers only).
    settings: loaded AppSettings (saved on close). run_factory: how a spec becomes frames (tests inject).
    realtime: pace files at their frame rate (False for benchmarks: as fast as the app can go)."""

    sourceOpened = QtCore.pyqtSignal(object)  # noqa: N815  SourceInfo
    frameShown = QtCore.pyqtSignal(object)  # noqa: N815  DisplayFrame

    def __init__(self, model: HeadModel | None, settings: AppSettings | None = None,
                 run_factory: RunFactory | None = None, fit_vertices=None, realtime: bool = True,
                 expression_names: tuple[str, ...] | None = None):
        super().__init__()
        self.model = model
        self.settings = settings or AppSettings()
        self.run_factory = run_factory or functools.partial(default_run_factory, realtime=realtime,
                                                                  model=model)
        self.realtime = realtime
        self.save_settings_on_close = True
        self.preparer = FramePreparer(model, fit_vertices=fit_vertices)
        self.worker: TrackingWorker | None = None
        self.info: SourceInfo | None = None
        self.spec: str | None = None
        self.camera_mode = (self.settings.camera_width, self.settings.camera_height, self.settings.camera_fps)
        self.last_session: Path | None = None
        self.last_error = ""
        self.last_frame: DisplayFrame | None = None
        self.frames_displayed = 0
        self._shown_times: deque[float] = deque(maxlen=120)
        self._position = 0
        self._ended = False
        self._last_message = ""
        self._note = ""
        self._recording_failed = False
        self._source_failed = False
        self._panels_dirty = False
        self._head_shown_at = 0.0
        self.setWindowTitle("Face Tracker")
        self._build_views(expression_names or (model.expression_names if model is not None else ()))
        self._build_actions()
        self._build_status()
        self._apply_overlay_settings()
        if self.settings.geometry is not None:
            self.restoreGeometry(self.settings.geometry)
        else:
            self.resize(1440, 900)
        if self.settings.window_state is not None:
            self.splitter.restoreState(self.settings.window_state)
        self._speed_timer = QtCore.QTimer(self)
        self._speed_timer.timeout.connect(self._update_speed)
        self._speed_timer.start(250)
        self._panel_timer = QtCore.QTimer(self)
        self._panel_timer.timeout.connect(self.refresh_panels)
        self._panel_timer.start(int(1000 / PANEL_HZ))
        self._plot_timer = QtCore.QTimer(self)
        self._plot_timer.timeout.connect(self.plots.redraw)
        self._plot_timer.start(200)

    # ------------------------------------------------------------------ layout
    def _build_views(self, expression_names) -> None:
        self.overlay = OverlayView()
        self.head_view = HeadView()
        if self.preparer.topology is not None:
            t = self.preparer.topology
            self.overlay.set_topology(t.overlay_faces, t.overlay_edges)
            self.head_view.set_topology(t.head_faces, None)
        self.pose_panel = PosePanel()
        self.speed_panel = SpeedPanel()
        self.expressions = ExpressionBars(tuple(expression_names))
        self.plots = TimePlots()

        # timeline under the video: play/pause, slider, position
        self.play_button = QtWidgets.QToolButton()
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play / pause (Space)")
        self.play_button.setIcon(self.style().standardIcon(QtWidgets.QStyle.StandardPixmap.SP_MediaPause))
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setTracking(False)
        self.position_label = QtWidgets.QLabel("")
        self.position_label.setMinimumWidth(120)
        timeline = QtWidgets.QHBoxLayout()
        timeline.setContentsMargins(4, 0, 4, 0)
        timeline.addWidget(self.play_button)
        timeline.addWidget(self.slider, 1)
        timeline.addWidget(self.position_label)
        self.timeline = QtWidgets.QWidget()
        self.timeline.setLayout(timeline)
        self.timeline.setVisible(False)
        self.slider.sliderReleased.connect(self._seek_to_slider)
        self.slider.actionTriggered.connect(self._slider_action)
        self.play_button.toggled.connect(self._set_paused)

        left = QtWidgets.QWidget()
        lv = QtWidgets.QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.setSpacing(2)
        self.overlay_widget = container(self.overlay)
        lv.addWidget(self.overlay_widget, 1)
        lv.addWidget(self.timeline)
        left_split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        left_split.addWidget(left)
        left_split.addWidget(self.plots)
        left_split.setStretchFactor(0, 4)
        left_split.setStretchFactor(1, 1)

        right = QtWidgets.QWidget()
        rv = QtWidgets.QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        head_box = QtWidgets.QGroupBox("3D head (drag to orbit, wheel to zoom)")
        hb = QtWidgets.QVBoxLayout(head_box)
        hb.setContentsMargins(2, 2, 2, 2)
        self.head_widget = container(self.head_view)
        hb.addWidget(self.head_widget)
        rv.addWidget(head_box, 3)
        rv.addWidget(self.pose_panel)
        rv.addWidget(self.speed_panel)
        expr_box = QtWidgets.QGroupBox("Expressions")
        eb = QtWidgets.QVBoxLayout(expr_box)
        eb.setContentsMargins(4, 2, 4, 2)
        eb.addWidget(self.expressions)
        rv.addWidget(expr_box)

        right.setMinimumHeight(640)
        scroll = QtWidgets.QScrollArea()  # the panels scroll on small screens instead of forcing the height
        scroll.setWidget(right)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.splitter.addWidget(left_split)
        self.splitter.addWidget(scroll)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([860, 560])
        self.setCentralWidget(self.splitter)

    def _build_actions(self) -> None:
        tb = self.addToolBar("Main")
        tb.setObjectName("main-toolbar")
        tb.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        menu_file = self.menuBar().addMenu("&Source")
        menu_view = self.menuBar().addMenu("&View")
        menu_tools = self.menuBar().addMenu("&Tools")
        style = self.style()

        def action(text, slot, shortcut=None, checkable=False, icon=None, menu=None, toolbar=False):
            a = QtGui.QAction(text, self)
            if icon is not None:
                a.setIcon(style.standardIcon(icon))
            if shortcut:
                a.setShortcut(QtGui.QKeySequence(shortcut))
                a.setShortcutContext(QtCore.Qt.ShortcutContext.ApplicationShortcut)
            a.setCheckable(checkable)
            (a.toggled if checkable else a.triggered).connect(slot)
            if menu is not None:
                menu.addAction(a)
            if toolbar:
                tb.addAction(a)
            self.addAction(a)
            return a

        sp = QtWidgets.QStyle.StandardPixmap
        self.action_source = action("Source…", self.choose_source, "Ctrl+O", icon=sp.SP_DirOpenIcon,
                                    menu=menu_file, toolbar=True)
        self.action_video = action("Open video…", self._open_video_dialog, "Ctrl+Shift+O", menu=menu_file)
        self.action_session = action("Open session…", self._open_session_dialog, "Ctrl+Shift+S", menu=menu_file)
        self.action_demo = action("Demo", lambda: self.open_source("demo"), menu=menu_file)
        menu_file.addSeparator()
        action("Quit", self.close, "Ctrl+Q", menu=menu_file)
        tb.addSeparator()
        self.action_record = action("Record", self._toggle_recording, "Ctrl+R", checkable=True,
                                    icon=sp.SP_DialogYesButton, menu=menu_file, toolbar=True)
        self.action_record.setToolTip("Start / stop recording a session (Ctrl+R)")
        self.action_play = action("Pause", self._toggle_pause, "Space", menu=menu_view)
        tb.addSeparator()
        self.action_mesh = action("Mesh", lambda on: self._set_overlay(mesh=on), "M", checkable=True,
                                  menu=menu_view, toolbar=True)
        self.action_wire = action("Wireframe", lambda on: self._set_overlay(wireframe=on), "W", checkable=True,
                                  menu=menu_view, toolbar=True)
        self.action_landmarks = action("Landmarks", lambda on: self._set_overlay(landmarks=on), "L",
                                       checkable=True, menu=menu_view, toolbar=True)
        self.action_home = action("Reset 3D view", self.head_view.home, "Home", menu=menu_view)
        tb.addSeparator()
        self.action_calibrate = action("Calibrate camera…", self.open_calibration, menu=menu_tools, toolbar=True)
        if self._calibration_dialog_class() is None:
            self.action_calibrate.setEnabled(False)
            self.action_calibrate.setToolTip("camera calibration is not available in this build")

    def _build_status(self) -> None:
        self.session_label = QtWidgets.QLabel("")
        self.source_label = QtWidgets.QLabel("")
        self.track_label = QtWidgets.QLabel("")
        self.statusBar().addPermanentWidget(self.track_label)
        self.statusBar().addPermanentWidget(self.source_label)
        self.statusBar().addPermanentWidget(self.session_label)

    def _apply_overlay_settings(self) -> None:
        s = self.settings
        for a, on in ((self.action_mesh, s.show_mesh), (self.action_wire, s.show_wireframe),
                      (self.action_landmarks, s.show_landmarks)):
            a.blockSignals(True)
            a.setChecked(on)
            a.blockSignals(False)
        self.overlay.set_options(mesh=s.show_mesh, wireframe=s.show_wireframe, landmarks=s.show_landmarks)
        self.preparer.landmarks = True

    # ------------------------------------------------------------------ sources
    def start(self, spec: str | None = None) -> None:
        """Open ``spec``; with none, the camera (the last one used if still there), else the demo."""
        if spec:
            self.open_source(spec)
            return
        cameras = self._list_cameras()
        if not cameras:
            msg = "No camera found: showing the built-in demo source (open a video or a session from Source)."
            log.warning(msg)
            self.open_source("demo")
            self._note = msg  # shown instead of "playing ..." once the demo runs
            self.show_status(msg, 0)
            return
        indices = [str(c.index) for c in cameras]
        last = self.settings.source
        self.open_source(last if last in indices else indices[0], fallback_to_demo=True)

    @staticmethod
    def _list_cameras() -> list:
        """The cameras (``tracker.camera.sources.list_cameras``), with OpenCV's probing messages silenced."""
        import cv2

        from tracker.camera.sources import list_cameras

        level = cv2.getLogLevel()
        cv2.setLogLevel(0)  # silent
        try:
            return list_cameras()
        except Exception as exc:  # noqa: BLE001 - listing must never stop the app from opening
            log.warning("listing cameras failed: %s", exc)
            return []
        finally:
            cv2.setLogLevel(level)

    def open_source(self, spec: str, camera_mode: tuple[int, int, int] | None = None, start_at: int = 0,
                    fallback_to_demo: bool = False, hold_after_first: bool = False) -> None:
        """Stop what runs and start tracking (or replaying) ``spec``; the source opens in the worker thread.
        ``start_at``: the first frame of a file or session; ``hold_after_first``: show that frame and pause."""
        self.stop_worker()
        if camera_mode is not None:
            self.camera_mode = camera_mode
        self.spec = str(spec)
        self._source_failed = False
        self._fallback_to_demo = fallback_to_demo
        self._ended = False
        if start_at == 0:
            self.plots.reset()
        factory, mode, text = self.run_factory, self.camera_mode, self.spec

        def make_frames():  # runs in the worker thread: opening a camera never blocks the window
            return factory(text, mode, start_at)

        kind = source_kind(self.spec)
        worker = TrackingWorker(make_frames, self.preparer, recorder_factory=self._make_recorder,
                                pause_after=1 if hold_after_first else None)
        worker.frameReady.connect(self._on_frame_ready)
        worker.failed.connect(self._on_failed)
        worker.ended.connect(self._on_ended)
        worker.opened.connect(self._on_opened)
        worker.recordingStarted.connect(self._on_recording_started)
        worker.recordingStopped.connect(self._on_recording_stopped)
        worker.recordingFailed.connect(self._on_recording_failed)
        self.worker = worker
        self.action_record.setEnabled(kind != "session")
        self.play_button.blockSignals(True)
        self.play_button.setChecked(False)
        self.play_button.blockSignals(False)
        self._update_play_icon(False)
        self.show_status(f"opening {spec} …", 3000)
        worker.start()

    def stop_worker(self) -> None:
        w = self.worker
        if w is None:
            return
        self.worker = None
        for sig in (w.frameReady, w.failed, w.ended, w.opened, w.recordingStarted):
            try:
                sig.disconnect()
            except TypeError:
                pass
        w.stop()
        w.set_paused(False)
        if not w.wait(5000):
            log.warning("the tracking thread did not stop within 5 s")
        if w.recording or self.action_record.isChecked():
            self._set_record_checked(False)

    def choose_source(self) -> None:
        from tracker.gui.source_dialog import SourceDialog

        dlg = SourceDialog(self._list_cameras(), self.camera_mode, self)
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted and dlg.choice is not None:
            mode = dlg.choice.camera_mode if dlg.choice.camera_mode != (0, 0, 0) else None
            self.open_source(dlg.choice.spec, mode)

    def _open_video_dialog(self) -> None:
        from tracker.gui.source_dialog import VIDEO_FILTER

        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open a video", "", VIDEO_FILTER)
        if path:
            self.open_source(path)

    def _open_session_dialog(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open a recorded session",
                                                          self.settings.sessions_dir)
        if path:
            self.open_source(path)

    # ------------------------------------------------------------------ worker signals
    def _on_opened(self, info: SourceInfo) -> None:
        self.info = info
        self.source_label.setText(info.description)
        self.setWindowTitle(f"Face Tracker — {info.description}")
        if info.kind != "session":
            self.settings.source = info.spec
        if info.kind == "camera":
            w, h, f = self.camera_mode
            if w:
                self.settings.camera_width, self.settings.camera_height, self.settings.camera_fps = w, h, f
        has_timeline = bool(info.length)
        self.timeline.setVisible(has_timeline or info.kind in ("camera", "demo"))
        self.slider.setVisible(has_timeline)
        if has_timeline:
            self.slider.blockSignals(True)
            self.slider.setRange(0, max(0, info.length - 1))
            self.slider.setValue(info.start_at)
            self.slider.blockSignals(False)
        note, self._note = self._note, ""
        self.show_status(note or f"playing {info.description}", 0 if note else 3000)
        self.sourceOpened.emit(info)

    def _on_frame_ready(self) -> None:
        w = self.worker
        if w is None:
            return
        item = w.take()
        if item is None:
            return
        self.show_display_frame(item)

    def show_display_frame(self, item: DisplayFrame) -> None:
        """Hand one prepared frame to the views (upload only). The panels follow at most
        ``PANEL_HZ`` times a second (:meth:`refresh_panels`): numbers changing faster cannot be read, and
        their layout and repaint would cost the video frames."""
        tf = item.tracked
        self.last_frame = item
        self.overlay.show_frame(tf.frame.image, item.intrinsics or tf.intrinsics, item.vertices_mm, item.normals_cam,
                                item.landmark_points, item.landmark_colors)
        now = time.perf_counter()
        if now - self._head_shown_at >= 1.0 / HEAD_VIEW_HZ or item.head_vertices_cm is None:
            # the orbit view follows at a lower rate: its 34k triangles cost as much to draw as the overlay
            self._head_shown_at = now
            self.head_view.show_head(item.head_vertices_cm, item.normals_head)
        self.plots.append(tf.frame.timestamp_ns / 1e9, item.sigma_mean_px, item.euler_deg)
        self._shown_times.append(time.perf_counter())
        self.frames_displayed += 1
        run = getattr(self.worker, "run_object", None) if self.worker is not None else None
        positions = getattr(run, "positions", None)
        self._position = positions.get(tf.frame.index, tf.frame.index) if positions else tf.frame.index
        self._panels_dirty = True
        self.frameShown.emit(item)

    def refresh_panels(self) -> None:
        """Show the last frame's numbers: pose, expressions, timeline position, tracking state."""
        item = self.last_frame
        if item is None or not self._panels_dirty:
            return
        self._panels_dirty = False
        tf = item.tracked
        fit = tf.fit if tf.tracked else None
        p = fit.params if fit is not None else None
        self.pose_panel.show_pose(item.euler_deg, item.head_position_mm, item.gaze_deg,
                                  None if p is None else p.focal_px, None if fit is None else fit.cost)
        if len(self.expressions.names):
            self.expressions.show_weights(None if p is None else p.expression)
        if self.info is not None and self.info.length:
            if not self.slider.isSliderDown():
                self.slider.blockSignals(True)
                self.slider.setValue(min(self._position, self.slider.maximum()))
                self.slider.blockSignals(False)
            self.position_label.setText(f"{self._position + 1} / {self.info.length}")
        else:
            self.position_label.setText(f"frame {tf.frame.index}")
        message = "tracking" if tf.tracked else (tf.message or "no face")
        if message != self._last_message:
            self._last_message = message
            self.track_label.setText(message)
            self.track_label.setStyleSheet("" if tf.tracked else "color: #d08020")

    def _update_speed(self) -> None:
        t = self._shown_times
        fps = (len(t) - 1) / max(t[-1] - t[0], 1e-6) if len(t) >= 2 else 0.0  # over the last frames shown
        w = self.worker
        timings = dict(self.last_frame.tracked.timings_ms) if self.last_frame is not None else {}
        if self.last_frame is not None:
            timings["prepare"] = self.last_frame.prepare_ms
        if w is not None and w.recording:
            timings["record"] = w.record_ms
        idle = not t or time.perf_counter() - t[-1] > 1.0
        self.speed_panel.show_speed(fps, w.frames_dropped if w else 0, timings, self.overlay.last_paint_ms,
                                    note="paused" if idle and w is not None and w.isRunning() else "")

    def _on_failed(self, message: str) -> None:
        self.last_error = message
        self._source_failed = True
        self.show_status(f"Error: {message}", 0)
        if getattr(self, "_fallback_to_demo", False) and self.frames_displayed == 0:
            self._fallback_to_demo = False
            QtCore.QTimer.singleShot(0, lambda: (self.open_source("demo"),
                                                 self.show_status(f"{message} — showing the demo source", 0)))
            return
        self._message_box("Tracking stopped", message)

    def _on_ended(self, why: str) -> None:
        self._ended = True
        self.refresh_panels()  # the last frame's numbers, without waiting for the panel timer
        if why == "end of the video":
            self.show_status("End of the video" if source_kind(self.spec or "") != "session"
                             else "End of the session", 0)
            self._update_play_icon(True)
            self.play_button.blockSignals(True)
            self.play_button.setChecked(True)
            self.play_button.blockSignals(False)
        if self.action_record.isChecked():
            self._set_record_checked(False)

    # ------------------------------------------------------------------ timeline
    def _set_paused(self, paused: bool) -> None:
        self._update_play_icon(paused)
        finite = self.info is not None and bool(self.info.length)
        if not paused and self.spec and (self.worker is None or self._ended or finite):
            # files and sessions restart where they stopped (their clocks restart with them)
            self.open_source(self.spec, start_at=0 if self._at_end() else self._position + (not self._ended))
            return
        if self.worker is not None:
            self.worker.set_paused(paused)

    def _at_end(self) -> bool:
        return self.info is None or not self.info.length or self._position >= self.info.length - 1

    def _toggle_pause(self) -> None:
        self.play_button.toggle()

    def _update_play_icon(self, paused: bool) -> None:
        sp = QtWidgets.QStyle.StandardPixmap
        self.play_button.setIcon(self.style().standardIcon(sp.SP_MediaPlay if paused else sp.SP_MediaPause))
        self.action_play.setText("Play" if paused else "Pause")

    def _slider_action(self, _action: int) -> None:
        if not self.slider.isSliderDown():
            QtCore.QTimer.singleShot(0, self._seek_to_slider)

    def _seek_to_slider(self) -> None:
        self.seek(self.slider.sliderPosition())

    def seek(self, position: int) -> None:
        """Restart the current file or session at ``position`` (0-based frame on the timeline)."""
        if self.spec is None or self.info is None or not self.info.length:
            return
        paused = self.play_button.isChecked()
        self.open_source(self.spec, start_at=int(position), hold_after_first=paused)
        if paused:
            self.play_button.blockSignals(True)
            self.play_button.setChecked(True)
            self.play_button.blockSignals(False)
            self._update_play_icon(True)

    # ------------------------------------------------------------------ recording
    def _make_recorder(self, folder: Path, first):
        fps = self.info.fps if self.info is not None else 30.0
        version = self.model.version if self.model is not None else ""
        return make_recorder(folder, first, self.info, fps, version)

    def new_session_folder(self) -> Path:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path(self.settings.sessions_dir).expanduser()
        folder = base / f"session-{stamp}"
        k = 1
        while folder.exists():
            k += 1
            folder = base / f"session-{stamp}-{k}"
        return folder

    def _toggle_recording(self, on: bool) -> None:
        if self.worker is None:
            self._set_record_checked(False)
            self.show_status("Nothing to record: open a source first", 5000)
            return
        if on:
            folder = self.new_session_folder()
            self.worker.start_recording(folder)
            self.session_label.setText(f"starting recording in {folder} …")
        else:
            self.worker.stop_recording()

    def start_recording(self, folder: Path | None = None) -> None:
        """Start recording into ``folder`` (a new one under the sessions folder when None)."""
        if self.worker is None:
            return
        self.worker.start_recording(folder or self.new_session_folder())
        self._set_record_checked(True)

    def stop_recording(self) -> None:
        if self.worker is not None:
            self.worker.stop_recording()
        self._set_record_checked(False)

    def _set_record_checked(self, on: bool) -> None:
        self.action_record.blockSignals(True)
        self.action_record.setChecked(on)
        self.action_record.blockSignals(False)
        self.action_record.setText("Stop recording" if on else "Record")

    def _on_recording_started(self, folder: str) -> None:
        self._recording_failed = False
        self._set_record_checked(True)
        self.session_label.setText(f"● REC  {folder}")
        self.session_label.setStyleSheet("color: #ff5050; font-weight: bold")
        self.show_status(f"Recording to {folder}", 3000)

    def _on_recording_stopped(self, folder: str, frames: int) -> None:
        self._set_record_checked(False)
        self.last_session = Path(folder)
        self.session_label.setStyleSheet("")
        self.session_label.setText(f"Session: {folder} ({frames} frames)")
        if self._source_failed:  # the source failed (e.g. camera unplugged) and ended the recording
            self.show_status(f"Error: {self.last_error} — recording saved: {folder} ({frames} frames)", 0)
        elif not self._recording_failed:  # else keep the recording's failure in view
            self.show_status(f"Recording saved: {folder} ({frames} frames)", 0)

    def _on_recording_failed(self, message: str) -> None:
        self.last_error = message
        self._recording_failed = True
        self._set_record_checked(False)
        self.session_label.setStyleSheet("")
        self.show_status(message, 0)
        self._message_box("Recording", message)

    # ------------------------------------------------------------------ overlay, calibration
    def _set_overlay(self, mesh=None, wireframe=None, landmarks=None) -> None:
        self.overlay.set_options(mesh=mesh, wireframe=wireframe, landmarks=landmarks)
        s = self.settings
        s.show_mesh, s.show_wireframe, s.show_landmarks = (self.overlay.show_mesh, self.overlay.show_wireframe,
                                                           self.overlay.show_landmarks)

    @staticmethod
    def _calibration_dialog_class():
        try:
            from tracker.gui.calibration import CalibrationDialog  # noqa: PLC0415 - optional, written elsewhere
        except ImportError:
            return None
        return CalibrationDialog

    def open_calibration(self) -> None:
        """The calibration dialog (``tracker.gui.calibration``) on the current camera. It opens the camera
        itself, so tracking stops while it is open and starts again when it closes; a saved profile is used
        from then on."""
        cls = self._calibration_dialog_class()
        if cls is None:
            self.show_status("camera calibration is not available in this build", 5000)
            return
        resume = self.spec if self.info is not None and self.info.kind == "camera" else None
        source = resume or (self.settings.source if source_kind(self.settings.source or "") == "camera" else "0")
        if resume:
            self.stop_worker()
        try:
            dlg = cls(self, source=source)
        except Exception as exc:  # noqa: BLE001 - a broken dialog must not take the app down
            self._message_box("Calibration", f"the calibration dialog could not open: {exc}")
            if resume:
                self.open_source(resume)
            return
        self.calibration_dialog = dlg
        if hasattr(dlg, "profile_saved"):
            dlg.profile_saved.connect(self._on_profile_saved)
        if resume:
            dlg.finished.connect(lambda _result: self.open_source(resume))
        dlg.show()

    def _on_profile_saved(self, path: str) -> None:
        from tracker.gui.backend import forget_pipelines

        forget_pipelines()  # the next run loads the new camera and face profiles
        self.show_status(f"Calibration saved: {path}", 0)

    # ------------------------------------------------------------------ messages, closing
    def show_status(self, message: str, timeout_ms: int = 0) -> None:
        self.statusBar().showMessage(message, timeout_ms)

    def _message_box(self, title: str, message: str) -> None:
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, title, message,
                                    QtWidgets.QMessageBox.StandardButton.Ok, self)
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setModal(False)
        self.message_box = box
        box.show()

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:  # noqa: N802
        for timer in (self._speed_timer, self._plot_timer, self._panel_timer):
            timer.stop()  # nothing repaints while the window and its plots are torn down
        self.stop_worker()
        for view in (self.overlay, self.head_view):
            try:
                view.release_gl()
            except Exception as exc:  # noqa: BLE001 - closing must not fail over GL clean-up
                log.debug("releasing GL resources: %s", exc)
        if self.save_settings_on_close:
            self.settings.geometry = self.saveGeometry()
            self.settings.window_state = self.splitter.saveState()
            try:
                self.settings.save()
            except Exception as exc:  # noqa: BLE001
                log.warning("could not save the settings: %s", exc)
        super().closeEvent(ev)
