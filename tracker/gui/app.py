"""Starting the app: QApplication, the head model, the main window, the first source."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)


def make_application(argv: list[str] | None = None):
    """The QApplication (created once), with the organisation and application names QSettings uses."""
    from PyQt6 import QtWidgets

    import pyqtgraph as pg
    from tracker.gui.settings import APPLICATION, ORGANISATION

    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication(list(argv if argv is not None else sys.argv[:1]))
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("Face Tracker")
    pg.setConfigOptions(antialias=False)  # software-rendered X servers: antialiased plots cost frames
    return app


def load_model_or_none():
    """The head model, or None (the app then shows landmarks and numbers without the mesh) with a log line."""
    try:
        from tracker.face.build import load_head_model

        return load_head_model()
    except Exception as exc:  # noqa: BLE001 - no data, no cache: run without the mesh, say why
        log.warning("no head model (%s): the 3D mesh is not drawn", exc)
        return None


def run_app(source: str | None = None) -> int:
    """Open the window on ``source`` (camera index, video, session folder, "demo"; None: camera else demo)."""
    app = make_application()
    from tracker.gui.main_window import MainWindow
    from tracker.gui.settings import AppSettings

    model = load_model_or_none()
    window = MainWindow(model, AppSettings.load())
    window.show()
    window.start(source)
    if model is None:
        window.show_status("No head model found: landmarks only (python main.py model builds it)", 0)
    return int(app.exec())
