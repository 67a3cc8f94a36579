"""What the app remembers between runs, stored with QSettings (organisation "FaceTracker", app "face-tracker").

Tests point QSettings at a temporary folder with :func:`use_settings_dir` (INI files there) so the user's real
settings are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from PyQt6 import QtCore

ORGANISATION = "FaceTracker"
APPLICATION = "face-tracker"


def use_settings_dir(folder: str | Path) -> None:
    """Store settings as INI files under ``folder`` from now on (for tests and portable installs)."""
    QtCore.QSettings.setDefaultFormat(QtCore.QSettings.Format.IniFormat)
    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, str(folder))


def _qsettings() -> QtCore.QSettings:
    return QtCore.QSettings(QtCore.QSettings.defaultFormat(), QtCore.QSettings.Scope.UserScope, ORGANISATION,
                            APPLICATION)


@dataclass
class AppSettings:
    """source: the last source spec ("0" a camera index, a video path, a session folder, "demo", "" none yet).
    camera_width/height/fps: the camera mode asked for (0: the camera's default).
    show_mesh/show_wireframe/show_landmarks: overlay options. sessions_dir: where recordings go.
    geometry/window_state: the main window's, as Qt saves them."""

    source: str = ""
    camera_width: int = 640
    camera_height: int = 480
    camera_fps: int = 30
    show_mesh: bool = True
    show_wireframe: bool = False
    show_landmarks: bool = True
    sessions_dir: str = str(Path.home() / "FaceTracker" / "sessions")
    geometry: QtCore.QByteArray | None = None
    window_state: QtCore.QByteArray | None = None

    @classmethod
    def load(cls) -> "AppSettings":
        s = _qsettings()
        out = cls()
        for f in fields(cls):
            if not s.contains(f.name):
                continue
            default = getattr(out, f.name)
            value = s.value(f.name)
            try:
                if isinstance(default, bool):
                    value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
                elif isinstance(default, int):
                    value = int(value)
                elif isinstance(default, str):
                    value = str(value)
                elif f.name in ("geometry", "window_state"):
                    value = value if isinstance(value, QtCore.QByteArray) else None
            except (TypeError, ValueError):
                continue  # a hand-edited or foreign value: keep the default
            setattr(out, f.name, value)
        return out

    def save(self) -> None:
        s = _qsettings()
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                s.remove(f.name)
            else:
                s.setValue(f.name, value)
        s.sync()

    @staticmethod
    def file_name() -> str:
        return _qsettings().fileName()
