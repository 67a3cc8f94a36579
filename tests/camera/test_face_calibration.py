"""Face-based calibration: coverage bins and prompts, the accept/retry state machine, and convergence of the
focal length on synthetic landmark sequences of the real head model through the fitter's focal mode."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tracker.camera.calibration_bench import _rot_xy, synthetic_face_sequence
from tracker.camera.face_calibration import (DONE_PROMPT, Coverage, CoverageOptions, FaceCalibrationError,
                                             FaceCalibrationOptions, FaceCalibrator, FocalEstimate,
                                             calibrate_landmarks, head_yaw_pitch_deg, landmark_scale_px)
from tracker.types import FitParams, FitResult, Frame, Intrinsics, Landmarks, TrackedFrame

CAM = Intrinsics.from_fov(640, 480, 60.0)


def _params(yaw: float, pitch: float, depth: float) -> FitParams:
    p = FitParams.neutral(4, 53, CAM.fx, (0.0, 0.0, depth))
    return p.replace(root_rotation=_rot_xy(yaw, pitch))


@pytest.mark.parametrize("yaw, pitch", [(0.0, 0.0), (25.0, 0.0), (-30.0, 5.0), (0.0, 15.0), (10.0, -20.0)])
def test_yaw_pitch_from_root_rotation(yaw, pitch):
    got = head_yaw_pitch_deg(_params(yaw, pitch, 500.0))
    assert got == pytest.approx((yaw, pitch), abs=1e-6)


def test_neck_and_head_joints_count_in_the_orientation():
    p = _params(0.0, 0.0, 500.0)
    joints = np.zeros((4, 3))
    joints[1] = [0.0, math.radians(20.0), 0.0]  # head turned about the model's +y (up) axis
    yaw, pitch = head_yaw_pitch_deg(p.replace(joints=joints))
    # model +y is camera -y: a head turn about model up turns the face towards camera +x (the user's left)
    assert yaw == pytest.approx(20.0, abs=1e-6) and pitch == pytest.approx(0.0, abs=1e-6)


def test_coverage_prompts_in_order_and_fraction():
    cov = Coverage(CoverageOptions(per_bin=1))
    assert cov.fraction == 0.0 and cov.prompt() == "look straight at the camera"
    steps = [((0, 0, 500), "turn left"), ((25, 0, 500), "turn right"), ((-25, 0, 500), "look up"),
             ((0, 15, 480), "look down"), ((0, -15, 520), "move closer"), ((0, 0, 380), "move farther"),
             ((0, 0, 650), DONE_PROMPT)]
    fractions = []
    for (y, p, d), want in steps:
        cov.add(y, p, d)
        assert cov.prompt() == want, (y, p, d, cov.counts)
        fractions.append(cov.fraction)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and cov.complete
    assert cov.counts["distance:near"] == 1 and cov.counts["distance:far"] == 1
    assert cov.span == pytest.approx(650 / 380)


def test_depth_prompt_turns_to_farther_once_the_user_came_closer():
    cov = Coverage(CoverageOptions(per_bin=1))
    for y, p in [(0, 0), (25, 0), (-25, 0), (0, 15), (0, -15)]:
        cov.add(y, p, 600.0)
    assert cov.prompt() == "move closer"
    cov.add(0, 0, 450.0)  # 0.75 x: more than half of the 1.6 span (in log depth) nearer
    assert cov.prompt() == "move farther"
    assert 0 < cov.fraction < 1


def test_bad_depth_is_rejected():
    with pytest.raises(FaceCalibrationError, match="keyframe depth must be positive, got -1.0"):
        Coverage().add(0.0, 0.0, -1.0)


class FakeSolver:
    """Stands in for the fitter: returns a fixed focal whose std shrinks as 1/sqrt(n)."""

    def __init__(self, focal=600.0, fail=False):
        self.focal, self.fail, self.calls = focal, fail, []

    def __call__(self, keyframes, intrinsics, initial):
        self.calls.append(len(keyframes))
        if self.fail:
            raise FaceCalibrationError("the focal fit failed: test")
        n = len(keyframes)
        return FocalEstimate(self.focal + 30.0 / n, 60.0 / math.sqrt(n), np.full(4, 0.5), n)


def _tracked(i, yaw, pitch, depth, tracked=True):
    lm = Landmarks(np.random.default_rng(i).uniform(200, 400, (20, 2)), np.ones(20))
    fit = FitResult(_params(yaw, pitch, depth), lm.mu_px, 1.0, 3, True)
    frame = Frame(np.zeros((2, 2, 3), np.uint8), i * 1000, i)
    if not tracked:
        return TrackedFrame(frame, CAM, None, None, None, False, message="no face found")
    return TrackedFrame(frame, CAM, None, lm, fit, True)


def _protocol(n=60):
    t = (np.arange(n) + 0.5) / n
    yaw = 35 * np.sin(2 * np.pi * t)
    pitch = 20 * np.sin(4 * np.pi * t + 1)
    depth = 350 * (800 / 350) ** (0.5 * (1 - np.cos(3 * np.pi * t)))
    return [_tracked(i, yaw[i], pitch[i], depth[i], tracked=i % 7 != 3) for i in range(n)]


def test_state_machine_reaches_ready_then_accept_and_retry():
    solver = FakeSolver()
    cal = FaceCalibrator(solver, FaceCalibrationOptions(settle_rel_std=0.03))
    with pytest.raises(FaceCalibrationError, match="nothing to accept yet"):
        cal.accept()
    updates = []
    for tf in _protocol():
        updates.append(cal.add_tracked(tf))
        if cal.state == "ready":
            break
    assert cal.state == "ready" and updates[-1].prompt == "done: accept or retry"
    assert any(u.message == "no face found" for u in updates)
    assert solver.calls[0] == cal.options.min_keyframes and len(cal.history) == len(solver.calls)
    assert updates[-1].coverage == 1.0 and updates[-1].hfov_deg == pytest.approx(
        CAM.with_focal(cal.estimate.focal_px).hfov_deg)
    n = len(cal.keyframes)
    assert not cal.add_tracked(_tracked(99, 0, 0, 500)).added and len(cal.keyframes) == n  # frozen while ready
    res = cal.accept()
    assert cal.state == "accepted"
    assert res.focal_px == pytest.approx(600 + 30 / n) and res.intrinsics.fx == res.focal_px
    assert res.intrinsics.cx == CAM.cx and res.n_keyframes == n and res.history[-1][0] == n
    assert "horizontal FOV" in res.summary()
    cal.retry()
    assert cal.state == "collecting" and cal.keyframes == [] and cal.estimate is None and cal.coverage.fraction == 0


def test_solver_failure_and_implausible_fov_fail_with_messages():
    cal = FaceCalibrator(FakeSolver(fail=True))
    with pytest.raises(FaceCalibrationError, match="the focal fit failed: test"):
        cal.run(_protocol())
    assert cal.state == "failed"
    cal = FaceCalibrator(FakeSolver(focal=50.0))  # hfov ~ 162 degrees at 640 px
    updates = []
    with pytest.raises(FaceCalibrationError, match=r"the focal length could not be measured from these views "
                                                   r"\(horizontal FOV 162 deg is outside 20-130 deg\) although every "
                                                   r"pose bin is covered"):
        cal.run(_protocol(), on_update=updates.append)
    # before coverage was complete, the unmeasurable solves were no estimate, not yet a failure
    early = [u for u in updates if u.message.startswith("focal length not measurable yet")]
    assert early and all(u.state == "collecting" and u.estimate is None for u in early)
    assert cal.history == []


def test_too_little_motion_says_the_focal_is_not_measurable():
    class Orthographic(FakeSolver):
        def __call__(self, keyframes, intrinsics, initial):
            return FocalEstimate(20000.0, 15000.0, np.zeros(4), len(keyframes))

    small = [_tracked(i, 12 * math.sin(i / 3), 5 * math.cos(i / 4), 500 + 2 * i) for i in range(60)]
    with pytest.raises(FaceCalibrationError, match=r"the focal length could not be measured from these views "
                                                   r"\(horizontal FOV 2 deg is outside 20-130 deg\): the head turned "
                                                   r"and moved too little; \d+ keyframes from 60 frames, coverage "
                                                   r"\d+%, still missing: turn left, turn right"):
        FaceCalibrator(Orthographic()).run(small)


def test_run_reports_what_is_missing():
    with pytest.raises(FaceCalibrationError, match="no face tracked in any of the 5 frames"):
        FaceCalibrator(FakeSolver()).run([_tracked(i, 0, 0, 500, tracked=False) for i in range(5)])
    with pytest.raises(FaceCalibrationError, match="no frames"):
        FaceCalibrator(FakeSolver()).run([])
    still = [_tracked(i, 0.5 * i, 0, 500) for i in range(20)]  # barely moving: few keyframes
    with pytest.raises(FaceCalibrationError, match=r"not enough keyframes: \d of 20 frames|not enough keyframes: "
                                                   r"\d kept from 20 frames .* still missing: turn left, turn right"):
        FaceCalibrator(FakeSolver()).run(still)


def test_frame_size_change_is_an_error():
    cal = FaceCalibrator(FakeSolver())
    cal.add_tracked(_tracked(0, 0, 0, 500))
    other = Intrinsics.from_fov(320, 240)
    lm = Landmarks(np.zeros((20, 2)) + 100, np.ones(20))
    with pytest.raises(FaceCalibrationError, match="frame size changed from 640x480 to 320x240"):
        cal.add_landmarks(lm, other, 30.0, 0.0, 500.0)


def test_landmark_scale():
    lm = Landmarks(np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]]), np.ones(4))
    assert landmark_scale_px(lm) == pytest.approx(math.sqrt(2.0))


def test_converges_on_synthetic_landmarks(head_model):
    """The real head model and fitter: a guided sequence at 0.35-0.8 m, 1 px noise, starting from the 45 degree
    guess (f = 773 px) for a 60 degree camera (f = 554 px)."""
    from tracker.camera.calibration_bench import face_landmark_ids
    from tracker.fitting import FaceFitter

    fitter = FaceFitter(head_model, face_landmark_ids(head_model, 68))
    seq = synthetic_face_sequence(fitter.lm, CAM, 30, np.random.default_rng(7), noise_px=1.0)
    guess = Intrinsics.from_fov(640, 480)
    updates = []
    res = calibrate_landmarks(seq.landmarks, guess, fitter,
                              FaceCalibrationOptions(CoverageOptions(per_bin=2)), on_update=updates.append)
    err = abs(res.focal_px / CAM.fx - 1)
    assert err < 0.03, res.summary()
    assert res.focal_std_px < 0.05 * res.focal_px
    assert abs(res.hfov_deg - 60.0) < 2.5
    assert len(res.history) >= 2 and res.history[0][0] == 8
    # the estimate moves from the 45 degree guess towards the truth and its std shrinks with more keyframes
    assert abs(res.history[0][1] - CAM.fx) < abs(guess.fx - CAM.fx)
    assert res.history[-1][2] < res.history[0][2]
    assert res.identity.shape == (head_model.n_identity,)
    assert updates[-1].coverage > 0.8


def test_cli_face_writes_camera_and_face_profiles(head_model, shared_data, tmp_path, monkeypatch, capsys):
    """``calibrate --method face`` end to end with the tracking pipeline replaced by the real fitter on synthetic
    landmarks (the landmark network is not needed for this): both profiles are written and reloadable."""
    import json

    import tracker.pipeline
    from tracker.camera import profiles
    from tracker.camera.calibration_bench import face_landmark_ids
    from tracker.cli import main
    from tracker.fitting import FaceFitter, FitOptions

    monkeypatch.setenv("TRACKER_CONFIG", str(tmp_path / "cfg"))
    fitter = FaceFitter(head_model, face_landmark_ids(head_model, 68), FitOptions(w_intersect=0.0))
    seq = synthetic_face_sequence(fitter.lm, CAM, 40, np.random.default_rng(3), noise_px=1.0)
    guess = Intrinsics.from_fov(640, 480)

    class FakePipeline:
        def __init__(self, options=None, **kw):
            assert options.use_face_profile is False
            self.fitter, self.model = fitter, head_model

        def track(self, source, max_frames=None):
            prev = None
            for i, lmk in enumerate(seq.landmarks):
                fit = fitter.fit_frame(lmk, guess, previous=prev)
                prev = fit.params
                yield TrackedFrame(Frame(np.zeros((480, 640, 3), np.uint8), i, i), guess, None, lmk, fit, True)

    monkeypatch.setattr(tracker.pipeline, "Pipeline", FakePipeline)
    clip = shared_data / "videos" / "lp_d0.mp4"
    assert main(["calibrate", "--source", str(clip), "--method", "face", "--camera-id", "webcam", "--json"]) == 0
    out = capsys.readouterr().out
    assert "turn left" in out and "horizontal FOV" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert abs(result["focal_px"] / CAM.fx - 1) < 0.03, result
    prof = profiles.find_profile("webcam", 640, 480)
    assert prof.method == "face" and prof.focal_std_px == pytest.approx(result["focal_std_px"])
    face = profiles.load_face_profile(head_model.version)
    assert face is not None and face.identity.shape == (head_model.n_identity,) and face.camera_id == "webcam"


def test_accept_keeps_principal_point_aspect_and_distortion():
    cam = Intrinsics(640, 480, 500.0, 505.0, 330.0, 236.0, (-0.1, 0.02, 0.0, 0.0, 0.0))
    cal = FaceCalibrator(FakeSolver(focal=560.0), FaceCalibrationOptions(min_keyframes=2))
    for i, (y, p) in enumerate([(0, 0), (25, 0), (-25, 5)]):
        lm = Landmarks(np.random.default_rng(i).uniform(200, 400, (20, 2)), np.ones(20))
        cal.add_landmarks(lm, cam, y, p, 500.0 + 40 * i)
    res = cal.accept()
    k = res.intrinsics
    assert k.fx == pytest.approx(res.focal_px) and k.fy / k.fx == pytest.approx(505.0 / 500.0)
    assert (k.cx, k.cy, k.dist_coeffs) == (330.0, 236.0, cam.dist_coeffs)
