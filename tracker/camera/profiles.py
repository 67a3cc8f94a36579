"""Saved calibrations: camera profiles per camera and resolution, and the user's face profile.

Files (JSON, human-editable) under ``tracker.paths.config_dir()``:
- ``cameras/<camera-id>_<W>x<H>.json``: a :class:`CameraProfile` (intrinsics, method, date, reprojection error
  or focal std, hfov);
- ``face_profile.json``: a :class:`FaceProfile` (identity coefficients found while calibrating from the face).

Camera ids are free text (a device name, ``camera0``, a video's stem); in file names every character outside
``[A-Za-z0-9._-]`` becomes ``_``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tracker import paths
from tracker.types import Intrinsics

log = logging.getLogger(__name__)

PROFILE_VERSION = 1
METHODS = ("board", "face", "manual")


class ProfileError(ValueError):
    """A profile file that cannot be read or a profile edit that makes no sense."""


def camera_key(camera_id: str) -> str:
    """The file-name-safe form of a camera id."""
    key = re.sub(r"[^A-Za-z0-9._-]", "_", str(camera_id).strip())
    if not key.strip("._"):
        raise ProfileError(f"camera id '{camera_id}' has no usable characters")
    return key


def camera_id_for_source(spec: str | int) -> str:
    """The default camera id of a source spec, the one convention for the CLI, the dialog and the pipeline:
    ``camera<N>`` for a camera index, the file's stem for a video, the folder's name for a folder."""
    text = str(spec).strip()
    if text.isdigit():
        return f"camera{int(text)}"
    if not text:
        return "camera0"
    path = Path(text).expanduser()
    if path.suffix and not path.is_dir():
        return path.stem
    return path.resolve().name or "camera0"


def profile_for_source(spec: str | int, width: int, height: int) -> CameraProfile | None:
    """The saved profile of the source's camera (:func:`camera_id_for_source`) at this resolution, or None."""
    return find_profile(camera_id_for_source(spec), width, height)


def cameras_dir() -> Path:
    return paths.config_dir() / "cameras"


def profile_path(camera_id: str, width: int, height: int) -> Path:
    return cameras_dir() / f"{camera_key(camera_id)}_{int(width)}x{int(height)}.json"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class CameraProfile:
    """One camera at one resolution. ``rms_reprojection_px`` for board calibrations, ``focal_std_px`` for face
    calibrations; either may be None (NaN never stored)."""

    camera_id: str
    intrinsics: Intrinsics
    method: str
    created: str = field(default_factory=_now)
    rms_reprojection_px: float | None = None
    focal_std_px: float | None = None
    n_views: int = 0
    notes: str = ""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ProfileError(f"unknown calibration method '{self.method}'; expected one of {', '.join(METHODS)}")
        k = self.intrinsics
        if not (k.width > 0 and k.height > 0 and k.fx > 0 and k.fy > 0 and math.isfinite(k.fx + k.fy + k.cx + k.cy)):
            raise ProfileError(f"invalid intrinsics in profile '{self.camera_id}': {k}")

    @property
    def hfov_deg(self) -> float:
        return self.intrinsics.hfov_deg

    @property
    def path(self) -> Path:
        return profile_path(self.camera_id, self.intrinsics.width, self.intrinsics.height)

    def to_json(self) -> dict:
        k = self.intrinsics
        return {
            "version": PROFILE_VERSION,
            "camera_id": self.camera_id,
            "width": k.width, "height": k.height,
            "fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy,
            "dist_coeffs": list(k.dist_coeffs),
            "hfov_deg": k.hfov_deg,
            "method": self.method,
            "created": self.created,
            "rms_reprojection_px": _finite_or_none(self.rms_reprojection_px),
            "focal_std_px": _finite_or_none(self.focal_std_px),
            "n_views": int(self.n_views),
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, obj: dict, source: str = "profile") -> "CameraProfile":
        try:
            k = Intrinsics(int(obj["width"]), int(obj["height"]), float(obj["fx"]), float(obj["fy"]),
                           float(obj["cx"]), float(obj["cy"]), tuple(float(c) for c in obj.get("dist_coeffs", ())))
            return cls(str(obj["camera_id"]), k, str(obj.get("method", "manual")), str(obj.get("created", "")),
                       _float_or_none(obj.get("rms_reprojection_px")), _float_or_none(obj.get("focal_std_px")),
                       int(obj.get("n_views", 0)), str(obj.get("notes", "")))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ProfileError):
                raise
            raise ProfileError(f"{source}: not a camera profile ({type(exc).__name__}: {exc})") from exc

    def summary(self) -> str:
        k = self.intrinsics
        if self.rms_reprojection_px is not None:
            quality = f"reprojection {self.rms_reprojection_px:.3f} px"
        elif self.focal_std_px is not None:
            quality = f"focal std {self.focal_std_px:.1f} px"
        else:
            quality = "no error estimate"
        return (f"{self.camera_id} {k.width}x{k.height}: f={k.fx:.1f}/{k.fy:.1f} px, c=({k.cx:.1f}, {k.cy:.1f}), "
                f"hfov {k.hfov_deg:.1f} deg, {self.method}, {quality}, {self.created}")


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def _float_or_none(x) -> float | None:
    return None if x is None else float(x)


def _write_json_atomic(path: Path, obj) -> None:
    """Write JSON through a temporary file and a rename, so a crash never leaves a half-written profile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def save_profile(profile: CameraProfile) -> Path:
    """Write the profile (atomically) and return its path."""
    path = profile.path
    _write_json_atomic(path, profile.to_json())
    log.info("saved camera profile %s", path)
    return path


def read_profile_file(path: Path) -> CameraProfile:
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ProfileError(f"cannot read camera profile {path}: {exc}") from exc
    if not isinstance(obj, dict):
        raise ProfileError(f"{path}: not a camera profile (expected a JSON object)")
    return CameraProfile.from_json(obj, str(path))


def find_profile(camera_id: str, width: int, height: int) -> CameraProfile | None:
    """The saved profile for this camera and resolution, or None. A broken file is logged and ignored."""
    path = profile_path(camera_id, width, height)
    if not path.is_file():
        return None
    try:
        return read_profile_file(path)
    except ProfileError as exc:
        log.warning("ignoring camera profile: %s", exc)
        return None


def load_profile(camera_id: str, width: int, height: int) -> Intrinsics | None:
    """The saved intrinsics for this camera at exactly this resolution, or None (then use ``Intrinsics.from_fov``)."""
    profile = find_profile(camera_id, width, height)
    return None if profile is None else profile.intrinsics


def list_profiles() -> list[CameraProfile]:
    """Every readable camera profile, sorted by camera id and resolution."""
    folder = cameras_dir()
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            out.append(read_profile_file(path))
        except ProfileError as exc:
            log.warning("ignoring camera profile: %s", exc)
    return sorted(out, key=lambda p: (p.camera_id, p.intrinsics.width, p.intrinsics.height))


def delete_profile(camera_id: str, width: int, height: int) -> bool:
    """Remove the profile; True when there was one."""
    path = profile_path(camera_id, width, height)
    if path.is_file():
        path.unlink()
        return True
    return False


def edit_profile(camera_id: str, width: int, height: int, *, fx: float | None = None, fy: float | None = None,
                 cx: float | None = None, cy: float | None = None, hfov_deg: float | None = None,
                 dist_coeffs: tuple[float, ...] | None = None, notes: str | None = None) -> CameraProfile:
    """Change fields of a saved profile (or create a 'manual' one from the default 45 degree camera) and save it.

    ``hfov_deg`` sets fx (and fy in proportion) from a horizontal field of view.
    """
    profile = find_profile(camera_id, width, height)
    if profile is None:
        profile = CameraProfile(camera_id, Intrinsics.from_fov(width, height), "manual")
    k = profile.intrinsics
    if hfov_deg is not None:
        k = Intrinsics.from_fov(width, height, hfov_deg)
        k = replace(profile.intrinsics, fx=k.fx, fy=k.fx * profile.intrinsics.fy / profile.intrinsics.fx)
    changes = {name: float(v) for name, v in (("fx", fx), ("fy", fy), ("cx", cx), ("cy", cy)) if v is not None}
    for name, value in changes.items():
        if name in ("fx", "fy") and not value > 0:
            raise ProfileError(f"{name} must be positive, got {value}")
    if dist_coeffs is not None:
        changes["dist_coeffs"] = tuple(float(c) for c in dist_coeffs)
    k = replace(k, **changes)
    changed = bool(changes) or hfov_deg is not None
    edited = replace(profile, intrinsics=k, method="manual" if changed else profile.method,
                     rms_reprojection_px=None if changed else profile.rms_reprojection_px,
                     focal_std_px=None if changed else profile.focal_std_px,
                     notes=profile.notes if notes is None else notes, created=_now())
    save_profile(edited)
    return edited


# ----------------------------------------------------------------------------------------------------------
# The user's face profile


@dataclass(frozen=True, eq=False)
class FaceProfile:
    """Identity coefficients ``identity`` (n_id,) for the head model ``model_version``, found while calibrating
    with the camera ``camera_id`` (focal ``focal_px``), and when."""

    identity: np.ndarray
    model_version: str = ""
    camera_id: str = ""
    focal_px: float | None = None
    n_keyframes: int = 0
    created: str = field(default_factory=_now)

    def to_json(self) -> dict:
        return {"version": PROFILE_VERSION, "identity": [float(x) for x in np.asarray(self.identity).ravel()],
                "model_version": self.model_version, "camera_id": self.camera_id,
                "focal_px": _finite_or_none(self.focal_px), "n_keyframes": int(self.n_keyframes),
                "created": self.created}


def face_profile_path() -> Path:
    return paths.config_dir() / "face_profile.json"


def save_face_profile(profile: FaceProfile) -> Path:
    identity = np.asarray(profile.identity, dtype=np.float64)
    if identity.ndim != 1 or not np.all(np.isfinite(identity)):
        raise ProfileError(f"face profile identity must be a finite (n_id,) vector, got shape {identity.shape}")
    path = face_profile_path()
    _write_json_atomic(path, profile.to_json())
    log.info("saved face profile %s", path)
    return path


def load_face_profile(model_version: str | None = None) -> FaceProfile | None:
    """The saved face profile, or None when there is none, it is unreadable, or it was made for another head
    model version (identity coefficients do not carry across model builds)."""
    path = face_profile_path()
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text())
        profile = FaceProfile(np.asarray(obj["identity"], dtype=np.float64), str(obj.get("model_version", "")),
                              str(obj.get("camera_id", "")), _float_or_none(obj.get("focal_px")),
                              int(obj.get("n_keyframes", 0)), str(obj.get("created", "")))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        log.warning("ignoring face profile %s: %s", path, exc)
        return None
    if model_version is not None and profile.model_version and profile.model_version != model_version:
        log.warning("ignoring face profile made for head model %s (now %s)", profile.model_version, model_version)
        return None
    return profile


def delete_face_profile() -> bool:
    path = face_profile_path()
    if path.is_file():
        path.unlink()
        return True
    return False
