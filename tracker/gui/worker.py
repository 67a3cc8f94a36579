"""The worker thread: runs the tracking iterator, records, prepares display frames, drops what the GUI can't show.

The GUI thread never computes. This QThread pulls TrackedFrames from an iterator (the pipeline over a frame
source, or a session replay) and writes them to the recorder when recording (every frame). A second thread
prepares what is drawn (posed mesh, normals; :class:`~tracker.gui.display.FramePreparer`) while the next
frame is tracked (tracking waits rather than running more than one frame ahead), and publishes it in a
one-slot mailbox: if the GUI has not taken the previous frame yet, that one is replaced (dropped) rather than
queued, so the display never lags behind. One ``frameReady`` signal is emitted per
frame that finds the mailbox empty; the GUI takes the newest frame with :meth:`TrackingWorker.take`.
Errors (camera unplugged, unreadable file, disk full while recording) end up as a ``failed(str)`` signal in
words; a recording error stops the recording (closed properly) but not the tracking.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from PyQt6 import QtCore

from tracker.gui.display import DisplayFrame, FramePreparer
from tracker.types import TrackedFrame

log = logging.getLogger(__name__)

#: the longest the prepare thread waits for the window to take the previous frame before replacing it
PUBLISH_WAIT_S = 0.05


def describe_error(exc: BaseException) -> str:
    """An exception as one line for the user."""
    if isinstance(exc, OSError) and exc.errno == 28:
        return f"the disk is full ({exc.filename or 'recording'}): {exc.strerror}"
    text = str(exc).strip()
    if isinstance(exc, MemoryError):
        return "out of memory"
    return text or exc.__class__.__name__


class TrackingWorker(QtCore.QThread):
    """Runs ``frames`` (an iterator of TrackedFrame, made in this thread by ``make_frames()``).

    make_frames: called in the worker thread; returns the iterator (so opening a camera never blocks the GUI).
    preparer: turns each shown frame into a DisplayFrame.
    recorder_factory(folder, first_tracked_frame) -> object with ``write(TrackedFrame)`` and ``close()``.
    pause_after: pause by itself after this many frames (a seek while paused shows one frame and holds).
    """

    frameReady = QtCore.pyqtSignal()  # noqa: N815 (Qt naming)
    failed = QtCore.pyqtSignal(str)
    recordingStarted = QtCore.pyqtSignal(str)  # noqa: N815
    recordingStopped = QtCore.pyqtSignal(str, int)  # noqa: N815  folder, frames written
    recordingFailed = QtCore.pyqtSignal(str)  # noqa: N815
    ended = QtCore.pyqtSignal(str)  # why: "end of the video", "stopped", or an error message
    opened = QtCore.pyqtSignal(object)  # the run's ``info`` once the source is open

    def __init__(self, make_frames: Callable[[], Iterator[TrackedFrame]], preparer: FramePreparer,
                 recorder_factory: Callable[[Path, TrackedFrame], object] | None = None,
                 pause_after: int | None = None, parent=None):
        super().__init__(parent)
        self.pause_after = pause_after
        self._make_frames = make_frames
        self.preparer = preparer
        self._recorder_factory = recorder_factory
        self._lock = threading.Lock()
        self._slot_cond = threading.Condition(self._lock)
        self._slot: DisplayFrame | None = None
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._record_to: Path | None = None
        self._stop_recording = False
        self._recorder = None
        self._recorder_folder: Path | None = None
        self._recorded = 0
        self.frames_in = 0
        self.frames_shown = 0
        self.frames_dropped = 0
        self.record_ms = 0.0
        self.run_object = None
        self.thread_cpu_s = 0.0
        self.prepare_cpu_s = 0.0
        self._prep_cond = threading.Condition()
        self._prep_slot: TrackedFrame | None = None
        self._prep_done = False
        self._prep_error: BaseException | None = None

    # ---- called from the GUI thread
    def take(self) -> DisplayFrame | None:
        """The newest prepared frame, or None; empties the mailbox."""
        with self._slot_cond:
            item, self._slot = self._slot, None
            self._slot_cond.notify_all()
        if item is not None:
            self.frames_shown += 1
        return item

    def stop(self) -> None:
        self._stop.set()
        with self._prep_cond:
            self._prep_cond.notify_all()
        with self._slot_cond:
            self._slot_cond.notify_all()

    def set_paused(self, paused: bool) -> None:
        if paused:
            self._paused.set()
        else:
            self._paused.clear()

    def start_recording(self, folder: Path) -> None:
        with self._lock:
            self._record_to = Path(folder)
            self._stop_recording = False

    def stop_recording(self) -> None:
        with self._lock:
            self._stop_recording = True
            self._record_to = None

    @property
    def recording(self) -> bool:
        return self._recorder is not None or self._record_to is not None

    # ---- the thread
    def run(self) -> None:  # noqa: C901 - one loop with its error paths
        why = "stopped"
        frames = None
        prep = threading.Thread(target=self._prepare_loop, name="display-prepare", daemon=True)
        prep.start()
        try:
            frames = self._make_frames()
            self.run_object = frames
            info = getattr(frames, "info", None)
            if info is not None:
                self.opened.emit(info)
            for tf in frames:
                if self._stop.is_set():
                    break
                while self._paused.is_set() and not self._stop.is_set():
                    time.sleep(0.02)
                self.frames_in += 1
                self.thread_cpu_s = time.thread_time()  # this thread's CPU so far (the benchmark reads it)
                self._handle_recording(tf)
                self._hand_over(tf)
                if self.pause_after is not None:
                    self.pause_after -= 1
                    if self.pause_after <= 0:
                        self.pause_after = None
                        self._paused.set()
            else:
                why = "end of the video"
        except Exception as exc:  # noqa: BLE001 - any failure of the source or pipeline, told in words
            why = describe_error(exc)
            log.error("tracking stopped: %s", why, exc_info=log.isEnabledFor(logging.DEBUG))
            self.failed.emit(why)
        finally:
            self._close_recorder()
            close = getattr(frames, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as exc:  # noqa: BLE001
                    log.debug("closing the frame iterator: %s", exc)
            with self._prep_cond:
                self._prep_done = True
                self._prep_cond.notify_all()
            prep.join()  # the last frame is shown before "ended"
            if self._prep_error is not None:
                why = f"drawing failed: {describe_error(self._prep_error)}"
                self.failed.emit(why)
            self.ended.emit(why)

    # ---- the second stage: preparing what is drawn runs beside the next frame's tracking
    def _hand_over(self, tf: TrackedFrame) -> None:
        """Give a tracked frame to the prepare thread, waiting while it still has one: tracking runs at most
        one frame ahead of preparing (no work is spent on frames that would be dropped; a camera source drops
        stale frames itself)."""
        with self._prep_cond:
            self._prep_cond.wait_for(lambda: self._prep_slot is None or self._prep_error is not None
                                     or self._stop.is_set())
            self._prep_slot = tf
            self._prep_cond.notify_all()

    def _prepare_loop(self) -> None:
        while True:
            with self._prep_cond:
                self._prep_cond.wait_for(lambda: self._prep_slot is not None or self._prep_done)
                tf, self._prep_slot = self._prep_slot, None
                self._prep_cond.notify_all()  # the tracking thread may hand over the next one
            if tf is None:
                return
            try:
                item = self.preparer.prepare(tf)
            except Exception as exc:  # noqa: BLE001 - reported by the worker thread in words
                log.error("preparing a frame for display failed: %s", exc, exc_info=True)
                with self._prep_cond:
                    self._prep_error = exc
                    self._stop.set()
                    self._prep_cond.notify_all()
                return
            self.prepare_cpu_s = time.thread_time()
            self._publish(item)

    def _publish(self, item: DisplayFrame) -> None:
        """Into the GUI's mailbox. While the GUI still has the previous frame, wait a little (a slow display
        then slows the work instead of wasting it on frames it would drop), then replace it (dropped): a
        stalled window never stalls tracking or recording for longer than ``PUBLISH_WAIT_S``."""
        with self._slot_cond:
            self._slot_cond.wait_for(lambda: self._slot is None or self._stop.is_set(), timeout=PUBLISH_WAIT_S)
            was_empty = self._slot is None
            if not was_empty:
                self.frames_dropped += 1
            self._slot = item
        if was_empty:
            self.frameReady.emit()

    def _handle_recording(self, tf: TrackedFrame) -> None:
        with self._lock:
            start, stop = self._record_to, self._stop_recording
            self._record_to = None
            self._stop_recording = False
        if stop:
            self._close_recorder()
        if start is not None and self._recorder is None:
            if self._recorder_factory is None:
                self.recordingFailed.emit("recording is not available (no session writer)")
            else:
                try:
                    self._recorder = self._recorder_factory(start, tf)
                    self._recorder_folder = start
                    self._recorded = 0
                    self.recordingStarted.emit(str(start))
                except Exception as exc:  # noqa: BLE001
                    self.recordingFailed.emit(f"could not start recording in {start}: {describe_error(exc)}")
        if self._recorder is not None:
            t0 = time.perf_counter()
            try:
                self._recorder.write(tf)
                self._recorded += 1
            except Exception as exc:  # noqa: BLE001 - disk full, write error: stop recording, keep tracking
                folder = self._recorder_folder
                self._close_recorder()  # closed before the window hears of it
                self.recordingFailed.emit(f"recording stopped: {describe_error(exc)}; the frames recorded so "
                                          f"far are kept in {folder}")
            self.record_ms = (time.perf_counter() - t0) * 1e3

    def _close_recorder(self) -> None:
        rec, folder, n = self._recorder, self._recorder_folder, self._recorded
        self._recorder = None
        if rec is None:
            return
        try:
            rec.close()
        except Exception as exc:  # noqa: BLE001
            self.recordingFailed.emit(f"closing the recording in {folder} failed: {describe_error(exc)}")
        self.recordingStopped.emit(str(folder), n)
