"""What the worker thread runs: a source opened and tracked, a session replayed, a recording written.

Plain Python (no Qt): these objects are created and iterated in the worker thread.
"""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tracker.types import Intrinsics, TrackedFrame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceInfo:
    """What the window shows about an open source. length: frames (None when live); kind: camera, video,
    session, demo."""

    spec: str
    kind: str
    description: str
    fps: float
    length: int | None
    size: tuple[int, int]
    start_at: int = 0


def source_kind(spec: str) -> str:
    text = str(spec).strip()
    if text.lower() == "demo":
        return "demo"
    if text.isdigit():
        return "camera"
    if Path(text).expanduser().is_dir():
        return "session"
    return "video"


_pipelines: dict[int, object] = {}
_pipelines_lock = threading.Lock()


def shared_pipeline(model=None):
    """One ``tracker.pipeline.Pipeline`` per head model, built on first use (loading the network and the
    detector takes a while) and reused by every later run; only one run uses it at a time."""
    from tracker.pipeline import Pipeline

    with _pipelines_lock:
        key = id(model)
        pipe = _pipelines.get(key)
        if pipe is None:
            pipe = _pipelines[key] = Pipeline(model=model)
        return pipe


def forget_pipelines() -> None:
    """Drop the shared pipelines (after a new calibration or face profile: the next run loads them again)."""
    with _pipelines_lock:
        _pipelines.clear()


def untracked(frames, source, message: str) -> Iterator[TrackedFrame]:
    """The frames shown without tracking (when the pipeline cannot start), each saying why."""
    hint = getattr(source, "intrinsics_hint", None)
    for frame in frames:
        intr = hint.scaled_to(frame.width, frame.height) if hint is not None else Intrinsics.from_fov(
            frame.width, frame.height)
        yield TrackedFrame(frame=frame, intrinsics=intr, roi=None, landmarks=None, fit=None, tracked=False,
                           message=message)


class TrackingRun:
    """A frame source tracked by the pipeline: ``iter(run)`` gives TrackedFrames; ``close()`` ends it.

    spec: as :func:`tracker.camera.sources.open_source` takes it. camera_mode: (width, height, fps) for
    cameras (0 for the camera's default). start_at: frames of a file to skip first (the timeline).
    realtime: files paced at their frame rate. model: the head model the pipeline fits (shared with the
    views). Raises the source's error (in words) when it cannot open. When the pipeline cannot start (no
    landmark network, ...) the video still plays, every frame untracked with the reason as its message.
    source: an already open frame source (instead of opening ``spec``); frame_transform: Frame -> Frame
    applied before tracking (the benchmark scales frames to 640x480).
    """

    def __init__(self, spec: str, camera_mode: tuple[int, int, int] = (0, 0, 0), start_at: int = 0,
                 realtime: bool = True, intrinsics: Intrinsics | None = None, model=None, source=None,
                 frame_transform=None):
        from tracker.camera.sources import open_source

        w, h, fps = camera_mode
        self.model = model
        self.source = source if source is not None else open_source(
            spec, width=w or None, height=h or None, fps=fps or None, realtime=realtime, intrinsics=intrinsics)
        self.frame_transform = frame_transform
        if intrinsics is None and source is None and source_kind(spec) in ("camera", "video"):
            # a saved calibration profile for this camera (or video) at this resolution, as ``track`` uses
            from tracker.cli.track import camera_id_for, profile_intrinsics

            profile = profile_intrinsics(spec, *self.source.size)
            if profile is not None:
                log.info("using the calibration profile of %s", camera_id_for(spec))
                self.source.intrinsics_hint = profile
        self.start_at = max(0, int(start_at)) if self.source.length else 0
        self.info = SourceInfo(str(spec), source_kind(spec), self.source.description, float(self.source.fps),
                               self.source.length, tuple(self.source.size), self.start_at)

    def _frames(self):
        frames = iter(self.source)
        if self.start_at:
            frames = itertools.islice(frames, self.start_at, None)
        if self.frame_transform is not None:
            frames = map(self.frame_transform, frames)
        return frames

    def __iter__(self) -> Iterator[TrackedFrame]:
        try:
            pipeline = shared_pipeline(self.model)
        except Exception as exc:  # noqa: BLE001 - PipelineError and friends: show the video, say why
            log.error("tracking unavailable: %s", exc)
            yield from untracked(self._frames(), self.source, f"tracking unavailable: {exc}")
            return
        pipeline.reset()
        yield from pipeline.track(self._frames(), self.source)

    def close(self) -> None:
        self.source.close()


class ReplayRun:
    """A recorded session played back with its recorded results (no tracking again), from ``start_at``.

    ``positions`` maps a recorded frame index to its position on the timeline (0 .. length-1).
    """

    def __init__(self, folder: str | Path, start_at: int = 0, realtime: bool = True):
        from tracker.session.reader import SessionReader

        self.reader = SessionReader(folder)
        recs = [r for r in self.reader.records if r.get("video_frame") is not None]
        if not recs:
            from tracker.session.records import SessionError

            raise SessionError(f"session {self.reader.folder} has no frames with video to replay")
        self.positions = {int(r["index"]) if "index" in r else i: i for i, r in enumerate(recs)}
        self.start_at = min(max(0, int(start_at)), len(recs) - 1)
        self.info = SourceInfo(str(folder), "session",
                               f"session {self.reader.folder.name} ({len(recs)} frames, {self.reader.fps:g} fps)",
                               self.reader.fps, len(recs), tuple(self.reader.size), self.start_at)
        self.realtime = realtime
        self._closed = False

    def __iter__(self) -> Iterator[TrackedFrame]:
        import time

        frames = self.reader.tracked_frames(with_images=True)
        t0_wall, t0_rec = time.monotonic(), None
        for tf in itertools.islice(frames, self.start_at, None):
            if self._closed:
                return
            if self.realtime:  # paced by the recorded timestamps
                t0_rec = tf.frame.timestamp_ns if t0_rec is None else t0_rec
                delay = t0_wall + (tf.frame.timestamp_ns - t0_rec) / 1e9 - time.monotonic()
                if delay > 0:
                    time.sleep(min(delay, 1.0))
            yield tf

    def close(self) -> None:
        self._closed = True


def make_recorder(folder: Path, first: TrackedFrame, info: SourceInfo | None, fps: float, model_version: str = ""):
    """A SessionWriter for ``folder`` (a new or empty folder) with the metadata of this run."""
    from tracker.session.writer import SessionWriter

    meta = {"source": info.spec if info else "", "model_version": model_version}
    return SessionWriter(folder, fps=fps, camera=info.description if info else "",
                         intrinsics=first.intrinsics, meta=meta)
