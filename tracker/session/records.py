"""Per-frame records of a session: a TrackedFrame <-> one JSON object (one line of ``records.jsonl``).

A record (keys, all numbers as JSON floats, which round-trip float64 exactly)::

    {"index": 12, "timestamp_ns": 400000000, "video_frame": 12 | null, "tracked": true, "message": "",
     "intrinsics": [width, height, fx, fy, cx, cy],
     "roi": {"matrix": [[a, b, c], [d, e, f]], "size": 256} | null,
     "landmarks": {"mu_px": [[x, y], ...], "sigma_px": [s, ...]} | null,
     "fit": {"identity": [...], "expression": [...], "root_rotation": [rx, ry, rz],
             "translation_mm": [x, y, z], "joints": [[...], ...], "focal_px": f,
             "cost": c, "iterations": n, "converged": true, "message": "",
             "landmarks_px": [[x, y], ...]} | null,
     "timings_ms": {"decode": 1.2, "roi": 0.1, "network": 3.0, "fit": 2.0, "total": 6.5}}
"""

from __future__ import annotations

import json

import numpy as np

from tracker.types import FitParams, FitResult, Frame, Intrinsics, Landmarks, Roi, TrackedFrame

FORMAT_VERSION = 1
RECORDS_NAME = "records.jsonl"
META_NAME = "meta.json"
VIDEO_DIR = "video"


class SessionError(Exception):
    """A session cannot be written or read; the message is for the user."""


class SessionWriteError(SessionError):
    """Recording stopped (disk full, write error, ...). What was recorded before is kept."""


def _list(a) -> list:
    return np.asarray(a, dtype=np.float64).tolist()


def _rounded(a, decimals: int) -> list:
    """Image-space measurements are stored to ``decimals`` places (1e-3 px is far below their noise); the
    model parameters are stored exactly."""
    return np.round(np.asarray(a, dtype=np.float64), decimals).tolist()


def record_from_tracked(tf: TrackedFrame, video_frame: int | None) -> dict:
    """The JSON-able record of one tracked frame. ``video_frame``: its number in the session's video or None."""
    intr = tf.intrinsics
    rec: dict = {
        "index": int(tf.frame.index),
        "timestamp_ns": int(tf.frame.timestamp_ns),
        "video_frame": None if video_frame is None else int(video_frame),
        "tracked": bool(tf.tracked),
        "message": str(tf.message or ""),
        "intrinsics": [intr.width, intr.height, float(intr.fx), float(intr.fy), float(intr.cx), float(intr.cy)]
        if intr is not None else None,
        "roi": None if tf.roi is None else {"matrix": _list(tf.roi.matrix), "size": int(tf.roi.size)},
        "landmarks": None if tf.landmarks is None else {"mu_px": _rounded(tf.landmarks.mu_px, 3),
                                                        "sigma_px": _rounded(tf.landmarks.sigma_px, 4)},
        "fit": None,
        "timings_ms": {str(k): float(v) for k, v in (tf.timings_ms or {}).items()},
    }
    if intr is not None and intr.dist_coeffs:
        rec["intrinsics"].append([float(d) for d in intr.dist_coeffs])
    if tf.fit is not None:
        p = tf.fit.params
        rec["fit"] = {
            "identity": _list(p.identity), "expression": _list(p.expression),
            "root_rotation": _list(p.root_rotation), "translation_mm": _list(p.translation_mm),
            "joints": _list(p.joints), "focal_px": float(p.focal_px),
            "cost": float(tf.fit.cost), "iterations": int(tf.fit.iterations), "converged": bool(tf.fit.converged),
            "message": str(tf.fit.message or ""), "landmarks_px": _rounded(tf.fit.landmarks_px, 3),
        }
    return rec


def encode_record(rec: dict) -> str:
    """One line of ``records.jsonl`` (with the newline). NaN and infinities are written as Python's json
    module writes them (``NaN``, ``Infinity``), which :func:`decode_record` reads back."""
    return json.dumps(rec, separators=(",", ":")) + "\n"


def decode_record(line: str) -> dict:
    rec = json.loads(line)
    if not isinstance(rec, dict) or "index" not in rec or "timestamp_ns" not in rec:
        raise ValueError("not a frame record")
    return rec


def _arr(x, shape_tail: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if shape_tail is not None and a.size == 0:
        a = a.reshape(0, shape_tail)
    return a


def intrinsics_from_record(rec: dict) -> Intrinsics | None:
    v = rec.get("intrinsics")
    if not v:
        return None
    dist = tuple(float(d) for d in v[6]) if len(v) > 6 else ()
    return Intrinsics(int(v[0]), int(v[1]), float(v[2]), float(v[3]), float(v[4]), float(v[5]), dist)


def params_from_record(rec: dict) -> FitParams | None:
    """The model parameters of a record, or None when the frame has no fit."""
    f = rec.get("fit")
    if not f:
        return None
    return FitParams(identity=_arr(f["identity"]), expression=_arr(f["expression"]),
                     root_rotation=_arr(f["root_rotation"]), translation_mm=_arr(f["translation_mm"]),
                     joints=_arr(f["joints"], 3), focal_px=float(f["focal_px"]))


def tracked_from_record(rec: dict, image: np.ndarray | None = None) -> TrackedFrame:
    """A TrackedFrame rebuilt from a record; ``image`` is the video frame (a 1x1 black image when None)."""
    if image is None:
        image = np.zeros((1, 1, 3), np.uint8)
    frame = Frame(image=image, timestamp_ns=int(rec["timestamp_ns"]), index=int(rec["index"]))
    intr = intrinsics_from_record(rec)
    roi = None
    if rec.get("roi"):
        roi = Roi(matrix=_arr(rec["roi"]["matrix"]), size=int(rec["roi"]["size"]))
    lms = None
    if rec.get("landmarks"):
        lms = Landmarks(mu_px=_arr(rec["landmarks"]["mu_px"], 2), sigma_px=_arr(rec["landmarks"]["sigma_px"]))
    fit = None
    params = params_from_record(rec)
    if params is not None:
        f = rec["fit"]
        fit = FitResult(params=params, landmarks_px=_arr(f.get("landmarks_px", []), 2), cost=float(f["cost"]),
                        iterations=int(f["iterations"]), converged=bool(f["converged"]),
                        message=str(f.get("message", "")))
    return TrackedFrame(frame=frame, intrinsics=intr, roi=roi, landmarks=lms, fit=fit, tracked=bool(rec["tracked"]),
                        timings_ms=dict(rec.get("timings_ms") or {}), message=str(rec.get("message", "")))
