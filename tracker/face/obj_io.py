"""Fast Wavefront OBJ reading for the ICT-FaceKit meshes: vertex positions, polygons and material groups.

The parsers take the file's bytes (from a folder or from inside an archive) and the file's name, which every
error message names. Vertex coordinates are parsed by numpy in one call per file, not line by line.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np

# A vertex line: "v x y z" (an optional 4th weight or 3 colour values are rejected by the count check).
_V_LINE = re.compile(rb"^v[ \t]+([^\n\r]*)", re.MULTILINE)
_FIRST_V = re.compile(rb"^v[ \t]", re.MULTILINE)
_NOT_V_LINE = re.compile(rb"\n(?!v[ \t])")


def _vertex_text(data: bytes) -> tuple[bytes, int]:
    """The coordinates of all ``v`` lines as one whitespace-separated byte string, and the line count.

    Fast path: the ``v`` lines form one contiguous block (as in every ICT file), found with a few C-level
    searches; otherwise every ``v`` line is collected with a regular expression.
    """
    first = _FIRST_V.search(data)
    if first is None:
        return b"", 0
    start = first.start()
    end_match = _NOT_V_LINE.search(data, start)
    end = end_match.start() if end_match else len(data)
    if data.find(b"\nv ", end) < 0 and data.find(b"\nv\t", end) < 0:
        block = data[start:end]
        return block.replace(b"v", b" "), block.count(b"v")
    rows = _V_LINE.findall(data)
    return b" ".join(rows), len(rows)


def parse_obj_vertices(data: bytes, name: str, expected: int | None = None) -> np.ndarray:
    """All ``v`` lines of an OBJ file -> (N, 3) float64.

    ``expected``: the vertex count the file must have (every ICT OBJ shares the neutral mesh's vertices).
    Raises ValueError naming ``name`` for unreadable numbers, a wrong number of values or vertices, or
    non-finite coordinates.
    """
    text, n_rows = _vertex_text(data)
    if n_rows == 0:
        raise ValueError(f"{name}: no vertices ('v' lines) found: not an OBJ mesh or the file is corrupt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns (and stops) on the first unparsable token
        try:
            values = np.fromstring(text, dtype=np.float64, sep=" ")
        except (ValueError, DeprecationWarning) as exc:
            raise ValueError(f"{name}: unreadable vertex coordinates ({exc})") from None
    if values.size != 3 * n_rows:
        raise ValueError(f"{name}: expected 3 coordinates on each of {n_rows} 'v' lines, "
                         f"read {values.size} numbers (corrupt or truncated file)")
    vertices = values.reshape(-1, 3)
    if expected is not None and vertices.shape[0] != expected:
        raise ValueError(f"{name}: has {vertices.shape[0]} vertices, expected {expected} "
                         f"(the neutral mesh's vertex count)")
    if not np.all(np.isfinite(vertices)):
        raise ValueError(f"{name}: non-finite vertex coordinates")
    return vertices


@dataclass(frozen=True, eq=False)
class ObjMesh:
    """A polygon mesh. ``vertices``: (N, 3); ``polygons``: list of (k,) int arrays (0-based, k >= 3);
    ``polygon_group``: (P,) int index into ``group_names`` (the ``usemtl`` material of each polygon)."""

    vertices: np.ndarray
    polygons: list[np.ndarray]
    polygon_group: np.ndarray
    group_names: tuple[str, ...]


def parse_obj_mesh(data: bytes, name: str) -> ObjMesh:
    """Vertices, faces (``f`` lines, ``v``, ``v/vt``, ``v//vn`` or ``v/vt/vn`` tokens, negative indices
    allowed) and their ``usemtl`` groups. Faces before any ``usemtl`` belong to the group ``default``."""
    vertices = parse_obj_vertices(data, name)
    n = vertices.shape[0]
    groups: list[str] = []
    group_index: dict[str, int] = {}
    current = -1
    polygons: list[np.ndarray] = []
    polygon_group: list[int] = []
    for line_no, line in enumerate(data.splitlines(), start=1):
        if line.startswith(b"f ") or line.startswith(b"f\t"):
            tokens = line.split()[1:]
            if len(tokens) < 3:
                raise ValueError(f"{name}: line {line_no}: a face needs at least 3 vertices")
            try:
                idx = np.array([int(t.split(b"/", 1)[0]) for t in tokens], dtype=np.int64)
            except ValueError:
                raise ValueError(f"{name}: line {line_no}: unreadable face indices") from None
            idx = np.where(idx < 0, n + idx, idx - 1)
            if np.any(idx < 0) or np.any(idx >= n):
                raise ValueError(f"{name}: line {line_no}: face index out of range 1..{n}")
            if current < 0:
                current = group_index.setdefault("default", len(groups))
                if current == len(groups):
                    groups.append("default")
            polygons.append(idx)
            polygon_group.append(current)
        elif line.startswith(b"usemtl"):
            parts = line.split(maxsplit=1)
            mtl = parts[1].strip().decode("utf-8", "replace") if len(parts) > 1 else "default"
            if mtl not in group_index:
                group_index[mtl] = len(groups)
                groups.append(mtl)
            current = group_index[mtl]
    if not polygons:
        raise ValueError(f"{name}: no faces ('f' lines) found")
    return ObjMesh(vertices, polygons, np.asarray(polygon_group, dtype=np.int64), tuple(groups))


def triangulate(polygons: list[np.ndarray], polygon_group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fan-triangulate polygons (quads split along their 0-2 diagonal) -> faces (F, 3) int32 and the
    group of each triangle (F,)."""
    tris: list[np.ndarray] = []
    tri_group: list[np.ndarray] = []
    for poly, g in zip(polygons, polygon_group):
        k = poly.shape[0]
        fan = np.stack([np.full(k - 2, poly[0]), poly[1:-1], poly[2:]], axis=1)
        tris.append(fan)
        tri_group.append(np.full(k - 2, g))
    return (np.concatenate(tris).astype(np.int32), np.concatenate(tri_group).astype(np.int64))


def format_obj(vertices: np.ndarray, faces: np.ndarray, header: str = "") -> str:
    """OBJ text for (N, 3) vertices and (F, k) 0-based faces."""
    lines = [f"# {h}" for h in header.splitlines()] if header else []
    v = np.asarray(vertices, dtype=np.float64)
    lines.extend(f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in v)
    f = np.asarray(faces, dtype=np.int64) + 1
    lines.extend("f " + " ".join(str(int(i)) for i in row) for row in f)
    return "\n".join(lines) + "\n"
