"""Where the tracker reads and writes files: data, cache and config directories.

Nothing here creates directories or touches the disk at import time.

Environment variables (each overrides the default):
- ``TRACKER_DATA``: a folder laid out like ``../shared/data`` (``ict-facekit/``, ``300w-train/``, ...).
- ``TRACKER_ICT``: the ICT-FaceKit ``FaceXModel`` folder or ``FaceXModel.tar.xz`` archive.
- ``TRACKER_CACHE``: the cache directory (default ``$XDG_CACHE_HOME/face-tracker`` or ``~/.cache/face-tracker``).
- ``TRACKER_CONFIG``: the config directory (default ``$XDG_CONFIG_HOME/face-tracker`` or ``~/.config/face-tracker``).
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "face-tracker"
REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"


def _xdg(var: str, fallback: str) -> Path:
    base = os.environ.get(var)
    return Path(base) if base else Path.home() / fallback


def data_dir() -> Path | None:
    """The data folder from ``TRACKER_DATA``, else ``../shared/data`` beside the repository if present."""
    env = os.environ.get("TRACKER_DATA")
    if env:
        return Path(env).expanduser()
    shared = REPO_ROOT.parent / "shared" / "data"
    return shared if shared.is_dir() else None


def cache_dir() -> Path:
    env = os.environ.get("TRACKER_CACHE")
    return Path(env).expanduser() if env else _xdg("XDG_CACHE_HOME", ".cache") / APP_NAME


def config_dir() -> Path:
    env = os.environ.get("TRACKER_CONFIG")
    return Path(env).expanduser() if env else _xdg("XDG_CONFIG_HOME", ".config") / APP_NAME


def ict_source() -> Path | None:
    """ICT-FaceKit input: ``TRACKER_ICT``, else ``<data_dir>/ict-facekit/FaceXModel.tar.xz`` if present."""
    env = os.environ.get("TRACKER_ICT")
    if env:
        return Path(env).expanduser()
    data = data_dir()
    if data is not None:
        archive = data / "ict-facekit" / "FaceXModel.tar.xz"
        if archive.is_file():
            return archive
    return None
