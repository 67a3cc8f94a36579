"""Exports of a recorded session parse back: Live Link Face CSV, JSON lines, OBJ meshes."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from tests.session.helpers import fake_tracked
from tracker.camera.sources import VideoSource
from tracker.cli import main as cli_main
from tracker.session.export import (ARKIT_NAMES, CSV_HEADER, ICT_EXPRESSION_NAMES, arkit_mapping, arkit_weights,
                                    euler_yxz, head_angles, _rodrigues)
from tracker.session.reader import SessionReader
from tracker.session.writer import SessionWriter
from tracker.types import FitParams

CLIP = "videos/lp_d18.mp4"


@pytest.fixture(scope="module")
def session(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exp") / "s"
    rng = np.random.default_rng(3)
    written = []
    with VideoSource(shared_data / CLIP) as src, SessionWriter(
            folder, fps=src.fps, meta={"expression_names": list(ICT_EXPRESSION_NAMES)}) as w:
        for frame in src:
            tf = fake_tracked(frame, rng, tracked=frame.index != 4)
            w.write(tf, video=False)
            written.append(tf)
            if len(written) == 12:
                break
    return folder, written


def test_arkit_mapping_covers_the_52_names():
    mapping = arkit_mapping(ICT_EXPRESSION_NAMES)
    assert len(mapping) == 52
    named = {ARKIT_NAMES[i]: [ICT_EXPRESSION_NAMES[j] for j in idx] for i, idx in enumerate(mapping)}
    assert named["EyeBlinkLeft"] == ["eyeBlink_L"] and named["JawOpen"] == ["jawOpen"]
    assert named["BrowInnerUp"] == ["browInnerUp_L", "browInnerUp_R"] and named["TongueOut"] == []
    assert sum(len(v) for v in mapping) == 53  # every ICT expression lands somewhere
    psi = np.zeros(53)
    psi[ICT_EXPRESSION_NAMES.index("browInnerUp_L")] = 1.0
    w = arkit_weights(psi, mapping)
    assert w[ARKIT_NAMES.index("BrowInnerUp")] == 0.5 and w.sum() == 0.5
    # gaze comes from the eye joints: both eyes turned 15 degrees towards the subject's left (+y in model axes)
    joints = np.zeros((4, 3))
    joints[2:, 1] = np.radians(15.0)
    w = arkit_weights(np.zeros(53), mapping, joints)
    assert w[ARKIT_NAMES.index("EyeLookOutLeft")] == pytest.approx(0.5)
    assert w[ARKIT_NAMES.index("EyeLookInRight")] == pytest.approx(0.5)
    assert w[ARKIT_NAMES.index("EyeLookInLeft")] == 0 and w[ARKIT_NAMES.index("EyeLookUpLeft")] == 0


def test_head_angles_have_documented_signs():
    p = FitParams.neutral(10, 53, 500.0)
    assert np.allclose(head_angles(p)["head"], 0.0)
    # root rotation about the camera's y axis (down) by +0.3: in model axes (+y up) that is a yaw of -0.3
    yaw, pitch, roll = head_angles(p.replace(root_rotation=np.array([0.0, 0.3, 0.0])))["head"]
    assert yaw == pytest.approx(-0.3) and abs(pitch) < 1e-12 and abs(roll) < 1e-12
    for angles in [(0.3, -0.2, 0.1), (-1.0, 0.5, -0.4)]:
        r = _rodrigues(np.array([0, angles[0], 0])) @ _rodrigues(np.array([angles[1], 0, 0])) @ \
            _rodrigues(np.array([0, 0, angles[2]]))
        assert np.allclose(euler_yxz(r), angles)


def test_head_angles_match_the_head_models_pose(head_model):
    from tracker.face.pose import head_pose

    rng = np.random.default_rng(5)
    for _ in range(3):
        p = FitParams(rng.normal(size=head_model.n_identity), rng.uniform(size=53), rng.normal(scale=0.3, size=3),
                      np.array([0, 0, 600.0]), rng.normal(scale=0.2, size=(4, 3)), 600.0)
        hp = head_pose(head_model, p)
        assert np.allclose(np.degrees(head_angles(p)["head"]), (hp.yaw_deg, hp.pitch_deg, hp.roll_deg))


def test_csv_follows_live_link_face_and_parses_back(session, tmp_path):
    folder, written = session
    out = tmp_path / "take.csv"
    assert cli_main(["export", str(folder), "--format", "csv", "--out", str(out)]) == 0
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    assert tuple(header) == CSV_HEADER
    assert header[:4] == ["Timecode", "BlendShapeCount", "EyeBlinkLeft", "EyeLookDownLeft"]
    assert header[2 + 52:2 + 52 + 9] == ["HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch",
                                         "LeftEyeRoll", "RightEyeYaw", "RightEyePitch", "RightEyeRoll"]
    assert len(body) == 12
    mapping = arkit_mapping(ICT_EXPRESSION_NAMES)
    for row, tf in zip(body, written):
        d = dict(zip(header, row))
        assert d["BlendShapeCount"] == "61" and int(d["Frame"]) == tf.frame.index
        hh, mm, ss, ff = d["Timecode"].split(":")
        assert 0 <= int(hh) < 24 and 0 <= int(mm) < 60 and 0 <= int(ss) < 60 and 0 <= float(ff) < 31
        if not tf.tracked:
            assert d["Tracked"] == "0" and d["JawOpen"] == ""
            continue
        want = arkit_weights(tf.fit.params.expression, mapping, tf.fit.params.joints)
        got = np.array([float(d[n]) for n in ARKIT_NAMES])
        assert np.allclose(got, want, atol=1e-5)
        yaw, pitch, roll = head_angles(tf.fit.params)["head"]
        assert float(d["HeadYaw"]) == pytest.approx(yaw, abs=1e-5)
        assert float(d["HeadZ_mm"]) == pytest.approx(tf.fit.params.translation_mm[2], abs=1e-3)


def test_jsonl_parses_back(session, tmp_path):
    folder, written = session
    out = tmp_path / "take.jsonl"
    assert cli_main(["export", str(folder), "--format", "jsonl", "--out", str(out)]) == 0
    objs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(objs) == 12
    for obj, tf in zip(objs, written):
        assert obj["frame"] == tf.frame.index and obj["tracked"] == tf.tracked
        if tf.tracked:
            assert np.array_equal(obj["params"]["identity"], tf.fit.params.identity)
            assert obj["expression"]["jawOpen"] == tf.fit.params.expression[ICT_EXPRESSION_NAMES.index("jawOpen")]
            assert math.isclose(obj["head"]["yaw_deg"], math.degrees(head_angles(tf.fit.params)["head"][0]))
            assert len(obj["landmarks"]["mu_px"]) == 320 and len(obj["blendshapes"]) == 52
            q = np.array(obj["head"]["quaternion_wxyz"])
            assert np.linalg.norm(q) == pytest.approx(1.0)


def test_obj_sequence_parses_back(session, tmp_path, head_model):
    from tracker.face.obj_io import parse_obj_mesh
    from tracker.pipeline import fit_vertices
    from tracker.session.export import export_session
    from tracker.types import MODEL_TO_CAMERA_AXES

    folder, written = session
    path, n = export_session(folder, "obj", tmp_path / "meshes", model=head_model, step=5)
    tracked = [tf for tf in written if tf.tracked]
    assert n == len(tracked[::5]) and len(list(path.glob("*.obj"))) == n
    tf = tracked[5]
    mesh = parse_obj_mesh((path / f"frame_{tf.frame.index:06d}.obj").read_bytes(), "frame")
    want = fit_vertices(head_model, tf.fit.params) @ MODEL_TO_CAMERA_AXES.T
    assert mesh.vertices.shape == (head_model.n_vertices, 3)
    assert np.allclose(mesh.vertices, want, atol=1e-4)  # written to 0.1 micrometre


def test_export_errors_in_words(tmp_path, capsys):
    assert cli_main(["export", str(tmp_path / "none"), "--format", "csv"]) == 1
    assert "session folder not found" in capsys.readouterr().err
    reader_dir = tmp_path / "empty"
    SessionWriter(reader_dir).close()
    assert cli_main(["export", str(reader_dir), "--format", "jsonl"]) == 1
    assert "has no frames to export" in capsys.readouterr().err
    assert len(SessionReader(reader_dir)) == 0
