"""Pack a training run's data into a few compact files for another machine (a lent GPU), and load them there.

Command::

    python -m tracker.training.pack --out runs/pack --data a.npz b.npz --val v.npz [--input-size 160]
                                    [--quality 90] [--part-mb 45]

The training and validation sets are made as :func:`tracker.training.train.train` makes them (held-out images
moved to validation). Every distinct (image, ROI) is cut and shrunk as the image cache does
(:func:`tracker.training.dataset._cut_and_shrink`) but with less headroom (the zoom-1 crop grown by
``--grow``, at ``--px`` pixels per zoom-1 crop pixel), and stored once, as JPEG, in ``images_NN.npz`` files of
at most ``--part-mb`` MB each, so each file fits through a size-limited copy. ``labels.npz`` holds the labels
in the cut images' pixels, each distinct row once (landmarks to 1/32 px, weights as float16).
``python -m tracker.training.train --pack DIR`` trains on such a folder and reads nothing else: no image
files, no data folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from tracker.training.dataset import ImageCache, LabelledSet, _cut_and_shrink

log = logging.getLogger(__name__)

PACK_VERSION = 1
#: Pixels per zoom-1 crop pixel and growth of the cut region: less than the image cache keeps
#: (``CACHE_PX_PER_CROP_PX`` 1.6, ``CACHE_REGION_GROW`` 1.6), enough for a crop zoom >= 1 and the narrow ROI jitter.
PACK_PX_PER_CROP_PX = 1.25
PACK_REGION_GROW = 1.3
#: landmarks are stored as int16 in 1/32 cut-image pixels (range +-1024 px)
_LM_SCALE = 32.0


def _entry_key(path: str, roi: np.ndarray) -> bytes:
    return hashlib.sha1(path.encode() + np.ascontiguousarray(roi, np.float32).tobytes()).digest()


def pack(sets: dict[str, LabelledSet], input_size: int, out: Path, quality: int = 90, part_mb: float = 45.0,
         px: float = PACK_PX_PER_CROP_PX, grow: float = PACK_REGION_GROW) -> list[Path]:
    """Write ``labels.npz`` and ``images_NN.npz`` into ``out``; returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("images_*.npz")) + list(out.glob("labels.npz")):
        old.unlink()
    t0 = time.time()
    keys: dict[bytes, int] = {}
    first_row: list[tuple[str, int]] = []  # entry -> (set, row) that made it
    row_entry = {}
    for name, data in sets.items():
        ent = np.empty(len(data), np.int64)
        for i in range(len(data)):
            k = _entry_key(str(data.images[i]), data.roi_points[i])
            if k not in keys:
                keys[k] = len(first_row)
                first_row.append((name, i))
            ent[i] = keys[k]
        row_entry[name] = ent
    n = len(first_row)
    scale = np.ones((n, 2), np.float64)
    offset = np.zeros((n, 2), np.float64)
    shapes = np.zeros((n, 2), np.int64)
    parts: list[list[bytes]] = [[]]
    part_of = np.zeros(n, np.int64)
    index_in_part = np.zeros(n, np.int64)
    part_bytes = 0
    limit = part_mb * 1e6
    order = sorted(range(n), key=lambda e: str(sets[first_row[e][0]].images[first_row[e][1]]))
    decoded_path, decoded = None, None
    for count, e in enumerate(order):
        name, i = first_row[e]
        data = sets[name]
        path = str(data.images[i])
        if path != decoded_path:
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            decoded_path, decoded = path, img
        if decoded is None:
            raise FileNotFoundError(f"cannot read training image {path}")
        cut, sc, off = _cut_and_shrink(decoded, data.roi_points[i], input_size, px, grow)
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(cut), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise ValueError(f"cannot encode {path}")
        b = buf.tobytes()
        if part_bytes + len(b) > limit and parts[-1]:
            parts.append([])
            part_bytes = 0
        part_of[e], index_in_part[e] = len(parts) - 1, len(parts[-1])
        parts[-1].append(b)
        part_bytes += len(b)
        scale[e], offset[e], shapes[e] = sc, off, cut.shape[:2]
        if count % 2000 == 1999:
            log.info("pack: %d / %d images cut and encoded", count + 1, n)
    written = []
    for p, blobs in enumerate(parts):
        lengths = np.array([len(b) for b in blobs], np.int64)
        path = out / f"images_{p:02d}.npz"
        np.savez(path, blob=np.frombuffer(b"".join(blobs), np.uint8), lengths=lengths)
        written.append(path)
    # label rows, each distinct row once (a file that repeats images to weight them up repeats whole rows)
    u_keys: dict[bytes, int] = {}
    u_rows: list[tuple[str, int]] = []
    labels: dict[str, np.ndarray] = {}
    for name, data in sets.items():
        rows = np.empty(len(data), np.int64)
        for i in range(len(data)):
            k = hashlib.sha1(row_entry[name][i].tobytes() + data.landmarks_px[i].tobytes()
                             + data.weights[i].tobytes() + str(data.source[i]).encode()).digest()
            if k not in u_keys:
                u_keys[k] = len(u_rows)
                u_rows.append((name, i))
            rows[i] = u_keys[k]
        labels[f"{name}_rows"] = rows
    e = np.array([row_entry[name][i] for name, i in u_rows], np.int64)
    lm = np.stack([sets[name].landmarks_px[i] for name, i in u_rows]).astype(np.float64)
    lm = lm * scale[e][:, None, :] + offset[e][:, None, :]
    q = np.round(lm * _LM_SCALE)
    if np.abs(q).max(initial=0) > 32767:
        raise ValueError("a landmark lies more than 1024 px outside its cut image; cannot pack it")
    roi = np.stack([sets[name].roi_points[i] for name, i in u_rows]).astype(np.float64)
    labels.update(
        row_images=np.array([str(sets[name].images[i]) for name, i in u_rows]),
        row_source=np.array([str(sets[name].source[i]) for name, i in u_rows]),
        row_landmarks=q.astype(np.int16),
        row_weights=np.stack([sets[name].weights[i] for name, i in u_rows]).astype(np.float16),
        row_roi_points=(roi * scale[e][:, None, :] + offset[e][:, None, :]).astype(np.float32),
        row_entry=e)
    meta = {"version": PACK_VERSION, "input_size": int(input_size), "px_per_crop_px": px, "grow": grow,
            "quality": int(quality), "parts": len(parts), "entries": n, "sets": list(sets)}
    labels.update(entry_part=part_of, entry_index=index_in_part, entry_shape=shapes, meta=np.array(json.dumps(meta)))
    np.savez_compressed(out / "labels.npz", **labels)
    written.insert(0, out / "labels.npz")
    total = sum(p.stat().st_size for p in written)
    log.info("pack: %d images, %d distinct label rows (%s rows) in %d image files, %.1f MB in all, %.0f s", n,
             len(u_rows), " + ".join(f"{len(s)} {k}" for k, s in sets.items()), len(parts), total / 1e6,
             time.time() - t0)
    return written


def load_pack(folder: Path, threads: int = 8) -> tuple[dict[str, LabelledSet], dict[str, ImageCache], dict]:
    """(labelled sets, their image caches, meta) from a folder that :func:`pack` wrote. The sets' landmarks and
    ROI points are in the cut images' pixels, so the caches map image pixels to themselves."""
    folder = Path(folder)
    lab_path = folder / "labels.npz"
    if not lab_path.is_file():
        raise FileNotFoundError(f"no packed data at {folder} (labels.npz missing)")
    with np.load(lab_path) as z:
        lab = {k: z[k] for k in z.files}
    meta = json.loads(str(lab["meta"]))
    if meta.get("version") != PACK_VERSION:
        raise ValueError(f"{folder} is a pack of version {meta.get('version')}, expected {PACK_VERSION}")
    blobs = []
    for p in range(meta["parts"]):
        path = folder / f"images_{p:02d}.npz"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the pack has {meta['parts']} image files")
        with np.load(path) as z:
            blob, lengths = z["blob"], z["lengths"]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        blobs.append((blob, starts, lengths))
    shapes = lab["entry_shape"]
    sizes = shapes[:, 0] * shapes[:, 1] * 3
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    image_blob = np.empty(int(sizes.sum()), np.uint8)

    def decode(e: int) -> None:
        blob, st, ln = blobs[lab["entry_part"][e]]
        j = lab["entry_index"][e]
        img = cv2.imdecode(blob[st[j]:st[j] + ln[j]], cv2.IMREAD_COLOR)
        if img is None or img.shape[:2] != tuple(shapes[e]):
            raise ValueError(f"packed image {e} is damaged")
        image_blob[starts[e]:starts[e] + sizes[e]] = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).reshape(-1)

    t0 = time.time()
    with ThreadPoolExecutor(max(1, threads)) as ex:
        list(ex.map(decode, range(len(shapes))))
    log.info("unpacked %d images (%.0f MB) in %.1f s", len(shapes), image_blob.size / 1e6, time.time() - t0)
    sets, caches = {}, {}
    lm_all = lab["row_landmarks"].astype(np.float32) / _LM_SCALE
    w_all = lab["row_weights"].astype(np.float32)
    for name in meta["sets"]:
        r = lab[f"{name}_rows"]
        e = lab["row_entry"][r]
        m = len(r)
        sets[name] = LabelledSet(lab["row_images"][r], lm_all[r], w_all[r], lab["row_roi_points"][r],
                                 lab["row_source"][r])
        caches[name] = ImageCache(image_blob, starts[e], shapes[e], np.ones((m, 2)), np.zeros((m, 2)))
    return sets, caches, meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tracker.training.pack", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for labels.npz and images_NN.npz")
    ap.add_argument("--data", type=Path, nargs="+", required=True, help="training npz files")
    ap.add_argument("--val", type=Path, nargs="*", default=[], help="validation npz files")
    ap.add_argument("--input-size", type=int, default=160)
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    ap.add_argument("--part-mb", type=float, default=45.0, help="at most this many MB per image file")
    ap.add_argument("--px", type=float, default=PACK_PX_PER_CROP_PX, help="pixels per zoom-1 crop pixel")
    ap.add_argument("--grow", type=float, default=PACK_REGION_GROW, help="growth of the cut about the crop")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for f in a.data + a.val:
        if not f.is_file():
            print(f"error: no such file: {f}", file=sys.stderr)
            return 2
    if not (1 <= a.quality <= 100 and a.part_mb > 0 and a.px > 0 and a.grow >= 1):
        print("error: --quality must be in 1..100, --part-mb and --px positive, --grow at least 1", file=sys.stderr)
        return 2
    from tracker.training.train import load_sets, split_train_val

    try:
        train, val = split_train_val(load_sets(a.data), load_sets(a.val) if a.val else None)
        files = pack({"train": train, "val": val}, a.input_size, a.out, a.quality, a.part_mb, a.px, a.grow)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for f in files:
        print(f"{f}: {f.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
