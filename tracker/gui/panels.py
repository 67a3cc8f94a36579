"""Side panels: head pose and gaze, the 53 expression weights, speed, and plots over time.

Each panel has one ``show_*`` method taking plain numbers; they only set text, paint bars or append to plots.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets


def _mono_label(text: str = "") -> QtWidgets.QLabel:
    label = QtWidgets.QLabel(text)
    font = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
    label.setFont(font)
    label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class PosePanel(QtWidgets.QGroupBox):
    """Head rotation (yaw, pitch, roll in degrees; signs of ``tracker.face.pose``), the head's position in the
    camera (x, y, z in mm), gaze (yaw and pitch of each eye relative to the head, degrees), focal, fit cost."""

    FIELDS = ("yaw", "pitch", "roll", "x", "y", "z", "gaze L", "gaze R", "focal", "cost")

    def __init__(self, parent=None):
        super().__init__("Head pose", parent)
        grid = QtWidgets.QGridLayout(self)
        grid.setContentsMargins(6, 4, 6, 4)
        grid.setVerticalSpacing(1)
        self.values: dict[str, QtWidgets.QLabel] = {}
        for i, name in enumerate(self.FIELDS):
            grid.addWidget(QtWidgets.QLabel(name), i % 5, 2 * (i // 5))
            value = _mono_label("-")
            value.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
            value.setMinimumWidth(110)
            grid.addWidget(value, i % 5, 2 * (i // 5) + 1)
            self.values[name] = value

    def show_pose(self, euler_deg: tuple[float, float, float] | None, translation_mm: np.ndarray | None,
                  gaze_deg: tuple[tuple[float, float], tuple[float, float]] | None, focal_px: float | None,
                  cost: float | None) -> None:
        v = self.values
        if euler_deg is None:
            for label in v.values():
                label.setText("-")
            return
        for name, a in zip(("yaw", "pitch", "roll"), euler_deg):
            v[name].setText(f"{a:+7.1f} deg")
        for name, t in zip(("x", "y", "z"), translation_mm):
            v[name].setText(f"{t:+7.1f} mm")
        if gaze_deg is not None:
            for name, (h, e) in zip(("gaze L", "gaze R"), gaze_deg):
                v[name].setText(f"{h:+5.1f} {e:+5.1f}")
        v["focal"].setText(f"{focal_px:7.1f} px" if focal_px is not None else "-")
        v["cost"].setText(f"{cost:9.3g}" if cost is not None else "-")

    def text(self, name: str) -> str:
        return self.values[name].text()


class ExpressionBars(QtWidgets.QWidget):
    """The expression weights in [0, 1] as horizontal bars with their names, in two columns."""

    def __init__(self, names: tuple[str, ...] = (), parent=None):
        super().__init__(parent)
        self.names: tuple[str, ...] = ()
        self.weights = np.zeros(0)
        self.set_names(names)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Minimum)

    def set_names(self, names: tuple[str, ...]) -> None:
        self.names = tuple(names)
        self.weights = np.zeros(len(self.names))
        self.setMinimumHeight(self._row_h() * ((len(self.names) + 1) // 2) + 4)
        self.updateGeometry()
        self.update()

    def _row_h(self) -> int:
        return QtGui.QFontMetrics(self._font()).height() + 1

    def _font(self) -> QtGui.QFont:
        font = QtGui.QFont(self.font())
        font.setPointSizeF(max(6.5, font.pointSizeF() * 0.8))
        return font

    def show_weights(self, weights: np.ndarray | None) -> None:
        if weights is None:
            self.weights = np.zeros(len(self.names))
        else:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (len(self.names),):
                raise ValueError(f"expected {len(self.names)} weights, got {w.shape}")
            self.weights = np.clip(w, 0.0, 1.0)
        self.update()

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802
        return QtCore.QSize(360, self.minimumHeight())

    def paintEvent(self, ev) -> None:  # noqa: N802
        p = QtGui.QPainter(self)
        p.setFont(self._font())
        fm = p.fontMetrics()
        row = self._row_h()
        half = (len(self.names) + 1) // 2
        col_w = self.width() // 2
        name_w = max((fm.horizontalAdvance(n) for n in self.names), default=60) + 6
        bar_w = max(10, col_w - name_w - 8)
        bar_color = QtGui.QColor(90, 170, 255)
        hot = QtGui.QColor(255, 150, 60)
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        for i, (name, w) in enumerate(zip(self.names, self.weights)):
            x = (i // half) * col_w
            y = (i % half) * row + 2
            p.setBrush(QtGui.QColor(60, 60, 66))
            p.drawRect(x + name_w, y + 2, bar_w, row - 4)
            p.setBrush(hot if w > 0.5 else bar_color)
            p.drawRect(x + name_w, y + 2, int(round(bar_w * w)), row - 4)
            p.setPen(self.palette().color(QtGui.QPalette.ColorRole.WindowText))
            p.drawText(QtCore.QRect(x, y, name_w - 4, row), int(QtCore.Qt.AlignmentFlag.AlignRight
                                                                 | QtCore.Qt.AlignmentFlag.AlignVCenter), name)
            p.setPen(QtCore.Qt.PenStyle.NoPen)
        p.end()


class SpeedPanel(QtWidgets.QGroupBox):
    """Displayed frames per second, dropped frames, and the per-stage milliseconds of the last frame."""

    def __init__(self, parent=None):
        super().__init__("Speed", parent)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        self.fps_label = _mono_label("- fps")
        font = self.fps_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.fps_label.setFont(font)
        self.stages_label = _mono_label("")
        self.stages_label.setWordWrap(True)
        lay.addWidget(self.fps_label)
        lay.addWidget(self.stages_label)
        self.fps = 0.0

    def show_speed(self, fps: float, dropped: int, timings_ms: dict[str, float], draw_ms: float,
                   note: str = "") -> None:
        """fps: frames shown per second (over the last frames shown); dropped: frames tracked but replaced
        before the window could show them; note: e.g. "paused"."""
        self.fps = float(fps)
        self.fps_label.setText(f"{fps:5.1f} fps   dropped {dropped}" + (f"   ({note})" if note else ""))
        parts = [f"{k} {v:.1f}" for k, v in timings_ms.items()]
        parts.append(f"draw {draw_ms:.1f}")
        self.stages_label.setText("ms: " + "  ".join(parts))


class TimePlots(pg.GraphicsLayoutWidget):
    """Scrolling plots of the last ``window_s`` seconds: mean landmark sigma (px), and yaw/pitch/roll (deg).

    Time runs on the x axis relative to the newest sample (0 = now), and the y ranges are fixed, so the axes
    never change and pyqtgraph repaints only the curves (a changing axis costs ~40 ms a repaint in a
    software-rendered X server).
    """

    def __init__(self, window_s: float = 10.0, history: int = 600, parent=None):
        super().__init__(parent)
        self.setBackground((28, 30, 36))
        self.window_s = float(window_s)
        self._t: deque[float] = deque(maxlen=history)
        self._sigma: deque[float] = deque(maxlen=history)
        self._pose = [deque(maxlen=history) for _ in range(3)]
        self._dirty = False
        self.sigma_plot = self.addPlot(row=0, col=0)
        self.pose_plot = self.addPlot(row=1, col=0)
        for plot, label, units, yr in ((self.sigma_plot, "sigma", "px", (0, 8)),
                                       (self.pose_plot, "pose", "deg", (-45, 45))):
            plot.setLabel("left", label, units=units)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.setMenuEnabled(False)
            plot.setXRange(-self.window_s, 0, padding=0)
            plot.setYRange(*yr, padding=0)
            plot.getAxis("left").setWidth(48)
        self.pose_plot.setLabel("bottom", "seconds ago")
        self.sigma_curve = self.sigma_plot.plot(pen=pg.mkPen((255, 200, 60), width=1.5))
        self.pose_plot.addLegend(offset=(5, 5), labelTextSize="7pt")
        colors = ((255, 90, 90), (90, 220, 90), (90, 160, 255))
        self.pose_curves = [self.pose_plot.plot(pen=pg.mkPen(c, width=1.5), name=n)
                            for c, n in zip(colors, ("yaw", "pitch", "roll"))]
        self.setMinimumHeight(180)

    def reset(self) -> None:
        """Forget the history (not ``clear``: GraphicsLayoutWidget binds that name to removing all plots)."""
        self._t.clear()
        self._sigma.clear()
        for d in self._pose:
            d.clear()
        self._dirty = True
        self.redraw()

    def append(self, t_s: float, sigma_px: float, euler_deg: tuple[float, float, float] | None) -> None:
        """One sample; NaN where there was no face (a gap in the curves). A jump back in time (a seek or a
        new source) starts the history afresh."""
        if self._t and t_s < self._t[-1]:
            self.reset()
        self._t.append(t_s)
        self._sigma.append(sigma_px)
        for d, a in zip(self._pose, euler_deg if euler_deg is not None else (np.nan,) * 3):
            d.append(a)
        self._dirty = True

    def redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        t = np.fromiter(self._t, dtype=np.float64)
        if t.size:
            t = t - t[-1]
        keep = t >= -self.window_s
        sigma = np.fromiter(self._sigma, dtype=np.float64)
        top = np.nanmax(sigma[keep]) if keep.any() and np.isfinite(sigma[keep]).any() else 0.0
        if top > self.sigma_plot.viewRange()[1][1]:  # grow (rarely) so large sigmas stay in view
            self.sigma_plot.setYRange(0, float(np.ceil(top * 1.25)), padding=0)
        self.sigma_curve.setData(t[keep], sigma[keep], connect="finite")
        for c, d in zip(self.pose_curves, self._pose):
            c.setData(t[keep], np.fromiter(d, dtype=np.float64)[keep], connect="finite")
