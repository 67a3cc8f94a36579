"""The pseudo-label convention map (tracker.training.convention): learnt where ground truth exists, applied
where it does not, on sets whose true convention difference is known."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.landmarks.label_translation import from_frame, to_frame
from tracker.training.convention import apply_map, fit_map, frame_roi, main
from tracker.training.dataset import LabelledSet

L = 12
TARGETS = np.array([2, 5, 7])
#: The annotators' convention: targets moved by a fixed offset plus a share of how far landmark 0 moved
#: (in the ROI frame), i.e. a difference that changes with the face's shape, as the lips' does with the mouth.
OFFSET = np.array([[0.04, -0.03], [-0.05, 0.02], [0.0, 0.06]])
GAIN = 0.5
#: The mean face (normalised frame units), the same for every set.
TEMPLATE = np.random.default_rng(100).uniform(-0.6, 0.6, (L, 2))


def _faces(n: int, seed: int, prefix: str) -> tuple[LabelledSet, LabelledSet]:
    """n faces: (pseudo-labels, ground truth on TARGETS only) in pixels, each face at its own place, scale, roll."""
    rng = np.random.default_rng(seed)
    template = TEMPLATE
    roi_template = np.array([[-0.35, -0.2], [0.35, -0.2], [0.0, 0.45]])
    pseudo, truth, rois = [], [], []
    for _ in range(n):
        shape = template + rng.normal(0, 0.04, (L, 2))
        conv = shape.copy()
        conv[TARGETS] += OFFSET + GAIN * (shape[0] - template[0])
        a = rng.uniform(-0.4, 0.4)
        s = rng.uniform(60, 140)
        rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        t = rng.uniform(150, 350, 2)
        to_px = lambda p: p @ rot.T + t  # noqa: E731
        pseudo.append(to_px(shape))
        truth.append(to_px(conv))
        rois.append(to_px(roi_template))
    images = np.array([f"/faces/{prefix}{k:04d}.jpg" for k in range(n)])
    rois = np.array(rois, np.float32)
    w_gt = np.zeros((n, L), np.float32)
    w_gt[:, TARGETS] = 1.0
    return (LabelledSet(images, np.array(pseudo, np.float32), np.ones((n, L), np.float32), rois,
                        np.full(n, "pseudo")),
            LabelledSet(images, np.array(truth, np.float32), w_gt, rois, np.full(n, "300w-train")))


def test_frame_coordinates_round_trip():
    pseudo, _ = _faces(3, 0, "a")
    for k in range(3):
        roi = frame_roi(pseudo.roi_points[k])
        n = to_frame(pseudo.landmarks_px[k], roi)
        assert np.abs(n).max() < 3.0
        np.testing.assert_allclose(from_frame(n, roi), pseudo.landmarks_px[k], atol=1e-3)


def test_map_learns_the_convention_and_moves_only_rows_without_ground_truth():
    pseudo, gt = _faces(160, 1, "gt")
    held = np.zeros(len(pseudo), bool)
    held[120:] = True
    cmap = fit_map(pseudo, gt, held_out=held)
    np.testing.assert_array_equal(cmap.targets, TARGETS)
    st = cmap.stats
    assert st["images_fitted"] == 120 and st["held_out_images"] == 40 and st["landmarks"] == 3
    # Before: the convention difference (offsets of 4-7 % of the frame, i.e. about 8 % of the eye distance);
    # after, on faces the fit never saw: what is left is only float32 rounding.
    assert st["held_out_error_before"] > 5.0
    assert st["held_out_error_after"] < 0.05 * st["held_out_error_before"]

    others, others_truth = _faces(50, 2, "other")
    base = LabelledSet.concat([pseudo, others])
    out, changed = apply_map(base, cmap, skip=gt)
    assert changed == len(others)
    # Rows with ground truth are left for merge_labels, untouched.
    np.testing.assert_array_equal(out.landmarks_px[:len(pseudo)], pseudo.landmarks_px)
    moved = out.landmarks_px[len(pseudo):]
    keep = np.setdiff1d(np.arange(L), TARGETS)
    np.testing.assert_array_equal(moved[:, keep], others.landmarks_px[:, keep])
    np.testing.assert_array_equal(out.weights, base.weights)
    np.testing.assert_array_equal(out.roi_points, base.roi_points)
    err_before = np.linalg.norm(others.landmarks_px[:, TARGETS] - others_truth.landmarks_px[:, TARGETS], axis=2)
    err_after = np.linalg.norm(moved[:, TARGETS] - others_truth.landmarks_px[:, TARGETS], axis=2)
    assert err_before.mean() > 3.0  # pixels
    assert err_after.mean() < 0.05 * err_before.mean()


def test_bad_inputs_are_refused_with_a_reason():
    pseudo, gt = _faces(20, 3, "x")
    other, _ = _faces(20, 4, "y")
    with pytest.raises(ValueError, match="no image is labelled by both"):
        fit_map(other, gt)
    with pytest.raises(ValueError, match="at least 5"):
        fit_map(pseudo, gt, held_out=np.arange(20) > 2)
    wrong = LabelledSet(gt.images, gt.landmarks_px[:, :5], gt.weights[:, :5], gt.roi_points, gt.source)
    with pytest.raises(ValueError, match="number of landmarks"):
        fit_map(pseudo, wrong)
    cmap = fit_map(pseudo, gt)
    narrow = LabelledSet(other.images, other.landmarks_px[:, :5], other.weights[:, :5], other.roi_points,
                         other.source)
    with pytest.raises(ValueError, match="the map is for 12 landmarks"):
        apply_map(narrow, cmap)


def test_command_reports_a_missing_file(tmp_path, capsys):
    rc = main(["--base", str(tmp_path / "none.npz"), "--gt", str(tmp_path / "gt.npz"), "--out",
               str(tmp_path / "out.npz"), "--data", str(tmp_path)])
    assert rc == 2
    assert "none.npz" in capsys.readouterr().err
    assert not (tmp_path / "out.npz").exists()
