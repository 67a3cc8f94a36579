"""One labelled set from pseudo-labels and ground truth of the same images: ground truth replaces, per landmark.

``tracker.training.data`` pseudo-labels every real image (all 320 landmarks, from MediaPipe through the fitted
head model) and ``tracker.training.ibug`` labels the 300-W / YouTube Faces images with their 68-point
annotations (the inner points only). Given both files, the trainer sees each annotated image twice, with two
targets for its eyes, nose and lips that disagree (by 4 % of the eye-centre distance on 300-W training images,
8 % on YouTube Faces, whose labels are automatic). This writes one sample per image instead: the base file's
labels, where the override file labels a landmark (weight > 0) its label and weight. Override rows of images the
base file lacks are appended; ``--override-source`` keeps only override rows of the given sources (e.g.
``300w-train``: the hand-made annotations, leaving the automatic YouTube Faces labels out).

Command::

    python -m tracker.training.merge_labels --base OUT/real_train.npz --override runs/data/ibug320_inner.npz \\
        [--override-source 300w-train ...] --out runs/data/real_train_gt.npz
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from tracker.training.data.schema import KEYS, write_dataset
from tracker.training.dataset import LabelledSet

log = logging.getLogger(__name__)


def merge(base: LabelledSet, override: LabelledSet, sources: list[str] | None = None) -> tuple[LabelledSet, dict]:
    """(merged set, counts). Rows are matched on the resolved image path."""
    if base.n_landmarks != override.n_landmarks:
        raise ValueError(f"the files disagree on the number of landmarks: {base.n_landmarks} vs "
                         f"{override.n_landmarks}")
    if sources:
        have = np.unique(override.source).tolist()
        unknown = sorted(set(sources) - set(have))
        if unknown:
            raise ValueError(f"no override rows of source(s) {unknown}; the file has {have}")
        override = override.subset(np.flatnonzero(np.isin(override.source, sources)))
    where = {}
    for i, p in enumerate(base.images):
        where.setdefault(str(Path(p).resolve()), i)
    landmarks, weights = base.landmarks_px.copy(), base.weights.copy()
    extra = []
    replaced = 0
    for j, p in enumerate(override.images):
        i = where.get(str(Path(p).resolve()))
        if i is None:
            extra.append(j)
            continue
        mine = override.weights[j] > 0
        landmarks[i, mine] = override.landmarks_px[j, mine]
        weights[i, mine] = override.weights[j, mine]
        replaced += int(mine.sum())
    merged = LabelledSet(base.images, landmarks, weights, base.roi_points, base.source)
    if extra:
        merged = LabelledSet.concat([merged, override.subset(np.array(extra))])
    counts = {"base": len(base), "override": len(override), "matched": len(override) - len(extra),
              "appended": len(extra), "landmarks_replaced": replaced}
    return merged, counts


def save(data: LabelledSet, path: Path) -> Path:
    """Write ``data`` in the training npz format (validated, atomically)."""
    return write_dataset(Path(path), {k: getattr(data, k) for k in KEYS})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tracker.training.merge_labels", description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True, type=Path, help="labelled set of every image (pseudo-labels)")
    ap.add_argument("--override", required=True, type=Path, help="labelled set whose labels replace the base's")
    ap.add_argument("--override-source", nargs="+", default=None, metavar="SOURCE",
                    help="use only override rows of these sources (default: all)")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        merged, counts = merge(LabelledSet.from_npz(args.base), LabelledSet.from_npz(args.override),
                               args.override_source)
        save(merged, args.out)
    except (OSError, ValueError) as e:
        print(f"error: {e}")
        return 2
    log.info("%s: %d images (%s)", args.out, len(merged), ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
