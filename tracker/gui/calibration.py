"""The camera calibration dialog: guided face calibration, board calibration, and the saved profiles.

- Face tab: the prompt ("turn left", ...), a coverage bar and a 3 x 3 table of the yaw / pitch / distance bins,
  a plot of the focal estimate against keyframes with its 1-sigma band as it converges, the horizontal FOV,
  Accept / Retry. Accept saves the camera profile (method "face") and the user's face profile.
- Board tab: the board spec, live counts (images, board found, views kept), the reprojection error of the
  latest calibration, Accept (saves the profile, method "board").
- Profiles tab: the saved camera profiles; set one's horizontal FOV, or delete it.

The GUI thread never computes: a :class:`CalibrationWorker` (QThread) opens the source, runs the pipeline or
the board detector and the solves, and sends plain-data updates by signal. Tests inject frame factories.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from PyQt6 import QtCore, QtGui, QtWidgets

log = logging.getLogger(__name__)


def hfov_std_deg(hfov_deg: float, focal_px: float, focal_std_px: float) -> float:
    """1-sigma of the horizontal FOV from the focal's: hfov = 2 atan(W / 2f), so with w = W / 2 = f tan(hfov / 2),
    d hfov / d f = -2 w / (f^2 + w^2)."""
    import math

    w = focal_px * math.tan(math.radians(hfov_deg) / 2.0)
    return math.degrees(2.0 * w / (focal_px ** 2 + w ** 2) * focal_std_px)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or exc.__class__.__name__


class CalibrationWorker(QtCore.QThread):
    """Runs one calibration in its own thread.

    mode "face": ``make_frames()`` -> iterator of TrackedFrame; ``make_solver(frames_owner)`` -> FocalSolver;
    each frame goes through a FaceCalibrator; ``face_update(int, object)`` carries the run's generation (the
    number of retries it has processed) and a CalibrationUpdate, so the dialog can drop updates that were queued
    before a retry took effect.
    mode "board": ``make_frames()`` -> iterable of Frame / images; detection per frame, a calibration each time a
    new view is kept (once enough views); ``update(object)`` carries a dict.
    ``failed(str)`` reports an error in words; ``finished_run(str)`` why it stopped.
    """

    update = QtCore.pyqtSignal(object)
    face_update = QtCore.pyqtSignal(int, object)
    failed = QtCore.pyqtSignal(str)
    finished_run = QtCore.pyqtSignal(str)  # noqa: N815 - Qt naming

    def __init__(self, mode: str, make_frames: Callable[[], Iterable], *, make_solver: Callable[[object], object]
                 | None = None, board_spec: str = "", face_options=None, parent=None):
        super().__init__(parent)
        if mode not in ("face", "board"):
            raise ValueError(f"unknown calibration mode '{mode}'")
        self.mode = mode
        self._make_frames = make_frames
        self._make_solver = make_solver
        self.board_spec = board_spec
        self.face_options = face_options
        self._stop = threading.Event()
        self._retry = threading.Event()
        self.generation = 0  # retries processed so far; only the worker thread changes it
        self.lock = threading.Lock()
        self.calibrator = None
        self.board_result = None
        self.collector = None

    def stop(self) -> None:
        self._stop.set()

    def request_retry(self) -> None:
        """Start over at the next frame; updates emitted after that carry ``generation + 1``."""
        self._retry.set()

    def run(self) -> None:
        why = "stopped"
        frames = None
        try:
            frames = self._make_frames()
            why = self._run_face(frames) if self.mode == "face" else self._run_board(frames)
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a crash
            log.info("calibration failed", exc_info=True)
            self.failed.emit(_describe(exc))
            why = "failed"
        finally:
            close = getattr(frames, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # noqa: BLE001
                    log.debug("closing the frame source failed", exc_info=True)
            self.finished_run.emit(why)

    def _run_face(self, frames: Iterator) -> str:
        from tracker.camera.face_calibration import FaceCalibrator

        solver = self._make_solver(frames) if self._make_solver is not None else None
        with self.lock:
            self.calibrator = FaceCalibrator(solver, self.face_options)
        for tf in frames:
            if self._stop.is_set():
                return "stopped"
            with self.lock:
                if self._retry.is_set():
                    self._retry.clear()
                    self.calibrator.retry()
                    self.generation += 1
                if self.calibrator.state == "accepted":
                    return "accepted"
                upd = self.calibrator.add_tracked(tf)
                generation = self.generation
            self.face_update.emit(generation, upd)
        return "end of the source"

    def _run_board(self, frames: Iterable) -> str:
        from tracker.camera.board import BoardSpec
        from tracker.camera.calibration import (BoardViewCollector, CalibrationError, calibrate_views,
                                                check_pose_set)

        spec = BoardSpec.parse(self.board_spec)
        collector = BoardViewCollector(spec)
        self.collector = collector
        last_solved = 0
        for frame in frames:
            if self._stop.is_set():
                return "stopped"
            if self._retry.is_set():
                self._retry.clear()
                collector = BoardViewCollector(spec)
                self.collector = collector
                last_solved = 0
                with self.lock:
                    self.board_result = None
            state = collector.add(frame)
            info = {"state": state, "images": collector.n_images, "detected": collector.n_detected,
                    "kept": len(collector.views), "duplicates": collector.n_duplicates,
                    "corners": 0 if collector.last_detection is None else len(collector.last_detection),
                    "result": None, "message": "", "preview": _preview(frame, collector.last_detection, state)}
            if state == "kept" and len(collector.views) >= collector.options.min_views \
                    and len(collector.views) > last_solved:
                last_solved = len(collector.views)
                try:
                    check_pose_set(collector.views, collector.options)
                    result = calibrate_views(collector.views, collector.options, str(spec))
                    with self.lock:
                        self.board_result = result
                    info["result"] = result
                except CalibrationError as exc:
                    info["message"] = str(exc)
            elif len(collector.views) < collector.options.min_views:
                info["message"] = (f"{len(collector.views)} of {collector.options.min_views} views: show the board "
                                   f"tilted in new positions")
            self.update.emit(info)
        return "end of the source"


class CalibrationDialog(QtWidgets.QDialog):
    """The calibration dialog (module docstring).

    source: a source spec (default: the parent window's last source, else "0"); camera_id: the profile name.
    Injection for tests: ``face_frames()`` -> iterator of TrackedFrame and ``face_solver(frames)`` -> FocalSolver;
    ``board_frames()`` -> iterable of Frames; by default the source is opened and, for the face, tracked by the
    pipeline whose fitter's focal mode does the solves.
    """

    profile_saved = QtCore.pyqtSignal(str)  # noqa: N815 - the saved profile's path

    def __init__(self, parent=None, *, source: str | None = None, camera_id: str | None = None,
                 face_frames: Callable[[], Iterator] | None = None,
                 face_solver: Callable[[object], object] | None = None,
                 board_frames: Callable[[], Iterable] | None = None, face_options=None):
        super().__init__(parent)
        self.setWindowTitle("Camera calibration")
        self.setModal(False)
        self.resize(760, 600)
        if source is None:
            source = getattr(getattr(parent, "settings", None), "source", "") or "0"
        self._face_frames = face_frames
        self._face_solver = face_solver
        self._board_frames = board_frames
        self._face_options = face_options
        self.worker: CalibrationWorker | None = None
        self.face_result = None
        self._pipeline_model = None
        self._history: list[tuple[int, float, float]] = []
        self._face_generation = 0  # retries asked for in the current face run (see CalibrationWorker)
        self._intrinsics = None
        self._build(str(source), camera_id)
        self.refresh_profiles()

    # ------------------------------------------------------------------ layout
    def _build(self, source: str, camera_id: str | None) -> None:
        import pyqtgraph as pg

        top = QtWidgets.QFormLayout()
        self.source_edit = QtWidgets.QLineEdit(source)
        self.source_edit.setToolTip("camera index, video file, 'demo', or (board) a folder of images")
        self.camera_edit = QtWidgets.QLineEdit(camera_id or self._default_camera_id(source))
        top.addRow("Source", self.source_edit)
        top.addRow("Camera id", self.camera_edit)

        self.tabs = QtWidgets.QTabWidget()
        # face tab
        face = QtWidgets.QWidget()
        fl = QtWidgets.QVBoxLayout(face)
        self.prompt_label = QtWidgets.QLabel("Press Start, then follow the prompts")
        font = self.prompt_label.font()
        font.setPointSize(font.pointSize() + 8)
        font.setBold(True)
        self.prompt_label.setFont(font)
        self.prompt_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        fl.addWidget(self.prompt_label)
        self.coverage_bar = QtWidgets.QProgressBar()
        self.coverage_bar.setRange(0, 100)
        self.coverage_bar.setFormat("coverage %p%")
        fl.addWidget(self.coverage_bar)
        self.bins_table = QtWidgets.QTableWidget(3, 3)
        self.bins_table.setHorizontalHeaderLabels(["", "", ""])
        self.bins_table.setVerticalHeaderLabels(["yaw", "pitch", "distance"])
        self.bins_table.horizontalHeader().setVisible(False)
        self.bins_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.bins_table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.bins_table.verticalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.bins_table.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.bins_table.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        row_h = self.bins_table.fontMetrics().height() + 10
        self.bins_table.setFixedHeight(3 * row_h + 2 * self.bins_table.frameWidth())
        fl.addWidget(self.bins_table)
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "keyframes")
        self.plot.setLabel("left", "focal length", units="px")
        self.plot.setMinimumHeight(180)
        self.focal_curve = self.plot.plot([], [], pen=pg.mkPen((40, 120, 220), width=2), symbol="o", symbolSize=5)
        self.band_hi = self.plot.plot([], [], pen=pg.mkPen((40, 120, 220, 90)))
        self.band_lo = self.plot.plot([], [], pen=pg.mkPen((40, 120, 220, 90)))
        self.band = pg.FillBetweenItem(self.band_lo, self.band_hi, brush=pg.mkBrush(40, 120, 220, 60))
        self.plot.addItem(self.band)
        fl.addWidget(self.plot)
        self.fov_label = QtWidgets.QLabel("horizontal FOV: -")
        big = self.fov_label.font()
        big.setPointSize(big.pointSize() + 3)
        self.fov_label.setFont(big)
        self.fov_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        fl.addWidget(self.fov_label)
        self.face_status = QtWidgets.QLabel("")
        self.face_status.setWordWrap(True)
        fl.addWidget(self.face_status)
        row = QtWidgets.QHBoxLayout()
        self.face_start = QtWidgets.QPushButton("Start")
        self.face_retry = QtWidgets.QPushButton("Retry")
        self.face_accept = QtWidgets.QPushButton("Accept")
        for b in (self.face_start, self.face_retry, self.face_accept):
            row.addWidget(b)
        self.face_retry.setEnabled(False)
        self.face_accept.setEnabled(False)
        fl.addLayout(row)
        self.face_start.clicked.connect(self.start_face)
        self.face_retry.clicked.connect(self.retry_face)
        self.face_accept.clicked.connect(self.accept_face)
        self.tabs.addTab(face, "From the face")

        # board tab
        board = QtWidgets.QWidget()
        bl = QtWidgets.QFormLayout(board)
        self.board_edit = QtWidgets.QLineEdit("checkerboard:9x6:25mm")
        self.board_edit.setToolTip("checkerboard:COLSxROWS:SQUAREmm (inner corners) or "
                                   "charuco:COLSxROWS:SQUAREmm:MARKERmm[:DICT] (squares)")
        bl.addRow("Board", self.board_edit)
        self.board_counts = QtWidgets.QLabel("-")
        bl.addRow("Detections", self.board_counts)
        self.board_error = QtWidgets.QLabel("-")
        bl.addRow("Reprojection error", self.board_error)
        self.board_intrinsics = QtWidgets.QLabel("-")
        self.board_intrinsics.setWordWrap(True)
        bl.addRow("Intrinsics", self.board_intrinsics)
        self.board_status = QtWidgets.QLabel("")
        self.board_status.setWordWrap(True)
        bl.addRow(self.board_status)
        self.board_view = pg.GraphicsLayoutWidget()
        self.board_view.setMinimumHeight(220)
        vb = self.board_view.addViewBox(lockAspect=True, invertY=True)
        vb.setMouseEnabled(False, False)
        self.board_image = pg.ImageItem(axisOrder="row-major")
        vb.addItem(self.board_image)
        bl.addRow(self.board_view)
        brow = QtWidgets.QHBoxLayout()
        self.board_start = QtWidgets.QPushButton("Start")
        self.board_retry = QtWidgets.QPushButton("Retry")
        self.board_accept = QtWidgets.QPushButton("Accept")
        for b in (self.board_start, self.board_retry, self.board_accept):
            brow.addWidget(b)
        self.board_accept.setEnabled(False)
        self.board_retry.setEnabled(False)
        bl.addRow(brow)
        self.board_start.clicked.connect(self.start_board)
        self.board_retry.clicked.connect(self.retry_board)
        self.board_accept.clicked.connect(self.accept_board)
        self.tabs.addTab(board, "From a board")

        # profiles tab
        prof = QtWidgets.QWidget()
        pl = QtWidgets.QVBoxLayout(prof)
        self.profile_list = QtWidgets.QListWidget()
        pl.addWidget(self.profile_list)
        prow = QtWidgets.QHBoxLayout()
        self.hfov_spin = QtWidgets.QDoubleSpinBox()
        self.hfov_spin.setRange(10.0, 150.0)
        self.hfov_spin.setDecimals(1)
        self.hfov_spin.setSuffix(" deg")
        self.hfov_spin.setValue(45.0)
        self.set_hfov_button = QtWidgets.QPushButton("Set horizontal FOV")
        self.delete_button = QtWidgets.QPushButton("Delete")
        prow.addWidget(self.hfov_spin)
        prow.addWidget(self.set_hfov_button)
        prow.addWidget(self.delete_button)
        pl.addLayout(prow)
        self.set_hfov_button.clicked.connect(self.set_selected_hfov)
        self.delete_button.clicked.connect(self.delete_selected)
        self.profile_list.currentRowChanged.connect(self._profile_selected)
        self.tabs.addTab(prof, "Profiles")

        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tabs)
        close = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.close)
        layout.addWidget(close)
        self._update_bins({})

    @staticmethod
    def _default_camera_id(source: str) -> str:
        from tracker.camera.profiles import camera_id_for_source

        return camera_id_for_source(source)

    # ------------------------------------------------------------------ frames
    def _open_source(self):
        from tracker.camera.sources import open_source

        return open_source(self.source_edit.text().strip() or "0")

    def _default_face_frames(self):
        from tracker.gui.backend import shared_pipeline

        source = self._open_source()  # first: a wrong source fails fast, before the network loads
        try:
            pipeline = shared_pipeline()
        except Exception:
            source.close()
            raise
        self._pipeline_model = pipeline.model
        pipeline.reset()
        return _Closing(pipeline.track(source), source, pipeline)

    def _default_face_solver(self, frames):
        from tracker.camera.face_calibration import fitter_focal_solver

        return fitter_focal_solver(frames.pipeline.fitter)

    def _default_board_frames(self):
        spec = self.source_edit.text().strip()
        path = Path(spec).expanduser()
        if path.is_dir() and not (path / "meta.json").exists():
            return _image_folder_frames(path)
        return self._open_source()

    # ------------------------------------------------------------------ worker control
    def _stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker.wait(5000)
            self.worker = None

    def _start(self, worker: CalibrationWorker) -> None:
        self._stop_worker()
        self.worker = worker
        worker.failed.connect(self._worker_failed)
        worker.finished_run.connect(self._worker_finished)
        worker.start()

    def _free_the_camera(self) -> str:
        """Stop the main window's tracking run (when it has one): the camera cannot be opened twice and the shared
        pipeline serves one run at a time. Returns a note for the status line."""
        parent = self.parent()
        worker = getattr(parent, "worker", None)
        stop = getattr(parent, "stop_worker", None)
        if callable(stop) and worker is not None:
            stop()
            return " (tracking in the main window was stopped for the calibration)"
        return ""

    def start_face(self) -> None:
        note = "" if self._face_frames is not None else self._free_the_camera()
        self._history = []
        self.face_result = None
        self._draw_history()
        self.face_accept.setEnabled(False)
        self.face_retry.setEnabled(True)
        self.face_status.setText("starting..." + note)
        worker = CalibrationWorker("face", self._face_frames or self._default_face_frames,
                                   make_solver=self._face_solver or self._default_face_solver,
                                   face_options=self._face_options, parent=self)
        self._face_generation = 0
        worker.face_update.connect(self._face_update)
        self._start(worker)

    def retry_face(self) -> None:
        self.prompt_label.setText("starting again")
        self._history = []
        self.face_result = None
        self._draw_history()
        self.face_accept.setEnabled(False)
        if self.worker is not None and self.worker.isRunning() and self.worker.mode == "face":
            self._face_generation += 1
            self.worker.request_retry()
            self.face_status.setText("starting again: follow the prompts")
        else:
            self.start_face()

    def accept_face(self) -> None:
        from tracker.camera import profiles

        if self.worker is None or self.worker.calibrator is None:
            return
        with self.worker.lock:
            try:
                result = self.worker.calibrator.accept()
            except ValueError as exc:
                self.face_status.setText(str(exc))
                return
        self.face_result = result
        camera_id = self.camera_edit.text().strip() or "camera0"
        try:
            path = profiles.save_profile(profiles.CameraProfile(camera_id, result.intrinsics, "face",
                                                                focal_std_px=result.focal_std_px,
                                                                n_views=result.n_keyframes))
            version = getattr(self._pipeline_model, "version", "")
            profiles.save_face_profile(profiles.FaceProfile(result.identity, version, camera_id, result.focal_px,
                                                            result.n_keyframes))
        except (OSError, ValueError) as exc:
            self.face_status.setText(f"could not save the profile: {exc}")
            return
        self._stop_worker()
        self.face_accept.setEnabled(False)
        self.face_status.setText(f"saved: {result.summary()} ({path})")
        self.prompt_label.setText("calibrated")
        self.refresh_profiles()
        self.profile_saved.emit(str(path))

    def start_board(self) -> None:
        from tracker.camera.board import BoardSpec

        try:
            BoardSpec.parse(self.board_edit.text())
        except ValueError as exc:
            self.board_status.setText(str(exc))
            return
        note = "" if self._board_frames is not None else self._free_the_camera()
        self.board_accept.setEnabled(False)
        self.board_retry.setEnabled(True)
        self.board_error.setText("-")
        self.board_intrinsics.setText("-")
        self.board_status.setText("looking for the board..." + note)
        worker = CalibrationWorker("board", self._board_frames or self._default_board_frames,
                                   board_spec=self.board_edit.text(), parent=self)
        worker.update.connect(self._board_update)
        self._start(worker)

    def retry_board(self) -> None:
        self.board_accept.setEnabled(False)
        self.board_error.setText("-")
        self.board_intrinsics.setText("-")
        if self.worker is not None and self.worker.isRunning() and self.worker.mode == "board":
            self.worker.request_retry()
        else:
            self.start_board()

    def accept_board(self) -> None:
        from tracker.camera import profiles

        result = None if self.worker is None else self.worker.board_result
        if result is None:
            return
        camera_id = self.camera_edit.text().strip() or "camera0"
        try:
            path = profiles.save_profile(profiles.CameraProfile(
                camera_id, result.intrinsics, "board", rms_reprojection_px=result.rms_reprojection_px,
                n_views=result.n_views, notes=f"{result.board}; fx std {result.fx_std_px:.2f} px"))
        except (OSError, ValueError) as exc:
            self.board_status.setText(f"could not save the profile: {exc}")
            return
        self._stop_worker()
        self.board_accept.setEnabled(False)
        self.board_status.setText(f"saved {path}")
        self.refresh_profiles()
        self.profile_saved.emit(str(path))

    # ------------------------------------------------------------------ updates (GUI thread)
    def _face_update(self, generation: int, upd) -> None:
        if generation != self._face_generation:
            return  # queued before the last retry took effect: it belongs to the abandoned run
        self.prompt_label.setText(upd.prompt)
        self.coverage_bar.setValue(int(round(100 * upd.coverage)))
        self._update_bins(upd.counts)
        est = upd.estimate
        if est is not None and (not self._history or self._history[-1][0] != est.n_keyframes):
            self._history.append((est.n_keyframes, est.focal_px, est.focal_std_px))
            self._draw_history()
        if est is None and self._history and upd.n_keyframes == 0:  # after a retry
            self._history = []
            self._draw_history()
        if est is not None and upd.hfov_deg is not None:
            self.fov_label.setText(f"focal {est.focal_px:.1f} \u00b1 {est.focal_std_px:.1f} px   \u2022   horizontal FOV "
                                   f"{upd.hfov_deg:.1f}\u00b0 \u00b1 {hfov_std_deg(upd.hfov_deg, est.focal_px, est.focal_std_px):.1f}\u00b0")
        elif not self._history:
            self.fov_label.setText("horizontal FOV: -")
        text = f"{upd.n_keyframes} keyframes, {len(self._history)} solves"
        if upd.message:
            text += f"; {upd.message}"
        self.face_status.setText(text)
        self.face_accept.setEnabled(est is not None and upd.state in ("ready", "collecting"))
        if upd.state == "ready":
            self.face_accept.setDefault(True)

    def _update_bins(self, counts: dict) -> None:
        from tracker.camera.face_calibration import BINS

        need = getattr(getattr(self._face_options, "coverage", None), "per_bin", 3)
        for r, (axis, bins) in enumerate(BINS.items()):
            for c, b in enumerate(bins):
                n = int(counts.get(f"{axis}:{b}", 0))
                item = QtWidgets.QTableWidgetItem(f"{b}: {n}")
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
                colour = (QtGui.QColor(120, 200, 120) if n >= need else QtGui.QColor(235, 200, 110) if n
                          else QtGui.QColor(220, 220, 220))
                item.setBackground(colour)
                self.bins_table.setItem(r, c, item)

    def _draw_history(self) -> None:
        if not self._history:
            for c in (self.focal_curve, self.band_hi, self.band_lo):
                c.setData([], [])
            return
        h = np.asarray(self._history, dtype=np.float64)
        x, f, s = h[:, 0], h[:, 1], h[:, 2]
        self.focal_curve.setData(x, f)
        self.band_hi.setData(x, f + s)
        self.band_lo.setData(x, f - s)

    def _board_update(self, info: dict) -> None:
        if info.get("preview") is not None:
            self.board_image.setImage(info["preview"], autoLevels=False, levels=(0, 255))
        self.board_counts.setText(f"{info['images']} images, board found in {info['detected']} "
                                  f"({info['corners']} corners in the last), {info['kept']} views kept, "
                                  f"{info['duplicates']} near-duplicates skipped")
        res = info.get("result")
        if res is not None:
            self.board_error.setText(f"{res.rms_reprojection_px:.3f} px RMS over {res.n_views} views")
            k = res.intrinsics
            self.board_intrinsics.setText(
                f"fx {k.fx:.1f}, fy {k.fy:.1f}, cx {k.cx:.1f}, cy {k.cy:.1f} px; horizontal FOV {k.hfov_deg:.1f} "
                f"deg; distortion " + ", ".join(f"{c:+.3f}" for c in k.dist_coeffs))
            self.board_accept.setEnabled(True)
        if info.get("message"):
            self.board_status.setText(info["message"])
        elif res is not None:
            self.board_status.setText("calibrated: accept, or keep showing the board to refine")

    def _worker_failed(self, message: str) -> None:
        label = self.face_status if self.tabs.currentIndex() == 0 else self.board_status
        if self.worker is not None and self.worker.mode == "board":
            label = self.board_status
        elif self.worker is not None:
            label = self.face_status
        label.setText(f"error: {message}")

    def _worker_finished(self, why: str) -> None:
        if self.worker is None:
            return
        if self.worker.mode == "face" and why not in ("failed", "accepted"):
            self.face_status.setText(self.face_status.text() + f" ({why})")
        elif self.worker.mode == "board" and why != "failed":
            self.board_status.setText(self.board_status.text() + f" ({why})")

    # ------------------------------------------------------------------ profiles
    def refresh_profiles(self) -> None:
        from tracker.camera import profiles

        self._profiles = profiles.list_profiles()
        self.profile_list.clear()
        for p in self._profiles:
            self.profile_list.addItem(p.summary())
        if not self._profiles:
            self.profile_list.addItem(f"no saved profiles ({profiles.cameras_dir()})")

    def _selected_profile(self):
        row = self.profile_list.currentRow()
        return self._profiles[row] if 0 <= row < len(self._profiles) else None

    def _profile_selected(self, row: int) -> None:
        p = self._selected_profile()
        if p is not None:
            self.hfov_spin.setValue(p.hfov_deg)

    def set_selected_hfov(self) -> None:
        from tracker.camera import profiles

        p = self._selected_profile()
        if p is None:
            return
        profiles.edit_profile(p.camera_id, p.intrinsics.width, p.intrinsics.height, hfov_deg=self.hfov_spin.value())
        self.refresh_profiles()

    def delete_selected(self) -> None:
        from tracker.camera import profiles

        p = self._selected_profile()
        if p is None:
            return
        profiles.delete_profile(p.camera_id, p.intrinsics.width, p.intrinsics.height)
        self.refresh_profiles()

    def closeEvent(self, ev) -> None:  # noqa: N802 - Qt naming
        self._stop_worker()
        super().closeEvent(ev)


class _Closing:
    """An iterator that closes its source when done; carries the pipeline for the solver."""

    def __init__(self, frames, source, pipeline):
        self._frames = iter(frames)
        self.source = source
        self.pipeline = pipeline

    def __iter__(self):
        return self._frames

    def close(self) -> None:
        self.source.close()


def _preview(frame, detection, state: str, max_width: int = 480) -> np.ndarray:
    """(h, w, 3) uint8 RGB: the frame, at most ``max_width`` wide, with the detected corners drawn (green: kept,
    yellow: a near-duplicate view, nothing: no board)."""
    import cv2

    image = getattr(frame, "image", frame)
    image = np.asarray(image)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    scale = min(1.0, max_width / image.shape[1])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image.copy()
    if detection is not None:
        colour = (60, 200, 60) if state == "kept" else (40, 200, 230)
        for x, y in detection.image_points * scale:
            cv2.circle(small, (int(round(x)), int(round(y))), 3, colour, -1, cv2.LINE_AA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)


def _image_folder_frames(folder: Path):
    import cv2

    from tracker.types import Frame

    files = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"))
    if not files:
        raise ValueError(f"no images in the folder {folder}")
    for i, f in enumerate(files):
        image = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if image is not None:
            yield Frame(image, i, i)
