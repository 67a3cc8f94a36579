"""The source chooser: a camera (with resolution and frame rate), a video file, a recorded session, or the demo."""

from __future__ import annotations

from dataclasses import dataclass

from PyQt6 import QtCore, QtWidgets

#: capture modes offered for cameras (the camera may choose the nearest one it has)
RESOLUTIONS = ((640, 480), (1280, 720), (1920, 1080), (320, 240))
FRAME_RATES = (30, 60, 15)
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v);;All files (*)"


@dataclass(frozen=True)
class SourceChoice:
    spec: str
    camera_mode: tuple[int, int, int] = (0, 0, 0)


class SourceDialog(QtWidgets.QDialog):
    """Lists the cameras (``cameras``: objects with ``index`` and ``name``) and offers files and the demo.

    ``choice`` holds the answer after ``exec()`` returns Accepted.
    """

    def __init__(self, cameras, current_mode: tuple[int, int, int] = (640, 480, 30), parent=None):
        super().__init__(parent)
        self.setWindowTitle("Choose a source")
        self.choice: SourceChoice | None = None
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(QtWidgets.QLabel("Cameras:"))
        self.camera_list = QtWidgets.QListWidget()
        for cam in cameras:
            item = QtWidgets.QListWidgetItem(f"{cam.index}: {cam.name}")
            item.setData(QtCore.Qt.ItemDataRole.UserRole, int(cam.index))
            self.camera_list.addItem(item)
        if not cameras:
            item = QtWidgets.QListWidgetItem("no camera found")
            item.setFlags(QtCore.Qt.ItemFlag.NoItemFlags)
            self.camera_list.addItem(item)
        else:
            self.camera_list.setCurrentRow(0)
        self.camera_list.itemDoubleClicked.connect(lambda _: self._accept_camera())
        lay.addWidget(self.camera_list)
        mode = QtWidgets.QHBoxLayout()
        self.resolution = QtWidgets.QComboBox()
        for w, h in RESOLUTIONS:
            self.resolution.addItem(f"{w} x {h}", f"{w}x{h}")
        self.frame_rate = QtWidgets.QComboBox()
        for f in FRAME_RATES:
            self.frame_rate.addItem(f"{f} fps", f)
        w, h, f = current_mode
        i = self.resolution.findData(f"{w}x{h}")
        self.resolution.setCurrentIndex(max(i, 0))
        i = self.frame_rate.findData(f)
        self.frame_rate.setCurrentIndex(max(i, 0))
        mode.addWidget(QtWidgets.QLabel("Resolution"))
        mode.addWidget(self.resolution)
        mode.addWidget(QtWidgets.QLabel("Frame rate"))
        mode.addWidget(self.frame_rate)
        lay.addLayout(mode)
        buttons = QtWidgets.QHBoxLayout()
        self.camera_button = QtWidgets.QPushButton("Use camera")
        self.camera_button.setEnabled(bool(cameras))
        self.camera_button.clicked.connect(self._accept_camera)
        video = QtWidgets.QPushButton("Video file…")
        video.clicked.connect(self._choose_video)
        session = QtWidgets.QPushButton("Session folder…")
        session.clicked.connect(self._choose_session)
        demo = QtWidgets.QPushButton("Demo")
        demo.clicked.connect(lambda: self._accept(SourceChoice("demo")))
        cancel = QtWidgets.QPushButton("Cancel")
        cancel.clicked.connect(self.reject)
        for b in (self.camera_button, video, session, demo, cancel):
            buttons.addWidget(b)
        lay.addLayout(buttons)

    def _accept(self, choice: SourceChoice) -> None:
        self.choice = choice
        self.accept()

    def _accept_camera(self) -> None:
        item = self.camera_list.currentItem()
        if item is None or item.data(QtCore.Qt.ItemDataRole.UserRole) is None:
            return
        w, h = (int(v) for v in self.resolution.currentData().split("x"))
        self._accept(SourceChoice(str(item.data(QtCore.Qt.ItemDataRole.UserRole)),
                                  (w, h, int(self.frame_rate.currentData()))))

    def _choose_video(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open a video", "", VIDEO_FILTER)
        if path:
            self._accept(SourceChoice(path))

    def _choose_session(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open a recorded session")
        if path:
            self._accept(SourceChoice(path))
