"""Frame sources: real video files, damaged files, fake cameras (missing, busy, unplugged, fast)."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from tracker.camera.sources import (CameraError, CameraSource, DemoSource, SourceError, VideoError, VideoSource,
                                    list_cameras, open_source)

CLIP = "videos/lp_d18.mp4"  # 216 frames, 480x480, 30 fps


def test_video_reads_real_frames_with_timestamps(shared_data):
    with VideoSource(shared_data / CLIP) as src:
        assert src.size == (480, 480) and src.length == 216 and not src.is_live
        assert src.fps == pytest.approx(30.0)
        frames = list(src)
    assert len(frames) == 216 and not src.truncated
    assert [f.index for f in frames] == list(range(216))
    ts = np.array([f.timestamp_ns for f in frames])
    assert ts[0] == 0 and np.all(np.diff(ts) > 0)
    assert np.allclose(np.diff(ts) / 1e9, 1 / 30.0, atol=2e-3)
    img = frames[100].image
    assert img.shape == (480, 480, 3) and img.dtype == np.uint8 and img.std() > 20  # a real picture


def test_truncated_mp4_gives_a_clear_error(shared_data, tmp_path):
    data = (shared_data / CLIP).read_bytes()
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(data[: len(data) // 2])  # the MP4 index (moov) is at the end: cut off
    with pytest.raises(VideoError, match="cannot read video file .*cut.mp4.*truncated"):
        VideoSource(bad)


def test_truncated_avi_ends_cleanly(shared_data, tmp_path):
    cap = cv2.VideoCapture(str(shared_data / CLIP))
    full = tmp_path / "full.avi"
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"mp4v"), 30, (480, 480))
    for _ in range(60):
        ok, img = cap.read()
        writer.write(img)
    writer.release()
    cap.release()
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    with VideoSource(cut) as src:
        assert src.length == 60
        frames = list(src)
    assert 5 < len(frames) < 60 and src.truncated


def test_unreadable_and_missing_files(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match="cannot read video file"):
        VideoSource(text)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="cannot read video file|no readable frames"):
        VideoSource(empty)
    with pytest.raises(VideoError, match="video file not found"):
        VideoSource(tmp_path / "nope.mp4")
    with pytest.raises(SourceError, match="no such video file, session folder or camera index"):
        open_source(str(tmp_path / "nope.mp4"))


def test_missing_camera_index_says_so():
    with pytest.raises(CameraError, match="camera 57 could not be opened: it is missing, or busy"):
        open_source("57")
    assert all(c.index >= 0 and c.name for c in list_cameras())


class FakeCapture:
    """OpenCV VideoCapture look-alike: ``n_frames`` frames at ``fps`` (None: endless), then read() fails."""

    def __init__(self, n_frames=None, fps=200.0, opened=True, first_frame_after=None):
        self.n_frames, self.period, self.opened = n_frames, 1.0 / fps, opened
        self.count = 0
        self.released = False
        self.hang = first_frame_after is not None and first_frame_after > 100

    def isOpened(self):
        return self.opened

    def set(self, prop, value):
        return True

    def get(self, prop):
        return 200.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        time.sleep(self.period)
        if self.hang or (self.n_frames is not None and self.count >= self.n_frames):
            return False, None
        img = np.full((48, 64, 3), self.count % 256, np.uint8)
        self.count += 1
        return True, img

    def release(self):
        self.released = True


def test_camera_latest_frame_semantics_and_timestamps():
    fake = FakeCapture(fps=200.0)
    with CameraSource(0, capture_factory=lambda i: fake) as cam:
        assert cam.size == (64, 48) and cam.is_live and cam.length is None
        got = []
        for frame in cam:
            got.append((frame, time.monotonic_ns()))
            time.sleep(0.04)  # a slow consumer
            if len(got) == 6:
                break
    assert fake.released
    idx = [f.index for f, _ in got]
    assert all(b > a for a, b in zip(idx, idx[1:]))
    assert max(np.diff(idx)) >= 3  # frames were skipped instead of queued
    ages_ms = [(now - f.timestamp_ns) / 1e6 for f, now in got]
    assert max(ages_ms) < 30  # the frame handed out is always a fresh one: no lag builds up


def test_camera_unplugged_while_running():
    fake = FakeCapture(n_frames=10, fps=100.0)
    cam = CameraSource(3, capture_factory=lambda i: fake, stall_timeout_s=0.3)
    n = 0
    with pytest.raises(CameraError, match="camera 3 stopped delivering frames \\(unplugged"):
        for _ in cam:
            n += 1
    cam.close()
    assert 1 <= n <= 10


def test_camera_busy_or_not_opening():
    with pytest.raises(CameraError, match="camera 2 could not be opened: it is missing, or busy"):
        CameraSource(2, capture_factory=lambda i: FakeCapture(opened=False))
    t0 = time.monotonic()
    with pytest.raises(CameraError, match="camera 1 opened but delivered no frame \\(busy in another program"):
        CameraSource(1, capture_factory=lambda i: FakeCapture(first_frame_after=1e9), open_timeout_s=0.5,
                     stall_timeout_s=0.3)
    assert time.monotonic() - t0 < 3
    assert not any(t.name.startswith("camera-1") and t.is_alive() for t in threading.enumerate())


def test_demo_source_needs_nothing():
    with DemoSource(320, 240, n_frames=3, realtime=False, use_model=False) as demo:
        frames = list(demo)
    assert len(frames) == 3 and frames[0].image.shape == (240, 320, 3)
    assert not np.array_equal(frames[0].image, frames[2].image)  # it moves
    src = open_source("demo", width=160, height=120)
    assert src.size == (160, 120) and src.intrinsics_hint.width == 160
    src.close()


def test_demo_source_renders_the_head_model(head_model):
    with DemoSource(160, 120, n_frames=2, realtime=False, loop_s=1.0, render_fps=2.0) as demo:
        frames = list(demo)
    assert demo.kind == "head model"
    img = frames[0].image
    background = img[0, 0].astype(int)
    face = np.abs(img.astype(int) - background).sum(axis=2) > 30
    assert 0.05 < face.mean() < 0.9  # a head in the middle of a plain background
    ys, xs = np.nonzero(face)
    assert 40 < xs.mean() < 120 and 30 < ys.mean() < 100


def test_video_closed_from_another_thread_while_reading(shared_data):
    src = VideoSource(shared_data / CLIP)
    got = []

    def consume():
        for frame in src:
            got.append(frame.index)

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.05)
    src.close()
    t.join(timeout=5)
    assert not t.is_alive() and 0 < len(got) < 216
