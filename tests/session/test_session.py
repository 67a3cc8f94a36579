"""Recording and replaying sessions: round trip, replay as a source, faults, and a hard kill."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.session.helpers import fake_tracked
from tracker.camera.sources import VideoSource, open_source
from tracker.paths import REPO_ROOT
from tracker.session import writer as writer_mod
from tracker.session.reader import SessionReader, SessionSource
from tracker.session.records import SessionError, SessionWriteError
from tracker.session.writer import SessionWriter, WriterOptions

CLIP = "videos/lp_d18.mp4"


def _record(shared_data, folder, n=40, untracked_every=7, options=WriterOptions(), pause_after=None):
    """Record n frames of a clip with fake fits; ``pause_after``: frame count after which the producer pauses
    (0.5 s), so that a wall-clock segment boundary falls inside the recording however fast encoding is."""
    import time

    rng = np.random.default_rng(0)
    written = []
    with VideoSource(shared_data / CLIP) as src:
        with SessionWriter(folder, fps=src.fps, camera=src.description, options=options,
                           meta={"model_version": "test"}) as w:
            for frame in src:
                tf = fake_tracked(frame, rng, tracked=(frame.index % untracked_every != 3))
                w.write(tf)
                written.append(tf)
                if len(written) == pause_after:
                    time.sleep(0.5)
                if len(written) == n:
                    break
    return written, w


def test_record_then_replay_gives_the_same_parameters(shared_data, tmp_path):
    written, w = _record(shared_data, tmp_path / "s")
    assert w.error is None and w.frames_written == 40 and w.video_frames == 40
    r = SessionReader(tmp_path / "s")
    assert r.complete and len(r) == 40 and r.meta["model_version"] == "test" and r.meta["frames"] == 40
    back = list(r.tracked_frames())
    assert len(back) == 40
    for a, b in zip(written, back):
        assert (a.frame.index, a.frame.timestamp_ns, a.tracked) == (b.frame.index, b.frame.timestamp_ns, b.tracked)
        assert a.timings_ms == b.timings_ms and a.message == b.message
        if not a.tracked:
            assert b.fit is None and b.landmarks is None
            continue
        for name in ("identity", "expression", "root_rotation", "translation_mm", "joints"):
            assert np.array_equal(getattr(a.fit.params, name), getattr(b.fit.params, name)), name
        assert a.fit.params.focal_px == b.fit.params.focal_px and a.fit.cost == b.fit.cost
        assert np.array_equal(a.landmarks.mu_px, b.landmarks.mu_px)
        assert np.array_equal(a.landmarks.sigma_px, b.landmarks.sigma_px)
        assert np.array_equal(a.roi.matrix, b.roi.matrix) and a.intrinsics == b.intrinsics
        # the video is lossy (mp4v) but the same picture
        assert b.frame.image.shape == a.frame.image.shape
        assert np.abs(b.frame.image.astype(int) - a.frame.image.astype(int)).mean() < 12


def test_replay_from_a_position(shared_data, tmp_path):
    written, _ = _record(shared_data, tmp_path / "s", n=40, options=WriterOptions(segment_s=0.05), pause_after=20)
    r = SessionReader(tmp_path / "s")
    assert len(r._segments) >= 2  # short segments: seeking skips whole ones
    starts = [s for s, _ in r._segments]
    # inside a later segment that holds two frames or more (how many each holds depends on the machine's speed),
    # else at the start of the last one
    inside = [a + 1 for a, b in zip(starts[1:], starts[2:] + [40]) if b - a >= 2]
    for start in (inside[-1] if inside else starts[-1], 5):
        tail = list(r.tracked_frames(start=start))
        assert [t.frame.index for t in tail] == list(range(start, 40))
        full = {t.frame.index: t for t in r.tracked_frames()}
        assert np.array_equal(tail[0].frame.image, full[start].frame.image)
    assert [t.frame.index for t in r.tracked_frames(with_images=False, start=38)] == [38, 39]
    assert list(r.tracked_frames(start=40)) == []


def test_session_replays_as_a_source(shared_data, tmp_path):
    written, _ = _record(shared_data, tmp_path / "s", n=25)
    with open_source(str(tmp_path / "s")) as src:
        assert isinstance(src, SessionSource) and src.length == 25 and src.size == (480, 480)
        frames = []
        for frame in src:
            rec = src.recorded(frame)
            assert rec is not None and rec.frame.index == frame.index
            if rec.tracked:
                orig = written[frame.index]
                assert np.array_equal(rec.fit.params.expression, orig.fit.params.expression)
            frames.append(frame)
    assert [f.timestamp_ns for f in frames] == [t.frame.timestamp_ns for t in written]


def test_cut_short_last_record_is_ignored(shared_data, tmp_path):
    _record(shared_data, tmp_path / "s", n=10)
    path = tmp_path / "s" / "records.bin"
    data = path.read_bytes()
    length = int.from_bytes(data[8:12], "little")
    first = data[8: 8 + 8 + length]  # the first record, framed
    path.write_bytes(data + first[: len(first) // 2])  # a record cut short by a crash
    r = SessionReader(tmp_path / "s")
    assert len(r) == 10 and r.skipped_records == 0
    # a damaged record in the middle is skipped, the ones after it still read
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    r = SessionReader(tmp_path / "s")
    assert len(r) == 9 and r.skipped_records == 1
    path.write_bytes(b"garbage that is not a session")
    with pytest.raises(SessionError, match="not a session records file"):
        SessionReader(tmp_path / "s")


def test_not_a_session(tmp_path):
    with pytest.raises(SessionError, match="is not a recorded session"):
        SessionReader(tmp_path)
    with pytest.raises(SessionError, match="session folder not found"):
        SessionReader(tmp_path / "nothing")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.txt").write_text("hi")
    with pytest.raises(SessionWriteError, match="it exists and is not an empty folder"):
        SessionWriter(tmp_path / "x")


def test_disk_full_for_real_stops_cleanly_and_keeps_what_was_recorded(shared_data, tmp_path):
    """/dev/full put under the records file descriptor: the kernel answers ENOSPC like a full disk."""
    rng = np.random.default_rng(0)
    with VideoSource(shared_data / CLIP) as src:
        w = SessionWriter(tmp_path / "s", fps=src.fps)
        frames = iter(src)
        for _ in range(8):
            w.write(fake_tracked(next(frames), rng))
        deadline = time.monotonic() + 5
        while w.frames_written < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, w._fd)
        os.close(full)
        with pytest.raises(SessionWriteError, match="recording stopped: the disk is full .*8 frames recorded"):
            for _ in range(50):
                w.write(fake_tracked(next(frames), rng))
                time.sleep(0.01)
    summary = w.close()
    assert "the disk is full" in summary.error and "the disk is full" in w.status
    r = SessionReader(tmp_path / "s")
    assert len(r) == 8 and r.meta["status"] == "failed" and "disk is full" in r.meta["error"]
    assert len(list(r.tracked_frames())) == 8  # video closed properly: the recorded frames play back


def test_write_error_midway_is_reported(shared_data, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = writer_mod._write_all

    def flaky(fd, data):
        if fd == w._fd:
            calls["n"] += 1
            if calls["n"] > 5:
                raise OSError(errno.EIO, "Input/output error")
        return real(fd, data)

    rng = np.random.default_rng(0)
    with VideoSource(shared_data / CLIP) as src:
        w = SessionWriter(tmp_path / "s", fps=src.fps)
        monkeypatch.setattr(writer_mod, "_write_all", flaky)
        with pytest.raises(SessionWriteError, match="input/output error"):
            for frame in src:
                w.write(fake_tracked(frame, rng))
                time.sleep(0.005)
    w.close()
    assert len(SessionReader(tmp_path / "s")) == 5


def test_almost_full_disk_stops_before_it_is_full(shared_data, tmp_path):
    rng = np.random.default_rng(0)
    with VideoSource(shared_data / CLIP) as src:
        w = SessionWriter(tmp_path / "s", fps=src.fps, options=WriterOptions(min_free_mb=1e12))
        with pytest.raises(SessionWriteError, match="the disk is almost full .*1 frames recorded and kept"):
            w.write(fake_tracked(next(iter(src)), rng))
        summary = w.close()
    assert "the disk is almost full" in summary.error and summary.frames == 1


def test_writing_costs_little_on_the_callers_thread(shared_data, tmp_path):
    rng = np.random.default_rng(0)
    with VideoSource(shared_data / CLIP) as src:
        tfs = [fake_tracked(f, rng) for _, f in zip(range(60), src)]
    with SessionWriter(tmp_path / "s", fps=30) as w:
        costs = []
        for tf in tfs:
            t0 = time.perf_counter()
            w.write(tf)
            costs.append(time.perf_counter() - t0)
    assert np.median(costs) * 1e3 < 1.0
    assert w.frames_written == 60


def test_hard_kill_keeps_everything_older_than_a_second(shared_data, tmp_path):
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    child = subprocess.Popen([sys.executable, "-m", "tests.session.kill_child", str(shared_data / CLIP), str(out)],
                             cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sent = []
    try:
        t_start = time.monotonic()
        while time.monotonic() - t_start < 30:
            line = child.stdout.readline()
            if not line:
                break
            _, index, ts = line.split()
            sent.append((int(index), int(ts)))
            if len(sent) >= 75:  # about 2.5 s of recording
                break
        child.send_signal(signal.SIGKILL)
        kill_ns = time.monotonic_ns()
    finally:
        child.kill()
        child.wait()
    assert len(sent) >= 75, child.stderr.read()
    r = SessionReader(out)
    assert r.meta["status"] == "recording"  # it never closed
    recorded = {rec["index"] for rec in r.records}
    old = [i for i, ts in sent if kill_ns - ts > 1e9]
    assert len(old) >= 30
    assert set(old) <= recorded
    replayed = {tf.frame.index for tf in r.tracked_frames()}
    assert set(old) <= replayed, f"video frames lost: {sorted(set(old) - replayed)[:10]}"
