"""Shared test fixtures. Tests read the real data from ``TRACKER_DATA`` or ``../shared/data``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker import paths


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The data folder (``../shared/data`` layout). Fails, never skips, when it is missing."""
    data = paths.data_dir()
    assert data is not None and data.is_dir(), (
        "test data not found: set TRACKER_DATA to a folder laid out like ../shared/data")
    return data


@pytest.fixture(scope="session")
def head_model():
    """The real ICT-FaceKit head model, built into the cache once (TRACKER_CACHE) and loaded."""
    from tracker.face.build import load_head_model  # written by the head-model work (issue 2)

    return load_head_model()
