"""The app's frame rate: the real window, the real pipeline, the overlay drawn, on a video at 640x480.

``app_fps(video_path, n_frames)`` runs the main window on the video as fast as it goes (no pacing), with the
overlay view fixed at 640x480 and the frames letterboxed to 640x480, and counts the video frames actually
drawn per second. With no X display it starts its own Xvfb for the run (needs the ``Xvfb`` program).
``python main.py bench pipeline`` reports it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

BENCH_SIZE = (640, 480)


def letterbox_frame(image: np.ndarray, size: tuple[int, int] = BENCH_SIZE) -> np.ndarray:
    """(H, W, 3) -> (size[1], size[0], 3): scaled to fit, padded with black, centred (no distortion)."""
    import cv2

    w_out, h_out = size
    h, w = image.shape[:2]
    s = min(w_out / w, h_out / h)
    nw, nh = max(1, int(round(w * s))), max(1, int(round(h * s)))
    out = np.zeros((h_out, w_out, 3), dtype=np.uint8)
    x0, y0 = (w_out - nw) // 2, (h_out - nh) // 2
    out[y0:y0 + nh, x0:x0 + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if s < 1
                                             else cv2.INTER_LINEAR)
    return out


class _Xvfb:
    """Starts Xvfb on a free display when there is no DISPLAY; a no-op otherwise."""

    def __init__(self, size=(1600, 1000)):
        self.size = size
        self.proc: subprocess.Popen | None = None
        self.old_display: str | None = None

    def __enter__(self):
        if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
            return self
        exe = shutil.which("Xvfb")
        if exe is None:
            raise RuntimeError("no X display and no Xvfb program to start one: install Xvfb or set DISPLAY")
        for n in range(90, 140):
            if Path(f"/tmp/.X{n}-lock").exists() or Path(f"/tmp/.X11-unix/X{n}").exists():
                continue
            proc = subprocess.Popen([exe, f":{n}", "-screen", "0", f"{self.size[0]}x{self.size[1]}x24", "-nolisten",
                                     "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                if Path(f"/tmp/.X11-unix/X{n}").exists():
                    break
                time.sleep(0.05)
            if proc.poll() is None:
                self.proc = proc
                self.old_display = os.environ.get("DISPLAY")
                os.environ["DISPLAY"] = f":{n}"
                return self
        raise RuntimeError("could not start Xvfb on any display :90..:139")

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            if self.old_display is None:
                os.environ.pop("DISPLAY", None)
            else:
                os.environ["DISPLAY"] = self.old_display


def app_fps(video_path: str | os.PathLike, n_frames: int = 150, *, timeout_s: float = 180.0,
            show_landmarks: bool = True, in_process: bool = False) -> dict:
    """Frames per second of the app (pipeline + overlay drawing) on ``video_path`` letterboxed to 640x480.

    Returns fps (video frames drawn per second, after a warm-up frame), CPU milliseconds per drawn frame
    (process, GUI thread, worker threads: what the machine's load does not change), frames_drawn, tracked_share,
    and over the same interval frames_processed (by the pipeline) and frames_dropped (tracked but replaced
    before the window took them),
    and mean per-frame milliseconds: pipeline (the pipeline's ``total``), prepare (mesh and normals in the
    worker), draw (the overlay's paintGL). The video loops when it is shorter than ``n_frames``.

    The window runs in a child process (its own QApplication and X connection; an Xvfb started for it when
    there is no DISPLAY), so the caller needs no Qt. ``in_process``: run here instead (a QApplication and a
    display must be usable, as in the GUI tests). Raises RuntimeError with the reason when it cannot run.
    """
    from tracker.camera.sources import VideoSource

    video_path = Path(video_path)
    VideoSource(video_path).close()  # a missing or unreadable video is reported in words, here
    if n_frames < 2:
        raise ValueError(f"n_frames must be at least 2, got {n_frames}")
    if in_process:
        return _measure(video_path, n_frames, None, timeout_s, show_landmarks)
    cmd = [sys.executable, "-m", "tracker.gui.bench", str(video_path), str(int(n_frames)),
           "--timeout", str(timeout_s)] + ([] if show_landmarks else ["--no-landmarks"])
    env = dict(os.environ)
    if env.get("QT_QPA_PLATFORM") == "offscreen":
        env.pop("QT_QPA_PLATFORM")  # the 3D views need a real (virtual) X display
    with _Xvfb():
        env["DISPLAY"] = os.environ.get("DISPLAY", "")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s + 60,
                                  cwd=str(Path(__file__).resolve().parents[2]))
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"the app benchmark did not finish within {timeout_s + 60:g} s") from exc
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"the app benchmark failed (exit {proc.returncode}): {' | '.join(tail)}")
    return json.loads(lines[-1])


def _measure(video_path: Path, n_frames: int, model, timeout_s: float, show_landmarks: bool) -> dict:
    from PyQt6 import QtCore

    from tracker.camera.sources import VideoSource
    from tracker.gui.app import load_model_or_none, make_application
    from tracker.gui.backend import TrackingRun
    from tracker.gui.main_window import MainWindow
    from tracker.gui.settings import AppSettings
    from tracker.types import Frame

    app = make_application()
    if model is None:
        model = load_model_or_none()

    def transform(frame: Frame) -> Frame:
        return Frame(letterbox_frame(frame.image), frame.timestamp_ns, frame.index)

    def factory(spec, mode, start_at):
        src = VideoSource(spec, realtime=False, loop=True)
        run = TrackingRun(spec, mode, start_at, realtime=False, model=model, source=src,
                          frame_transform=transform)
        return run

    settings = AppSettings(show_mesh=True, show_wireframe=False, show_landmarks=show_landmarks)
    win = MainWindow(model, settings, run_factory=factory, realtime=False)
    win.save_settings_on_close = False  # a benchmark leaves the user's settings alone
    win.overlay_widget.setFixedSize(*BENCH_SIZE)
    win.resize(1400, 900)
    win.show()
    shown: list = []
    win.frameShown.connect(shown.append)
    loop = QtCore.QEventLoop()
    state = {"t0": None, "p0": 0, "t1": None, "p1": 0}

    def cpu():
        w = win.worker
        return (time.process_time(), time.thread_time(),
                (w.thread_cpu_s + w.prepare_cpu_s) if w is not None else 0.0,
                w.frames_in if w is not None else 0, w.frames_dropped if w is not None else 0)

    def check():
        painted = win.overlay.frames_painted
        if state["t0"] is None and painted >= 1:
            state["t0"], state["p0"], state["cpu0"] = time.perf_counter(), painted, cpu()
        if state["t0"] is not None and painted - state["p0"] >= n_frames:
            state["t1"], state["p1"], state["cpu1"] = time.perf_counter(), painted, cpu()
            loop.quit()
        if win.last_error:
            loop.quit()

    timer = QtCore.QTimer()
    timer.timeout.connect(check)
    timer.start(1)
    QtCore.QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    t_start = time.perf_counter()
    win.open_source(str(video_path))
    loop.exec()
    timer.stop()
    error = win.last_error
    win.close()
    app.processEvents()
    if error:
        raise RuntimeError(f"the app stopped: {error}")
    if state["t1"] is None:
        raise RuntimeError(f"the app drew {win.overlay.frames_painted} frames in {timeout_s:g} s "
                           f"(wanted {n_frames + 1})")
    elapsed = state["t1"] - state["t0"]
    drawn = state["p1"] - state["p0"]
    items = shown[1:] or shown

    def mean(values):
        values = [v for v in values if v is not None and np.isfinite(v)]
        return float(np.mean(values)) if values else float("nan")

    (proc0, gui0, work0, in0, drop0), (proc1, gui1, work1, in1, drop1) = state["cpu0"], state["cpu1"]
    frames_in, dropped = in1 - in0, drop1 - drop0
    return {
        "fps": drawn / elapsed,
        # CPU per drawn frame, which the machine's load does not change: the whole process (GL rasterising
        # in Mesa's threads included), the GUI thread, and the worker threads (pipeline and recording; prepare)
        "cpu_ms_per_frame": (proc1 - proc0) * 1e3 / drawn,
        "gui_thread_cpu_ms_per_frame": (gui1 - gui0) * 1e3 / drawn,
        "worker_thread_cpu_ms_per_frame": (work1 - work0) * 1e3 / drawn,
        "frames_drawn": drawn,
        "seconds": elapsed,
        "startup_s": state["t0"] - t_start,
        "frames_processed": frames_in,
        "frames_dropped": dropped,
        "tracked_share": mean([1.0 if it.tracked.tracked else 0.0 for it in items]),
        "pipeline_ms": mean([it.tracked.timings_ms.get("total") for it in items]),
        "prepare_ms": mean([it.prepare_ms for it in items]),
        "draw_ms": win.overlay.paint_ms_total / max(1, win.overlay.paint_count),
        "size": f"{BENCH_SIZE[0]}x{BENCH_SIZE[1]}",
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
        "video": video_path.name,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m tracker.gui.bench VIDEO N``: the measurement itself (what :func:`app_fps` runs), JSON last."""
    parser = argparse.ArgumentParser(description="the app's frame rate on a video at 640x480")
    parser.add_argument("video")
    parser.add_argument("n_frames", type=int)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--no-landmarks", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if hasattr(os, "sched_setaffinity"):
        # the app runs as a user runs it, on every core (a caller may have pinned itself to one; the
        # pipeline's own numeric libraries stay on one thread as configured)
        try:
            os.sched_setaffinity(0, range(os.cpu_count() or 1))
        except OSError as exc:
            log.warning("could not use all cores: %s", exc)
    try:
        result = _measure(Path(args.video), args.n_frames, None, args.timeout, not args.no_landmarks)
    except RuntimeError as exc:
        print(f"app benchmark: {exc}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
