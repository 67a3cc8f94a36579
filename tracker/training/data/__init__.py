"""Training data for the dense landmark network (numpy / OpenCV / MediaPipe only; no torch).

Build everything (into ``tracker.paths.cache_dir() / "training"`` unless ``--out``)::

    python -m tracker.training.data build [--out DIR] [--data DIR] [--images DIR ...]
                                          [--only real|synthetic] [--limit N] [--synthetic-train N]
                                          [--synthetic-val N]
    python -m tracker.training.data correspondence   # rebuild the committed MediaPipe-to-ICT correspondence

- ``--data``: a folder laid out like ``../shared/data`` (default ``tracker.paths.data_dir()``); the parts it
  has are used (300w-train, ytf-frames, utkface-crops, videos).
- ``--images DIR``: any folder of images (recursively), pseudo-labelled and added to ``real_train``; with
  ``--data none`` only such folders are used.
- ``--limit N``: at most N images per source (a quick run).
Every stage is cached under the output folder and resumes where it stopped: MediaPipe points
(``mediapipe/<source>/``), fits (``fits/<version>/<source>.npz``), video frames (``frames/``), renders (``synthetic/``).

Output (the contract read by the training code): ``<out>/<name>.npz`` for the names in
:func:`dataset_paths`, each with
- ``images`` (M,) str absolute image paths; ``source`` (M,) str;
- ``landmarks_px`` (M, L, 2) float32 in the image's pixels (OpenCV pixel centres), L = the landmark set's size;
- ``weights`` (M, L) float32 in [0, 1] (0 = unknown; lower for guessed or self-occluded points);
- ``roi_points`` (M, 3, 2) float32: subject's right eye, left eye, mouth (``tracker.roi.roi_points_from_ibug68``).
``real_train`` / ``real_val`` are pseudo-labelled real images (``real_val``: the held-out 300-W images with
their ground truth and the held-out videos of ``tracker.splits``); ``synthetic_train`` / ``synthetic_val`` are
renders of the head model with exact labels for every landmark, hidden ones included.

Modules: ``correspondence`` (MediaPipe canonical mesh -> ICT surface), ``sources`` (image lists, splits,
video frames), ``mediapipe_run`` (Face Mesh per image), ``fit`` (weak-perspective shape fit), ``pseudo_labels``
(fits -> landmark labels and weights), ``synthetic`` (renders), ``build`` (the pipeline).
"""

from __future__ import annotations

from pathlib import Path

DATASET_NAMES = ("real_train", "real_val", "synthetic_train", "synthetic_val")


def default_root() -> Path:
    from tracker import paths

    return paths.cache_dir() / "training"


def dataset_paths(root: Path | str | None = None) -> dict[str, Path]:
    """The datasets that exist under ``root`` (default ``cache_dir()/training``): name -> npz path."""
    root = Path(root) if root is not None else default_root()
    return {name: root / f"{name}.npz" for name in DATASET_NAMES if (root / f"{name}.npz").is_file()}
