"""What the worker prepares for the window: the drawn subset of the head, posed exactly like the full model."""

from __future__ import annotations

import numpy as np

from tracker.gui.display import FramePreparer, face_mask, mesh_topology
from tracker.pipeline import fit_vertices
from tracker.types import FitParams, FitResult, Frame, Intrinsics, Landmarks, Roi, TrackedFrame


def _tracked(model, focal_px: float, tracked: bool = True) -> TrackedFrame:
    rng = np.random.default_rng(1)
    intr = Intrinsics.from_fov(640, 480)
    p = FitParams.neutral(model.n_identity, model.n_expression, focal_px, (10.0, -5.0, 550.0)).replace(
        identity=rng.normal(0, 0.5, model.n_identity), expression=rng.uniform(0, 0.4, model.n_expression),
        root_rotation=np.array([0.1, -0.3, 0.05]), joints=rng.normal(0, 0.05, (4, 3)))
    mu = rng.uniform(100, 500, (320, 2))
    roi = Roi(np.array([[0.5, 0.0, -50.0], [0.0, 0.5, -20.0]]), 128)
    return TrackedFrame(Frame(np.zeros((480, 640, 3), np.uint8), 0, 0), intr, roi,
                        Landmarks(mu, rng.uniform(1, 20, 320)), FitResult(p, mu, 1.0, 3, True), tracked)


def test_prepared_mesh_is_the_posed_model(head_model):
    prep = FramePreparer(head_model)
    tf = _tracked(head_model, focal_px=700.0)
    item = prep.prepare(tf)
    ids = prep.topology.vertex_ids
    full = fit_vertices(head_model, tf.fit)
    assert np.allclose(item.vertices_mm, full[ids], atol=1e-3)
    assert item.normals_cam.shape == item.vertices_mm.shape
    assert np.allclose(np.linalg.norm(item.normals_cam, axis=1), 1.0, atol=1e-4)
    # the overlay draws through the fitted camera: the fit's focal length
    assert item.intrinsics.fx == 700.0 and item.intrinsics.cx == tf.intrinsics.cx
    # landmarks sit on a plane in front of the head and project back onto their pixels
    pts = item.landmark_points
    u = item.intrinsics.fx * pts[:, 0] / pts[:, 2] + item.intrinsics.cx
    v = item.intrinsics.fy * pts[:, 1] / pts[:, 2] + item.intrinsics.cy
    assert np.allclose(np.column_stack([u, v]), tf.landmarks.mu_px, atol=1e-3)
    assert pts[:, 2].max() < item.vertices_mm[:, 2].min()
    assert item.landmark_colors.shape == (320, 4)
    # the orbit view's head: model axes about the model origin, same shape
    d_cam = np.linalg.norm(item.vertices_mm[0] - item.vertices_mm[1])
    d_head = np.linalg.norm(item.head_vertices_cm[0] - item.head_vertices_cm[1]) * 10
    assert abs(d_cam - d_head) < 1e-3
    assert item.euler_deg is not None and abs(item.euler_deg[0]) > 5  # turned by the root rotation
    assert len(item.gaze_deg) == 2


def test_untracked_frames_draw_no_mesh(head_model):
    item = FramePreparer(head_model).prepare(_tracked(head_model, 600.0, tracked=False))
    assert item.vertices_mm is None and item.euler_deg is None and item.landmark_points is not None


def test_overlay_shows_the_front_of_the_face(head_model):
    topo = mesh_topology(head_model)
    mask = face_mask(head_model)
    assert mask is not None
    used = np.unique(topo.vertex_ids[topo.overlay_faces])
    v = head_model.neutral_cm[used]
    face = head_model.neutral_cm[head_model.vertex_part == head_model.part_names.index("Face")]
    # the nose tip (the face's most forward point) is in, the back of the face part (ears, scalp) is not
    assert v[:, 2].max() == face[:, 2].max()
    assert v[:, 2].min() > face[:, 2].min() + 3.0
    assert 2000 < len(used) < (head_model.vertex_part == 0).sum()
    assert len(topo.overlay_edges) > len(topo.overlay_faces)
