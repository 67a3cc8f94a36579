"""Pure numpy helpers for drawing: normals, the pinhole projection as an OpenGL matrix, colours, angles.

No Qt and no OpenGL here, so everything is testable without a display and can run in the worker thread.
"""

from __future__ import annotations

import numpy as np

from tracker.types import Intrinsics


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals.

    vertices: (N, 3) float; faces: (F, 3) int. Returns (N, 3) float32; a vertex in no face gets (0, 0, 0).
    The normal follows the right-hand rule of the face winding. For many frames of one mesh use
    :class:`VertexNormals`, which precomputes the vertex-face incidence.
    """
    v = np.asarray(vertices, dtype=np.float32)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must be (N, 3), got {v.shape}")
    return VertexNormals(faces, v.shape[0])(v)


class VertexNormals:
    """Vertex normals of a fixed triangle list, fast: a sparse (N, F) incidence matrix sums the face normals.

    faces: (F, 3) int into N vertices. ``__call__(vertices (N, 3)) -> (N, 3)`` float32 unit normals
    (about 1 ms for the 17k-vertex head; pyqtgraph's own per-vertex loop costs ~50 ms a frame).
    """

    def __init__(self, faces: np.ndarray, n_vertices: int):
        import scipy.sparse as sp

        f = np.asarray(faces)
        if f.ndim != 2 or f.shape[1] != 3:
            raise ValueError(f"faces must be (F, 3), got {f.shape}")
        if f.size and (f.min() < 0 or f.max() >= n_vertices):
            raise ValueError(f"face indices must be in [0, {n_vertices}), got [{f.min()}, {f.max()}]")
        self.faces = f.astype(np.int64)
        self.n_vertices = int(n_vertices)
        n_f = f.shape[0]
        rows = self.faces.reshape(-1)
        cols = np.repeat(np.arange(n_f), 3)
        self._incidence = sp.csr_matrix((np.ones(rows.shape[0], dtype=np.float32), (rows, cols)),
                                        shape=(self.n_vertices, n_f))

    def __call__(self, vertices: np.ndarray) -> np.ndarray:
        v = np.asarray(vertices, dtype=np.float32)
        if v.shape != (self.n_vertices, 3):
            raise ValueError(f"vertices must be ({self.n_vertices}, 3), got {v.shape}")
        tri = np.take(v, self.faces, axis=0)  # (F, 3, 3): np.take is ~3x faster than fancy indexing here
        e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
        # e1 x e2, (F, 3); its length is twice the triangle's area: area weighting for free
        fn = np.empty_like(e1)
        fn[:, 0] = e1[:, 1] * e2[:, 2] - e1[:, 2] * e2[:, 1]
        fn[:, 1] = e1[:, 2] * e2[:, 0] - e1[:, 0] * e2[:, 2]
        fn[:, 2] = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        out = np.asarray(self._incidence @ fn, dtype=np.float32)
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norm, out=out, where=norm > 0)
        return out


def unique_edges(faces: np.ndarray) -> np.ndarray:
    """The undirected edges of a triangle mesh. faces: (F, 3) int -> (E, 2) uint32, each edge once."""
    f = np.asarray(faces, dtype=np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    e.sort(axis=1)
    return np.unique(e, axis=0).astype(np.uint32)


def select_parts(faces: np.ndarray, vertex_part: np.ndarray, part_names: tuple[str, ...],
                 keep: tuple[str, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    """Triangles whose three vertices all lie in the parts named in ``keep`` (all parts when None).

    Returns (vertex_ids (M,) int64 into the full mesh, faces (F', 3) uint32 into vertex_ids). Unknown part
    names are an error so a renamed part is noticed.
    """
    faces = np.asarray(faces, dtype=np.int64)
    vertex_part = np.asarray(vertex_part)
    if keep is None:
        mask_v = np.ones(vertex_part.shape[0], dtype=bool)
    else:
        unknown = [p for p in keep if p not in part_names]
        if unknown:
            raise ValueError(f"unknown mesh parts {unknown}; the model has {list(part_names)}")
        ids = [part_names.index(p) for p in keep]
        mask_v = np.isin(vertex_part, ids)
    mask_f = mask_v[faces].all(axis=1)
    sub = faces[mask_f]
    vertex_ids = np.unique(sub)
    remap = np.full(vertex_part.shape[0], -1, dtype=np.int64)
    remap[vertex_ids] = np.arange(vertex_ids.shape[0])
    return vertex_ids, remap[sub].astype(np.uint32)


def projection_matrix(intr: Intrinsics, near_mm: float = 10.0, far_mm: float = 100000.0) -> np.ndarray:
    """The OpenGL clip matrix (4, 4) of the pinhole camera, applied directly to OpenCV camera coordinates.

    A camera point (x, y, z) (x right, y down, z forward, mm) lands at pixel u = fx x / z + cx, v = fy y / z + cy
    (OpenCV pixel centres), and the viewport [-0.5, W - 0.5] x [-0.5, H - 0.5] maps to NDC [-1, 1]^2 with
    +y up. Depth z in [near, far] maps to NDC z in [-1, 1]. Row-major: clip = P @ (x, y, z, 1).
    """
    if not 0 < near_mm < far_mm:
        raise ValueError(f"need 0 < near < far, got near={near_mm}, far={far_mm}")
    w, h = float(intr.width), float(intr.height)
    p = np.zeros((4, 4))
    # x_ndc = 2 (u + 0.5) / W - 1, with u = fx x / z + cx
    p[0, 0] = 2.0 * intr.fx / w
    p[0, 2] = 2.0 * (intr.cx + 0.5) / w - 1.0
    # y_ndc = 1 - 2 (v + 0.5) / H, with v = fy y / z + cy
    p[1, 1] = -2.0 * intr.fy / h
    p[1, 2] = 1.0 - 2.0 * (intr.cy + 0.5) / h
    p[2, 2] = (far_mm + near_mm) / (far_mm - near_mm)
    p[2, 3] = -2.0 * far_mm * near_mm / (far_mm - near_mm)
    p[3, 2] = 1.0
    return p


def letterbox(widget_w: int, widget_h: int, image_w: int, image_h: int) -> tuple[int, int, int, int]:
    """The largest rectangle (x0, y0, w, h) of the image's aspect ratio centred in the widget (GL: y0 from bottom)."""
    if min(widget_w, widget_h, image_w, image_h) <= 0:
        return 0, 0, max(widget_w, 0), max(widget_h, 0)
    s = min(widget_w / image_w, widget_h / image_h)
    w, h = max(1, int(round(image_w * s))), max(1, int(round(image_h * s)))
    return (widget_w - w) // 2, (widget_h - h) // 2, w, h


def unproject_pixels(points_px: np.ndarray, intr: Intrinsics, depth_mm: float) -> np.ndarray:
    """(L, 2) pixels -> (L, 3) camera points at depth ``depth_mm`` that project back onto them."""
    pts = np.asarray(points_px, dtype=np.float64)
    out = np.empty((pts.shape[0], 3), dtype=np.float32)
    out[:, 0] = (pts[:, 0] - intr.cx) * depth_mm / intr.fx
    out[:, 1] = (pts[:, 1] - intr.cy) * depth_mm / intr.fy
    out[:, 2] = depth_mm
    return out


#: sigma (px) -> colour: confident green through yellow to uncertain red
_SIGMA_STOPS = np.array([[0.15, 0.9, 0.3], [1.0, 0.9, 0.1], [1.0, 0.2, 0.15]], dtype=np.float32)


def sigma_colors(sigma_px: np.ndarray, lo: float = 1.0, hi: float = 6.0, alpha: float = 1.0) -> np.ndarray:
    """(L,) sigmas in px -> (L, 4) float32 RGBA: green at ``lo`` px or less, yellow between, red at ``hi`` or more."""
    s = np.asarray(sigma_px, dtype=np.float32)
    t = np.clip((s - lo) / max(hi - lo, 1e-6), 0.0, 1.0) * 2.0
    i = np.minimum(t.astype(np.int64), 1)
    f = (t - i)[:, None]
    rgb = _SIGMA_STOPS[i] * (1.0 - f) + _SIGMA_STOPS[i + 1] * f
    return np.concatenate([rgb, np.full((s.shape[0], 1), alpha, dtype=np.float32)], axis=1)
