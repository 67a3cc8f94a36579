"""Pictures of landmark sets on the neutral head (front and side), for ``docs/``. Needs matplotlib."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tracker.face.model import HeadModel, LandmarkSet

#: Parts drawn as the head's surface (the mouth interior and the eye's helper layers are left out).
SURFACE_PARTS = ("Face", "BackHead", "ScleraLeft", "IrisLeft", "ScleraRight", "IrisRight")
REGION_COLOURS = {
    "jaw": "#e41a1c", "eyebrow": "#984ea3", "nose": "#ff7f00", "eyelid": "#4daf4a", "iris": "#377eb8",
    "pupil": "#000000", "lips_outer": "#f781bf", "lips_inner": "#a65628", "ear": "#00bcd4",
    "face": "#ffd92f", "scalp": "#66c2a5", "neck": "#8da0cb",
}


def _view(points: np.ndarray, view: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(M, 3) model cm -> screen (M, 2), depth (M,) (larger = nearer the viewer) and the view direction
    (towards the viewer). front: viewer at +z; side: viewer at -x (the subject's right), face to the right."""
    if view == "front":
        return points[:, :2], points[:, 2], np.array([0.0, 0.0, 1.0])
    if view == "side":
        return points[:, [2, 1]], -points[:, 0], np.array([-1.0, 0.0, 0.0])
    raise ValueError(f"unknown view '{view}' (front, side)")


def _visible(screen: np.ndarray, depth: np.ndarray, occluders: np.ndarray, ids: np.ndarray,
             cell: float = 0.25, tol: float = 0.35) -> np.ndarray:
    """Crude z-buffer from the ``occluders`` vertices' splats (3x3 max filter): landmark ids not hidden
    behind the skin."""
    lo = screen.min(axis=0)
    ij = np.floor((screen - lo) / cell).astype(np.int64)
    shape = ij.max(axis=0) + 3
    buf = np.full(shape, -np.inf)
    for di in (0, 1, 2):
        for dj in (0, 1, 2):
            np.maximum.at(buf, (ij[occluders, 0] + di, ij[occluders, 1] + dj), depth[occluders])
    return depth[ids] >= buf[ij[ids, 0] + 1, ij[ids, 1] + 1] - tol


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N, 3) unit area-weighted vertex normals (zero for vertices in no face)."""
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    out = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(out, faces[:, k], fn)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def plot_landmark_sets(model: HeadModel, sets: list[LandmarkSet], view: str, out_path: Path,
                       title: str | None = None) -> Path:
    """One row of panels (one per landmark set) of the shaded neutral head with its landmarks
    (hidden landmarks as small grey crosses), saved to ``out_path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    v = model.neutral_cm.astype(np.float64)
    keep = np.isin(model.vertex_part, [model.part_names.index(p) for p in SURFACE_PARTS])
    faces = model.faces[keep[model.faces].all(axis=1)]
    vnormal = vertex_normals(v, faces)
    skin = np.flatnonzero(np.isin(model.vertex_part, [model.part_names.index(p) for p in SURFACE_PARTS[:2]]))
    screen, depth, towards = _view(v, view)
    tri = v[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    light = towards + np.array([0.3, 0.5, 0.0]) if view == "front" else towards + np.array([0.0, 0.5, 0.3])
    light /= np.linalg.norm(light)
    shade = np.clip(normal @ light, 0.0, 1.0) * 0.75 + 0.2
    facing = normal @ towards > 0.0
    order = np.argsort(depth[faces].mean(axis=1))
    order = order[facing[order]]
    part = model.vertex_part[faces[:, 0]]
    is_eye = np.isin(part, [model.part_names.index(p) for p in SURFACE_PARTS[2:]])
    colour = np.where(is_eye[:, None], np.array([0.82, 0.85, 0.9]), np.array([0.93, 0.80, 0.70]))
    colour = colour * shade[:, None]

    fig, axes = plt.subplots(1, len(sets), figsize=(6.5 * len(sets), 8.5), squeeze=False)
    for ax, lms in zip(axes[0], sets):
        ax.add_collection(PolyCollection(screen[faces[order]], facecolors=colour[order], edgecolors="none"))
        ids = np.asarray(lms.vertex_ids)
        vis = _visible(screen, depth, skin, ids, tol=0.6) & (vnormal[ids] @ towards > -0.05)
        for region in dict.fromkeys(lms.regions):
            sel = np.array([r == region for r in lms.regions])
            c = REGION_COLOURS.get(region, "#e41a1c")
            ax.scatter(screen[ids[sel & vis], 0], screen[ids[sel & vis], 1], s=14, c=c, edgecolors="k",
                       linewidths=0.4, label=f"{region} ({int(sel.sum())})", zorder=3)
            ax.scatter(screen[ids[sel & ~vis], 0], screen[ids[sel & ~vis], 1], s=8, c="0.55", marker="x",
                       linewidths=0.6, zorder=2)
        ax.set_xlim(screen[:, 0].min() - 1, screen[:, 0].max() + 1)
        ax.set_ylim(screen[:, 1].min() - 1, screen[:, 1].max() + 1)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(f"{lms.name}: {len(lms)} landmarks, {view} view")
        ax.legend(loc="lower left", fontsize=8, framealpha=0.8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return out_path
