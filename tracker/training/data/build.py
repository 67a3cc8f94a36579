"""The data pipeline: real images -> MediaPipe -> fits -> labels, and synthetic renders (see the package
docstring for the command)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tracker.training.data import schema
from tracker.training.data.sources import ImageItem

log = logging.getLogger(__name__)


@dataclass
class BuildOptions:
    """out: output folder; data: a ``../shared/data``-like folder or None; images: extra image folders;
    limit: at most this many images per source; synthetic_train / synthetic_val: render counts."""

    out: Path
    data: Path | None
    images: list[Path] = field(default_factory=list)
    limit: int | None = None
    synthetic_train: int = 3000
    synthetic_val: int = 300
    seed: int = 0


def load_landmark_vertex_ids(model) -> np.ndarray:
    """The dense landmark set's vertex ids (``tracker.face.landmark_sets``, 320 landmarks)."""
    from tracker.face import landmark_sets

    lmset = landmark_sets.load_landmark_set("landmarks320")
    return np.asarray(lmset.vertex_ids, np.int64)


def fits_dir(out: Path) -> Path:
    """Where the fits live; the folder name changes with the fit's settings (``pseudo_labels.FIT_VERSION``)."""
    from tracker.training.data.pseudo_labels import FIT_VERSION

    return out / "fits" / FIT_VERSION


def _fits_for(name: str, items: list[ImageItem], mp: dict, model, corr, out: Path):
    from tracker.training.data.pseudo_labels import FitTable, GazeFitter, fit_items, make_fitter

    path = fits_dir(out) / f"{name}.npz"
    wanted = [it.path for it in items if it.path in mp]
    if path.is_file():
        table = FitTable.load(path)
        if list(table.images) == wanted:
            return table
    t0 = time.perf_counter()
    table = fit_items(model, make_fitter(model, corr), items, mp, GazeFitter(model))
    log.info("%s: fitted %d images in %.1f s", name, len(table), time.perf_counter() - t0)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.save(path)
    return table


def build_real(opts: BuildOptions) -> dict[str, Path]:
    """Pseudo-labelled real images -> ``real_train.npz`` and ``real_val.npz`` (when it has samples)."""
    from tracker.face.build import load_head_model
    from tracker.training.data.correspondence import load_correspondence
    from tracker.training.data.mediapipe_run import run_mediapipe
    from tracker.training.data.pseudo_labels import LabelProjector
    from tracker.training.data.sources import all_items, items_folder

    sources: dict[str, list[ImageItem]] = {}
    if opts.data is not None:
        sources.update(all_items(opts.data, opts.out / "frames"))
    for folder in opts.images:
        its = items_folder(folder)
        sources[f"folder_{Path(folder).name}"] = its
    if not sources:
        raise ValueError("no real images: --data has none of 300w-train, ytf-frames, utkface-crops, videos, "
                         "and no --images folder was given")
    model = load_head_model()
    corr = load_correspondence()
    ids = load_landmark_vertex_ids(model)
    projector = LabelProjector(model, ids, corr)
    splits: dict[str, list[dict]] = {"train": [], "val": []}
    stats = {}
    for name, items in sources.items():
        if opts.limit:
            items = items[:opts.limit]
        mp = run_mediapipe([it.path for it in items], opts.out / "mediapipe" / name)
        table = _fits_for(name, items, mp, model, corr, opts.out)
        labels = projector.project(table)
        split_of = {it.path: it.split for it in items}
        sp = np.array([split_of[p] for p in labels["images"]])
        for s in ("train", "val"):
            sel = sp == s
            if sel.any():
                splits[s].append({k: v[sel] for k, v in labels.items()})
        stats[name] = (len(items), len(table), int((sp == "val").sum()))
        log.info("%s: %d images, %d with a face, %d in val", name, *stats[name])
    written = {}
    for s, parts in splits.items():
        if parts:
            written[f"real_{s}"] = schema.write_dataset(opts.out / f"real_{s}.npz", schema.concat(parts))
    return written


def build_all(opts: BuildOptions, only: str | None = None) -> dict[str, Path]:
    written: dict[str, Path] = {}
    if only in (None, "real"):
        written.update(build_real(opts))
    if only in (None, "synthetic"):
        from tracker.training.data.synthetic import build_synthetic

        written.update(build_synthetic(opts))
    return written
