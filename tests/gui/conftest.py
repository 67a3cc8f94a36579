"""GUI test fixtures: a real window under Xvfb (pytest-xvfb), settings in a temporary folder."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _temporary_settings(tmp_path, monkeypatch):
    """QSettings write INI files under the test's temporary folder, never the user's settings."""
    from tracker.gui.settings import use_settings_dir

    assert os.environ.get("QT_QPA_PLATFORM", "") != "offscreen", (
        "the GUI tests need a real X display (pytest-xvfb), not QT_QPA_PLATFORM=offscreen: "
        "the offscreen platform has no OpenGL for the 3D views")
    use_settings_dir(tmp_path / "settings")
    yield


@pytest.fixture(scope="session")
def clip(shared_data):
    """A short real talking-head clip (78 frames, 512x512, 25 fps)."""
    path = shared_data / "videos" / "lp_d0.mp4"
    assert path.is_file(), f"missing test clip {path}"
    return path
