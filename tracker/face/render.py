"""A software renderer of the posed head through a pinhole camera (numpy + OpenCV, no OpenGL).

``render_head(model, params, intrinsics, ...)`` is a pure function: it poses the model with the forward model
of ``tracker.face.model`` (``tracker.face.forward.posed_vertices``), projects it with ``intrinsics``, and
rasterises it with a z-buffer. It returns the BGR image, a depth map (mm, +inf where no surface), the
triangle and barycentric buffers, and per-vertex visibility.

Rasteriser (:func:`rasterize`): triangles are culled (back faces, behind the camera, outside the image),
grouped by the size of their pixel bounding box, and tested against the pixel centres of their boxes with
edge functions, all vectorised; the nearest candidate per pixel wins (one sort). At 256 x 256 most of the
52k ICT triangles are smaller than a pixel, so this costs a few hundred thousand candidate tests.

Shading: Lambertian with one directional light plus ambient, per-pixel interpolated normals; colours from
per-vertex colours and/or a texture image sampled at per-vertex texture coordinates (interpolated per
pixel), blended by a per-vertex texture weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tracker.face.model import HeadModel
from tracker.types import FitParams, Intrinsics

#: ICT parts not drawn by default: the transparent overlays and the eyelash shells (thick black rings).
HIDDEN_PARTS = ("EyeOcclusion", "LacrimalFluid", "EyeBlend", "EyeLashes")
#: Default part colours (BGR, 0-1) when no vertex colours are given.
PART_COLOURS = {"Face": (0.55, 0.65, 0.85), "BackHead": (0.5, 0.6, 0.8), "GumsTongue": (0.35, 0.3, 0.7),
                "Teeth": (0.85, 0.9, 0.92), "ScleraLeft": (0.85, 0.88, 0.9), "ScleraRight": (0.85, 0.88, 0.9),
                "IrisLeft": (0.15, 0.25, 0.35), "IrisRight": (0.15, 0.25, 0.35), "EyeLashes": (0.1, 0.1, 0.12)}
#: Angular radii of the painted iris and pupil about the eyeball centre.
IRIS_ANGLE_DEG, PUPIL_ANGLE_DEG = 30.0, 12.0
#: Depth tolerance of the vertex visibility test: a fraction of the depth plus a constant (mm).
VISIBILITY_TOLERANCE = (0.004, 1.0)


@dataclass(frozen=True, eq=False)
class Raster:
    """triangle: (H, W) int32 index into the rasterised faces, -1 for background; barycentric: (H, W, 3)
    float32 screen-space weights; depth: (H, W) float32 (the input's depth unit; +inf for background)."""

    triangle: np.ndarray
    barycentric: np.ndarray
    depth: np.ndarray


@dataclass(frozen=True, eq=False)
class RenderResult:
    """image: (H, W, 3) uint8 BGR; depth_mm: (H, W) float32 (+inf: background); mask: (H, W) bool head pixels;
    vertex_visible: (N,) bool; vertices_px: (N, 2) projected vertices; vertices_mm: (N, 3) camera space;
    raster: the triangle/barycentric buffers (triangles index ``faces``); faces: (F', 3) the drawn triangles."""

    image: np.ndarray
    depth_mm: np.ndarray
    mask: np.ndarray
    vertex_visible: np.ndarray
    vertices_px: np.ndarray
    vertices_mm: np.ndarray
    raster: Raster
    faces: np.ndarray


def rasterize(points_px: np.ndarray, depth: np.ndarray, faces: np.ndarray, width: int, height: int,
              cull_back: bool = True) -> Raster:
    """Z-buffered rasterisation of triangles at pixel centres.

    points_px: (N, 2) image px; depth: (N,) positive distances (smaller = nearer); faces: (F, 3) int.
    Front faces are the ones with negative signed area in image coordinates (counter-clockwise in the
    model's +y-up view, as ICT's are, turned by the model->camera axis flip).
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    tri_buf = np.full(height * width, -1, np.int32)
    bary_buf = np.zeros((height * width, 3), np.float32)
    depth_buf = np.full(height * width, np.inf, np.float32)
    p = np.asarray(points_px, np.float64)
    z = np.asarray(depth, np.float64)
    f = np.asarray(faces, np.int64)
    # Column-wise arithmetic (reductions over a length-3 axis are slow in numpy).
    v0, v1, v2 = p[f[:, 0]], p[f[:, 1]], p[f[:, 2]]
    ax, ay, bx, by, cx, cy = v0[:, 0], v0[:, 1], v1[:, 0], v1[:, 1], v2[:, 0], v2[:, 1]
    area = (bx - ax) * (cy - ay) - (cx - ax) * (by - ay)
    za, zb, zc = z[f[:, 0]], z[f[:, 1]], z[f[:, 2]]
    keep = (za > 1e-6) & (zb > 1e-6) & (zc > 1e-6) & np.isfinite(area)
    keep &= (area < -1e-12) if cull_back else (np.abs(area) > 1e-12)
    x0 = np.ceil(np.minimum(np.minimum(ax, bx), cx)).clip(0, width)
    x1 = np.floor(np.maximum(np.maximum(ax, bx), cx)).clip(-1, width - 1)
    y0 = np.ceil(np.minimum(np.minimum(ay, by), cy)).clip(0, height)
    y1 = np.floor(np.maximum(np.maximum(ay, by), cy)).clip(-1, height - 1)
    keep &= (x1 >= x0) & (y1 >= y0)
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        return Raster(tri_buf.reshape(height, width), bary_buf.reshape(height, width, 3),
                      depth_buf.reshape(height, width))
    bw = (x1[idx] - x0[idx] + 1).astype(np.int64)
    bh = (y1[idx] - y0[idx] + 1).astype(np.int64)
    all_pix, all_tri, all_b, all_z = [], [], [], []
    # Group triangles by their exact box size (w, h) when small, by a power-of-two square when large.
    big = np.maximum(bw, bh) > 8
    group = np.where(big, 1000 + np.ceil(np.log2(np.maximum(bw, bh))).astype(np.int64), bw * 16 + bh)
    for g in np.unique(group):
        sel = idx[group == g]
        if g >= 1000:
            gw = gh = int(2 ** (g - 1000))
        else:
            gw, gh = int(g // 16), int(g % 16)
        oy, ox = np.divmod(np.arange(gw * gh), gw)
        px = x0[sel, None] + ox[None]  # (T, gw*gh)
        py = y0[sel, None] + oy[None]
        inside_box = (px <= x1[sel, None]) & (py <= y1[sel, None])
        a, bb, c = v0[sel], v1[sel], v2[sel]
        inv = 1.0 / area[sel]
        # Edge functions -> screen-space barycentrics.
        w0 = ((bb[:, 0, None] - px) * (c[:, 1, None] - py) - (c[:, 0, None] - px) * (bb[:, 1, None] - py)) * inv[:, None]
        w1 = ((c[:, 0, None] - px) * (a[:, 1, None] - py) - (a[:, 0, None] - px) * (c[:, 1, None] - py)) * inv[:, None]
        w2 = 1.0 - w0 - w1
        eps = -1e-9
        ok = inside_box & (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
        ti, ci = np.nonzero(ok)
        if ti.size == 0:
            continue
        tris = sel[ti]
        bw_ = np.stack([w0[ti, ci], w1[ti, ci], w2[ti, ci]], 1)
        zz = bw_[:, 0] * za[tris] + bw_[:, 1] * zb[tris] + bw_[:, 2] * zc[tris]
        all_pix.append((py[ti, ci] * width + px[ti, ci]).astype(np.int64))
        all_tri.append(tris)
        all_b.append(bw_)
        all_z.append(zz)
    if not all_pix:
        return Raster(tri_buf.reshape(height, width), bary_buf.reshape(height, width, 3),
                      depth_buf.reshape(height, width))
    pix = np.concatenate(all_pix)
    tri = np.concatenate(all_tri)
    bary = np.concatenate(all_b)
    zz = np.concatenate(all_z)
    # Nearest candidate per pixel: sort by pixel, then depth (depth scaled into [0, 0.5) of one unit).
    zmin, zmax = zz.min(), zz.max()
    key = pix + 0.5 * (zz - zmin) / max(zmax - zmin, 1e-9) * (1 - 1e-9)
    order = np.argsort(key, kind="stable")
    ps = pix[order]
    first = np.ones(len(ps), bool)
    first[1:] = ps[1:] != ps[:-1]
    win = order[first]
    tri_buf[pix[win]] = tri[win]
    bary_buf[pix[win]] = bary[win]
    depth_buf[pix[win]] = zz[win]
    return Raster(tri_buf.reshape(height, width), bary_buf.reshape(height, width, 3), depth_buf.reshape(height, width))


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N, 3) area-weighted unit vertex normals (outward for ICT's winding in a right-handed frame)."""
    v = np.asarray(vertices, np.float64)
    fn = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        n += np.stack([np.bincount(faces[:, k], fn[:, c], len(v)) for c in range(3)], 1)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def vertex_visibility(points_px: np.ndarray, depth: np.ndarray, depth_buffer: np.ndarray) -> np.ndarray:
    """(N,) True where a vertex is inside the image and not behind the rendered surface at its pixel."""
    h, w = depth_buffer.shape
    p = np.asarray(points_px, np.float64)
    xi = np.rint(p[:, 0]).astype(np.int64)
    yi = np.rint(p[:, 1]).astype(np.int64)
    inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h) & np.isfinite(depth) & (depth > 0)
    vis = np.zeros(len(p), bool)
    # The nearest surface in the 3 x 3 neighbourhood, so silhouette vertices on pixel edges are not lost.
    zb = cv2.erode(np.where(np.isfinite(depth_buffer), depth_buffer, 1e30).astype(np.float32), np.ones((3, 3)))
    zb = np.maximum(zb, depth_buffer.min() if np.isfinite(depth_buffer).any() else 0)
    zb = np.where(np.isfinite(depth_buffer), depth_buffer, zb)  # own pixel when covered
    rel, const = VISIBILITY_TOLERANCE
    d = depth[inside]
    vis[inside] = d <= zb[yi[inside], xi[inside]] * (1 + rel) + const
    return vis


def _sample(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear samples of an (h, w, 3) image at (P, 2) float px -> (P, 3) (cv2.remap in 1024-wide rows)."""
    n, cols = len(uv), 1024
    rows = -(-n // cols)
    pad = np.zeros((rows * cols, 2), np.float32)
    pad[:n] = uv
    out = cv2.remap(image, pad[:, 0].reshape(rows, cols), pad[:, 1].reshape(rows, cols), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REFLECT)
    return out.reshape(rows * cols, -1)[:n]


def eye_regions(model: HeadModel) -> tuple[np.ndarray, np.ndarray]:
    """(N,) bool masks of eyeball vertices inside the iris and inside the pupil (neutral geometry).

    ICT's eye meshes are shells around the eyeball centre, so the iris is painted on: vertices within
    ``IRIS_ANGLE_DEG`` (pupil: ``PUPIL_ANGLE_DEG``) of the model's forward axis (+z) about the centre."""
    v = model.neutral_cm.astype(np.float64)
    iris_mask = np.zeros(model.n_vertices, bool)
    pupil_mask = np.zeros(model.n_vertices, bool)
    names = model.part_names
    for sclera, iris in (("ScleraLeft", "IrisLeft"), ("ScleraRight", "IrisRight")):
        if sclera not in names or iris not in names:
            continue
        ids = np.flatnonzero((model.vertex_part == names.index(sclera)) | (model.vertex_part == names.index(iris)))
        centre = v[ids].mean(0)
        d = v[ids] - centre
        a = np.degrees(np.arccos(np.clip(d[:, 2] / np.linalg.norm(d, axis=1), -1, 1)))
        iris_mask[ids[a < IRIS_ANGLE_DEG]] = True
        pupil_mask[ids[a < PUPIL_ANGLE_DEG]] = True
    return iris_mask, pupil_mask


def default_vertex_colours(model: HeadModel, iris_colour=(0.15, 0.25, 0.35)) -> np.ndarray:
    """(N, 3) BGR colours in [0, 1] per ICT part (``PART_COLOURS``), iris and pupil painted on the eyes."""
    cols = np.full((model.n_vertices, 3), 0.6)
    for i, name in enumerate(model.part_names):
        if name in PART_COLOURS:
            cols[model.vertex_part == i] = PART_COLOURS[name]
    iris, pupil = eye_regions(model)
    cols[iris] = iris_colour
    cols[pupil] = (0.03, 0.03, 0.03)
    return cols


def render_head(model: HeadModel, params: FitParams, intrinsics: Intrinsics, *,
                background: np.ndarray | None = None, vertex_colours: np.ndarray | None = None,
                texture: np.ndarray | None = None, texture_uv: np.ndarray | None = None,
                texture_weight: np.ndarray | None = None, light_dir: np.ndarray | None = None,
                ambient: float = 0.45, diffuse: float = 0.65, hidden_parts: tuple[str, ...] = HIDDEN_PARTS,
                vertices_mm: np.ndarray | None = None) -> RenderResult:
    """Render the posed head into an ``intrinsics.width`` x ``intrinsics.height`` BGR image.

    model, params: the head and its pose (``tracker.face.forward.posed_vertices``); or pass ``vertices_mm``
    (N, 3) camera-space vertices directly. background: (H, W, 3) uint8 BGR (resized if another size; grey if
    None). vertex_colours: (N, 3) BGR in [0, 1] (default per part). texture: (h, w, 3) uint8 BGR image sampled
    at texture_uv (N, 2) px (per pixel, interpolated), mixed with the vertex colours by texture_weight (N,)
    in [0, 1] (default 1). light_dir: (3,) camera-space direction the light travels (default from the camera,
    slightly above). Returns a :class:`RenderResult`.
    """
    from tracker.face.forward import posed_vertices, project

    w, h = int(intrinsics.width), int(intrinsics.height)
    verts = posed_vertices(model, params) if vertices_mm is None else np.asarray(vertices_mm, np.float64)
    if verts.shape != (model.n_vertices, 3):
        raise ValueError(f"vertices_mm must be ({model.n_vertices}, 3), got {verts.shape}")
    px = project(verts, intrinsics)
    depth = verts[:, 2]
    drawn = np.ones(len(model.part_names), bool)
    for name in hidden_parts:
        if name in model.part_names:
            drawn[model.part_names.index(name)] = False
    faces = model.faces[drawn[model.vertex_part[model.faces]].all(1)]
    raster = rasterize(px, depth, faces, w, h)
    tri = raster.triangle
    mask = tri >= 0

    if background is None:
        img = np.full((h, w, 3), 0.5, np.float32)
    else:
        bg = background if background.shape[:2] == (h, w) else cv2.resize(background, (w, h))
        img = bg.astype(np.float32) / 255.0
    if mask.any():
        fids = faces[tri[mask]]  # (P, 3)
        bary = raster.barycentric[mask][..., None]  # (P, 3, 1)
        normals = vertex_normals(verts * np.array([1.0, -1.0, -1.0]), faces) * np.array([1.0, -1.0, -1.0])
        n = (normals[fids] * bary).sum(1)
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        light = np.array([0.0, 0.3, 1.0]) if light_dir is None else np.asarray(light_dir, np.float64)
        light = light / np.linalg.norm(light)
        # Lambert: the surface normal (outward, camera space) against the direction towards the light.
        shade = ambient + diffuse * np.clip(n @ -light, 0.0, None)
        cols = default_vertex_colours(model) if vertex_colours is None else np.asarray(vertex_colours, np.float64)
        colour = (cols[fids] * bary).sum(1)
        if texture is not None:
            if texture_uv is None:
                raise ValueError("texture needs texture_uv (N, 2)")
            uv = (np.asarray(texture_uv, np.float64)[fids] * bary).sum(1).astype(np.float32)
            tex = _sample(texture, uv).astype(np.float64) / 255.0
            tw = np.ones(model.n_vertices) if texture_weight is None else np.asarray(texture_weight, np.float64)
            a = (tw[fids] * bary[..., 0]).sum(1)[:, None]
            colour = a * tex + (1 - a) * colour
        img[mask] = np.clip(colour * shade[:, None], 0.0, 1.0)
    image = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    visible = vertex_visibility(px, depth, raster.depth)
    return RenderResult(image, raster.depth, mask, visible, px, verts, raster, faces)
