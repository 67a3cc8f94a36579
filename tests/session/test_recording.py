"""A recording driven by record_run: the camera unplugged mid-way, a full disk, Ctrl-C, the progress bar."""

from __future__ import annotations

import io

import numpy as np

from tests.camera.test_sources import FakeCapture
from tests.session.helpers import fake_tracked
from tracker.camera.sources import CameraSource
from tracker.session.reader import SessionReader
from tracker.session.recording import ProgressBar, record_run
from tracker.session.writer import SessionWriter, WriterOptions


def _tracked(frames, rng):
    for frame in frames:
        yield fake_tracked(frame, rng)


def test_camera_unplugged_during_a_recording(tmp_path):
    cam = CameraSource(0, capture_factory=lambda i: FakeCapture(n_frames=30, fps=100.0), stall_timeout_s=0.3)
    writer = SessionWriter(tmp_path / "s", fps=cam.fps, camera=cam.description)
    result = record_run(_tracked(cam, np.random.default_rng(0)), writer)
    cam.close()
    assert "camera 0 stopped delivering frames (unplugged" in result.error and "recording stopped" in result.error
    assert result.summary.error == "" and result.frames >= 1
    r = SessionReader(tmp_path / "s")
    assert r.meta["status"] == "closed" and "unplugged" in r.meta["end_reason"]
    assert len(r) == result.frames
    assert len(list(r.tracked_frames())) == result.frames  # every frame before the unplug plays back


def test_full_disk_ends_the_run_with_a_message(tmp_path):
    cam = CameraSource(0, capture_factory=lambda i: FakeCapture(n_frames=None, fps=100.0))
    writer = SessionWriter(tmp_path / "s", fps=cam.fps, options=WriterOptions(min_free_mb=1e12))
    result = record_run(_tracked(cam, np.random.default_rng(0)), writer, max_frames=500)
    cam.close()
    assert "the disk is almost full" in result.error and result.frames < 500
    assert SessionReader(tmp_path / "s").meta["status"] == "failed"


def test_interrupt_closes_the_recording(tmp_path):
    rng = np.random.default_rng(0)
    cam = CameraSource(0, capture_factory=lambda i: FakeCapture(n_frames=None, fps=100.0))

    def frames():
        for i, tf in enumerate(_tracked(cam, rng)):
            if i == 5:
                raise KeyboardInterrupt
            yield tf

    result = record_run(frames(), SessionWriter(tmp_path / "s"))
    cam.close()
    assert result.interrupted and result.frames == 5
    r = SessionReader(tmp_path / "s")
    assert r.meta["status"] == "closed" and len(r) == 5


def test_progress_bar_text():
    out = io.StringIO()
    bar = ProgressBar(total=10, stream=out)
    rng = np.random.default_rng(0)
    from tracker.types import Frame

    for i in range(10):
        bar.update(fake_tracked(Frame(np.zeros((8, 8, 3), np.uint8), i, i), rng, tracked=i % 2 == 0), i + 1,
                   force=True)
    bar.finish()
    last = out.getvalue().strip().split("\r")[-1]
    assert "10/10 frames 100%" in last and "tracked  50%" in last and "#" * 30 in last
