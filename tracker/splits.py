"""Fixed train/validation splits of ``../shared/data`` that training never crosses.

- 300-W: an image is held out when ``sha1(file name) % 5 == 0`` (about 20%, stable as files are added).
- Videos: ``lp_d9.mp4`` and ``vr_3.mp4`` are held out whole.
"""

from __future__ import annotations

import hashlib

HELD_OUT_VIDEOS = frozenset({"lp_d9.mp4", "vr_3.mp4"})


def is_held_out_300w(file_name: str) -> bool:
    """True for the 300-W images that form the validation split (``file_name`` as in landmarks68.csv)."""
    digest = hashlib.sha1(file_name.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 5 == 0


def is_held_out_video(file_name: str) -> bool:
    return file_name.rsplit("/", 1)[-1] in HELD_OUT_VIDEOS
