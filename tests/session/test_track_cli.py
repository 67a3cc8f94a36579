"""``python main.py track``: headless tracking into a session, with its progress bar and its errors in words.

The network here is a tiny contract-following ONNX (tests/landmarks/tiny_model.py), so these tests check the
command's plumbing on a real clip; tests/test_pipeline.py tracks real faces with the trained network.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.landmarks.tiny_model import build_tiny_model
from tracker.cli import main as cli_main
from tracker.session.reader import SessionReader

CLIP = "videos/lp_d18.mp4"


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("net") / "landmark_model.onnx"
    build_tiny_model(path, size=64, n_landmarks=68,
                     metadata={"input_size": 64, "landmark_set": "landmarks68", "version": "tiny-test"})
    return path


def test_track_a_video_into_a_session_then_replay_and_export(shared_data, tmp_path, tiny_onnx, capsys):
    out = tmp_path / "take"
    code = cli_main(["track", str(shared_data / CLIP), "--out", str(out), "--max-frames", "12",
                     "--landmark-model", str(tiny_onnx)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "12/12 frames 100%" in captured.err  # the progress bar
    assert "12 frames in" in captured.out and "12 records, 12 video frames" in captured.out
    r = SessionReader(out)
    assert r.complete and len(r) == 12 and r.meta["landmark_set"] == "landmarks68"
    assert r.meta["landmark_model_version"] == "tiny-test" and len(r.meta["expression_names"]) == 53
    assert r.meta["intrinsics"]["width"] == 480 and r.meta["camera"].startswith("lp_d18.mp4")
    assert [rec["index"] for rec in r.records] == list(range(12))
    for rec in r.records:
        assert rec["timings_ms"]["total"] > 0 and rec["landmarks"] is not None or not rec["tracked"]
    # the session is itself a source: track it again, without video
    again = tmp_path / "again"
    assert cli_main(["track", str(out), "--out", str(again), "--no-video", "--quiet",
                     "--landmark-model", str(tiny_onnx)]) == 0
    r2 = SessionReader(again)
    assert len(r2) == 12 and r2.meta["video_frames"] == 0
    assert [rec["timestamp_ns"] for rec in r2.records] == [rec["timestamp_ns"] for rec in r.records]
    assert cli_main(["export", str(out), "--format", "csv"]) == 0
    assert len((out / "export.csv").read_text().splitlines()) == 13


def test_track_errors_in_words(shared_data, tmp_path, tiny_onnx, capsys):
    def err(*argv):
        code = cli_main(["track", *argv, "--landmark-model", str(tiny_onnx)])
        return code, capsys.readouterr().err

    code, text = err(str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "a"))
    assert code == 1 and "no such video file, session folder or camera index" in text
    code, text = err("57", "--out", str(tmp_path / "b"))
    assert code == 1 and "camera 57 could not be opened" in text
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    code, text = err(str(bad), "--out", str(tmp_path / "c"))
    assert code == 1 and "cannot read video file" in text
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    code, text = err(str(shared_data / CLIP), "--out", str(full))
    assert code == 1 and "it exists and is not an empty folder" in text
    code = cli_main(["track", str(shared_data / CLIP), "--out", str(tmp_path / "d"),
                     "--landmark-model", str(tmp_path / "none.onnx")])
    assert code == 1 and "landmark model not found" in capsys.readouterr().err


def test_track_says_when_the_network_and_its_landmark_set_disagree(shared_data, tmp_path, capsys):
    onnx = tmp_path / "net.onnx"
    build_tiny_model(onnx, size=64, n_landmarks=50, metadata={"input_size": 64, "landmark_set": "landmarks68"})
    code = cli_main(["track", str(shared_data / CLIP), "--out", str(tmp_path / "s"), "--landmark-model", str(onnx)])
    assert code == 1
    assert "outputs 50 landmarks but its landmark set 'landmarks68' has 68" in capsys.readouterr().err
