"""``python -m tracker.gui.screenshot VIDEO OUT.png [--frames N]``: a screenshot of the app tracking a clip.

Runs the real window on the video (as fast as it goes), pauses after ``--frames`` tracked frames, and saves
what the X server shows of the window (the OpenGL views included). Starts an Xvfb when there is no DISPLAY.
Used for the README's picture (``docs/screenshot.png``).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)


def take_screenshot(video: Path, out: Path, frames: int = 240, size: tuple[int, int] = (1440, 900),
                    timeout_s: float = 300.0) -> Path:
    """Track ``video`` in the window until ``frames`` frames were tracked, pause, save the window to ``out``."""
    from tracker.gui.app import load_model_or_none, make_application
    from tracker.gui.main_window import MainWindow
    from tracker.gui.settings import AppSettings

    app = make_application()
    model = load_model_or_none()
    win = MainWindow(model, AppSettings(), realtime=False)
    win.save_settings_on_close = False
    win.resize(*size)
    win.move(0, 0)
    win.show()
    tracked = [0]
    win.frameShown.connect(lambda item: tracked.__setitem__(0, tracked[0] + item.tracked.tracked))
    win.open_source(str(video))
    deadline = time.monotonic() + timeout_s
    while tracked[0] < frames and time.monotonic() < deadline and not win._ended and not win.last_error:
        app.processEvents()
        time.sleep(0.002)
    if win.last_error:
        raise RuntimeError(win.last_error)
    if win.worker is not None:
        win.worker.set_paused(True)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:  # the frame in flight, the panels, the plots and the speed line settle
        app.processEvents()
        time.sleep(0.01)
    win.refresh_panels()
    win._update_speed()
    win.plots.redraw()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    geo = win.frameGeometry()
    image = app.primaryScreen().grabWindow(0, geo.x(), geo.y(), geo.width(), geo.height())
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(out)):
        raise RuntimeError(f"could not write {out}")
    win.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--frames", type=int, default=240, help="tracked frames before the picture")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not os.environ.get("DISPLAY"):
        # run in a child on a virtual display, so this process never holds an X connection that dies with it
        from tracker.gui.bench import _Xvfb

        with _Xvfb(size=(1600, 1000)):
            return subprocess.run([sys.executable, "-m", "tracker.gui.screenshot", *(argv or sys.argv[1:])],
                                  env=dict(os.environ)).returncode
    try:
        print(take_screenshot(args.video, args.out, args.frames))
    except RuntimeError as exc:
        print(f"screenshot: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
