"""``python -m tracker.training.data build`` on a folder of images, and its errors."""

from __future__ import annotations

import shutil

import cv2
import numpy as np

from tracker.training.data import dataset_paths, schema
from tracker.training.data.__main__ import main
from tracker.training.data.sources import items_300w


def test_build_from_a_folder_of_images(shared_data, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for it in items_300w(shared_data)[:2]:
        shutil.copy(it.path, folder)
    cv2.imwrite(str(folder / "blank.png"), np.full((120, 160, 3), 90, np.uint8))  # no face: skipped
    out = tmp_path / "out"
    assert main(["build", "--data", "none", "--images", str(folder), "--only", "real", "--out", str(out)]) == 0
    paths = dataset_paths(out)
    assert set(paths) == {"real_train"}
    d = schema.load_dataset(paths["real_train"])
    assert len(d["images"]) == 2 and d["landmarks_px"].shape == (2, 320, 2)
    assert all(str(p).startswith(str(folder)) for p in d["images"])
    assert set(d["source"]) == {"imgs"}
    assert 0.0 < d["weights"].min() and d["weights"].max() == 1.0
    assert "real_train:" in capsys.readouterr().out
    # the cached stages are reused
    assert main(["build", "--data", "none", "--images", str(folder), "--only", "real", "--out", str(out)]) == 0


def test_build_errors(tmp_path, capsys):
    assert main(["build", "--data", "none", "--only", "real", "--out", str(tmp_path)]) == 2
    assert "no real images" in capsys.readouterr().err
    assert main(["build", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "data folder not found" in capsys.readouterr().err
    assert main(["build", "--images", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "image folder not found" in capsys.readouterr().err
    assert main(["build", "--data", "none", "--only", "synthetic", "--out", str(tmp_path)]) == 2
    assert "build the real data first" in capsys.readouterr().err
    assert dataset_paths(tmp_path) == {}
