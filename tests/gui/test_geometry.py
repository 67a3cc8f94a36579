"""The drawing math: normals, the pinhole projection matrix, letterboxing, colours, angles, part selection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tracker.gui.geometry import (VertexNormals, letterbox, projection_matrix, select_parts, sigma_colors,
                                  unique_edges, unproject_pixels, vertex_normals)
from tracker.types import Intrinsics


def _sphere(rows: int = 24, cols: int = 48, radius: float = 2.0):
    theta = np.linspace(0.1, math.pi - 0.1, rows)
    phi = np.linspace(0, 2 * math.pi, cols, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    v = radius * np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    faces = []
    for i in range(rows - 1):
        for j in range(cols):
            a, b = i * cols + j, i * cols + (j + 1) % cols
            c, d = a + cols, b + cols
            faces += [(a, c, b), (b, c, d)]
    return v, np.array(faces)


def test_vertex_normals_of_a_sphere_point_outwards():
    v, f = _sphere()
    n = vertex_normals(v, f)
    radial = v / np.linalg.norm(v, axis=1, keepdims=True)
    inner = np.unique(f[(f >= 48).all(1) & (f < len(v) - 48).all(1)])  # away from the open poles
    cos = np.sum(n[inner] * radial[inner], axis=1)
    assert n.dtype == np.float32 and n.shape == v.shape
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)
    assert cos.min() > 0.995


def test_vertex_normals_single_triangle_and_unused_vertex():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5]], float)
    n = VertexNormals(np.array([[0, 1, 2]]), 4)(v)
    assert np.allclose(n[:3], [[0, 0, 1]] * 3) and np.allclose(n[3], 0)


def test_vertex_normals_bad_input_messages():
    with pytest.raises(ValueError, match=r"faces must be \(F, 3\)"):
        VertexNormals(np.zeros((2, 4), int), 4)
    with pytest.raises(ValueError, match=r"face indices must be in \[0, 3\)"):
        VertexNormals(np.array([[0, 1, 3]]), 3)
    with pytest.raises(ValueError, match=r"vertices must be \(3, 3\)"):
        VertexNormals(np.array([[0, 1, 2]]), 3)(np.zeros((4, 3)))


def test_projection_matrix_lands_points_on_their_pixels():
    intr = Intrinsics(640, 480, 610.0, 600.0, 330.2, 236.7)
    p = projection_matrix(intr, 10.0, 5000.0)
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(-200, 200, 50), rng.uniform(-150, 150, 50), rng.uniform(300, 1500, 50)])
    clip = np.column_stack([pts, np.ones(50)]) @ p.T
    ndc = clip[:, :3] / clip[:, 3:]
    u_expected = intr.fx * pts[:, 0] / pts[:, 2] + intr.cx
    v_expected = intr.fy * pts[:, 1] / pts[:, 2] + intr.cy
    # NDC -> pixels with OpenCV pixel centres: x_ndc = -1 at u = -0.5, +1 at u = W - 0.5; y up
    u = (ndc[:, 0] + 1) / 2 * intr.width - 0.5
    v = (1 - ndc[:, 1]) / 2 * intr.height - 0.5
    assert np.allclose(u, u_expected, atol=1e-6) and np.allclose(v, v_expected, atol=1e-6)
    assert np.all(np.abs(ndc[:, 2]) < 1)
    near = np.array([0, 0, 10.0, 1]) @ p.T
    far = np.array([0, 0, 5000.0, 1]) @ p.T
    assert near[2] / near[3] == pytest.approx(-1) and far[2] / far[3] == pytest.approx(1)
    with pytest.raises(ValueError, match="need 0 < near < far"):
        projection_matrix(intr, 0.0, 10.0)


def test_unproject_pixels_round_trip():
    intr = Intrinsics.from_fov(512, 512)
    px = np.array([[10.0, 20.0], [255.5, 255.5], [500, 3]])
    pts = unproject_pixels(px, intr, 50.0)
    assert np.allclose(pts[:, 2], 50.0)
    assert np.allclose(intr.fx * pts[:, 0] / pts[:, 2] + intr.cx, px[:, 0], atol=1e-4)
    assert np.allclose(intr.fy * pts[:, 1] / pts[:, 2] + intr.cy, px[:, 1], atol=1e-4)


def test_letterbox_keeps_the_aspect_ratio_centred():
    assert letterbox(800, 600, 640, 480) == (0, 0, 800, 600)
    assert letterbox(1000, 500, 512, 512) == (250, 0, 500, 500)
    assert letterbox(400, 800, 640, 480) == (0, 250, 400, 300)


def test_sigma_colors_go_green_to_red():
    c = sigma_colors(np.array([0.5, 3.5, 10.0]), lo=1.0, hi=6.0)
    assert c.shape == (3, 4) and np.allclose(c[:, 3], 1)
    assert c[0, 1] > 0.8 and c[0, 0] < 0.3          # confident: green
    assert c[1, 0] > 0.9 and c[1, 1] > 0.8          # middle: yellow
    assert c[2, 0] > 0.9 and c[2, 1] < 0.3          # uncertain: red


def test_select_parts_and_edges():
    faces = np.array([[0, 1, 2], [2, 3, 4], [4, 5, 6]])
    part = np.array([0, 0, 0, 1, 1, 1, 1])
    ids, sub = select_parts(faces, part, ("face", "back"), ("back",))
    assert ids.tolist() == [4, 5, 6] and sub.tolist() == [[0, 1, 2]]  # only vertices of kept triangles
    ids, sub = select_parts(faces, part, ("face", "back"), None)
    assert len(ids) == 7 and len(sub) == 3
    with pytest.raises(ValueError, match=r"unknown mesh parts \['ears'\]"):
        select_parts(faces, part, ("face", "back"), ("ears",))
    assert unique_edges(np.array([[0, 1, 2], [2, 1, 3]])).tolist() == [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]
