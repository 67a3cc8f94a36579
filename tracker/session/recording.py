"""Driving a recording: TrackedFrames from any iterator into a SessionWriter, with faults told in words.

Used by ``python main.py track`` (and usable by any front end): the source failing (camera unplugged, a
decode error) or the writer failing (disk full) ends the run with the recording closed properly and a
message saying what happened; Ctrl-C closes it too.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from tracker.session.records import SessionWriteError
from tracker.session.writer import SessionSummary, SessionWriter
from tracker.types import TrackedFrame

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """frames: tracked frames seen; tracked: how many had a face; error: what stopped the run early ("" when the
    source simply ended); summary: the closed recording (None when not recording)."""

    frames: int
    tracked: int
    seconds: float
    error: str
    summary: SessionSummary | None
    interrupted: bool = False


def record_run(tracked_frames: Iterable[TrackedFrame], writer: SessionWriter | None, *, video: bool = True,
               max_frames: int | None = None, on_frame: Callable[[TrackedFrame, int], None] | None = None) -> RunResult:
    """Consume ``tracked_frames`` (stops after ``max_frames``), write each to ``writer``; always closes it.

    Errors of the source (any exception from the iterator, e.g. ``CameraError`` when the camera is unplugged)
    and of the writer end the run; their message is in ``RunResult.error``. KeyboardInterrupt closes the
    recording and sets ``interrupted``."""
    from tracker.camera.sources import SourceError

    n = n_tracked = 0
    error = ""
    interrupted = False
    t0 = time.perf_counter()
    it = iter(tracked_frames)
    try:
        while max_frames is None or n < max_frames:
            try:
                tf = next(it)
            except StopIteration:
                break
            except SourceError as exc:
                error = f"{exc}; recording stopped" if writer is not None else str(exc)
                break
            n += 1
            n_tracked += int(tf.tracked)
            if writer is not None:
                try:
                    writer.write(tf, video=video)
                except SessionWriteError as exc:
                    error = str(exc)
                    break
            if on_frame is not None:
                on_frame(tf, n)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001 - closing a generator of a failed source
                pass
        summary = writer.close(reason=error or ("interrupted" if interrupted else "")) if writer is not None else None
    if summary is not None and summary.error and not error:
        error = summary.error
    return RunResult(n, n_tracked, time.perf_counter() - t0, error, summary, interrupted)


class ProgressBar:
    """A one-line progress display on stderr (``\\r``-updated at most ``rate_hz`` times a second)."""

    def __init__(self, total: int | None, stream=None, rate_hz: float = 8.0, width: int = 30):
        self.total = total if total and total > 0 else None
        self.stream = stream or sys.stderr
        self.period = 1.0 / rate_hz
        self.width = width
        self._last = 0.0
        self._t0 = time.perf_counter()
        self._tracked = 0

    def update(self, tf: TrackedFrame, n: int, force: bool = False) -> None:
        self._tracked += int(tf.tracked)
        self._n = n
        now = time.perf_counter()
        if not force and now - self._last < self.period:
            return
        self._draw(n, now)

    def _draw(self, n: int, now: float) -> None:
        self._last = now
        fps = n / max(now - self._t0, 1e-9)
        share = 100.0 * self._tracked / max(n, 1)
        if self.total:
            frac = min(1.0, n / self.total)
            filled = int(round(frac * self.width))
            text = (f"\r[{'#' * filled}{'.' * (self.width - filled)}] {n}/{self.total} frames {100 * frac:3.0f}%  "
                    f"{fps:5.1f} fps  tracked {share:3.0f}%")
        else:
            text = f"\r{n} frames  {fps:5.1f} fps  tracked {share:3.0f}%"
        self.stream.write(text)
        self.stream.flush()

    def finish(self) -> None:
        """Draw the final state and end the line."""
        if getattr(self, "_n", 0):
            self._draw(self._n, time.perf_counter())
        self.stream.write("\n")
        self.stream.flush()
