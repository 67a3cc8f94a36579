"""Image lists of the real training sources, with their split (tracker/splits.py) and any 68-point labels.

A source is a list of :class:`ImageItem`. Video frames are extracted as JPEGs into ``<out>/frames/``.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracker.splits import is_held_out_300w, is_held_out_video

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: Every k-th video frame is used.
VIDEO_FRAME_STEP = 3
#: 300-W annotations are 1-based (Matlab convention): subtracting 1 gives OpenCV pixel centres. Checked against
#: MediaPipe on the 2,012 images (eye corners, mouth corners, lip centres: median offset 1.0-1.2 px in x and y).
GT300W_OFFSET_PX = -1.0


@dataclass(frozen=True)
class ImageItem:
    """path: absolute image path; source: its source tag; split: "train" or "val";
    gt68: (68, 2) ground truth in pixels or None; gt_exact: True for manual (300-W) labels."""

    path: str
    source: str
    split: str
    gt68: np.ndarray | None = None
    gt_exact: bool = False


def _read_csv68(csv_path: Path) -> dict[str, np.ndarray]:
    out = {}
    with open(csv_path, newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        for row in reader:
            out[row[0]] = np.asarray(row[1:137], np.float64).reshape(68, 2)
    return out


def items_300w(data: Path) -> list[ImageItem]:
    gt = _read_csv68(data / "300w-train" / "landmarks68.csv")
    return [ImageItem(str((data / "300w-train" / "images" / f).resolve()), "300w",
                      "val" if is_held_out_300w(f) else "train", p + GT300W_OFFSET_PX, True) for f, p in sorted(gt.items())]


def items_ytf(data: Path) -> list[ImageItem]:
    gt = _read_csv68(data / "ytf-frames" / "landmarks68.csv")
    return [ImageItem(str((data / "ytf-frames" / "images" / f).resolve()), "ytf", "train", p + GT300W_OFFSET_PX, False)
            for f, p in sorted(gt.items())]


def items_folder(folder: Path, source: str | None = None, split: str = "train") -> list[ImageItem]:
    """Every image under ``folder`` (recursively), no labels."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    return [ImageItem(str(p.resolve()), source or folder.name, split) for p in files]


def extract_video_frames(video: Path, out_dir: Path, step: int = VIDEO_FRAME_STEP) -> list[Path]:
    """Every ``step``-th frame of ``video`` as ``out_dir/<stem>/<index>.jpg`` (skips existing files)."""
    target = out_dir / video.stem
    target.mkdir(parents=True, exist_ok=True)
    done = target / ".complete"
    if done.is_file():
        return sorted(target.glob("*.jpg"))
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise ValueError(f"cannot open video {video}")
    files, index = [], 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index % step == 0:
                path = target / f"{index:06d}.jpg"
                if not path.is_file():
                    cv2.imwrite(str(path), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
                files.append(path)
            index += 1
    finally:
        cap.release()
    done.write_text(str(len(files)))
    return files


def items_videos(data: Path, frames_dir: Path, step: int = VIDEO_FRAME_STEP) -> list[ImageItem]:
    items = []
    for video in sorted((data / "videos").glob("*.mp4")):
        split = "val" if is_held_out_video(video.name) else "train"
        items += [ImageItem(str(p.resolve()), f"video:{video.name}", split)
                  for p in extract_video_frames(video, frames_dir, step)]
    return items


def all_items(data: Path, frames_dir: Path) -> dict[str, list[ImageItem]]:
    """Source name -> items, for a folder laid out like ``../shared/data`` (missing parts are skipped)."""
    out: dict[str, list[ImageItem]] = {}
    if (data / "300w-train" / "landmarks68.csv").is_file():
        out["300w"] = items_300w(data)
    if (data / "ytf-frames" / "landmarks68.csv").is_file():
        out["ytf"] = items_ytf(data)
    if (data / "utkface-crops" / "images").is_dir():
        out["utkface"] = items_folder(data / "utkface-crops" / "images", "utkface")
    if (data / "videos").is_dir():
        out["videos"] = items_videos(data, frames_dir)
    return out
