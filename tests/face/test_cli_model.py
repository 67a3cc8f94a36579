"""``python main.py model`` and ``python main.py bench model``."""

from __future__ import annotations

import argparse

from tracker.cli import main


def test_model_command_loads_and_reports(head_model, capsys, tmp_path):
    assert main(["model", "--obj", str(tmp_path / "neutral.obj")]) == 0
    out = capsys.readouterr().out
    assert "loaded the head model cache in" in out
    assert "vertices: 26719, triangles: 52220, identity modes: 100, expressions: 53" in out
    assert "landmark set landmarks320: 320 landmarks" in out and "landmark set landmarks68: 68" in out
    text = (tmp_path / "neutral.obj").read_text()
    assert text.count("\nv ") == 26719 and text.count("\nf ") == 52220


def test_model_command_errors(capsys, tmp_path, monkeypatch):
    assert main(["model", "--ict", str(tmp_path / "missing")]) == 1
    assert "--ict" in capsys.readouterr().err
    bad = tmp_path / "FaceXModel.tar.xz"
    bad.write_bytes(b"garbage")
    assert main(["model", "--ict", str(bad), "--rebuild", "--cache-dir", str(tmp_path / "c")]) == 1
    assert "not a readable tar or zip archive" in capsys.readouterr().err


def test_bench_model(head_model):
    from tracker.face import bench

    results = bench.run(argparse.Namespace(rebuild=False, ict=None, repeats=3))
    assert results["vertices"] == 26719
    assert 0.0 < results["load_s"] < 1.0
    assert results["forward_full_ms"] > 0.0 and results["forward_320_vertex_ids_ms"] > 0.0
