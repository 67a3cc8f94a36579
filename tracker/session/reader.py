"""Reading a recorded session back: records, frames, and a frame source that replays it.

A session cut short (a crash, a hard kill, a full disk) is read as far as it goes: a last record that was
only partly written is ignored, and frames whose video segment was never closed are skipped (their records
stay available through :meth:`SessionReader.records`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from tracker.session.records import (META_NAME, RECORDS_NAME, VIDEO_DIR, SessionError, decode_records,
                                     tracked_from_record)
from tracker.types import Frame, Intrinsics, TrackedFrame

log = logging.getLogger(__name__)


def is_session_folder(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and ((p / META_NAME).is_file() or (p / RECORDS_NAME).is_file())


def read_records(path: str | os.PathLike) -> tuple[list[dict], int]:
    """Records of a ``records.bin`` and the number of damaged records skipped.

    A last record cut short (a crash while writing it) is ignored; a damaged record elsewhere (bad CRC) is
    skipped with a warning. Raises SessionError when the file cannot be read or is not a records file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SessionError(f"cannot read the session records {path}: {exc.strerror or exc}") from exc
    try:
        records, damaged, tail = decode_records(data)
    except ValueError as exc:
        raise SessionError(f"{path}: {exc}") from exc
    if tail:
        log.info("%s: ignoring a last record that was cut short (%d bytes)", path, tail)
    if damaged:
        log.warning("%s: %d damaged records skipped", path, damaged)
    return records, damaged


class SessionReader:
    """A recorded session. Raises SessionError when ``folder`` is not a session."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise SessionError(f"session folder not found: {self.folder}")
        meta_path = self.folder / META_NAME
        rec_path = self.folder / RECORDS_NAME
        if not meta_path.is_file() and not rec_path.is_file():
            raise SessionError(f"{self.folder} is not a recorded session (no {META_NAME} or {RECORDS_NAME})")
        self.meta: dict = {}
        if meta_path.is_file():
            try:
                self.meta = json.loads(meta_path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                log.warning("%s unreadable (%s); reading the records without it", meta_path, exc)
        if rec_path.is_file():
            self._records, self.skipped_records = read_records(rec_path)
        else:
            self._records, self.skipped_records = [], 0
        self._segments = self._list_segments()

    def _list_segments(self) -> list[tuple[int, Path]]:
        vdir = self.folder / VIDEO_DIR
        out = []
        if vdir.is_dir():
            for p in vdir.glob("*.mp4"):
                if p.stem.isdigit():
                    out.append((int(p.stem), p))
        return sorted(out)

    # ---------------------------------------------------------------- facts
    @property
    def records(self) -> list[dict]:
        """Every readable record, in recording order (treat as read-only)."""
        return self._records

    def __len__(self) -> int:
        return len(self._records)

    @property
    def fps(self) -> float:
        fps = float(self.meta.get("fps") or 0.0)
        if fps <= 0 and len(self._records) > 1:
            dt = (self._records[-1]["timestamp_ns"] - self._records[0]["timestamp_ns"]) / 1e9
            fps = (len(self._records) - 1) / dt if dt > 0 else 30.0
        return fps if fps > 0 else 30.0

    @property
    def intrinsics(self) -> Intrinsics | None:
        d = self.meta.get("intrinsics")
        if d:
            return Intrinsics(int(d["width"]), int(d["height"]), float(d["fx"]), float(d["fy"]), float(d["cx"]),
                              float(d["cy"]), tuple(d.get("dist_coeffs") or ()))
        for rec in self._records:
            if rec.get("intrinsics"):
                v = rec["intrinsics"]
                return Intrinsics(int(v[0]), int(v[1]), float(v[2]), float(v[3]), float(v[4]), float(v[5]))
        return None

    @property
    def size(self) -> tuple[int, int]:
        intr = self.intrinsics
        if intr is not None:
            return intr.width, intr.height
        return 0, 0

    @property
    def complete(self) -> bool:
        """True when the recording was closed normally (not killed, no fault)."""
        return self.meta.get("status") == "closed"

    # ---------------------------------------------------------------- frames
    def video_frames(self, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        """(video frame number, BGR image) over every readable segment, in order, from frame ``start`` on
        (segments before it are not decoded, so seeking is quick)."""
        import cv2

        for i, (seg_start, path) in enumerate(self._segments):
            next_start = self._segments[i + 1][0] if i + 1 < len(self._segments) else None
            if next_start is not None and next_start <= start:
                continue
            cap = cv2.VideoCapture(str(path))
            try:
                if not cap.isOpened():
                    log.warning("video segment %s unreadable (recording cut short?); skipped", path)
                    continue
                k = seg_start
                while True:
                    ok, image = cap.read()
                    if not ok:
                        break
                    if k >= start:
                        yield k, image
                    k += 1
            finally:
                cap.release()

    def tracked_frames(self, with_images: bool = True, start: int = 0) -> Iterator[TrackedFrame]:
        """The recorded results as TrackedFrames, from position ``start`` of the sequence.

        with_images: with their video frames (records whose frame is not in the video are skipped; ``start``
        counts records with video, i.e. positions on the replay timeline). Without: every record, with a 1x1
        placeholder image (``start`` counts records)."""
        if not with_images:
            for rec in self._records[start:]:
                yield tracked_from_record(rec)
            return
        with_video = [rec for rec in self._records if rec.get("video_frame") is not None]
        if start >= len(with_video):
            return
        by_video = {rec["video_frame"]: rec for rec in with_video[start:]}
        for k, image in self.video_frames(int(with_video[start]["video_frame"])):
            rec = by_video.get(k)
            if rec is not None:
                yield tracked_from_record(rec, image)

    def frames(self) -> Iterator[Frame]:
        """The recorded video as Frames with the recorded timestamps and frame indices."""
        for tf in self.tracked_frames(with_images=True):
            yield tf.frame


class SessionSource:
    """A recorded session replayed as a frame source (see :mod:`tracker.camera.sources`).

    ``recorded(frame)`` gives the TrackedFrame that was recorded with a frame, so a player can show the
    recorded fit without tracking again. ``realtime`` paces frames by their recorded timestamps.
    """

    is_live = False

    def __init__(self, folder: str | os.PathLike, *, realtime: bool = False):
        self.reader = SessionReader(folder)
        if not self.reader._segments:
            raise SessionError(f"session {self.reader.folder} has no video to replay "
                               f"(recorded without video, or the recording was cut short before 1 s)")
        self.realtime = realtime
        self.fps = self.reader.fps
        self.intrinsics_hint = self.reader.intrinsics
        self._closed = False
        self._by_index: dict[int, TrackedFrame] = {}
        self._n = sum(1 for r in self.reader.records if r.get("video_frame") is not None)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def size(self) -> tuple[int, int]:
        return self.reader.size

    @property
    def length(self) -> int | None:
        return self._n

    @property
    def description(self) -> str:
        return f"session {self.reader.folder.name} ({self._n} frames, {self.fps:g} fps)"

    def recorded(self, frame: Frame) -> TrackedFrame | None:
        """The recorded TrackedFrame for a frame this source yielded (None for frames it did not yield)."""
        return self._by_index.get(frame.index)

    def __iter__(self) -> Iterator[Frame]:
        t0_wall = time.monotonic()
        t0_rec = None
        for tf in self.reader.tracked_frames(with_images=True):
            if self._closed:
                return
            self._by_index = {tf.frame.index: tf}  # keep only the latest: memory stays flat
            if self.realtime:
                t0_rec = tf.frame.timestamp_ns if t0_rec is None else t0_rec
                delay = t0_wall + (tf.frame.timestamp_ns - t0_rec) / 1e9 - time.monotonic()
                if delay > 0:
                    time.sleep(min(delay, 1.0))
            yield tf.frame

    def close(self) -> None:
        self._closed = True
