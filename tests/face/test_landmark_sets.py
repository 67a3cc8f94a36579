"""The frozen landmark sets: counts, regions, symmetry, mirror involution, and the procedure that made them."""

from __future__ import annotations

import collections
import json

import numpy as np
import pytest

from tracker.face.landmark_sets import (load_landmark_set, make_landmarks68, make_landmarks320,
                                        outer_skin_mask, write_landmark_set)

# budgets of tracker/face/landmark_sets.py's docstring
REGION_COUNTS = {"jaw": 25, "eyebrow": 16, "nose": 25, "eyelid": 32, "iris": 16, "pupil": 10,
                 "lips_outer": 24, "lips_inner": 20, "face": 86, "ear": 20, "scalp": 36, "neck": 10}
# the standard iBUG 68 horizontal-flip permutation
IBUG_FLIP = ([16 - i for i in range(17)] + [26 - i for i in range(10)] + [27, 28, 29, 30]
             + [35, 34, 33, 32, 31] + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
             + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])


@pytest.mark.parametrize("name,count", [("landmarks320", 320), ("landmarks68", 68)])
def test_sets_are_symmetric(head_model, name, count):
    lms = load_landmark_set(name)
    assert lms.name == name and len(lms) == count
    assert len(set(lms.vertex_ids.tolist())) == count and len(set(lms.names)) == count
    assert lms.vertex_ids.max() < head_model.n_vertices
    mirror = lms.mirror
    np.testing.assert_array_equal(mirror[mirror], np.arange(count))  # an involution
    pts = head_model.neutral_cm[lms.vertex_ids].astype(np.float64)
    np.testing.assert_allclose(pts[mirror] * [-1.0, 1.0, 1.0], pts, atol=0.05)  # cm
    midline = mirror == np.arange(count)
    assert np.abs(pts[midline, 0]).max() < 1e-3
    assert all(lms.regions[i] == lms.regions[mirror[i]] for i in range(count))


def test_320_regions_and_names():
    lms = load_landmark_set("landmarks320")
    assert collections.Counter(lms.regions) == REGION_COUNTS
    swap = {"L": "R", "R": "L"}
    sided = 0
    for i, n in enumerate(lms.names):  # a name with a side token L/R mirrors the same name on the other side
        tokens = n.split("_")
        if "L" in tokens or "R" in tokens:
            sided += 1
            assert lms.names[lms.mirror[i]] == "_".join(swap.get(t, t) for t in tokens)
    assert sided > 200


def test_320_landmarks_lie_where_named(head_model):
    m = head_model
    lms = load_landmark_set("landmarks320")
    v = m.neutral_cm[lms.vertex_ids]
    regions = np.array(lms.regions)
    part = np.array(m.part_names)[m.vertex_part[lms.vertex_ids]]
    assert set(part[np.isin(regions, ["iris", "pupil"])]) == {"IrisLeft", "IrisRight"}
    assert set(part[~np.isin(regions, ["iris", "pupil"])]) <= {"Face", "BackHead"}
    # ... and on the outer surface, never inside the mouth or eye sockets (BackHead's interior pieces)
    outer = outer_skin_mask(m)
    assert outer.sum() == 9409 + 1839  # ICT's face area and its head-and-neck piece
    assert outer[lms.vertex_ids[~np.isin(regions, ["iris", "pupil"])]].all()
    # the face is denser than the scalp: mean nearest-neighbour spacing
    def spacing(sel):
        p = v[sel]
        d = np.linalg.norm(p[:, None] - p[None], axis=2) + np.eye(len(p)) * 1e9
        return d.min(axis=1).mean()
    assert spacing(regions == "face") < 0.7 * spacing(regions == "scalp")
    # the eye landmarks of each side are near that side's eye joint
    for side, k in (("_L", 2), ("_R", 3)):
        sel = np.array([n.startswith(("iris" + side, "pupil" + side)) for n in lms.names])
        assert sel.sum() == 13
        assert np.linalg.norm(v[sel] - m.joints_neutral_cm[k], axis=1).max() < 1.7


def test_68_is_ibug(head_model):
    lms = load_landmark_set("landmarks68")
    np.testing.assert_array_equal(lms.vertex_ids, head_model.ibug68_vertex_ids)
    assert lms.mirror.tolist() == IBUG_FLIP


def test_procedure_reproduces_the_frozen_files(head_model):
    """The order is frozen (networks are trained on it): the documented procedure must still make it."""
    for made in (make_landmarks320(head_model), make_landmarks68(head_model)):
        frozen = load_landmark_set(made.name)
        np.testing.assert_array_equal(made.vertex_ids, frozen.vertex_ids)
        assert made.names == frozen.names and made.regions == frozen.regions
        np.testing.assert_array_equal(made.mirror, frozen.mirror)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="landmark set 'nope' not found.*available: .*landmarks320"):
        load_landmark_set("nope")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match=r"bad\.json: corrupt JSON"):
        load_landmark_set("bad", tmp_path)
    good = load_landmark_set("landmarks68")
    path = write_landmark_set(good, tmp_path)
    data = json.loads(path.read_text())
    data["mirror"][0] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="mirror must be an involution"):
        load_landmark_set("landmarks68", tmp_path)
    data["mirror"] = data["mirror"][:10]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="mirror has 10 entries, vertex_ids 68"):
        load_landmark_set("landmarks68", tmp_path)
