"""``python main.py track SRC --out DIR``: headless tracking of a video file, camera or session into a session."""

from __future__ import annotations

from pathlib import Path

from tracker.cli import CommandError


def add_arguments(parser) -> None:
    parser.add_argument("source", metavar="SRC",
                        help="a video file, a camera index (0, 1, ...), a recorded session folder, or 'demo'")
    parser.add_argument("--out", required=True, metavar="DIR", help="the new session folder (must not exist or be empty)")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames")
    parser.add_argument("--no-video", action="store_true", help="record the per-frame results only, not the frames")
    parser.add_argument("--hfov", type=float, default=None, metavar="DEG",
                        help="horizontal field of view when the camera has no calibration profile (default 45)")
    parser.add_argument("--landmark-model", default=None, metavar="ONNX", help="landmark network (default: assets/)")
    parser.add_argument("--width", type=int, default=None, help="camera capture width")
    parser.add_argument("--height", type=int, default=None, help="camera capture height")
    parser.add_argument("--fps", type=float, default=None, help="camera capture frame rate")
    parser.add_argument("--redetect-every", type=int, default=0, metavar="N",
                        help="run the face detector every N frames even while tracking (0: only when lost)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def camera_id_for(spec: str) -> str:
    """The profile id of a source spec: ``camera<N>`` for a camera index, the file's stem for a video."""
    text = str(spec).strip()
    return f"camera{int(text)}" if text.isdigit() else Path(text).stem


def profile_intrinsics(spec: str, width: int, height: int):
    """Saved calibration for this source at this size, or None."""
    try:
        from tracker.camera.profiles import load_profile
    except ImportError:
        return None
    try:
        return load_profile(camera_id_for(spec), width, height)
    except Exception:  # noqa: BLE001 - a broken profile means "uncalibrated", never a failed run
        return None


def run(args) -> int:
    import logging

    from tracker.camera.sources import SourceError, open_source
    from tracker.pipeline import Pipeline, PipelineError, PipelineOptions
    from tracker.session.records import SessionError, SessionWriteError
    from tracker.session.recording import ProgressBar, record_run
    from tracker.session.writer import SessionWriter, WriterOptions
    from tracker.types import DEFAULT_HFOV_DEG

    log = logging.getLogger("tracker.cli.track")
    if args.max_frames is not None and args.max_frames < 1:
        raise CommandError(f"--max-frames must be 1 or more, got {args.max_frames}")
    if args.hfov is not None and not 1.0 <= args.hfov <= 179.0:
        raise CommandError(f"--hfov must be in [1, 179] degrees, got {args.hfov}")
    try:
        source = open_source(args.source, width=args.width, height=args.height, fps=args.fps)
    except (SourceError, SessionError) as exc:
        raise CommandError(str(exc)) from exc
    try:
        intr = None if args.hfov is not None else profile_intrinsics(args.source, *source.size)
        if intr is not None:
            log.info("using the calibration profile of %s", camera_id_for(args.source))
        options = PipelineOptions(landmark_model=Path(args.landmark_model) if args.landmark_model else None,
                                  intrinsics=intr, hfov_deg=args.hfov or DEFAULT_HFOV_DEG,
                                  redetect_every=max(0, args.redetect_every))
        try:
            pipeline = Pipeline(options)
        except PipelineError as exc:
            raise CommandError(str(exc)) from exc
        meta = dict(pipeline.describe(), source=str(args.source), expression_names=list(pipeline.model.expression_names))
        try:
            writer = SessionWriter(args.out, fps=source.fps, camera=source.description,
                                   intrinsics=pipeline.intrinsics_for(_probe_frame(source), source.intrinsics_hint),
                                   meta=meta, options=WriterOptions(video=not args.no_video))
        except SessionWriteError as exc:
            raise CommandError(str(exc)) from exc
        total = source.length
        if args.max_frames is not None:
            total = min(total, args.max_frames) if total else None
        bar = None if args.quiet else ProgressBar(total if not source.is_live else None)
        _stop_on_sigterm()
        result = record_run(pipeline.track(source, max_frames=args.max_frames), writer,
                            video=not args.no_video, max_frames=args.max_frames,
                            on_frame=bar.update if bar else None)
        if bar is not None:
            bar.finish()
    finally:
        source.close()
    s = result.summary
    share = 100.0 * result.tracked / max(result.frames, 1)
    print(f"{result.frames} frames in {result.seconds:.1f} s ({result.frames / max(result.seconds, 1e-9):.1f} fps), "
          f"face tracked in {share:.0f}%; session {s.folder}: {s.frames} records, {s.video_frames} video frames")
    if result.interrupted:
        raise KeyboardInterrupt
    if result.error:
        raise CommandError(f"{result.error} (the recording up to then is kept in {s.folder})")
    return 0


def _stop_on_sigterm() -> None:
    """SIGTERM ends the run like Ctrl-C: the recording is closed properly (a kill -9 is covered by the
    session format itself)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _probe_frame(source):
    """A stand-in frame of the source's size for the default intrinsics."""
    import numpy as np

    from tracker.types import Frame

    w, h = source.size
    return Frame(np.zeros((max(h, 1), max(w, 1), 3), np.uint8), 0, 0)
