"""The tracking pipeline: the posed mesh on demand, and tracking a real clip end to end."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.pipeline import fit_vertices
from tracker.types import FitParams, Intrinsics


def _random_params(model, rng) -> FitParams:
    return FitParams(identity=rng.normal(size=model.n_identity), expression=rng.uniform(0, 0.6, model.n_expression),
                     root_rotation=rng.normal(scale=0.2, size=3), translation_mm=np.array([15.0, -10.0, 550.0]),
                     joints=rng.normal(scale=0.1, size=(4, 3)), focal_px=600.0)


def test_fit_vertices_agree_with_the_fitters_forward_model(head_model):
    from tracker.fitting.energy import FitOptions
    from tracker.fitting.solver import FaceFitter

    rng = np.random.default_rng(0)
    ids = rng.choice(head_model.n_vertices, 300, replace=False)
    fitter = FaceFitter(head_model, ids, FitOptions(sparsity_threshold_cm=0.0))  # exact model
    intr = Intrinsics.from_fov(640, 480)
    for _ in range(2):
        p = _random_params(head_model, rng).replace(focal_px=intr.fx)
        v = fit_vertices(head_model, p)
        assert v.shape == (head_model.n_vertices, 3) and np.all(np.isfinite(v))
        uv = np.stack([intr.fx * v[ids, 0] / v[ids, 2] + intr.cx, intr.fy * v[ids, 1] / v[ids, 2] + intr.cy], 1)
        assert np.allclose(uv, fitter.landmarks_px(p, intr), atol=1e-3)  # float32 mesh vs float64 landmarks
    from tracker.face.forward import posed_vertices

    assert np.allclose(fit_vertices(head_model, p), posed_vertices(head_model, p), atol=1e-3)
    # zero pose: the mean face in front of the camera, its nose (max model z) nearest to the camera
    v0 = fit_vertices(head_model, FitParams.neutral(head_model.n_identity, head_model.n_expression, 600.0))
    face = head_model.vertex_part == head_model.part_names.index("Face")
    assert abs(np.median(v0[face, 0])) < 20 and 400 < v0[face, 2].min() < 600 < v0[face, 2].max()


class _Oracle:
    """Stands in for the network and the detector on blank frames whose pixel (0, 0) holds the frame number:
    the landmarks are the true model's, projected, with 0.3 px noise (or garbage on ``garbage`` frames)."""

    def __init__(self, model, truth, intr, ids320, ids68, garbage=(), no_face=()):
        from tracker.face.forward import posed_vertices, project

        self.input_size, self.n_landmarks, self.info = 128, len(ids320), None
        self.uv = [project(posed_vertices(model, p, ids320), intr) for p in truth]
        self.uv68 = [project(posed_vertices(model, p, ids68), intr) for p in truth]
        self.garbage, self.no_face = set(garbage), set(no_face)
        self.rng = np.random.default_rng(0)
        self.detect_calls = []

    def predict(self, image, roi):
        from tracker.types import Landmarks

        k = int(image[0, 0, 0])
        n = self.n_landmarks
        if k in self.garbage:
            return Landmarks(self.rng.uniform(0, 400, (n, 2)), np.full(n, 150.0))
        return Landmarks(self.uv[k] + self.rng.normal(scale=0.3, size=(n, 2)), np.full(n, 1.0))

    def detect(self, image):
        from tracker.detect import Detection

        k = int(image[0, 0, 0])
        self.detect_calls.append(k)
        if k in self.no_face:
            return []
        p = self.uv68[k]
        kp = np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[[48, 54]].mean(0), p[0], p[16]])
        return [Detection(np.r_[p.min(0), p.max(0)], kp, 0.9)]


@pytest.mark.parametrize("roi_from", ["fit", "landmarks"])
def test_pipeline_tracks_redetects_and_times_its_stages(head_model, roi_from):
    from tracker.face.landmark_sets import load_landmark_set
    from tracker.fitting.solver import FaceFitter
    from tracker.pipeline import Pipeline, PipelineOptions
    from tracker.types import Frame

    intr = Intrinsics.from_fov(640, 480)
    ids320 = load_landmark_set("landmarks320").vertex_ids
    ids68 = load_landmark_set("landmarks68").vertex_ids
    n = 14
    truth = []
    for k in range(n):
        t = k / n
        expr = np.zeros(head_model.n_expression)
        expr[head_model.expression_names.index("jawOpen")] = 0.4 * t
        truth.append(FitParams(np.zeros(head_model.n_identity), expr, np.array([0.05, 0.4 * t - 0.2, 0.02]),
                               np.array([10.0 * t, -5.0, 600.0]), np.zeros((4, 3)), intr.fx))
    oracle = _Oracle(head_model, truth, intr, ids320, ids68, garbage={6}, no_face={10})
    pipe = Pipeline(PipelineOptions(intrinsics=intr, refine_passes=0, roi_from=roi_from, use_face_profile=False),
                    detector=oracle, predictor=oracle, model=head_model, fitter=FaceFitter(head_model, ids320),
                    ibug68_vertices=ids68)
    frames = []
    for k in range(n):
        img = np.zeros((480, 640, 3), np.uint8)
        img[0, 0, 0] = k
        frames.append(Frame(img, k * 33_000_000, k))
    out = list(pipe.track(frames))
    assert [tf.frame.index for tf in out] == list(range(n))
    tracked = [tf.tracked for tf in out]
    # 6: the network's answer is garbage, from the previous fit's ROI and again from the detector's;
    # 7 starts from the detector; 10 (no face for the detector) is tracked from frame 9's fit without it
    assert tracked == [True] * 6 + [False] + [True] * 7
    assert "tracking lost: landmarks too uncertain" in out[6].message
    assert oracle.detect_calls == [0, 6, 7]  # first frame, the lost frame's retry, the frame after
    for tf in out:
        assert set(tf.timings_ms) >= {"decode", "roi", "detect", "network", "fit", "total"}
        assert tf.timings_ms["total"] >= tf.timings_ms["network"] + tf.timings_ms["fit"]
    assert out[0].timings_ms["detect"] > 0 and out[3].timings_ms["detect"] == 0
    from tracker.fitting.rotation import geodesic_deg
    from tracker.session.export import head_rotation_model

    for tf, p in zip(out, truth):
        if tf.tracked:  # the head's orientation (root, neck and head joints together) and position
            assert geodesic_deg(head_rotation_model(tf.fit.params), head_rotation_model(p)) < 2.5
            assert np.linalg.norm(tf.fit.params.translation_mm - p.translation_mm) < 15
            assert np.median(np.linalg.norm(tf.fit.landmarks_px - oracle.uv[tf.frame.index], axis=1)) < 1.0
    # with nothing to track from, no face is "no face found"
    pipe.reset()
    none = pipe.process(frames[10])
    assert not none.tracked and none.message == "no face found" and none.fit is None


def test_pipeline_uses_the_saved_face_profile(head_model, tmp_path, monkeypatch):
    from tracker.camera.profiles import FaceProfile, save_face_profile
    from tracker.face.landmark_sets import load_landmark_set
    from tracker.fitting.solver import FaceFitter
    from tracker.pipeline import Pipeline, PipelineOptions
    from tracker.types import Frame

    monkeypatch.setenv("TRACKER_CONFIG", str(tmp_path))
    identity = np.random.default_rng(2).normal(size=head_model.n_identity)
    save_face_profile(FaceProfile(identity, model_version=head_model.version))
    intr = Intrinsics.from_fov(640, 480)
    ids320 = load_landmark_set("landmarks320").vertex_ids
    ids68 = load_landmark_set("landmarks68").vertex_ids
    truth = [FitParams(identity, np.zeros(head_model.n_expression), np.array([0.0, 0.1, 0.0]),
                       np.array([0.0, 0.0, 600.0]), np.zeros((4, 3)), intr.fx)]
    oracle = _Oracle(head_model, truth, intr, ids320, ids68)
    kw = dict(detector=oracle, predictor=oracle, model=head_model, fitter=FaceFitter(head_model, ids320),
              ibug68_vertices=ids68)
    pipe = Pipeline(PipelineOptions(intrinsics=intr, refine_passes=0), **kw)
    assert pipe.describe()["identity"].startswith("face profile")
    img = np.zeros((480, 640, 3), np.uint8)
    tf = pipe.process(Frame(img, 0, 0))
    assert tf.tracked and np.array_equal(tf.fit.params.identity, identity)
    plain = Pipeline(PipelineOptions(intrinsics=intr, refine_passes=0, use_face_profile=False), **kw)
    assert plain.describe()["identity"] == "mean face"
    assert not np.any(plain.process(Frame(img, 0, 0)).fit.params.identity)


def test_bench_pipeline_reports_every_figure(shared_data, tmp_path, capsys):
    """The benchmark end to end on a few frames (a tiny contract-following network: the figures' plumbing)."""
    import json

    from tests.landmarks.tiny_model import build_tiny_model
    from tracker.cli import main as cli_main

    onnx = tmp_path / "net.onnx"
    build_tiny_model(onnx, size=64, n_landmarks=68, metadata={"input_size": 64, "landmark_set": "landmarks68"})
    code = cli_main(["bench", "pipeline", "--video", str(shared_data / "videos" / "lp_d18.mp4"), "--max-frames", "6",
                     "--landmark-model", str(onnx), "--no-app", "--no-pin", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["frames"] == 6 and result["size"] == "480x480"
    ours, mp = result["ours"], result["mediapipe"]
    for key in ("decode_ms", "roi_ms", "network_ms", "fit_ms", "total_ms"):
        assert ours[key] >= 0
    assert ours["network_ms"] > 0 and ours["processing_ms"]["mean"] > 0
    assert mp["tracked_share"] > 0.8 and mp["processing_ms"]["mean"] > 0  # MediaPipe finds the real face
    assert result["ratio_ours_over_mediapipe"] == pytest.approx(ours["processing_ms"]["mean"]
                                                                / mp["processing_ms"]["mean"])
    rec = result["recording"]
    assert rec["write_call_ms"] > 0 and "overhead_tracking_thread_cpu_ms_per_frame" in rec


def test_pipeline_tracks_a_real_clip(shared_data, tmp_path):
    """The trained network and the fitter on a held-out clip (lp_d9): faces tracked on most frames, the fitted
    eyes and mouth where MediaPipe Face Mesh puts them (median error under 0.2 eye distances), steady poses;
    then record and replay give the same parameters."""
    from tracker.camera.sources import VideoSource
    from tracker.fitting.rotation import geodesic_deg
    from tracker.landmarks.mediapipe_baseline import FaceMeshRunner, roi_points_from_mesh
    from tracker.landmarks.refine import roi_points_from_landmarks
    from tracker.pipeline import Pipeline, PipelineOptions
    from tracker.roi import roi_points_from_ibug68
    from tracker.session.export import head_rotation_model
    from tracker.session.reader import SessionReader
    from tracker.session.writer import SessionWriter

    pipe = Pipeline(PipelineOptions(use_face_profile=False))  # the trained network in assets/
    mesh = FaceMeshRunner()
    n = 50
    out, errors = [], []
    with VideoSource(shared_data / "videos" / "lp_d9.mp4") as src, SessionWriter(tmp_path / "s", fps=src.fps) as w:
        for tf in pipe.track(src, max_frames=n):
            out.append(tf)
            w.write(tf)
            if tf.tracked:
                ours = roi_points_from_ibug68(pipe.project68(tf.fit.params, tf.intrinsics))
                # the ROI points used for the next frame (weights on the fitted landmarks) are these points
                fast = roi_points_from_landmarks(tf.fit.landmarks_px, pipe.roi_weights)
                assert np.abs(fast - ours).max() < 0.005 * np.linalg.norm(ours[0] - ours[1])
                ref = mesh.landmarks(tf.frame.image)
                if ref is not None:
                    ref3 = roi_points_from_mesh(ref)
                    iod = np.linalg.norm(ref3[0] - ref3[1])
                    errors.append(np.linalg.norm(ours - ref3, axis=1).max() / iod)
    mesh.close()
    share = np.mean([tf.tracked for tf in out])
    assert len(out) == n and share >= 0.8, [tf.message for tf in out if not tf.tracked][:5]
    assert len(errors) >= 0.8 * n and np.median(errors) < 0.2, np.percentile(errors, [50, 90])
    steps = [geodesic_deg(head_rotation_model(a.fit.params), head_rotation_model(b.fit.params))
             for a, b in zip(out, out[1:]) if a.tracked and b.tracked]
    assert np.median(steps) < 3.0  # a talking head turns slowly: no jumps from frame to frame
    for tf in out:
        assert tf.timings_ms["total"] > 0 and tf.timings_ms["network"] > 0 or not tf.tracked
    back = {t.frame.index: t for t in SessionReader(tmp_path / "s").tracked_frames()}
    assert len(back) == n
    for tf in out:
        if tf.fit is not None:
            b = back[tf.frame.index].fit.params
            assert np.array_equal(b.expression, tf.fit.params.expression)
            assert np.array_equal(b.root_rotation, tf.fit.params.root_rotation)
            assert np.array_equal(b.translation_mm, tf.fit.params.translation_mm)


def test_network_on_the_covered_part_of_a_large_frame_gives_the_same_landmarks(shared_data):
    """A 480 px face clip placed in a 1920x1080 frame: the crop cut from the covered part only (no pyramid over
    the whole frame) gives the landmarks of the plain full-frame path."""
    import cv2

    from tracker.detect import FaceDetector
    from tracker.landmarks.predictor import LandmarkPredictor
    from tracker.pipeline import Pipeline, PipelineOptions
    from tracker.roi import roi_from_points

    cap = cv2.VideoCapture(str(shared_data / "videos" / "lp_d18.mp4"))
    ok, face = cap.read()
    cap.release()
    big = np.zeros((1080, 1920, 3), np.uint8)
    big[301:301 + 480, 997:997 + 480] = face
    predictor = LandmarkPredictor()
    pipe = Pipeline(PipelineOptions(use_face_profile=False), predictor=predictor)
    det = FaceDetector().detect(big)[0]
    for scale in (1.0, 0.5):  # a face at full size, and one at half size (one pyramid level less)
        img = big if scale == 1.0 else cv2.resize(big, (960, 540), interpolation=cv2.INTER_AREA)
        pts = det.roi_points() * scale + (scale - 1) * 0.5
        roi = roi_from_points(pts, predictor.input_size)
        full = predictor.predict(img, roi)
        sub = pipe._predict(img, roi)
        assert np.abs(full.mu_px - sub.mu_px).max() < 0.25
        assert np.allclose(full.sigma_px, sub.sigma_px, rtol=0.05)


def test_live_sources_report_waiting_not_decoding(head_model):
    from tests.camera.test_sources import FakeCapture
    from tracker.camera.sources import CameraSource
    from tracker.face.landmark_sets import load_landmark_set
    from tracker.fitting.solver import FaceFitter
    from tracker.pipeline import Pipeline, PipelineOptions

    ids320 = load_landmark_set("landmarks320").vertex_ids
    ids68 = load_landmark_set("landmarks68").vertex_ids
    intr = Intrinsics.from_fov(64, 48)
    oracle = _Oracle(head_model, [FitParams.neutral(head_model.n_identity, head_model.n_expression, intr.fx)],
                     intr, ids320, ids68, no_face=set(range(256)))
    pipe = Pipeline(PipelineOptions(refine_passes=0, use_face_profile=False), detector=oracle, predictor=oracle,
                    model=head_model, fitter=FaceFitter(head_model, ids320), ibug68_vertices=ids68)
    with CameraSource(0, capture_factory=lambda i: FakeCapture(fps=20.0)) as cam:
        out = list(pipe.track(cam, max_frames=4))
    assert len(out) == 4 and all(tf.message == "no face found" for tf in out)  # the fake camera's gray frames
    assert all(tf.timings_ms["decode"] == 0.0 and tf.timings_ms["wait"] > 0 for tf in out)
    assert all(tf.timings_ms["total"] < tf.timings_ms["wait"] + 50 for tf in out)


def test_a_failing_stage_loses_the_frame_not_the_run(head_model):
    from tracker.face.landmark_sets import load_landmark_set
    from tracker.fitting.solver import FaceFitter
    from tracker.pipeline import Pipeline, PipelineOptions
    from tracker.types import Frame

    intr = Intrinsics.from_fov(640, 480)
    ids320 = load_landmark_set("landmarks320").vertex_ids
    ids68 = load_landmark_set("landmarks68").vertex_ids
    truth = [FitParams.neutral(head_model.n_identity, head_model.n_expression, intr.fx)] * 3
    oracle = _Oracle(head_model, truth, intr, ids320, ids68)

    class Flaky(FaceFitter):
        def fit_frame(self, landmarks, intrinsics, previous=None, identity=None):
            if flaky["on"]:
                raise np.linalg.LinAlgError("matrix is not positive definite")
            return super().fit_frame(landmarks, intrinsics, previous, identity)

    flaky = {"on": False}
    pipe = Pipeline(PipelineOptions(intrinsics=intr, refine_passes=0, use_face_profile=False), detector=oracle,
                    predictor=oracle, model=head_model, fitter=Flaky(head_model, ids320), ibug68_vertices=ids68)
    frames = []
    for k in range(3):
        img = np.zeros((480, 640, 3), np.uint8)
        img[0, 0, 0] = k
        frames.append(Frame(img, k, k))
    assert pipe.process(frames[0]).tracked
    flaky["on"] = True
    lost = pipe.process(frames[1])
    assert not lost.tracked and "fit failed (matrix is not positive definite)" in lost.message
    flaky["on"] = False
    assert pipe.process(frames[2]).tracked


def test_real_tracking_is_lost_without_a_face_and_found_again(shared_data):
    import cv2

    from tracker.camera.sources import VideoSource
    from tracker.pipeline import Pipeline, PipelineOptions
    from tracker.types import Frame

    pipe = Pipeline(PipelineOptions(use_face_profile=False))
    with VideoSource(shared_data / "videos" / "lp_d18.mp4") as src:
        faces = [f for _, f in zip(range(12), src)]
    noise = np.random.default_rng(0).integers(0, 255, faces[0].image.shape, dtype=np.uint8)
    blank = [Frame(np.zeros_like(faces[0].image), 0, 100), Frame(cv2.GaussianBlur(noise, (31, 31), 0), 0, 101)]
    out = [pipe.process(f) for f in faces[:6] + blank + faces[6:]]
    assert [tf.tracked for tf in out] == [True] * 6 + [False, False] + [True] * 6
    assert out[6].message == "no face found" and out[6].fit is None
    assert out[8].timings_ms["detect"] > 0  # found again by the detector
