"""Recording a session: :class:`SessionWriter` appends frames as they are tracked, crash-safe.

The caller's thread encodes the frame's binary record and appends it at once (about 0.15 ms,
:mod:`tracker.session.records`): one ``os.write`` to a file opened with ``O_APPEND``, no user-space buffer,
so a killed process loses no record it had written. The image is queued for a background thread that
encodes the video segments (``segment_s`` long, see :mod:`tracker.session`) with a raised niceness, so that
on a busy CPU the tracking thread goes first; it calls only the encoder and ``fsync`` (records every
``fsync_interval_s``, so a power cut loses at most that much), which release the GIL.

The queue is bounded: when the encoder or the disk is slower than the camera, ``write`` waits
(back-pressure) rather than dropping frames silently. Faults (disk full, a write error, a video that cannot be encoded) stop the
recording: the files are closed, ``meta.json`` says why, :attr:`SessionWriter.error` holds a
:class:`SessionWriteError` whose message is for the user, :attr:`SessionWriter.status` is a line the GUI
shows, and the next ``write`` raises that error. Everything recorded before the fault stays readable.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import logging
import os
import queue
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tracker.session.records import (FORMAT_VERSION, MAGIC, META_NAME, RECORDS_NAME, VIDEO_DIR,
                                     SessionWriteError, encode_record, record_from_tracked)
from tracker.types import Intrinsics, TrackedFrame

log = logging.getLogger(__name__)

_STOP = object()
#: meta.json is padded to this size (see SessionWriter._write_meta).
META_RESERVE = 16384


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (the seam tests use to simulate a full disk)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _describe_os_error(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    if exc.errno == errno.EROFS:
        return "the disk is read-only"
    if exc.errno == errno.EACCES:
        return "permission denied"
    if exc.errno == errno.EIO:
        return "an input/output error (disk removed or failing?)"
    return exc.strerror or str(exc)


@dataclass(frozen=True)
class WriterOptions:
    """video: record the frames (else records only); segment_s: video segment length; queue_frames: frames
    waiting for the encoder before ``write`` blocks; fsync_interval_s: how often records reach the disk even
    through a power cut; min_free_mb: stop cleanly when the disk has less free space than this;
    block_timeout_s: the longest ``write`` waits for room in the queue before it reports the disk as too slow;
    nice: added to the encoder thread's niceness (Linux), so that when the CPU is short the tracking thread
    goes first and the video catches up from the queue."""

    video: bool = True
    segment_s: float = 0.5
    queue_frames: int = 120
    fsync_interval_s: float = 0.5
    min_free_mb: float = 50.0
    block_timeout_s: float = 10.0
    nice: int = 10


@dataclass
class SessionSummary:
    """What a closed recording holds. ``error``: the fault that stopped it ("" when it closed normally)."""

    folder: Path
    frames: int
    video_frames: int
    duration_s: float
    error: str = ""
    lost_frames: int = 0
    meta: dict = field(default_factory=dict)


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def intrinsics_to_json(intr: Intrinsics | None) -> dict | None:
    if intr is None:
        return None
    return {"width": intr.width, "height": intr.height, "fx": intr.fx, "fy": intr.fy, "cx": intr.cx,
            "cy": intr.cy, "dist_coeffs": list(intr.dist_coeffs)}


class SessionWriter:
    """Records tracked frames into a new session folder.

    folder: created (with parents); it must not exist or be empty. fps: the video's nominal frame rate.
    camera: a description of the source; intrinsics: the camera's; meta: more keys for ``meta.json``
    (model and landmark-set versions, ...). Use as a context manager or call :meth:`close`.
    Raises SessionWriteError when the folder cannot be created.
    """

    def __init__(self, folder: str | os.PathLike, *, fps: float = 30.0, camera: str = "",
                 intrinsics: Intrinsics | None = None, meta: dict | None = None,
                 options: WriterOptions = WriterOptions()):
        from tracker import __version__

        self.folder = Path(folder)
        self.options = options
        self.fps = float(fps) if fps and fps > 0 else 30.0
        try:
            if self.folder.exists() and (not self.folder.is_dir() or any(self.folder.iterdir())):
                raise SessionWriteError(f"cannot record into {self.folder}: it exists and is not an empty folder")
            self.folder.mkdir(parents=True, exist_ok=True)
            if options.video:
                (self.folder / VIDEO_DIR).mkdir(exist_ok=True)
            self._fd = os.open(self.folder / RECORDS_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            _write_all(self._fd, MAGIC)
        except OSError as exc:
            raise SessionWriteError(f"cannot create the session folder {self.folder}: "
                                    f"{_describe_os_error(exc)}") from exc
        self.meta = {
            "format": "face-tracker-session", "format_version": FORMAT_VERSION, "app_version": __version__,
            "created": _now_iso(), "start_time_unix": time.time(), "camera": camera, "fps": self.fps,
            "intrinsics": intrinsics_to_json(intrinsics), "video": bool(options.video),
            "video_codec": "mp4v" if options.video else None, "segment_s": options.segment_s,
            "status": "recording", "frames": 0, "video_frames": 0,
        }
        self.meta.update(meta or {})
        self.error: SessionWriteError | None = None
        self.frames_written = 0
        self.video_frames = 0
        self.lost_frames = 0
        self.bytes_written = 0
        self._queued_video_frames = 0
        self._video_failed = False
        self._first_ts: int | None = None
        self._last_ts: int | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._video = None
        self._segment_opened = 0.0
        self._segment_size: tuple[int, int] | None = None
        self._segment_path: Path | None = None
        self._last_fsync = time.monotonic()
        self._last_space_check = 0.0
        try:
            self._write_meta()
        except OSError as exc:
            os.close(self._fd)
            raise SessionWriteError(f"cannot write {self.folder / META_NAME}: {_describe_os_error(exc)}") from exc
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(options.queue_frames)))
        self._thread = threading.Thread(target=self._run, name="session-writer", daemon=True)
        self._thread.start()
        log.info("recording to %s", self.folder)

    # ------------------------------------------------------------------ caller's side
    def __enter__(self) -> "SessionWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def is_recording(self) -> bool:
        return not self._closed and self.error is None

    @property
    def status(self) -> str:
        """One line for the GUI's status bar."""
        if self.error is not None:
            return str(self.error)
        dur = 0.0 if self._first_ts is None else (self._last_ts - self._first_ts) / 1e9
        state = "recorded" if self._closed else "recording"
        return (f"{state}: {self.frames_written} frames ({dur:.1f} s), "
                f"{self.bytes_written / 1e6:.1f} MB of records, {self.video_frames} video frames")

    def write(self, tracked: TrackedFrame, video: bool = True) -> None:
        """Record one tracked frame: its record is appended at once (about 0.15 ms: encoding plus one
        ``os.write``), its image (unless ``video`` is False) is queued for the encoder thread. Returns at once
        unless the encoder is behind by ``queue_frames`` frames. Raises SessionWriteError after a fault or once
        closed."""
        if self.error is not None:
            raise self.error
        if self._closed:
            raise SessionWriteError(f"the recording {self.folder} is closed")
        with_video = bool(video and self.options.video) and not self._video_failed
        video_frame = self._queued_video_frames if with_video else None
        data = encode_record(record_from_tracked(tracked, video_frame))
        try:
            _write_all(self._fd, data)
        except OSError as exc:
            self._fail(SessionWriteError(
                f"recording stopped: {_describe_os_error(exc)} while writing {self.folder} "
                f"({self.frames_written} frames recorded and kept)"))
            raise self.error from None
        self.bytes_written += len(data)
        self.frames_written += 1
        ts = int(tracked.frame.timestamp_ns)
        self._first_ts = ts if self._first_ts is None else self._first_ts
        self._last_ts = ts
        now = time.monotonic()
        if now - self._last_space_check >= 1.0:
            self._last_space_check = now
            try:
                self._check_space()
            except SessionWriteError as exc:
                self._fail(exc)
        if with_video:
            self._queued_video_frames += 1
            deadline = now + self.options.block_timeout_s
            while True:
                try:
                    self._queue.put((tracked.frame.image, video_frame), timeout=0.2)
                    break
                except queue.Full:
                    if not self._thread.is_alive() or time.monotonic() > deadline:
                        self._fail(SessionWriteError(
                            f"recording stopped: the disk cannot keep up with the video "
                            f"({self.frames_written} frames recorded in {self.folder})"))
                        break
        if self.error is not None:
            raise self.error

    def close(self, reason: str = "") -> SessionSummary:
        """Finish: drain the queue, close the files, update ``meta.json``. ``reason``: why the recording ended
        when it was not the user's choice (e.g. the camera was unplugged), stored in the metadata."""
        with self._lock:
            if not self._closed:
                if reason:
                    self.meta["end_reason"] = reason  # read by the writer thread after _STOP
                self._closed = True
                self._queue.put(_STOP)
        if self._thread is not threading.current_thread():
            self._thread.join()
        dur = 0.0 if self._first_ts is None else (self._last_ts - self._first_ts) / 1e9
        return SessionSummary(self.folder, self.frames_written, self.video_frames, dur,
                              "" if self.error is None else str(self.error), self.lost_frames, dict(self.meta))

    # ------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        if self.options.nice and hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
            try:  # Linux: a thread's own niceness; the tracking thread goes first when the CPU is short
                tid = threading.get_native_id()
                os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + self.options.nice)
            except OSError as exc:
                log.debug("writer thread priority unchanged: %s", exc)
        try:
            while True:
                try:
                    item = self._queue.get(timeout=max(0.05, self.options.segment_s / 2))
                except queue.Empty:
                    self._idle()
                    continue
                if item is _STOP:
                    break
                if self._video_failed:
                    self.lost_frames += 1
                    continue
                try:
                    self._write_video(item[0])
                    self._maybe_fsync()
                except (SessionWriteError, OSError, Exception) as exc:  # noqa: BLE001 - closed properly below
                    self._video_failed = True
                    if isinstance(exc, SessionWriteError):
                        self._fail(exc)
                    elif isinstance(exc, OSError):
                        self._fail(SessionWriteError(
                            f"recording stopped: {_describe_os_error(exc)} while writing {self.folder} "
                            f"({self.frames_written} frames recorded and kept)"))
                    else:
                        log.exception("session video writer failed")
                        self._fail(SessionWriteError(f"recording stopped: {exc} ({self.frames_written} frames "
                                                     f"recorded and kept in {self.folder})"))
        finally:
            self._finish()

    def _idle(self) -> None:
        try:
            if self._video is not None and time.monotonic() - self._segment_opened >= self.options.segment_s:
                self._close_segment()
            self._maybe_fsync()
        except SessionWriteError as exc:
            self._video_failed = True
            self._fail(exc)
        except OSError as exc:
            self._fail(SessionWriteError(f"recording stopped: {_describe_os_error(exc)} while saving "
                                         f"{self.folder} ({self.frames_written} frames recorded and kept)"))

    def _check_space(self) -> None:
        try:
            free = shutil.disk_usage(self.folder).free
        except OSError:
            return
        if free < self.options.min_free_mb * 1e6:
            raise SessionWriteError(
                f"recording stopped: the disk is almost full ({free / 1e6:.0f} MB free at {self.folder}; "
                f"{self.frames_written} frames recorded and kept)")

    def _maybe_fsync(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_fsync >= self.options.fsync_interval_s:
            self._last_fsync = now
            try:
                os.fsync(self._fd)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # some file systems cannot fsync; nothing to do then
                    raise

    def _write_video(self, image) -> int:
        import cv2
        import numpy as np

        img = np.asarray(image)
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise SessionWriteError(f"recording stopped: cannot encode a frame of shape {img.shape} "
                                    f"{img.dtype} (expected 8-bit BGR)")
        size = (int(img.shape[1]), int(img.shape[0]))
        now = time.monotonic()
        if self._video is not None and (size != self._segment_size or
                                        now - self._segment_opened >= self.options.segment_s):
            self._close_segment()
        if self._video is None:
            path = self.folder / VIDEO_DIR / f"{self.video_frames:08d}.mp4"
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
            if not writer.isOpened():
                writer.release()
                self._check_space()
                raise SessionWriteError(f"recording stopped: cannot create the video file {path} "
                                        f"({self.frames_written} frames recorded and kept)")
            self._video, self._segment_path, self._segment_size = writer, path, size
            self._segment_opened = now
        self._video.write(np.ascontiguousarray(img))
        self.video_frames += 1
        return self.video_frames - 1

    def _close_segment(self) -> None:
        if self._video is None:
            return
        self._video.release()
        self._video = None
        path = self._segment_path
        if path is not None and (not path.is_file() or path.stat().st_size == 0):
            self._check_space()
            raise SessionWriteError(f"recording stopped: the video file {path} could not be written "
                                    f"({self.frames_written} frames recorded and kept)")

    def _fail(self, exc: SessionWriteError) -> None:
        if self.error is None:
            log.error("%s", exc)
            self.error = exc

    def _finish(self) -> None:
        try:
            self._close_segment()
        except SessionWriteError as exc:
            self._fail(exc)
        except Exception as exc:  # noqa: BLE001
            self._fail(SessionWriteError(f"recording stopped: closing the video failed: {exc}"))
        try:
            self._maybe_fsync(force=True)
        except OSError as exc:
            self._fail(SessionWriteError(f"recording stopped: {_describe_os_error(exc)} while saving "
                                         f"{self.folder}"))
        try:
            os.close(self._fd)
        except OSError:
            pass
        # frames still queued after a fault are counted, never dropped silently
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                self.lost_frames += 1
        self._closed = True
        self.meta.update({
            "status": "failed" if self.error is not None else "closed", "end": _now_iso(),
            "frames": self.frames_written, "video_frames": self.video_frames,
            "duration_s": 0.0 if self._first_ts is None else (self._last_ts - self._first_ts) / 1e9,
            "error": "" if self.error is None else str(self.error), "lost_frames": self.lost_frames,
        })
        if self.error is not None and self.lost_frames:
            self.error = SessionWriteError(f"{self.error} ({self.lost_frames} video frames could not be encoded; "
                                           f"their records are kept)")
            self.meta["error"] = str(self.error)
        try:
            self._write_meta()
        except OSError as exc:
            log.error("cannot update %s: %s", self.folder / META_NAME, _describe_os_error(exc))
        log.info("recording %s closed: %s", self.folder, self.status)

    def _write_meta(self) -> None:
        """meta.json replaced atomically (temp file, fsync, rename). The file is padded with spaces to
        ``META_RESERVE`` bytes, so that when the disk is full the final update can still overwrite it in place."""
        path = self.folder / META_NAME
        data = json.dumps(self.meta, indent=2, default=float).encode("utf-8") + b"\n"
        data += b" " * max(0, META_RESERVE - len(data))
        tmp = path.with_suffix(".json.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not path.is_file() \
                    or len(data) > path.stat().st_size:
                raise
            try:
                tmp.unlink()
            except OSError:
                pass
            # disk full: overwrite the reserved file in place (no new blocks needed)
            fd = os.open(path, os.O_WRONLY)
            try:
                _write_all(fd, data.ljust(path.stat().st_size))
                os.fsync(fd)
            finally:
                os.close(fd)
