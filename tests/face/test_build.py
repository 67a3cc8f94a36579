"""The ICT-FaceKit converter: a tiny OBJ set written by the test, its errors, the cache, and the real data."""

from __future__ import annotations

import logging
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from tests.face.conftest import TINY_EXPRESSIONS, make_archive
from tracker.face import build
from tracker.face.build import (ModelSourceError, build_head_model, cache_path, load_cached_head_model,
                                load_head_model)
from tracker.face.obj_io import parse_obj_vertices


def test_tiny_folder_build(tiny_ict):
    folder, src = tiny_ict
    model = build_head_model(folder)
    v = src["vertices"]
    np.testing.assert_allclose(model.neutral_cm, v, atol=1e-5)
    assert model.n_identity == 3 and model.n_expression == 2
    for k, d in enumerate(src["identity"]):
        np.testing.assert_allclose(model.identity_basis_cm[k], d, atol=2e-5)
    for j, d in enumerate(src["expression"]):
        np.testing.assert_allclose(model.expression_basis_cm[j], d, atol=2e-5)
    assert model.expression_names == tuple(TINY_EXPRESSIONS)
    # quads split in two, triangles kept
    polys = [p for g in src["groups"].values() for p in g]
    assert model.faces.shape == (sum(len(p) - 2 for p in polys), 3)
    assert model.faces.dtype == np.int32 and model.neutral_cm.dtype == np.float32
    assert model.part_names == ("Face", "BackHead", "ScleraLeft", "IrisLeft", "ScleraRight", "IrisRight")
    # every triangle's corners are the polygon's vertices, and part labels follow the material groups
    sclera_l = {i for p in src["groups"]["M_ScleraLeft"] for i in p}
    assert {int(i) for i in np.flatnonzero(model.vertex_part == 2)} == sclera_l - {
        i for p in src["groups"]["M_Face"] + src["groups"]["M_BackHead"] for i in p}
    # the rig: eye joints at the eyeball centres, identity-linear
    np.testing.assert_allclose(model.joints_neutral_cm[2], [3.0, 3.5, 6.0], atol=1e-4)
    np.testing.assert_allclose(model.joints_neutral_cm[3], [-3.0, 3.5, 6.0], atol=1e-4)
    np.testing.assert_allclose(model.eye_radius_cm, [1.2, 1.2], atol=1e-4)
    # identity mode k scales by 0.02 (k+1) about the origin and shifts: the eye centre follows exactly
    for k in range(3):
        expect = 0.02 * (k + 1) * np.array([3.0, 3.5, 6.0]) + np.array([0.1 * k, -0.05, 0.03])
        np.testing.assert_allclose(model.joints_identity_basis_cm[k, 2], expect, atol=1e-4)
    np.testing.assert_allclose(model.skin_weights.sum(axis=1), 1.0, atol=1e-6)


def test_tiny_archive_equals_folder(tiny_ict, tmp_path):
    folder, _ = tiny_ict
    archive = make_archive(folder, tmp_path / "FaceXModel.tar.xz")
    a, b = build_head_model(folder), build_head_model(archive)
    for field in ("neutral_cm", "identity_basis_cm", "expression_basis_cm", "faces", "vertex_part",
                  "skin_weights", "joints_neutral_cm", "joints_identity_basis_cm"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    # a folder holding FaceXModel/ works too
    np.testing.assert_array_equal(build_head_model(folder.parent).neutral_cm, a.neutral_cm)


def test_cache_round_trip(tiny_ict, tmp_path):
    folder, _ = tiny_ict
    cache = tmp_path / "cache"
    built = load_head_model(folder, cache_dir=cache)
    path = cache_path(cache)
    assert path.is_file()
    with np.load(path, allow_pickle=False) as z:  # no pickled objects in the cache
        assert z["identity_basis_cm"].dtype == np.float32
    loaded = load_head_model(Path("/nonexistent/source"), cache_dir=cache)  # no build: the source is unused
    for field in ("neutral_cm", "identity_basis_cm", "expression_basis_cm", "faces", "skin_weights",
                  "joints_identity_basis_cm", "eye_radius_cm", "ibug68_vertex_ids"):
        np.testing.assert_array_equal(getattr(loaded, field), getattr(built, field))
    assert loaded.expression_names == built.expression_names and loaded.part_names == built.part_names
    assert loaded.version == build.MODEL_VERSION


def test_corrupt_cache_is_rebuilt(tiny_ict, tmp_path, caplog):
    folder, _ = tiny_ict
    cache = tmp_path / "cache"
    path = cache_path(cache)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="unreadable head-model cache"):
        load_cached_head_model(path)
    with caplog.at_level(logging.WARNING):
        model = load_head_model(folder, cache_dir=cache)
    assert "rebuilding the head model" in caplog.text and model.n_identity == 3
    assert load_cached_head_model(path).n_identity == 3


def _replace_line(path: Path, old_prefix: str, new: str) -> None:
    lines = path.read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(old_prefix))
    lines[i] = new
    path.write_text("\n".join(lines) + "\n")


def test_corrupt_vertex_line_names_the_file(tiny_ict):
    folder, _ = tiny_ict
    _replace_line(folder / "identity001.obj", "v ", "v 1.0 abc 2.0")
    with pytest.raises(ValueError, match=r"identity001\.obj: unreadable vertex coordinates"):
        build_head_model(folder)


def test_truncated_file_names_the_file(tiny_ict):
    folder, src = tiny_ict
    text = (folder / "jawOpen.obj").read_text().splitlines()
    keep = [line for line in text if not line.startswith("v ")][:2] + [
        line for line in text if line.startswith("v ")][:50]
    (folder / "jawOpen.obj").write_text("\n".join(keep) + "\n")
    n = src["vertices"].shape[0]
    with pytest.raises(ValueError, match=rf"jawOpen\.obj: has 50 vertices, expected {n}"):
        build_head_model(folder)


def test_missing_files_are_named(tiny_ict):
    folder, _ = tiny_ict
    (folder / "identity001.obj").unlink()
    with pytest.raises(FileNotFoundError, match=r"identity001\.obj is missing"):
        build_head_model(folder)
    (folder / "identity002.obj").unlink()  # now identity000 alone: a valid one-mode model
    assert build_head_model(folder).n_identity == 1
    (folder / "eyeBlink_L.obj").unlink()
    with pytest.raises(FileNotFoundError, match=r"eyeBlink_L\.obj is missing"):
        build_head_model(folder)
    (folder / "generic_neutral_mesh.obj").unlink()
    with pytest.raises(FileNotFoundError, match=r"generic_neutral_mesh\.obj is missing"):
        build_head_model(folder)
    with pytest.raises(FileNotFoundError, match="ICT-FaceKit source not found: .*nowhere"):
        build_head_model(folder / "nowhere")


def test_bad_json_and_names(tiny_ict):
    folder, _ = tiny_ict
    (folder / "vertex_indices.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"vertex_indices\.json: corrupt JSON"):
        build_head_model(folder)
    (folder / "vertex_indices.json").write_text('{"expressions": ["eyeBlink_L", "smile"], '
                                                '"idx_to_landmark_verts": ' + str(list(range(68))) + "}")
    with pytest.raises(ValueError, match=r"vertex_indices\.json: unknown expression names \['smile'\]"):
        build_head_model(folder)


def test_corrupt_archive(tmp_path):
    bad = tmp_path / "FaceXModel.tar.xz"
    bad.write_bytes(b"\xfd7zXZ\x00garbage" * 10)
    with pytest.raises(ValueError, match="FaceXModel.tar.xz: not a readable tar or zip archive"):
        build_head_model(bad)


def test_no_source_says_how_to_give_one(tmp_path, monkeypatch):
    monkeypatch.delenv("TRACKER_ICT", raising=False)
    monkeypatch.setenv("TRACKER_DATA", str(tmp_path / "empty"))
    with pytest.raises(ModelSourceError, match="--ict PATH.*TRACKER_ICT"):
        load_head_model(cache_dir=tmp_path / "cache", download=False)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(build.urllib.request, "urlopen", offline)
    with pytest.raises(ModelSourceError, match="download from https://github.com/USC-ICT.*failed.*TRACKER_ICT"):
        load_head_model(cache_dir=tmp_path / "cache")


def test_obj_vertex_parser_fallback_for_scattered_vertex_lines():
    data = b"# x\nv 1 2 3\nvt 0 0\nv 4 5 6\nf 1 2 1\nv 7 8 9\n"
    np.testing.assert_array_equal(parse_obj_vertices(data, "a.obj"), [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    with pytest.raises(ValueError, match=r"b\.obj: expected 3 coordinates on each of 2 'v' lines"):
        parse_obj_vertices(b"v 1 2 3\nv 4 5\n", "b.obj")
    with pytest.raises(ValueError, match=r"c\.obj: no vertices"):
        parse_obj_vertices(b"# nothing\n", "c.obj")


# ----------------------------------------------------------------------------------------------- real data

@pytest.fixture(scope="session")
def real_build(shared_data, tmp_path_factory):
    """One real build per test session, from the shared archive into a temporary cache."""
    cache = tmp_path_factory.mktemp("head_model_cache")
    t0 = time.perf_counter()
    model = load_head_model(shared_data / "ict-facekit" / "FaceXModel.tar.xz", cache_dir=cache, rebuild=True)
    return model, cache, time.perf_counter() - t0


def test_real_build_contents(real_build, shared_data):
    model, _, seconds = real_build
    assert model.n_vertices == 26719 and model.n_identity == 100 and model.n_expression == 53
    assert model.expression_names[0] == "browDown_L" and model.expression_names[-1] == "noseSneer_R"
    assert "tongueOut" not in model.expression_names
    assert model.faces.shape == (25836 * 2 + 548, 3)  # 25,836 quads and 548 triangles in the neutral OBJ
    assert len(model.part_names) == 12 and model.part_names[:2] == ("Face", "BackHead")
    assert model.ibug68_vertex_ids.shape == (68,)
    # identity000.obj = neutral + identity_basis[0]
    import tarfile

    with tarfile.open(shared_data / "ict-facekit" / "FaceXModel.tar.xz") as t:
        member = next(m for m in t if m.name.endswith("identity000.obj"))
        v = parse_obj_vertices(t.extractfile(member).read(), "identity000.obj")
    np.testing.assert_allclose(model.neutral_cm + model.identity_basis_cm[0], v, atol=1e-4)
    assert seconds < 120.0


def test_real_cache_loads_fast(real_build, head_model):
    model, cache, _ = real_build
    t0 = time.perf_counter()
    loaded = load_head_model(cache_dir=cache)
    seconds = time.perf_counter() - t0
    assert seconds < 1.0, f"cache load took {seconds:.2f} s"
    np.testing.assert_array_equal(loaded.identity_basis_cm, model.identity_basis_cm)
    # the shared fixture's model (the user cache) is the same model
    np.testing.assert_array_equal(head_model.neutral_cm, model.neutral_cm)
    np.testing.assert_array_equal(head_model.skin_weights, model.skin_weights)


def test_zip_of_a_repository_reads_the_model_folder(tiny_ict, tmp_path):
    """The download is a zip of the whole ICT-FaceKit repository: files elsewhere with the same names are
    ignored."""
    import zipfile

    folder, src = tiny_ict
    archive = tmp_path / "ICT-FaceKit-master.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ICT-FaceKit-master/Other/identity000.obj", "v 1 2 3\n")
        for f in sorted(folder.iterdir()):
            z.write(f, f"ICT-FaceKit-master/FaceXModel/{f.name}")
        z.writestr("ICT-FaceKit-master/Zzz/jawOpen.obj", "garbage")
    model = build_head_model(archive)
    np.testing.assert_allclose(model.identity_basis_cm[0], src["identity"][0], atol=2e-5)
    np.testing.assert_allclose(model.expression_basis_cm[1], src["expression"][1], atol=2e-5)
