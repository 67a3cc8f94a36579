"""Fixtures of the head-model tests: a tiny ICT-like FaceXModel folder written by the tests themselves."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

TINY_EXPRESSIONS = ["eyeBlink_L", "jawOpen"]


def uv_sphere(centre, radius, n_lat, n_lon):
    """Vertices (V, 3) and quads/triangles (list of index lists, 0-based) of a UV sphere with poles on y."""
    centre = np.asarray(centre, dtype=np.float64)
    verts = [centre + [0.0, radius, 0.0]]
    for i in range(1, n_lat):
        theta = np.pi * i / n_lat
        for j in range(n_lon):
            phi = 2.0 * np.pi * j / n_lon  # phi = 0 on +z: the meridians at j = 0, n_lon/2 are on x = 0
            verts.append(centre + radius * np.array([np.sin(theta) * np.sin(phi), np.cos(theta),
                                                     np.sin(theta) * np.cos(phi)]))
    verts.append(centre - [0.0, radius, 0.0])
    faces = []
    ring = lambda i, j: 1 + (i - 1) * n_lon + (j % n_lon)  # noqa: E731
    for j in range(n_lon):
        faces.append([0, ring(1, j + 1), ring(1, j)])
    for i in range(1, n_lat - 1):
        for j in range(n_lon):
            faces.append([ring(i, j), ring(i, j + 1), ring(i + 1, j + 1), ring(i + 1, j)])
    last = len(verts) - 1
    for j in range(n_lon):
        faces.append([last, ring(n_lat - 1, j), ring(n_lat - 1, j + 1)])
    return np.array(verts), faces


def tiny_mesh():
    """A head sphere (Face in front, BackHead behind) and two eyeballs (Sclera + Iris). Returns vertices
    (N, 3), a list of (material, polygons) groups."""
    head_v, head_f = uv_sphere([0.0, 0.0, 0.0], 9.0, 8, 12)
    groups = {"M_Face": [], "M_BackHead": []}
    for f in head_f:
        (groups["M_Face"] if head_v[f].mean(axis=0)[2] >= 0 else groups["M_BackHead"]).append(f)
    verts = [head_v]
    offset = head_v.shape[0]
    for side, x in (("Left", 3.0), ("Right", -3.0)):
        ev, ef = uv_sphere([x, 3.5, 6.0], 1.2, 6, 8)
        sclera, iris = [], []
        for f in ef:
            (iris if ev[f].mean(axis=0)[2] > 6.0 + 0.9 else sclera).append([i + offset for i in f])
        groups[f"M_Sclera{side}"] = sclera
        groups[f"M_Iris{side}"] = iris
        verts.append(ev)
        offset += ev.shape[0]
    return np.vstack(verts), groups


def obj_text(vertices, groups=None) -> str:
    lines = ["# tiny test mesh", "mtllib test.mtl"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    lines += ["vt 0.5 0.5"]
    for name, polys in (groups or {}).items():
        lines.append(f"usemtl {name}")
        lines += ["f " + " ".join(f"{i + 1}/1" for i in p) for p in polys]
    return "\n".join(lines) + "\n"


def identity_delta(vertices, k):
    """A smooth deterministic identity mode k: a scale about the origin plus a shift."""
    return 0.02 * (k + 1) * vertices + np.array([0.1 * k, -0.05, 0.03])


def expression_delta(vertices, j):
    d = np.zeros_like(vertices)
    d[:, 1] = -0.1 * (j + 1) * (vertices[:, 1] < 0)
    return d


def write_tiny_facexmodel(folder: Path, n_identity: int = 3) -> dict:
    """Write a tiny FaceXModel folder; returns what was written (vertices, groups, deltas)."""
    folder.mkdir(parents=True, exist_ok=True)
    v, groups = tiny_mesh()
    (folder / "generic_neutral_mesh.obj").write_text(obj_text(v, groups))
    id_deltas = [identity_delta(v, k) for k in range(n_identity)]
    for k, d in enumerate(id_deltas):
        (folder / f"identity{k:03d}.obj").write_text(obj_text(v + d, groups))
    ex_deltas = [expression_delta(v, j) for j in range(len(TINY_EXPRESSIONS))]
    for name, d in zip(TINY_EXPRESSIONS, ex_deltas):
        (folder / f"{name}.obj").write_text(obj_text(v + d, groups))
    # 68 "landmarks": any vertices; 1 and 15 are a mirrored pair in front of the "ears"
    head_n = 1 + 7 * 12 + 1
    lm = [int(i) for i in (np.arange(68) % head_n)]
    lm[1], lm[15] = 1 + 4 * 12 + 9, 1 + 4 * 12 + 3  # equator, phi = 270 and 90 degrees (x = -9, +9)
    (folder / "vertex_indices.json").write_text(json.dumps(
        {"expressions": TINY_EXPRESSIONS, "idx_to_landmark_verts": lm}))
    return {"vertices": v, "groups": groups, "identity": id_deltas, "expression": ex_deltas, "ibug": lm}


@pytest.fixture()
def tiny_ict(tmp_path) -> tuple[Path, dict]:
    folder = tmp_path / "FaceXModel"
    return folder, write_tiny_facexmodel(folder)


def make_archive(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:xz") as t:
        t.add(folder, arcname="FaceXModel")
    return archive
