"""Landmark sets on the head model: loading the frozen sets in ``assets/landmarks`` and the procedure that made them.

Files (``assets/landmarks/<name>.json``): ``name``, ``vertex_ids`` (L,), ``names`` (L,), ``regions`` (L,),
``mirror`` (L,): the index of each landmark's left/right mirror image (itself on the mid-plane), so that a
horizontally flipped image's landmarks are ``flipped[mirror]``.

``landmarks68``: the 68 iBUG points of ICT-FaceKit's ``vertex_indices.json``, in iBUG order.

``landmarks320`` (Wood et al. 2022, real-time system: 320 landmarks over the whole head). Made once by
``make_landmarks320`` from the neutral mesh, deterministically, and frozen: networks are trained on its order.
Procedure (all on the neutral mesh, cm; ``_L`` = subject's left = +x; every step is mirror-symmetric: it picks
on the subject's right or on the mid-plane and adds the mirror vertex):
1. contours, each a shortest edge path on the face surface through the listed iBUG points, resampled at equal
   arc length: jaw line (iBUG 0-8-16, 25), eyebrows (17-21 / 22-26, 8 each), nose bridge (27-30 on the
   mid-plane, 6), nostril base (31-33-35, 7), eyelid margins (36-39 upper and 39-41-36 lower per eye,
   16 each), outer lips (48-51-54 upper / 54-57-48 lower, 24), inner lips (60-62-64 / 64-66-60, 20);
2. iris and pupil per eye, from the eyeball's optical axis (the mean direction of the iris vertices within
   25 degrees of it, iterated from +z): pupil centre (1), pupil rim at 7.5 degrees (4: up, nasal, down,
   temporal), limbus at 21 degrees (8, every 45 degrees from up): 13 each;
3. regions filled by symmetric farthest-point sampling (FPS) seeded with every landmark chosen so far:
   nose (12), face (86), ears (10 each), scalp and back of the head (36), neck (10);
4. picks inside the mouth or eye sockets (BackHead's interior pieces, which step 3's masks let in: 8 scalp
   picks in the first release) are replaced in place, keeping their names and mirror slots, by symmetric FPS
   over the outer scalp with every other landmark as seed (``outer_skin_mask``).
Budgets: 25 + 16 + 13 + 32 + 26 + 24 + 20 + 12 + 86 + 20 + 36 + 10 = 320.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tracker import paths
from tracker.face.model import HeadModel, LandmarkSet

LANDMARK_DIR = paths.ASSETS_DIR / "landmarks"
SET_NAMES = ("landmarks320", "landmarks68")
#: Neck landmarks stay on the neck, above its base (the shoulders start near y = -14 cm; the mesh ends at -19).
NECK_BOTTOM_Y_CM = -12.5
NECK_HALF_WIDTH_CM = 6.5


# ----------------------------------------------------------------------------------------------- loading

def landmark_set_from_dict(data: dict, source: str) -> LandmarkSet:
    """Validate a landmark-set dictionary (the JSON layout) -> LandmarkSet. ValueError naming ``source``."""
    try:
        name = str(data["name"])
        ids = np.asarray(data["vertex_ids"], dtype=np.int64)
        names = tuple(str(s) for s in data["names"])
        regions = tuple(str(s) for s in data["regions"])
        mirror = np.asarray(data["mirror"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{source}: not a landmark set ({exc!r}); needs name, vertex_ids, names, regions, "
                         f"mirror") from None
    n = ids.shape[0]
    if ids.ndim != 1 or n == 0:
        raise ValueError(f"{source}: vertex_ids must be a non-empty list")
    for key, seq in (("names", names), ("regions", regions), ("mirror", mirror)):
        if len(seq) != n:
            raise ValueError(f"{source}: {key} has {len(seq)} entries, vertex_ids {n}")
    if np.any(ids < 0):
        raise ValueError(f"{source}: negative vertex id")
    if len(set(names)) != n:
        raise ValueError(f"{source}: landmark names are not unique")
    if np.any(mirror < 0) or np.any(mirror >= n) or np.any(mirror[mirror] != np.arange(n)):
        raise ValueError(f"{source}: mirror must be an involution of 0..{n - 1}")
    return LandmarkSet(name=name, vertex_ids=ids, names=names, regions=regions, mirror=mirror)


def load_landmark_set(name: str, directory: Path | None = None) -> LandmarkSet:
    """A frozen landmark set by name ('landmarks320', 'landmarks68') from ``assets/landmarks``."""
    folder = Path(directory) if directory is not None else LANDMARK_DIR
    path = folder / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.json"))) if folder.is_dir() else "none"
        raise FileNotFoundError(f"landmark set '{name}' not found: {path} (available: {known})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: corrupt JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return landmark_set_from_dict(data, str(path))


def check_against_model(lms: LandmarkSet, model: HeadModel) -> None:
    """ValueError when the set's vertex ids do not fit the model."""
    if int(lms.vertex_ids.max()) >= model.n_vertices:
        raise ValueError(f"landmark set '{lms.name}' uses vertex {int(lms.vertex_ids.max())}, the model has "
                         f"{model.n_vertices} vertices")


def landmark_set_to_dict(lms: LandmarkSet) -> dict:
    return {"name": lms.name, "vertex_ids": [int(i) for i in lms.vertex_ids], "names": list(lms.names),
            "regions": list(lms.regions),
            "mirror": [int(i) for i in (lms.mirror if lms.mirror is not None else range(len(lms)))]}


def write_landmark_set(lms: LandmarkSet, directory: Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{lms.name}.json"
    path.write_text(json.dumps(landmark_set_to_dict(lms), indent=1) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------- geometry

def vertex_mirror_map(vertices: np.ndarray, vertex_part: np.ndarray | None = None,
                      part_names: tuple[str, ...] | None = None, tol_cm: float = 0.05) -> np.ndarray:
    """(N,) index of each vertex's mirror image across the x = 0 plane: the nearest vertex to (-x, y, z)
    within the mirror part (``...Left`` <-> ``...Right``, others to themselves), since ICT has coincident
    duplicate vertices in different parts (e.g. the eye occlusion strip on the eyelid)."""
    from scipy.spatial import cKDTree

    v = np.asarray(vertices, dtype=np.float64)
    n = v.shape[0]
    if vertex_part is None or part_names is None:
        vertex_part, part_names = np.zeros(n, dtype=np.int64), ("all",)
    mirrored = v * np.array([-1.0, 1.0, 1.0])
    out = np.full(n, -1, dtype=np.int64)
    worst = 0.0
    for pi, name in enumerate(part_names):
        src = np.flatnonzero(vertex_part == pi)
        if src.size == 0:
            continue
        other = name.replace("Left", "\0").replace("Right", "Left").replace("\0", "Right")
        dst = np.flatnonzero(vertex_part == part_names.index(other)) if other in part_names else src
        dist, idx = cKDTree(v[dst]).query(mirrored[src])
        out[src] = dst[idx]
        worst = max(worst, float(dist.max()))
    if worst > tol_cm:
        raise ValueError(f"the mesh is not mirror-symmetric: a vertex's mirror is {worst:.3f} cm away")
    return out


def _edge_graph(vertices: np.ndarray, faces: np.ndarray, keep: np.ndarray):
    """Sparse (N, N) graph of the mesh edges whose both ends are in ``keep``, weighted by length."""
    from scipy.sparse import coo_matrix

    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = e[keep[e[:, 0]] & keep[e[:, 1]]]
    w = np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1)
    n = vertices.shape[0]
    g = coo_matrix((np.concatenate([w, w]), (np.concatenate([e[:, 0], e[:, 1]]),
                                             np.concatenate([e[:, 1], e[:, 0]]))), shape=(n, n)).tocsr()
    g.sum_duplicates()
    return g


def shortest_path(graph, a: int, b: int) -> list[int]:
    """Vertices of the shortest edge path a -> b (Dijkstra), both ends included."""
    from scipy.sparse.csgraph import dijkstra

    _, pred = dijkstra(graph, indices=a, return_predecessors=True)
    if a != b and pred[b] < 0:
        raise ValueError(f"no edge path from vertex {a} to vertex {b}")
    path = [b]
    while path[-1] != a:
        path.append(int(pred[path[-1]]))
    return path[::-1]


def polyline_path(graph, stops: list[int]) -> list[int]:
    path = [stops[0]]
    for a, b in zip(stops[:-1], stops[1:]):
        path.extend(shortest_path(graph, a, b)[1:])
    return path


def resample_path(vertices: np.ndarray, path: list[int], count: int) -> list[int]:
    """``count`` path vertices (both ends included) nearest to equal arc-length steps, in path order."""
    p = vertices[path]
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    targets = np.linspace(0.0, arc[-1], count)
    picks = [int(np.argmin(np.abs(arc - t))) for t in targets]
    if len(set(picks)) != count:
        raise ValueError(f"a path of {len(path)} vertices is too short for {count} samples")
    return [path[i] for i in picks]


def outer_skin_mask(model: HeadModel) -> np.ndarray:
    """(N,) bool: the head's outer surface: the Face part and the connected piece of the BackHead part that
    holds its lowest vertex (the head and neck, open at the bottom of the neck). BackHead also holds the mouth
    socket and the two eye sockets, separate connected pieces inside the head."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    names = model.part_names
    face = model.vertex_part == names.index("Face")
    back = model.vertex_part == names.index("BackHead")
    n = model.n_vertices
    tri = model.faces[back[model.faces].all(axis=1)].astype(np.int64)
    e = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    g = coo_matrix((np.ones(e.shape[0]), (e[:, 0], e[:, 1])), shape=(n, n))
    _, label = connected_components(g, directed=False)
    back_ids = np.flatnonzero(back)
    lowest = back_ids[np.argmin(model.neutral_cm[back_ids, 1])]
    return face | (back & (label == label[lowest]))


def eye_optical_axis(vertices: np.ndarray, iris_ids: np.ndarray, centre: np.ndarray,
                     cone_deg: float = 25.0, iterations: int = 10) -> np.ndarray:
    """The unit direction from the eyeball centre through the iris disc (iterated mean of the iris vertex
    directions within ``cone_deg`` of the current axis, starting from +z)."""
    d = vertices[iris_ids] - centre
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    axis = np.array([0.0, 0.0, 1.0])
    for _ in range(iterations):
        sel = d @ axis > np.cos(np.radians(cone_deg))
        axis = d[sel].mean(axis=0)
        axis /= np.linalg.norm(axis)
    return axis


def iris_ring(vertices: np.ndarray, iris_ids: np.ndarray, centre: np.ndarray, axis: np.ndarray,
              polar_deg: float, azimuths_deg: list[float], nasal_sign: float) -> list[int]:
    """Iris vertices nearest to the points at ``polar_deg`` from the optical axis and the given azimuths
    (0 = up, 90 = towards the nose)."""
    up = np.array([0.0, 1.0, 0.0]) - axis[1] * axis
    up /= np.linalg.norm(up)
    nasal = np.cross(axis, up)
    nasal *= np.sign(nasal[0]) * nasal_sign  # points towards the mid-plane
    d = vertices[iris_ids] - centre
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    out = []
    for az in azimuths_deg:
        t, a = np.radians(polar_deg), np.radians(az)
        target = np.cos(t) * axis + np.sin(t) * (np.cos(a) * up + np.sin(a) * nasal)
        out.append(int(iris_ids[np.argmax(d @ target)]))
    return out


def symmetric_fps(vertices: np.ndarray, candidates: np.ndarray, budget: int, selected: list[int],
                  mirror: np.ndarray, pairs_only: bool = False) -> list[int]:
    """Farthest-point sampling of ``budget`` vertices from ``candidates`` (ids) that is mirror-symmetric:
    a pick on the subject's right (x < 0) brings its mirror right after it, a mid-plane pick counts once.
    Distances are Euclidean, to every vertex in ``selected`` and every pick so far. ``pairs_only``: never
    pick on the mid-plane."""
    cand = np.asarray(candidates, dtype=np.int64)
    cand = cand[(vertices[cand, 0] <= 0.0) | (mirror[cand] == cand)]  # right half + mid-plane
    on_mid = mirror[cand] == cand
    pts = vertices[cand]
    dmin = np.full(cand.shape[0], np.inf)
    for s in selected:
        dmin = np.minimum(dmin, np.linalg.norm(pts - vertices[s], axis=1))
    out: list[int] = []
    while len(out) < budget:
        score = dmin.copy()
        if budget - len(out) == 1:
            score[~on_mid] = -np.inf
        if pairs_only:
            score[on_mid] = -np.inf
        i = int(np.argmax(score))
        if not np.isfinite(score[i]) and score[i] < 0:
            raise ValueError("symmetric FPS: an odd budget needs a mid-plane candidate")
        v = int(cand[i])
        new = [v] if on_mid[i] else [v, int(mirror[v])]
        out.extend(new)
        for s in new:
            dmin = np.minimum(dmin, np.linalg.norm(pts - vertices[s], axis=1))
    return out


# ----------------------------------------------------------------------------------------------- the sets

IBUG_REGIONS = (["jaw"] * 17 + ["eyebrow"] * 10 + ["nose"] * 9 + ["eyelid"] * 12 + ["lips_outer"] * 12
                + ["lips_inner"] * 8)


def make_landmarks68(model: HeadModel) -> LandmarkSet:
    """The 68 iBUG points, names ``ibug_00`` .. ``ibug_67``, mirror from the vertex mirror map."""
    if model.ibug68_vertex_ids is None:
        raise ValueError("the head model has no iBUG 68 vertex ids (rebuild the model cache)")
    ids = np.asarray(model.ibug68_vertex_ids, dtype=np.int64)
    vmirror = vertex_mirror_map(model.neutral_cm, model.vertex_part, model.part_names)
    pos = {int(v): i for i, v in enumerate(ids)}
    try:
        mirror = np.array([pos[int(vmirror[v])] for v in ids])
    except KeyError as exc:
        raise ValueError(f"the iBUG 68 vertices are not mirror-symmetric (vertex {exc})") from None
    return LandmarkSet("landmarks68", ids, tuple(f"ibug_{i:02d}" for i in range(68)), tuple(IBUG_REGIONS),
                       mirror)


class _Builder:
    def __init__(self, model: HeadModel):
        self.v = model.neutral_cm.astype(np.float64)
        self.mirror = vertex_mirror_map(self.v, model.vertex_part, model.part_names)
        self.ids: list[int] = []
        self.names: list[str] = []
        self.regions: list[str] = []

    def add(self, ids: list[int], names: list[str], region: str) -> None:
        dup = set(ids) & set(self.ids)
        if dup or len(set(ids)) != len(ids):
            raise ValueError(f"landmark region '{region}' repeats vertices {sorted(dup)}")
        self.ids.extend(int(i) for i in ids)
        self.names.extend(names)
        self.regions.extend([region] * len(ids))

    def m(self, ids: list[int]) -> list[int]:
        return [int(self.mirror[i]) for i in ids]

    def side(self, v: int) -> str:
        x = self.v[v, 0]
        return "M" if self.mirror[v] == v else ("L" if x > 0 else "R")

    def fps_names(self, ids: list[int], region: str) -> list[str]:
        """Names of symmetric FPS picks: ``<region>_M_<k>`` on the mid-plane, ``<region>_R_<k>`` and its
        mirror ``<region>_L_<k>`` for a pair."""
        out, k_mid, k_pair = [], 0, 0
        for v in ids:
            s = self.side(v)
            if s == "M":
                out.append(f"{region}_M_{k_mid:02d}")
                k_mid += 1
            elif s == "R":
                out.append(f"{region}_R_{k_pair:02d}")
            else:
                out.append(f"{region}_L_{k_pair:02d}")
                k_pair += 1
        return out


def make_landmarks320(model: HeadModel) -> LandmarkSet:
    """The 320-landmark set by the procedure in the module docstring."""
    if model.ibug68_vertex_ids is None:
        raise ValueError("the head model has no iBUG 68 vertex ids (rebuild the model cache)")
    b = _Builder(model)
    v, ib = b.v, [int(i) for i in model.ibug68_vertex_ids]
    part = model.vertex_part
    pidx = {n: i for i, n in enumerate(model.part_names)}
    face = part == pidx["Face"]
    skin = face | (part == pidx["BackHead"])
    faces = model.faces.astype(np.int64)
    g_face = _edge_graph(v, faces, face)
    g_mid = _edge_graph(v, faces, face & (b.mirror == np.arange(len(v))))
    if v[ib[36], 0] > 0:
        raise ValueError("expected iBUG 36 (outer eye corner) on the subject's right (x < 0)")

    def numbered(prefix: str, n: int) -> list[str]:
        return [f"{prefix}_{i:02d}" for i in range(n)]

    # 1. contours. Jaw: right half 0..8 (13 incl. the chin), mirrored.
    half = resample_path(v, polyline_path(g_face, ib[0:9]), 13)
    b.add(half + b.m(half[:-1])[::-1], numbered("jaw", 25), "jaw")
    brow = resample_path(v, polyline_path(g_face, ib[17:22]), 8)  # subject's right brow, outer to inner
    b.add(brow, numbered("eyebrow_R", 8), "eyebrow")
    b.add(b.m(brow), numbered("eyebrow_L", 8), "eyebrow")
    bridge = resample_path(v, polyline_path(g_mid, ib[27:31]), 6)
    nostril = resample_path(v, polyline_path(g_face, ib[31:34]), 4)
    b.add(bridge + nostril + b.m(nostril[:-1])[::-1], numbered("nose_bridge", 6) + numbered("nostril_base", 7),
          "nose")
    upper = resample_path(v, polyline_path(g_face, ib[36:40]), 9)
    lower = resample_path(v, polyline_path(g_face, [ib[39], ib[40], ib[41], ib[36]]), 9)[1:-1]
    lid = upper + lower  # outer corner, upper lid (7), inner corner, lower lid (7)
    lid_names = ["outer_corner"] + [f"upper_{i}" for i in range(7)] + ["inner_corner"] + [f"lower_{i}" for i in range(7)]
    b.add(lid, [f"eyelid_R_{n}" for n in lid_names], "eyelid")
    b.add(b.m(lid), [f"eyelid_L_{n}" for n in lid_names], "eyelid")

    # 2. iris and pupil, made on the right eye (iBUG 36-41 side) and mirrored.
    iris_r = np.flatnonzero(part == pidx["IrisRight"])
    centre = model.joints_neutral_cm[3].astype(np.float64)
    axis = eye_optical_axis(v, iris_r, centre)
    pupil_centre = int(iris_r[np.argmax((v[iris_r] - centre) @ axis / np.linalg.norm(v[iris_r] - centre, axis=1))])
    pupil = iris_ring(v, iris_r, centre, axis, 7.5, [0, 90, 180, 270], nasal_sign=+1.0)
    limbus = iris_ring(v, iris_r, centre, axis, 21.0, [0, 45, 90, 135, 180, 225, 270, 315], nasal_sign=+1.0)
    dirs = ["up", "nasal", "down", "temporal"]
    dirs8 = ["up", "up_nasal", "nasal", "down_nasal", "down", "down_temporal", "temporal", "up_temporal"]
    for s, conv in (("R", lambda x: x), ("L", b.m)):
        b.add(conv([pupil_centre]) + conv(pupil), [f"pupil_{s}_centre"] + [f"pupil_{s}_{d}" for d in dirs], "pupil")
        b.add(conv(limbus), [f"iris_{s}_{d}" for d in dirs8], "iris")

    # lips (after the eyes: the order of the frozen file)
    up = resample_path(v, polyline_path(g_face, ib[48:52]), 7)
    lo = resample_path(v, polyline_path(g_face, [ib[48], ib[59], ib[58], ib[57]]), 7)
    outer = up + b.m(up[1:-1])[::-1] + b.m([up[0]]) + b.m(lo[1:-1]) + [lo[-1]] + lo[1:-1][::-1]
    b.add(outer, ["lip_outer_corner_R"] + numbered("lip_outer_upper", 11) + ["lip_outer_corner_L"]
          + numbered("lip_outer_lower", 11), "lips_outer")
    up = resample_path(v, polyline_path(g_face, ib[60:63]), 6)
    lo = resample_path(v, polyline_path(g_face, [ib[60], ib[67], ib[66]]), 6)
    inner = up + b.m(up[1:-1])[::-1] + b.m([up[0]]) + b.m(lo[1:-1]) + [lo[-1]] + lo[1:-1][::-1]
    b.add(inner, ["lip_inner_corner_R"] + numbered("lip_inner_upper", 9) + ["lip_inner_corner_L"]
          + numbered("lip_inner_lower", 9), "lips_inner")

    # 3. regions by symmetric FPS.
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    from tracker.face.rig import neck_head_blend

    on_head = neck_head_blend(v) >= 0.999  # rigid to the head joint: above the jaw/neck blend
    neck = skin & ~on_head & (y > NECK_BOTTOM_Y_CM) & (np.abs(x) < NECK_HALF_WIDTH_CM)
    ear = face & (np.abs(x) > 6.4) & (y > -2.6) & (y < 3.8) & (z > -2.0) & (z < 1.9)
    eye_c = model.joints_neutral_cm[2:].astype(np.float64)
    r_eye = float(np.max(model.eye_radius_cm))
    near_eye = np.min(np.linalg.norm(v[:, None, :] - eye_c[None], axis=2), axis=1) < r_eye + 0.1
    inner_lip_pts = v[inner]
    near_inner_lip = np.min(np.linalg.norm(v[:, None, :] - inner_lip_pts[None], axis=2), axis=1) < 0.4
    nose = face & (np.abs(x) < 1.9) & (y > -1.0) & (y < 3.0) & (z > 10.3)
    face_fill = face & on_head & ~ear & ~near_eye & ~near_inner_lip & (z > 2.0) & (y < 10.0)
    scalp = skin & on_head & ~ear & ~face_fill & ~near_eye & ~near_inner_lip & ~nose
    for region, mask, budget in (("nose", nose, 12), ("face", face_fill, 86), ("ear", ear, 20),
                                 ("scalp", scalp, 36), ("neck", neck, 10)):
        picks = symmetric_fps(v, np.flatnonzero(mask), budget, b.ids, b.mirror)
        b.add(picks, b.fps_names(picks, region), region)

    # 4. picks inside the mouth or eye sockets (interior pieces of BackHead that the first candidate masks let
    # in) are replaced in place, in index order, keeping names and mirror slots: a mid-plane pick by the
    # outer-scalp mid-plane vertex farthest from every other landmark, a pair by the farthest right-side
    # vertex and its mirror.
    outer = outer_skin_mask(model)
    interior = (part == pidx["BackHead"]) & ~outer
    outer_scalp = np.flatnonzero(scalp & outer)
    i = 0
    while i < len(b.ids):
        if not interior[b.ids[i]]:
            i += 1
            continue
        pair = b.mirror[b.ids[i]] != b.ids[i]
        others = [vv for k, vv in enumerate(b.ids) if k != i and not (pair and k == i + 1)]
        new = symmetric_fps(v, outer_scalp, 2 if pair else 1, others, b.mirror, pairs_only=pair)
        b.ids[i:i + len(new)] = new
        i += len(new)

    ids = np.array(b.ids, dtype=np.int64)
    if ids.shape[0] != 320:
        raise ValueError(f"the 320-landmark procedure made {ids.shape[0]} landmarks")
    pos = {int(vv): i for i, vv in enumerate(ids)}
    mirror = np.array([pos[int(b.mirror[vv])] for vv in ids])
    return LandmarkSet("landmarks320", ids, tuple(b.names), tuple(b.regions), mirror)
