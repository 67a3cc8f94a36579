"""Build the head model from ICT-FaceKit once, cache it, and load it from the cache afterwards.

Input: the ``FaceXModel`` folder, or an archive holding it (``FaceXModel.tar.xz`` / ``.tar.gz`` / ``.zip``),
from an argument, ``TRACKER_ICT`` or ``<data>/ict-facekit/FaceXModel.tar.xz`` (``tracker.paths.ict_source``),
else downloaded from the public ICT-FaceKit release on GitHub where there is a network.

Cache: one uncompressed ``.npz`` of float32 / int arrays and unicode string arrays (read with
``allow_pickle=False``) in ``tracker.paths.cache_dir()``, named after ``MODEL_VERSION`` so a changed build
procedure never reads an old cache.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from tracker import paths
from tracker.face.model import HeadModel
from tracker.face.obj_io import parse_obj_mesh, parse_obj_vertices, triangulate
from tracker.face.rig import compute_rig

log = logging.getLogger(__name__)

#: Changes whenever the cache format or the build procedure (incl. the rig) changes, and when a frozen landmark
#: set is corrected (caches derived from the model and its landmarks key on it). lm-2: 8 scalp landmarks of
#: landmarks320 that lay inside the mouth socket moved onto the scalp.
MODEL_VERSION = "ict-facekit-1.rig-1.lm-2"
CACHE_NAME = f"head_model_{MODEL_VERSION}.npz"

NEUTRAL_OBJ = "generic_neutral_mesh.obj"
INDICES_JSON = "vertex_indices.json"
#: The public release: the repository's FaceXModel folder is inside this archive.
ICT_DOWNLOAD_URL = "https://github.com/USC-ICT/ICT-FaceKit/archive/refs/heads/master.zip"

#: ICT-FaceKit's 53 ARKit-named expressions (ARKit's 52 without tongueOut, with browInnerUp and
#: cheekPuff split into _L/_R). ``vertex_indices.json`` "expressions" gives the order.
ICT_EXPRESSIONS = (
    "browDown_L", "browDown_R", "browInnerUp_L", "browInnerUp_R", "browOuterUp_L", "browOuterUp_R",
    "cheekPuff_L", "cheekPuff_R", "cheekSquint_L", "cheekSquint_R", "eyeBlink_L", "eyeBlink_R",
    "eyeLookDown_L", "eyeLookDown_R", "eyeLookIn_L", "eyeLookIn_R", "eyeLookOut_L", "eyeLookOut_R",
    "eyeLookUp_L", "eyeLookUp_R", "eyeSquint_L", "eyeSquint_R", "eyeWide_L", "eyeWide_R", "jawForward",
    "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimple_L", "mouthDimple_R", "mouthFrown_L",
    "mouthFrown_R", "mouthFunnel", "mouthLeft", "mouthLowerDown_L", "mouthLowerDown_R", "mouthPress_L",
    "mouthPress_R", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmile_L", "mouthSmile_R", "mouthStretch_L", "mouthStretch_R",
    "mouthUpperUp_L", "mouthUpperUp_R", "noseSneer_L", "noseSneer_R")

_IDENTITY_RE = re.compile(r"^identity(\d{3})\.obj$")


class ModelSourceError(FileNotFoundError):
    """No ICT-FaceKit input could be found or downloaded; the message says how to provide one."""


# ----------------------------------------------------------------------------------------------- input

class _FolderSource:
    def __init__(self, folder: Path):
        inner = folder / "FaceXModel"
        self.folder = inner if not (folder / NEUTRAL_OBJ).is_file() and inner.is_dir() else folder
        self.label = str(self.folder)

    def items(self, wanted):
        """Yields (base name, bytes) of the folder's files for which ``wanted(name)`` is true."""
        for path in sorted(self.folder.iterdir()):
            if path.is_file() and wanted(path.name):
                yield path.name, path.read_bytes()


class _ArchiveSource:
    """A tar (any compression) or zip archive; files are found by base name in any folder."""

    def __init__(self, archive: Path):
        self.archive = archive
        self.label = str(archive)
        self.is_zip = zipfile.is_zipfile(archive)
        if not self.is_zip:
            try:
                with tarfile.open(archive, "r:*"):
                    pass
            except (tarfile.TarError, EOFError, OSError) as exc:
                raise ValueError(f"{archive}: not a readable tar or zip archive ({exc})") from None

    def items(self, wanted):
        """Yields (base name, bytes) of files for which ``wanted(name)`` is true, in one pass."""
        try:
            if self.is_zip:
                with zipfile.ZipFile(self.archive) as z:
                    names = z.namelist()
                    homes = _model_folders(names)
                    for n in names:
                        if not n.endswith("/") and wanted(Path(n).name) and (
                                len(homes) != 1 or str(Path(n).parent) in homes):
                            yield Path(n).name, z.read(n)
                return
            with tarfile.open(self.archive, "r:*") as t:
                for m in t:
                    if m.isfile() and wanted(Path(m.name).name):
                        f = t.extractfile(m)
                        if f is not None:
                            yield Path(m.name).name, f.read()
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
            raise ValueError(f"{self.archive}: corrupt archive ({exc})") from None


def _model_folders(members: list[str]) -> set[str]:
    """Folders holding the neutral mesh: in a zip of the whole repository (the download) only files beside it
    are read, so other folders' files of the same name cannot interfere."""
    return {str(Path(m).parent) for m in members if Path(m).name == NEUTRAL_OBJ}


def _open_source(source: Path):
    source = Path(source).expanduser()
    if source.is_dir():
        return _FolderSource(source)
    if source.is_file():
        return _ArchiveSource(source)
    raise FileNotFoundError(f"ICT-FaceKit source not found: {source} (expected the FaceXModel folder or "
                            f"FaceXModel.tar.xz)")


# ----------------------------------------------------------------------------------------------- build

def _identity_files(names: set[str], label: str) -> list[str]:
    numbers = sorted(int(m.group(1)) for n in names if (m := _IDENTITY_RE.match(n)))
    if not numbers:
        raise FileNotFoundError(f"{label}: no identity modes (identity000.obj ...) found")
    for expected, got in enumerate(numbers):
        if got != expected:
            raise FileNotFoundError(f"{label}: identity{expected:03d}.obj is missing")
    return [f"identity{i:03d}.obj" for i in numbers]


def _read_indices(data: bytes, label: str) -> dict:
    name = f"{label}/{INDICES_JSON}"
    try:
        indices = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{name}: corrupt JSON ({exc})") from None
    if not isinstance(indices, dict):
        raise ValueError(f"{name}: expected a JSON object")
    expressions = indices.get("expressions")
    if not isinstance(expressions, list) or not expressions or not all(isinstance(e, str) for e in expressions):
        raise ValueError(f"{name}: 'expressions' must be a non-empty list of names")
    unknown = [e for e in expressions if e not in ICT_EXPRESSIONS]
    if unknown:
        raise ValueError(f"{name}: unknown expression names {unknown} (expected ICT-FaceKit's ARKit names)")
    if len(set(expressions)) != len(expressions):
        raise ValueError(f"{name}: duplicate expression names")
    lm = indices.get("idx_to_landmark_verts")
    if not isinstance(lm, list) or len(lm) != 68 or not all(isinstance(i, int) for i in lm):
        raise ValueError(f"{name}: 'idx_to_landmark_verts' must list 68 vertex indices")
    return indices


def build_head_model(source: Path) -> HeadModel:
    """Convert an ICT-FaceKit ``FaceXModel`` folder or archive into a HeadModel (nothing is cached here).

    Raises FileNotFoundError naming a missing file, ValueError naming a corrupt one.
    """
    src = _open_source(source)
    label = src.label
    # One pass over the source (decompressing an archive is the slow part): parse every OBJ as it comes.
    # A parse error is kept and raised only if that file turns out to be needed.
    parsed: dict[str, np.ndarray | ValueError] = {}
    mesh = None
    indices_data = None
    wanted = lambda n: n.endswith(".obj") or n == INDICES_JSON  # noqa: E731
    for name, data in src.items(wanted):
        if name == INDICES_JSON:
            indices_data = data
        elif name == NEUTRAL_OBJ:
            mesh = parse_obj_mesh(data, f"{label}/{name}")
        else:
            try:
                parsed[name] = parse_obj_vertices(data, f"{label}/{name}")
            except ValueError as exc:
                parsed[name] = exc
    for required, present in ((NEUTRAL_OBJ, mesh is not None), (INDICES_JSON, indices_data is not None)):
        if not present:
            raise FileNotFoundError(f"{label}: {required} is missing")
    indices = _read_indices(indices_data, label)
    identity_files = _identity_files(set(parsed), label)
    expressions: list[str] = indices["expressions"]
    expression_files = [f"{e}.obj" for e in expressions]
    raw: dict[str, np.ndarray] = {}
    for f in (*identity_files, *expression_files):
        if f not in parsed:
            raise FileNotFoundError(f"{label}: {f} is missing")
        if isinstance(parsed[f], ValueError):
            raise parsed[f]
        raw[f] = parsed[f]

    neutral = mesh.vertices
    n = neutral.shape[0]

    def deltas(files: list[str]) -> np.ndarray:
        out = np.empty((len(files), n, 3), dtype=np.float64)
        for i, f in enumerate(files):
            v = raw[f]
            if v.shape[0] != n:
                raise ValueError(f"{label}/{f}: has {v.shape[0]} vertices, expected {n} "
                                 f"(the neutral mesh's vertex count)")
            out[i] = v - neutral
        return out

    identity_basis = deltas(identity_files)
    expression_basis = deltas(expression_files)

    faces, tri_group = triangulate(mesh.polygons, mesh.polygon_group)
    part_names = tuple(g[2:] if g.startswith("M_") else g for g in mesh.group_names)
    # A vertex shared by several groups (seams) takes the first group in file order (Face before BackHead).
    vertex_part = np.full(n, len(part_names), dtype=np.int64)
    for gi in range(len(part_names) - 1, -1, -1):
        vertex_part[np.unique(faces[tri_group == gi])] = gi
    if np.any(vertex_part == len(part_names)):
        unused = int(np.sum(vertex_part == len(part_names)))
        part_names = part_names + ("unused",)
        log.warning("%s: %d vertices are in no face", NEUTRAL_OBJ, unused)

    ibug = np.asarray(indices["idx_to_landmark_verts"], dtype=np.int64)
    if ibug.min() < 0 or ibug.max() >= n:
        raise ValueError(f"{label}/{INDICES_JSON}: landmark vertex index out of range 0..{n - 1}")
    rig = compute_rig(neutral, identity_basis, vertex_part, part_names, ibug)

    return HeadModel(
        neutral_cm=neutral.astype(np.float32),
        identity_basis_cm=identity_basis.astype(np.float32),
        expression_basis_cm=expression_basis.astype(np.float32),
        expression_names=tuple(expressions),
        faces=faces.astype(np.int32),
        vertex_part=vertex_part.astype(np.uint8),
        part_names=part_names,
        joint_parents=rig.joint_parents.astype(np.int64),
        joints_neutral_cm=rig.joints_neutral_cm,
        joints_identity_basis_cm=rig.joints_identity_basis_cm,
        skin_weights=rig.skin_weights,
        eye_radius_cm=rig.eye_radius_cm,
        version=MODEL_VERSION,
        ibug68_vertex_ids=ibug.astype(np.int64),
    )


# ----------------------------------------------------------------------------------------------- cache

_ARRAY_FIELDS = ("neutral_cm", "identity_basis_cm", "expression_basis_cm", "faces", "vertex_part",
                 "joint_parents", "joints_neutral_cm", "joints_identity_basis_cm", "skin_weights",
                 "eye_radius_cm", "ibug68_vertex_ids")
_STRING_FIELDS = ("expression_names", "part_names")


def save_head_model(model: HeadModel, path: Path) -> None:
    """Write the model as an uncompressed .npz (atomically: a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.ascontiguousarray(getattr(model, k)) for k in _ARRAY_FIELDS}
    arrays.update({k: np.array(getattr(model, k), dtype=str) for k in _STRING_FIELDS})
    arrays["version"] = np.array(model.version)
    fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp.npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_cached_head_model(path: Path) -> HeadModel:
    """Read a cache file written by ``save_head_model``. ValueError naming the file if it is corrupt or from
    another build version."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise
    except Exception as exc:  # zipfile / numpy format errors of a truncated or foreign file
        raise ValueError(f"{path}: unreadable head-model cache ({exc})") from None
    missing = [k for k in (*_ARRAY_FIELDS, *_STRING_FIELDS, "version") if k not in data]
    if missing:
        raise ValueError(f"{path}: head-model cache lacks {missing}")
    version = str(data["version"])
    if version != MODEL_VERSION:
        raise ValueError(f"{path}: cache version {version!r}, this code builds {MODEL_VERSION!r}")
    kwargs = {k: data[k] for k in _ARRAY_FIELDS}
    kwargs.update({k: tuple(str(s) for s in data[k]) for k in _STRING_FIELDS})
    return HeadModel(version=version, **kwargs)


def cache_path(cache_dir: Path | None = None) -> Path:
    return Path(cache_dir if cache_dir is not None else paths.cache_dir()) / CACHE_NAME


def download_ict(dest_dir: Path, url: str = ICT_DOWNLOAD_URL, timeout_s: float = 30.0) -> Path:
    """Download the public ICT-FaceKit release (a zip holding the FaceXModel folder) -> the zip's path."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / "ICT-FaceKit.zip"
    log.info("downloading ICT-FaceKit from %s", url)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            data = response.read()
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise ModelSourceError(_no_source_message(f"the download from {url} failed ({exc})")) from None
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ModelSourceError(_no_source_message(f"the download from {url} is not a zip archive"))
    target.write_bytes(data)
    return target


def _no_source_message(why: str) -> str:
    return (f"no ICT-FaceKit head model input: {why}. Pass the FaceXModel folder or FaceXModel.tar.xz "
            f"(python main.py model --ict PATH), or set TRACKER_ICT=PATH, or TRACKER_DATA to a folder "
            f"holding ict-facekit/FaceXModel.tar.xz")


def load_head_model(source: Path | None = None, *, cache_dir: Path | None = None, rebuild: bool = False,
                    download: bool = True) -> HeadModel:
    """The head model from the cache, built once (and cached) when the cache is missing, stale or corrupt,
    or when ``rebuild``. Input for a build: ``source``, else ``tracker.paths.ict_source()``, else a download
    of the public ICT-FaceKit release (when ``download``)."""
    path = cache_path(cache_dir)
    if not rebuild and path.is_file():
        try:
            t0 = time.perf_counter()
            model = load_cached_head_model(path)
            log.debug("loaded %s in %.3f s", path, time.perf_counter() - t0)
            return model
        except ValueError as exc:
            log.warning("rebuilding the head model: %s", exc)
    if source is None:
        source = paths.ict_source()
    if source is None:
        if not download:
            raise ModelSourceError(_no_source_message("none was given and none was found"))
        source = download_ict(path.parent / "download")
    t0 = time.perf_counter()
    model = build_head_model(Path(source))
    log.info("built the head model from %s in %.1f s", source, time.perf_counter() - t0)
    save_head_model(model, path)
    return model
