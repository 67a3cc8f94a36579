"""Held-out 300-W photos with their 68-point ground truth, for the tests that run the trained networks."""

from __future__ import annotations

import csv

import numpy as np

from tracker.splits import is_held_out_300w


def held_out_300w(shared_data, n: int) -> list:
    """The first ``n`` held-out 300-W images: [(path, (68, 2) ground truth in px), ...]."""
    out = []
    with open(shared_data / "300w-train" / "landmarks68.csv") as fh:
        reader = csv.reader(fh)
        next(reader)
        for r in reader:
            if is_held_out_300w(r[0]):
                out.append((shared_data / "300w-train" / "images" / r[0], np.array(r[1:], float).reshape(68, 2)))
            if len(out) == n:
                break
    return out
