"""Per-frame records of a session: a TrackedFrame <-> a record dict <-> bytes appended to ``records.bin``.

A record dict (numbers as Python scalars, arrays as float64 numpy arrays)::

    {"index": 12, "timestamp_ns": 400000000, "video_frame": 12 | None, "tracked": True, "message": "",
     "intrinsics": [width, height, fx, fy, cx, cy(, [dist...])],
     "roi": {"matrix": (2, 3), "size": 256} | None,
     "landmarks": {"mu_px": (L, 2), "sigma_px": (L,)} | None,
     "fit": {"identity": (n_id,), "expression": (53,), "root_rotation": (3,), "translation_mm": (3,),
             "joints": (4, 3), "focal_px": f, "cost": c, "iterations": n, "converged": True, "message": "",
             "landmarks_px": (L, 2)} | None,
     "timings_ms": {"decode": 1.2, "roi": 0.1, "network": 3.0, "fit": 2.0, "total": 6.5}}

File format (``records.bin``): the 8 bytes ``FTSREC1\\n``, then one record after another, each
``<u32 payload length><u32 CRC-32 of the payload><payload>``; the payload is ``<u32 n>`` + n bytes of JSON (the
record with every array replaced by ``{"__array__": k, "shape": [...]}``) + the arrays' float64 little-endian
bytes in order. Binary because it is cheap to write (about 0.1 ms a frame, against about 3 ms to print 2,000
floats as JSON text), exact (float64, nothing rounded), and self-checking: a record cut short by a crash or
damaged on disk fails its length or CRC test and is skipped, never misread.
"""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np

from tracker.types import FitParams, FitResult, Frame, Intrinsics, Landmarks, Roi, TrackedFrame

FORMAT_VERSION = 2
RECORDS_NAME = "records.bin"
META_NAME = "meta.json"
VIDEO_DIR = "video"
MAGIC = b"FTSREC1\n"
_HEAD = struct.Struct("<II")
_U32 = struct.Struct("<I")
#: A record larger than this is taken as damage (a landmark set would need ~100k landmarks to reach it).
MAX_RECORD_BYTES = 64 << 20


class SessionError(Exception):
    """A session cannot be written or read; the message is for the user."""


class SessionWriteError(SessionError):
    """Recording stopped (disk full, write error, ...). What was recorded before is kept."""


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def record_from_tracked(tf: TrackedFrame, video_frame: int | None) -> dict:
    """The record of one tracked frame. ``video_frame``: its number in the session's video or None."""
    intr = tf.intrinsics
    rec: dict = {
        "index": int(tf.frame.index),
        "timestamp_ns": int(tf.frame.timestamp_ns),
        "video_frame": None if video_frame is None else int(video_frame),
        "tracked": bool(tf.tracked),
        "message": str(tf.message or ""),
        "intrinsics": None,
        "roi": None if tf.roi is None else {"matrix": _f64(tf.roi.matrix), "size": int(tf.roi.size)},
        "landmarks": None if tf.landmarks is None else {"mu_px": _f64(tf.landmarks.mu_px),
                                                        "sigma_px": _f64(tf.landmarks.sigma_px)},
        "fit": None,
        "timings_ms": {str(k): float(v) for k, v in (tf.timings_ms or {}).items()},
    }
    if intr is not None:
        rec["intrinsics"] = [int(intr.width), int(intr.height), float(intr.fx), float(intr.fy), float(intr.cx),
                             float(intr.cy)]
        if intr.dist_coeffs:
            rec["intrinsics"].append([float(d) for d in intr.dist_coeffs])
    if tf.fit is not None:
        p = tf.fit.params
        rec["fit"] = {
            "identity": _f64(p.identity), "expression": _f64(p.expression),
            "root_rotation": _f64(p.root_rotation), "translation_mm": _f64(p.translation_mm),
            "joints": _f64(p.joints), "focal_px": float(p.focal_px),
            "cost": float(tf.fit.cost), "iterations": int(tf.fit.iterations), "converged": bool(tf.fit.converged),
            "message": str(tf.fit.message or ""), "landmarks_px": _f64(tf.fit.landmarks_px),
        }
    return rec


# ------------------------------------------------------------------------------------------- bytes


def encode_record(rec: dict) -> bytes:
    """One framed record (length, CRC, payload) for ``records.bin``."""
    arrays: list[np.ndarray] = []

    def strip(obj):
        if isinstance(obj, np.ndarray):
            arrays.append(obj)
            return {"__array__": len(arrays) - 1, "shape": list(obj.shape)}
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items()}
        return obj

    header = json.dumps(strip(rec), separators=(",", ":")).encode("utf-8")
    payload = b"".join([_U32.pack(len(header)), header] +
                       [np.ascontiguousarray(a, dtype="<f8").tobytes() for a in arrays])
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


def decode_payload(payload: bytes) -> dict:
    """The record in one payload (without its length and CRC). Raises ValueError when it is malformed."""
    if len(payload) < 4:
        raise ValueError("record too short")
    (n,) = _U32.unpack_from(payload, 0)
    if 4 + n > len(payload):
        raise ValueError("record header runs past the record")
    rec = json.loads(payload[4:4 + n].decode("utf-8"))
    offset = 4 + n

    def fill(obj):
        nonlocal offset
        if isinstance(obj, dict):
            if "__array__" in obj:
                shape = tuple(int(s) for s in obj["shape"])
                count = int(np.prod(shape)) if shape else 1
                end = offset + 8 * count
                if end > len(payload):
                    raise ValueError("record arrays run past the record")
                a = np.frombuffer(payload, dtype="<f8", count=count, offset=offset).reshape(shape).astype(np.float64)
                offset = end
                return a
            return {k: fill(v) for k, v in obj.items()}
        return obj

    rec = fill(rec)
    if not isinstance(rec, dict) or "index" not in rec or "timestamp_ns" not in rec:
        raise ValueError("not a frame record")
    return rec


def decode_records(data: bytes) -> tuple[list[dict], int, int]:
    """Records in the bytes of a ``records.bin``: (records, damaged records skipped, bytes of a cut-short tail
    ignored). Raises ValueError when the data does not start like a records file."""
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):  # killed before the header was complete: an empty session
            return [], 0, len(data)
        raise ValueError("not a session records file (bad header)")
    pos = len(MAGIC)
    records: list[dict] = []
    damaged = 0
    while pos < len(data):
        if pos + _HEAD.size > len(data):
            return records, damaged, len(data) - pos
        length, crc = _HEAD.unpack_from(data, pos)
        start, end = pos + _HEAD.size, pos + _HEAD.size + length
        if length > MAX_RECORD_BYTES:
            # a damaged length: nothing after it can be framed reliably
            return records, damaged + 1, len(data) - pos
        if end > len(data):
            return records, damaged, len(data) - pos
        payload = data[start:end]
        pos = end
        if zlib.crc32(payload) != crc:
            damaged += 1
            continue
        try:
            records.append(decode_payload(payload))
        except (ValueError, UnicodeDecodeError):
            damaged += 1
    return records, damaged, 0


def to_jsonable(obj):
    """A record (or part of one) with its arrays as nested lists, for JSON output."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------------------- back again


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
    return FitParams(identity=_f64(f["identity"]), expression=_f64(f["expression"]),
                     root_rotation=_f64(f["root_rotation"]), translation_mm=_f64(f["translation_mm"]),
                     joints=_f64(f["joints"]).reshape(-1, 3), focal_px=float(f["focal_px"]))


def tracked_from_record(rec: dict, image: np.ndarray | None = None) -> TrackedFrame:
    """A TrackedFrame rebuilt from a record; ``image`` is the video frame (a 1x1 black image when None)."""
    if image is None:
        image = np.zeros((1, 1, 3), np.uint8)
    frame = Frame(image=image, timestamp_ns=int(rec["timestamp_ns"]), index=int(rec["index"]))
    roi = None
    if rec.get("roi"):
        roi = Roi(matrix=_f64(rec["roi"]["matrix"]).reshape(2, 3), size=int(rec["roi"]["size"]))
    lms = None
    if rec.get("landmarks"):
        lms = Landmarks(mu_px=_f64(rec["landmarks"]["mu_px"]).reshape(-1, 2),
                        sigma_px=_f64(rec["landmarks"]["sigma_px"]).reshape(-1))
    fit = None
    params = params_from_record(rec)
    if params is not None:
        f = rec["fit"]
        fit = FitResult(params=params, landmarks_px=_f64(f.get("landmarks_px", np.zeros((0, 2)))).reshape(-1, 2),
                        cost=float(f["cost"]), iterations=int(f["iterations"]), converged=bool(f["converged"]),
                        message=str(f.get("message", "")))
    return TrackedFrame(frame=frame, intrinsics=intrinsics_from_record(rec), roi=roi, landmarks=lms, fit=fit,
                        tracked=bool(rec["tracked"]), timings_ms=dict(rec.get("timings_ms") or {}),
                        message=str(rec.get("message", "")))
