"""Frame sources: a camera, a video file, a recorded session, or the built-in demo.

Every source is an iterable of :class:`tracker.types.Frame` with ``close()``, ``fps``, ``size`` (width, height),
``is_live``, ``intrinsics_hint`` (an :class:`~tracker.types.Intrinsics` or None) and ``length`` (frames in a
file, None for live sources). :func:`open_source` turns a command-line spec into a source:
``"0"`` (camera index), a video path, a session folder or ``"demo"``.

Failures a user can cause (a missing or busy camera, an unplugged camera, an unreadable or truncated video)
raise :class:`SourceError` subclasses whose message says what happened in words.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol, runtime_checkable

import numpy as np

from tracker.types import Frame, Intrinsics

log = logging.getLogger(__name__)


class SourceError(Exception):
    """A frame source cannot be opened or stopped delivering frames; the message is for the user."""


class CameraError(SourceError):
    """The camera is missing, busy, or stopped delivering frames (unplugged)."""


class VideoError(SourceError):
    """The video file is missing, unreadable or has no frames."""


@runtime_checkable
class FrameSource(Protocol):
    """What the pipeline and the GUI read frames from."""

    fps: float
    is_live: bool
    intrinsics_hint: Intrinsics | None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""

    @property
    def length(self) -> int | None:
        """Number of frames for files and sessions, None for live sources."""

    @property
    def description(self) -> str:
        """A short human-readable name ("camera 0 (640x480 @ 30 fps)", a file name, ...)."""

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


class _SourceBase:
    """Context-manager plumbing shared by the sources."""

    fps: float = 30.0
    is_live: bool = False
    intrinsics_hint: Intrinsics | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        pass

    @property
    def length(self) -> int | None:
        return None


# --------------------------------------------------------------------------------------------------- camera


@dataclass(frozen=True)
class CameraInfo:
    """A camera found by :func:`list_cameras`."""

    index: int
    name: str
    device: str = ""


def list_cameras(max_index: int = 10, probe: bool = False) -> list[CameraInfo]:
    """The cameras on this machine.

    On Linux the V4L2 devices are listed from ``/sys/class/video4linux`` (capture nodes only, nothing opened).
    Elsewhere, or with ``probe=True``, indices ``0..max_index-1`` are opened with OpenCV and kept when they
    deliver a frame (slow: each open can take a second).
    """
    found: list[CameraInfo] = []
    sysfs = Path("/sys/class/video4linux")
    if sys.platform.startswith("linux") and not probe and not sysfs.is_dir():
        return found  # no V4L2 device at all: nothing to probe
    if sys.platform.startswith("linux") and sysfs.is_dir() and not probe:
        for node in sorted(sysfs.glob("video*"), key=lambda p: int(p.name[5:]) if p.name[5:].isdigit() else 1 << 30):
            if not node.name[5:].isdigit():
                continue
            index = int(node.name[5:])
            # Only the first interface of a device captures; metadata nodes have index > 0.
            idx_file = node / "index"
            try:
                if idx_file.is_file() and int(idx_file.read_text().strip() or 0) != 0:
                    continue
                name = (node / "name").read_text().strip() if (node / "name").is_file() else node.name
            except (OSError, ValueError):
                name = node.name
            found.append(CameraInfo(index, name, f"/dev/{node.name}"))
        return found
    import cv2

    for index in range(max_index):
        cap = cv2.VideoCapture(index)
        try:
            if cap.isOpened() and cap.read()[0]:
                found.append(CameraInfo(index, f"camera {index}"))
        finally:
            cap.release()
    return found


def _default_capture_factory(index: int):
    """OpenCV's capture for a device index: V4L2 on Linux (then OpenCV's default backend if that fails)."""
    import cv2

    if sys.platform.startswith("linux"):
        cap = cv2.VideoCapture(index, cv2.CAP_V4L2)
        if cap.isOpened():
            return cap
        cap.release()
        if not Path(f"/dev/video{index}").exists():
            return cap  # no such device: nothing another backend could open
    return cv2.VideoCapture(index)


class CameraSource(_SourceBase):
    """A camera read in its own thread with latest-frame semantics.

    The capture thread reads continuously and keeps only the newest frame, so a slow consumer skips frames
    instead of falling behind (``Frame.index`` counts captured frames, so skipped ones show as gaps).
    ``Frame.timestamp_ns`` is ``time.monotonic_ns()`` when the frame was read.

    index: device index; width/height/fps: requested capture mode (the camera may pick another one; the
    actual values are in ``size`` and ``fps``). ``capture_factory(index)`` returns an object with OpenCV's
    ``VideoCapture`` interface (tests pass a fake one).
    Raises CameraError when the camera cannot be opened or gives no first frame within ``open_timeout_s``;
    iteration raises CameraError when no frame arrives for ``stall_timeout_s`` (the camera was unplugged).
    """

    is_live = True

    def __init__(self, index: int = 0, width: int | None = None, height: int | None = None,
                 fps: float | None = None, *, capture_factory: Callable[[int], object] | None = None,
                 open_timeout_s: float = 5.0, stall_timeout_s: float = 2.0,
                 intrinsics: Intrinsics | None = None):
        import cv2

        if index < 0:
            raise CameraError(f"camera index must be 0 or more, got {index}")
        self.index = int(index)
        self.stall_timeout_s = float(stall_timeout_s)
        factory = capture_factory or _default_capture_factory
        cap = factory(self.index)
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            raise CameraError(
                f"camera {self.index} could not be opened: it is missing, or busy in another program "
                f"(cameras found: {', '.join(str(c.index) for c in list_cameras()) or 'none'})")
        if width or height:  # most webcams give large sizes at full frame rate only as MJPG
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver's queue: keep it short, our thread takes the latest
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, int(width))
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, int(height))
        if fps:
            cap.set(cv2.CAP_PROP_FPS, float(fps))
        self._cap = cap
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._seq = 0
        self._error: CameraError | None = None
        self._returned_seq = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.index}", daemon=True)
        self._thread.start()
        with self._cond:
            self._cond.wait_for(lambda: self._latest is not None or self._error is not None, timeout=open_timeout_s)
            first, error = self._latest, self._error
        if first is None:
            self.close()
            raise error or CameraError(
                f"camera {self.index} opened but delivered no frame within {open_timeout_s:g} s "
                f"(busy in another program, or not a capture device?)")
        self._width, self._height = first.width, first.height
        reported = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = reported if 0.5 < reported < 1000 else float(fps or 30.0)
        self.intrinsics_hint = intrinsics.scaled_to(self._width, self._height) if intrinsics else None

    # capture thread
    def _run(self) -> None:
        failures_since = None
        count = 0
        while not self._stop.is_set():
            try:
                ok, image = self._cap.read()
            except Exception as exc:  # noqa: BLE001 - a driver error is a stop, reported in words
                ok, image = False, None
                log.debug("camera %d read raised %s", self.index, exc)
            now = time.monotonic_ns()
            if ok and image is not None and image.size:
                failures_since = None
                frame = Frame(image=image, timestamp_ns=now, index=count)
                count += 1
                with self._cond:
                    self._latest = frame
                    self._seq += 1
                    self._cond.notify_all()
                continue
            if failures_since is None:
                failures_since = now
            if (now - failures_since) / 1e9 >= self.stall_timeout_s:
                with self._cond:
                    self._error = CameraError(
                        f"camera {self.index} stopped delivering frames "
                        f"(unplugged, or taken by another program) after {count} frames" if count else
                        f"camera {self.index} opened but delivered no frame (busy in another program, or not "
                        f"a capture device?)")
                    self._cond.notify_all()
                return
            time.sleep(0.005)

    @property
    def size(self) -> tuple[int, int]:
        return self._width, self._height

    @property
    def description(self) -> str:
        return f"camera {self.index} ({self._width}x{self._height} @ {self.fps:g} fps)"

    def read(self, timeout_s: float | None = None) -> Frame:
        """The next frame newer than the last one returned (blocks). Raises CameraError when the camera stops."""
        timeout = self.stall_timeout_s + 1.0 if timeout_s is None else timeout_s
        with self._cond:
            last = self._returned_seq
            ready = self._cond.wait_for(
                lambda: self._seq > last or self._error is not None or self._stop.is_set(), timeout=timeout)
            if self._seq > last:
                self._returned_seq = self._seq
                return self._latest
            if self._error is not None:
                raise self._error
            if self._stop.is_set():
                raise CameraError(f"camera {self.index} was closed")
            if not ready:
                raise CameraError(f"camera {self.index} delivered no frame for {timeout:g} s (unplugged?)")
        raise CameraError(f"camera {self.index}: no frame")  # pragma: no cover

    def __iter__(self) -> Iterator[Frame]:
        while not self._stop.is_set():
            try:
                yield self.read()
            except CameraError:
                if self._stop.is_set():
                    return
                raise

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        thread = getattr(self, "_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        cap = getattr(self, "_cap", None)
        if cap is not None:
            cap.release()
            self._cap = None


# ---------------------------------------------------------------------------------------------------- video


class VideoSource(_SourceBase):
    """A video file decoded with OpenCV, frame by frame (nothing skipped).

    ``Frame.timestamp_ns`` is the frame's presentation time in the file (``index / fps`` when the container
    gives none). With ``realtime=True`` frames are paced at the file's frame rate (for playback in the app).
    A file that ends before its announced frame count (truncated) ends cleanly; ``truncated`` then says so.
    Raises VideoError for a missing file, a file that is not a video, or one without a single readable frame.
    """

    is_live = False

    def __init__(self, path: str | os.PathLike, *, realtime: bool = False, loop: bool = False,
                 intrinsics: Intrinsics | None = None):
        import cv2

        self.path = Path(path)
        if not self.path.exists():
            raise VideoError(f"video file not found: {self.path}")
        if not self.path.is_file():
            raise VideoError(f"not a video file: {self.path}")
        if not os.access(self.path, os.R_OK):
            raise VideoError(f"video file cannot be read (permission denied): {self.path}")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise VideoError(f"cannot read video file {self.path}: not a video, truncated (an MP4 cut short "
                             f"has no index), or a format this build of OpenCV cannot decode")
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise VideoError(f"video file {self.path} has no readable frames (empty or truncated)")
        self._cap = cap
        self._first = first
        reported = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = reported if 0.5 < reported < 1000 else 30.0
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._length = n if n > 0 else None
        self._height, self._width = first.shape[:2]
        self.realtime = bool(realtime)
        self.loop = bool(loop)
        self.truncated = False
        self.frames_read = 0
        self.intrinsics_hint = intrinsics.scaled_to(self._width, self._height) if intrinsics else None
        self._closed = False
        self._lock = threading.Lock()

    @property
    def size(self) -> tuple[int, int]:
        return self._width, self._height

    @property
    def length(self) -> int | None:
        return self._length

    @property
    def description(self) -> str:
        n = f"{self._length} frames, " if self._length else ""
        return f"{self.path.name} ({self._width}x{self._height}, {n}{self.fps:g} fps)"

    def _rewind(self) -> bool:
        import cv2

        with self._lock:
            if self._cap is None:
                return False
            self._cap.release()
            self._cap = cv2.VideoCapture(str(self.path))
            ok, first = self._cap.read()
        self._first = first if ok else None
        return ok

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        index = 0
        offset_ns = 0
        start = time.monotonic()
        while not self._closed:
            if self._first is not None:
                ok, image = True, self._first
                self._first = None
            else:
                try:
                    with self._lock:  # close() from another thread waits for this read
                        if self._cap is None:
                            return
                        ok, image = self._cap.read()
                except cv2.error as exc:  # a corrupt packet can raise in some builds
                    log.warning("decoding %s failed at frame %d: %s", self.path, index, exc)
                    ok, image = False, None
            if not ok or image is None:
                if self._length is not None and self.frames_read < self._length:
                    if not self.truncated:
                        log.warning("video %s ended at frame %d of %d announced (truncated?)",
                                    self.path, self.frames_read, self._length)
                    self.truncated = True
                if self.loop and index > 0 and self._rewind():
                    offset_ns += int(round(index * 1e9 / self.fps))
                    continue
                return
            local = self.frames_read
            self.frames_read += 1
            with self._lock:
                pos_ms = self._cap.get(cv2.CAP_PROP_POS_MSEC) if self._cap is not None else 0.0
            t_ns = int(round(pos_ms * 1e6)) if pos_ms and pos_ms > 0 and local > 0 else int(round(local * 1e9 / self.fps))
            if self.realtime:
                due = start + index / self.fps
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield Frame(image=image, timestamp_ns=offset_ns + t_ns, index=index)
            index += 1

    def close(self) -> None:
        """Stop (safe from another thread: a read in progress finishes first)."""
        self._closed = True
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            if self._cap is not None:
                self._cap.release()
                self._cap = None


# ----------------------------------------------------------------------------------------------------- demo


class DemoSource(_SourceBase):
    """A built-in source that needs no camera: an animated head.

    When the head model and the software renderer are available (``tracker.face``), frames are renders of
    the ICT head with a pose and expression that loop every ``loop_s`` seconds; otherwise a drawn cartoon
    face moves about, so the app always opens on something. The software renderer is slow (about 0.4 s a
    frame), so the loop is rendered at ``render_fps`` distinct poses, each on first use and cached: the first
    loop plays at the renderer's speed, later ones at ``fps``. ``n_frames`` None means endless; frames are
    paced at ``fps`` when ``realtime`` is set (as a live camera would be: the newest pose for the time).
    """

    is_live = True

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0, *, n_frames: int | None = None,
                 realtime: bool = True, use_model: bool = True, loop_s: float = 4.0, render_fps: float = 10.0):
        self._width, self._height = int(width), int(height)
        if self._width < 16 or self._height < 16:
            raise SourceError(f"demo frames must be at least 16x16, got {self._width}x{self._height}")
        self.fps = float(fps)
        self.n_frames = n_frames
        self.realtime = realtime
        self.loop_s = float(loop_s)
        self.n_poses = max(1, int(round(loop_s * render_fps)))
        self.intrinsics_hint = Intrinsics.from_fov(self._width, self._height)
        self._closed = False
        self._cache: dict[int, np.ndarray] = {}
        self._renderer = self._make_model_renderer() if use_model else None
        self.kind = "head model" if self._renderer is not None else "drawn face"

    @property
    def size(self) -> tuple[int, int]:
        return self._width, self._height

    @property
    def length(self) -> int | None:
        return self.n_frames

    @property
    def description(self) -> str:
        return f"demo ({self.kind}, {self._width}x{self._height} @ {self.fps:g} fps)"

    def _wave(self, t: float, cycles: int, phase: float = 0.0) -> float:
        """sin with a whole number of cycles per loop, so the animation loops seamlessly."""
        return math.sin(2 * math.pi * cycles * t / self.loop_s + phase)

    def _make_model_renderer(self):
        try:
            from tracker.face.build import load_head_model
            from tracker.face.render import render_head
        except ImportError:
            return None
        try:
            model = load_head_model()
        except Exception as exc:  # noqa: BLE001 - no data or no cache: fall back to the drawn face
            log.info("demo source: head model unavailable (%s); using a drawn face", exc)
            return None
        from tracker.types import FitParams

        intr = self.intrinsics_hint
        names = list(model.expression_names)
        wave = self._wave

        def render(t: float) -> np.ndarray:
            expr = np.zeros(model.n_expression)
            blink = 1.0 if (t % self.loop_s) < 0.12 * self.loop_s / 4 else 0.0
            for name, w in (("jawOpen", 0.3 * (1 + wave(t, 3))),
                            ("mouthSmile_L", 0.5 * (1 + wave(t, 1))), ("mouthSmile_R", 0.5 * (1 + wave(t, 1))),
                            ("eyeBlink_L", blink), ("eyeBlink_R", blink),
                            ("browInnerUp_L", 0.25 * (1 + wave(t, 2))), ("browInnerUp_R", 0.25 * (1 + wave(t, 2)))):
                if name in names:
                    expr[names.index(name)] = w
            rot = np.array([0.12 * wave(t, 1, 1.0), 0.35 * wave(t, 1), 0.08 * wave(t, 2, 0.5)])
            params = FitParams.neutral(model.n_identity, model.n_expression, intr.focal_px).replace(
                expression=expr, root_rotation=rot,
                translation_mm=np.array([20 * wave(t, 1, 2.0), 10.0, 550.0 + 40 * wave(t, 1, 0.7)]))
            out = render_head(model, params, intr)
            img = np.asarray(getattr(out, "image", out))
            if img.ndim == 2:
                img = np.repeat(img[:, :, None], 3, axis=2)
            return np.ascontiguousarray(img[:, :, :3]).astype(np.uint8, copy=False)

        try:
            image = render(0.0)
            if image.shape[:2] != (self._height, self._width):
                raise ValueError(f"unexpected render size {image.shape}")
        except Exception as exc:  # noqa: BLE001 - renderer signature differs or fails: fall back
            log.info("demo source: rendering the head failed (%s); using a drawn face", exc)
            return None
        self._cache[0] = image
        return render

    def _draw_face(self, t: float) -> np.ndarray:
        import cv2

        w, h = self._width, self._height
        img = np.full((h, w, 3), (60, 50, 40), np.uint8)
        s = min(w, h) / 480.0
        cx = w / 2 + 60 * s * self._wave(t, 1)
        cy = h / 2 + 20 * s * self._wave(t, 2, 1.0)
        angle = 12 * self._wave(t, 1, 0.5)
        rx, ry = int(95 * s), int(125 * s)
        cv2.ellipse(img, (int(cx), int(cy)), (rx, ry), angle, 0, 360, (150, 180, 220), -1, cv2.LINE_AA)
        c, sn = math.cos(math.radians(angle)), math.sin(math.radians(angle))

        def at(dx: float, dy: float) -> tuple[int, int]:
            return int(cx + (dx * c - dy * sn) * s), int(cy + (dx * sn + dy * c) * s)

        blink = (t % self.loop_s) < 0.12 * self.loop_s / 4
        for ex in (-38, 38):
            if blink:
                cv2.line(img, at(ex - 14, -25), at(ex + 14, -25), (40, 40, 40), max(1, int(3 * s)), cv2.LINE_AA)
            else:
                cv2.ellipse(img, at(ex, -25), (int(16 * s), int(9 * s)), angle, 0, 360, (245, 245, 245), -1,
                            cv2.LINE_AA)
                cv2.circle(img, at(ex, -25), int(6 * s), (60, 40, 20), -1, cv2.LINE_AA)
        cv2.line(img, at(0, -10), at(-6, 25), (110, 130, 170), max(1, int(3 * s)), cv2.LINE_AA)
        mouth_open = 4 + 9 * (1 + self._wave(t, 3))
        cv2.ellipse(img, at(0, 55), (int(30 * s), int(mouth_open * s)), angle, 0, 360, (60, 40, 120), -1,
                    cv2.LINE_AA)
        return img

    def image_at(self, t: float) -> np.ndarray:
        """The demo image for time ``t`` seconds (the loop's nearest rendered pose; cached)."""
        k = int(round((t % self.loop_s) / self.loop_s * self.n_poses)) % self.n_poses
        image = self._cache.get(k)
        if image is None:
            tk = k * self.loop_s / self.n_poses
            image = self._renderer(tk) if self._renderer is not None else self._draw_face(tk)
            self._cache[k] = image
        return image

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        index = 0
        while not self._closed and (self.n_frames is None or index < self.n_frames):
            if self.realtime:
                due = start + index / self.fps
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                t = time.monotonic() - start  # live: the pose for now, even when rendering is slow
            else:
                t = index / self.fps
            yield Frame(image=self.image_at(t), timestamp_ns=int(round(t * 1e9)), index=index)
            index += 1

    def close(self) -> None:
        self._closed = True


# ----------------------------------------------------------------------------------------------------- open


def open_source(spec: str | os.PathLike | int, *, width: int | None = None, height: int | None = None,
                fps: float | None = None, realtime: bool = False, intrinsics: Intrinsics | None = None):
    """A frame source from a spec: a camera index ("0"), a video path, a session folder, or "demo".

    ``width``/``height``/``fps`` apply to cameras (and the demo); ``realtime`` paces files at their frame
    rate. Raises SourceError with a message when the spec names nothing usable.
    """
    if isinstance(spec, int):
        return CameraSource(spec, width, height, fps, intrinsics=intrinsics)
    text = str(spec).strip()
    if text.lower() == "demo":
        return DemoSource(width or 640, height or 480, fps or 30.0, realtime=realtime)
    if text.isdigit():
        return CameraSource(int(text), width, height, fps, intrinsics=intrinsics)
    path = Path(text).expanduser()
    if path.is_dir():
        from tracker.session.reader import SessionSource, is_session_folder

        if not is_session_folder(path):
            raise SourceError(f"{path} is a folder but not a recorded session (no meta.json or records)")
        return SessionSource(path, realtime=realtime)
    if path.exists():
        return VideoSource(path, realtime=realtime, intrinsics=intrinsics)
    raise SourceError(f"no such video file, session folder or camera index: {text!r} "
                      f"(use a number for a camera, or 'demo')")
