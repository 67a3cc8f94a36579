"""Camera and face profiles: save, load, list, edit, delete under a temporary TRACKER_CONFIG."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tracker.camera import profiles as pr
from tracker.types import Intrinsics


@pytest.fixture(autouse=True)
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_CONFIG", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


K = Intrinsics(1280, 720, 910.5, 911.25, 642.0, 358.5, (-0.1, 0.02, 0.0, 0.0, 0.0))


def test_save_and_load_round_trip(config):
    prof = pr.CameraProfile("Logitech C920 #1", K, "board", rms_reprojection_px=0.21, n_views=14)
    path = pr.save_profile(prof)
    assert path == config / "cameras" / "Logitech_C920__1_1280x720.json"
    obj = json.loads(path.read_text())
    assert obj["method"] == "board" and obj["rms_reprojection_px"] == 0.21
    assert obj["hfov_deg"] == pytest.approx(K.hfov_deg)
    assert obj["focal_std_px"] is None
    assert pr.load_profile("Logitech C920 #1", 1280, 720) == K
    assert pr.load_profile("Logitech C920 #1", 640, 480) is None
    assert pr.load_profile("other", 1280, 720) is None
    back = pr.find_profile("Logitech C920 #1", 1280, 720)
    assert back.camera_id == "Logitech C920 #1" and back.n_views == 14 and back.created == prof.created


def test_list_edit_delete(config):
    pr.save_profile(pr.CameraProfile("cam-b", Intrinsics.from_fov(640, 480, 60.0), "face", focal_std_px=6.5))
    pr.save_profile(pr.CameraProfile("cam-a", K, "board", rms_reprojection_px=0.3))
    (config / "cameras" / "broken_1x1.json").write_text("{not json")
    listed = pr.list_profiles()
    assert [p.camera_id for p in listed] == ["cam-a", "cam-b"]
    assert "focal std 6.5 px" in listed[1].summary() and "hfov 60.0 deg" in listed[1].summary()

    edited = pr.edit_profile("cam-a", 1280, 720, hfov_deg=70.0, notes="measured by hand")
    assert edited.method == "manual" and edited.notes == "measured by hand"
    assert edited.intrinsics.hfov_deg == pytest.approx(70.0)
    assert edited.intrinsics.cx == K.cx and edited.intrinsics.dist_coeffs == K.dist_coeffs
    assert pr.load_profile("cam-a", 1280, 720).hfov_deg == pytest.approx(70.0)
    edited = pr.edit_profile("cam-a", 1280, 720, fx=1000.0, fy=1001.0, dist_coeffs=())
    assert (edited.intrinsics.fx, edited.intrinsics.fy, edited.intrinsics.dist_coeffs) == (1000.0, 1001.0, ())
    with pytest.raises(pr.ProfileError, match="fx must be positive, got -3.0"):
        pr.edit_profile("cam-a", 1280, 720, fx=-3.0)
    made = pr.edit_profile("new", 320, 240, hfov_deg=50.0)
    assert made.method == "manual" and made.intrinsics.width == 320

    assert pr.delete_profile("cam-a", 1280, 720) is True
    assert pr.delete_profile("cam-a", 1280, 720) is False
    assert [p.camera_id for p in pr.list_profiles()] == ["cam-b", "new"]


def test_bad_profiles_give_clear_errors(config):
    with pytest.raises(pr.ProfileError, match="unknown calibration method 'guess'"):
        pr.CameraProfile("c", K, "guess")
    with pytest.raises(pr.ProfileError, match="has no usable characters"):
        pr.profile_path("..", 640, 480)
    path = pr.profile_path("c", 640, 480)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"camera_id": "c", "width": 640}))
    with pytest.raises(pr.ProfileError, match="not a camera profile"):
        pr.read_profile_file(path)
    assert pr.load_profile("c", 640, 480) is None  # logged and ignored


def test_face_profile_round_trip(config):
    assert pr.load_face_profile() is None
    ident = np.linspace(-1, 1, 100)
    path = pr.save_face_profile(pr.FaceProfile(ident, "ict-v3", "cam0", 612.5, 18))
    assert path == config / "face_profile.json"
    back = pr.load_face_profile("ict-v3")
    np.testing.assert_allclose(back.identity, ident)
    assert (back.camera_id, back.focal_px, back.n_keyframes) == ("cam0", 612.5, 18)
    assert pr.load_face_profile("another-model") is None
    with pytest.raises(pr.ProfileError, match="must be a finite"):
        pr.save_face_profile(pr.FaceProfile(np.array([np.nan])))
    assert pr.delete_face_profile() is True and pr.load_face_profile() is None


def test_camera_id_for_source_and_profile_lookup(tmp_path):
    assert pr.camera_id_for_source("0") == "camera0" and pr.camera_id_for_source(2) == "camera2"
    assert pr.camera_id_for_source("/videos/clip one.mp4") == "clip one"
    folder = tmp_path / "board shots"
    folder.mkdir()
    assert pr.camera_id_for_source(str(folder)) == "board shots"
    assert pr.profile_for_source("1", 1280, 720) is None
    pr.save_profile(pr.CameraProfile("camera1", K, "board", rms_reprojection_px=0.2))
    assert pr.profile_for_source("1", 1280, 720).intrinsics == K
