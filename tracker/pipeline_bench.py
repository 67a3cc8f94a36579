"""``python main.py bench pipeline [--video PATH] [--json]``: the whole tracker against MediaPipe Face Mesh.

On the same decoded frames, in one run, one thread each where the library allows it:
- ours: :class:`tracker.pipeline.Pipeline` (ROI, network, fit) per frame: mean and median ms per stage, and
  the share of frames tracked;
- MediaPipe Face Mesh in tracking mode (``solutions.face_mesh``, ``static_image_mode=False``,
  ``refine_landmarks=False``, one face): ms per frame (BGR->RGB included) and the share of frames with a face.
  MediaPipe runs its graph on its own threads and this API has no setting for one thread, so the whole
  process is pinned to one CPU core (``--no-pin`` to not) for these two measurements;
- the ratio ours / MediaPipe of the per-frame processing time (decoding excluded from both), in wall time
  and in CPU time (``time.process_time``: all the process's threads), which a loaded machine disturbs less;
- recording overhead (unpinned again, as the app runs: the writer's encoder thread may use another core):
  tracking with the session writer on vs off (off, on, off, to cancel drift) in wall time and in the
  tracking thread's CPU time, and the time ``SessionWriter.write`` takes on that thread;
- the app's frame rate with the overlay under Xvfb (``tracker.gui.bench.app_fps``) when it is available.

Frames are decoded once into memory first (``decode`` is that time per frame), so both trackers see exactly
the same images.
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_VIDEO = "videos/vr_3.mp4"


def add_arguments(p) -> None:
    p.add_argument("--video", default=None, help=f"video file (default: <data>/{DEFAULT_VIDEO})")
    p.add_argument("--max-frames", type=int, default=None, help="use at most N frames of the video")
    p.add_argument("--landmark-model", default=None, help="landmark network ONNX (default: assets/)")
    p.add_argument("--no-mediapipe", action="store_true", help="skip MediaPipe Face Mesh")
    p.add_argument("--no-recording", action="store_true", help="skip the recording-overhead measurement")
    p.add_argument("--no-app", action="store_true", help="skip the app frame rate under Xvfb")
    p.add_argument("--app-frames", type=int, default=150, help="frames for the app frame rate (default 150)")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin the process to one CPU core (MediaPipe's graph threads then spread out)")


def _pin_one_thread(pin_core: bool = True) -> dict:
    """One thread for OpenCV and for BLAS/OpenMP where it can still be changed; with ``pin_core`` the whole
    process on one CPU core, so MediaPipe (whose graph runs on threads of its own, with no setting for one
    thread in this API) also gets one core's worth of compute."""
    import cv2

    info: dict = {}
    if pin_core and hasattr(os, "sched_setaffinity"):
        try:
            _ORIGINAL_AFFINITY.update(os.sched_getaffinity(0))
            core = min(_ORIGINAL_AFFINITY)
            os.sched_setaffinity(0, {core})
            info["pinned_to_core"] = core
        except OSError as exc:
            info["pinned_to_core"] = f"failed: {exc}"
    cv2.setNumThreads(1)
    # numpy is loaded by now, so OpenBLAS has already started its thread pool: the environment variables
    # alone would leave a worker thread busy-waiting on another core (about 3 ms of CPU per frame)
    from tracker.threads import limit_to_one_thread

    info["blas_threads"] = f"1 ({limit_to_one_thread()})"
    info.update({"opencv_threads": cv2.getNumThreads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")})
    return info


_ORIGINAL_AFFINITY: set[int] = set()


def _unpin() -> None:
    """Back to the CPU cores the process had (the recorder's encoder thread and the app use a second core)."""
    if _ORIGINAL_AFFINITY and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, _ORIGINAL_AFFINITY)


def _stats(values: list[float]) -> dict:
    if not values:
        return {"mean": float("nan"), "median": float("nan"), "p90": float("nan")}
    s = sorted(values)
    return {"mean": float(statistics.fmean(values)), "median": float(statistics.median(values)),
            "p90": float(s[min(len(s) - 1, int(0.9 * len(s)))])}


def load_frames(video: Path, max_frames: int | None) -> tuple[list, float, object]:
    """Decoded frames of ``video`` (all, or the first ``max_frames``), mean decode ms per frame, the source."""
    from tracker.camera.sources import VideoSource

    frames = []
    t_total = 0.0
    with VideoSource(video) as src:
        it = iter(src)
        while max_frames is None or len(frames) < max_frames:
            t0 = time.perf_counter()
            try:
                frame = next(it)
            except StopIteration:
                break
            t_total += time.perf_counter() - t0
            frames.append(frame)
    return frames, 1e3 * t_total / max(len(frames), 1), src


def bench_ours(pipeline, frames, decode_ms: float, hint=None) -> dict:
    from tracker.pipeline import Pipeline  # noqa: F401 - the type, for readers

    pipeline.reset()
    stages = {k: [] for k in ("roi", "detect", "network", "fit", "total")}
    tracked = 0
    detector_runs = 0
    cpu0 = time.process_time()
    for frame in frames:
        tf = pipeline.process(frame, pipeline.intrinsics_for(frame, hint), decode_ms)
        tracked += int(tf.tracked)
        detector_runs += int(tf.timings_ms.get("detect", 0.0) > 0)
        for k in stages:
            stages[k].append(tf.timings_ms.get(k, 0.0))
    cpu_ms = 1e3 * (time.process_time() - cpu0) / max(len(frames), 1)
    processing = [t - decode_ms for t in stages["total"]]
    out = {f"{k}_ms": _stats(v)["mean"] for k, v in stages.items()}
    out["decode_ms"] = decode_ms
    out["processing_ms"] = _stats(processing)
    out["cpu_ms_per_frame"] = cpu_ms
    out["tracked_share"] = tracked / max(len(frames), 1)
    out["detector_runs"] = detector_runs
    return out


def bench_mediapipe(frames) -> dict:
    import numpy as np
    from mediapipe.python.solutions import face_mesh

    mesh = face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False,
                              min_detection_confidence=0.5, min_tracking_confidence=0.5)
    times, found = [], 0
    cpu0 = time.process_time()
    try:
        for frame in frames:
            t0 = time.perf_counter()
            rgb = np.ascontiguousarray(frame.image[:, :, ::-1])
            result = mesh.process(rgb)
            times.append((time.perf_counter() - t0) * 1e3)
            found += int(bool(result.multi_face_landmarks))
    finally:
        cpu_ms = 1e3 * (time.process_time() - cpu0) / max(len(frames), 1)
        mesh.close()
    return {"processing_ms": _stats(times), "cpu_ms_per_frame": cpu_ms, "tracked_share": found / max(len(frames), 1),
            "settings": "static_image_mode=False, refine_landmarks=False, max_num_faces=1"}


def bench_recording(pipeline, frames, fps: float, hint=None) -> dict:
    """Tracking with the session writer off, on, off (the two offs cancel drift).

    Wall-clock ms per frame is what a user sees but on a loaded machine it mostly measures the other
    processes; the tracking thread's CPU ms per frame (``time.thread_time``) is what recording costs the
    tracking thread itself; process CPU adds the writer thread's video encoding (on another core when there is
    one). ``write_call_ms``: wall and CPU time of ``SessionWriter.write`` on the tracking thread."""
    from tracker.session.writer import SessionWriter

    extra = {"close_ms": 0.0}

    def run(record: bool) -> dict:
        pipeline.reset()
        write_wall: list[float] = []
        write_cpu: list[float] = []
        with tempfile.TemporaryDirectory(prefix="bench-session-") as tmp:
            writer = SessionWriter(Path(tmp) / "s", fps=fps) if record else None
            t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
            for frame in frames:
                tf = pipeline.process(frame, pipeline.intrinsics_for(frame, hint))
                if writer is not None:
                    t1, c1 = time.perf_counter(), time.thread_time()
                    writer.write(tf)
                    write_cpu.append((time.thread_time() - c1) * 1e3)
                    write_wall.append((time.perf_counter() - t1) * 1e3)
            wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
            if writer is not None:
                t_close = time.perf_counter()
                summary = writer.close()
                extra["close_ms"] = (time.perf_counter() - t_close) * 1e3
                if summary.error:
                    raise RuntimeError(summary.error)
            proc = time.process_time() - p0
        n = max(len(frames), 1)
        return {"wall": 1e3 * wall / n, "thread_cpu": 1e3 * cpu / n, "process_cpu": 1e3 * proc / n,
                "write_wall": _stats(write_wall)["mean"], "write_cpu": _stats(write_cpu)["mean"]}

    off1 = run(False)
    on = run(True)
    off2 = run(False)

    def off(key: str) -> float:
        return 0.5 * (off1[key] + off2[key])

    return {"wall_ms_per_frame_off": off("wall"), "wall_ms_per_frame_on": on["wall"],
            "overhead_wall_ms_per_frame": on["wall"] - off("wall"),
            "tracking_thread_cpu_ms_per_frame_off": off("thread_cpu"),
            "tracking_thread_cpu_ms_per_frame_on": on["thread_cpu"],
            "overhead_tracking_thread_cpu_ms_per_frame": on["thread_cpu"] - off("thread_cpu"),
            "overhead_process_cpu_ms_per_frame": on["process_cpu"] - off("process_cpu"),
            "write_call_ms": on["write_wall"], "write_call_cpu_ms": on["write_cpu"],
            "drain_at_close_ms": extra["close_ms"], "wall_off_runs_ms": [off1["wall"], off2["wall"]]}


def bench_app(video: Path, n_frames: int) -> dict:
    try:
        from tracker.gui.bench import app_fps
    except ImportError as exc:
        return {"status": f"missing: tracker.gui.bench.app_fps is not available ({exc})"}
    try:
        result = app_fps(video, n_frames)
    except Exception as exc:  # noqa: BLE001 - no display, no Xvfb: reported, not fatal
        return {"status": f"missing: {exc}"}
    return dict(result, status="ok")


def run(args) -> dict:
    from tracker import paths
    from tracker.cli import CommandError
    from tracker.camera.sources import SourceError
    from tracker.pipeline import Pipeline, PipelineError, PipelineOptions

    threads = _pin_one_thread(not args.no_pin)
    if args.video:
        video = Path(args.video)
    else:
        data = paths.data_dir()
        if data is None:
            raise CommandError("no video given and no data folder found: pass --video PATH or set TRACKER_DATA")
        video = data / DEFAULT_VIDEO
    try:
        frames, decode_ms, src = load_frames(video, args.max_frames)
    except SourceError as exc:
        raise CommandError(str(exc)) from exc
    if not frames:
        raise CommandError(f"{video}: no frames")
    try:
        pipeline = Pipeline(PipelineOptions(
            landmark_model=Path(args.landmark_model) if args.landmark_model else None, threads=1))
    except PipelineError as exc:
        raise CommandError(str(exc)) from exc
    h, w = frames[0].image.shape[:2]
    results: dict = {"video": str(video), "frames": len(frames), "size": f"{w}x{h}", "threads": threads,
                     "pipeline": pipeline.describe()}
    # warm-up (onnxruntime allocations, caches) on a few frames, not counted
    for frame in frames[: min(3, len(frames))]:
        pipeline.process(frame)
    ours = bench_ours(pipeline, frames, decode_ms)
    results["ours"] = ours
    if not args.no_mediapipe:
        mp = bench_mediapipe(frames)
        results["mediapipe"] = mp
        results["ratio_ours_over_mediapipe"] = ours["processing_ms"]["mean"] / mp["processing_ms"]["mean"]
        results["ratio_ours_over_mediapipe_median"] = (ours["processing_ms"]["median"]
                                                       / mp["processing_ms"]["median"])
        results["ratio_ours_over_mediapipe_cpu"] = ours["cpu_ms_per_frame"] / mp["cpu_ms_per_frame"]
    _unpin()  # recording and the app run as they would for a user: tracking thread plus helper threads
    if not args.no_recording:
        results["recording"] = bench_recording(pipeline, frames, src.fps)
    if not args.no_app:
        results["app"] = bench_app(video, args.app_frames)
    return results
