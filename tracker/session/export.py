"""Exporting a recorded session: Live Link Face-style CSV, JSON lines, and an OBJ mesh sequence.

Angles are radians in the CSV (HeadYaw ... RightEyeRoll) and degrees in JSON lines, in the conventions of
:mod:`tracker.face.pose`. The head: Euler angles of its orientation relative to the frontal pose, in the
model's axes (+x the subject's left, +y up, +z out of the face), R = Ry(yaw) @ Rx(pitch) @ Rz(roll):
- yaw > 0: the face turns towards the subject's left (the image's right for a mirror-free camera),
- pitch > 0: the face tilts down (chin towards the chest),
- roll > 0: the head tilts towards the subject's right shoulder (their left ear rises).
The head orientation is the root rotation composed with the neck and head joints. The eyes: each eye's
gaze relative to the head (``tracker.face.pose.eye_angles_deg``: yaw > 0 towards the subject's left,
pitch > 0 up; roll is always 0). The EyeLook* blendshape columns come from the eye joints too.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from tracker.fitting.rotation import rodrigues as _rodrigues
from tracker.session.reader import SessionReader
from tracker.session.records import SessionError, params_from_record, to_jsonable
from tracker.types import MODEL_TO_CAMERA_AXES, FitParams

log = logging.getLogger(__name__)

#: The 52 ARKit blendshapes in Live Link Face's CSV order.
ARKIT_NAMES = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft", "EyeSquintLeft",
    "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
    "EyeSquintRight", "EyeWideRight", "JawForward", "JawRight", "JawLeft", "JawOpen", "MouthClose",
    "MouthFunnel", "MouthPucker", "MouthRight", "MouthLeft", "MouthSmileLeft", "MouthSmileRight",
    "MouthFrownLeft", "MouthFrownRight", "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft",
    "MouthStretchRight", "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper",
    "MouthPressLeft", "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft",
    "MouthUpperUpRight", "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight",
    "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight", "TongueOut",
)
#: Live Link Face's 9 rotation columns after the blendshapes.
POSE_COLUMNS = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
#: Our columns after Live Link Face's (importers match columns by name, so these are harmless extras).
EXTRA_COLUMNS = ("Frame", "TimestampNs", "Tracked", "HeadX_mm", "HeadY_mm", "HeadZ_mm", "FocalPx", "FitCost")
CSV_HEADER = ("Timecode", "BlendShapeCount") + ARKIT_NAMES + POSE_COLUMNS + EXTRA_COLUMNS
FORMATS = ("csv", "jsonl", "obj")


def _ict_to_arkit_name(name: str) -> str:
    base, side = (name[:-2], "Left") if name.endswith("_L") else (name[:-2], "Right") if name.endswith("_R") \
        else (name, "")
    return base[:1].upper() + base[1:] + side


def arkit_mapping(expression_names: tuple[str, ...] | list[str]) -> list[list[int]]:
    """For each ARKit name (``ARKIT_NAMES`` order), the indices of the model's expressions averaged into it.

    ICT's split shapes (browInnerUp_L/_R, cheekPuff_L/_R) average into ARKit's single one; a name the model
    does not have (tongueOut) maps to [] and exports as 0."""
    out: list[list[int]] = [[] for _ in ARKIT_NAMES]
    index = {n.lower(): i for i, n in enumerate(ARKIT_NAMES)}
    for j, name in enumerate(expression_names):
        arkit = _ict_to_arkit_name(name)
        i = index.get(arkit.lower())
        if i is None:  # split shape: browInnerUpLeft -> BrowInnerUp
            for suffix in ("Left", "Right"):
                if arkit.endswith(suffix):
                    i = index.get(arkit[: -len(suffix)].lower())
        if i is not None:
            out[i].append(j)
        else:
            log.debug("expression %s has no ARKit column", name)
    return out


def arkit_weights(expression: np.ndarray, mapping: list[list[int]], joints: np.ndarray | None = None) -> np.ndarray:
    """(52,) ARKit blendshape weights from the model's (n_exp,) expression weights.

    With ``joints`` (FitParams.joints), the EyeLook{Down,In,Out,Up}{Left,Right} columns come from the eye
    joints (``tracker.face.pose.eye_look_weights``): in this model gaze is the eye joints', and the eyeLook*
    blendshapes only shape the lids."""
    e = np.asarray(expression, dtype=np.float64)
    out = np.array([float(np.mean(e[idx])) if idx else 0.0 for idx in mapping])
    if joints is not None:
        from tracker.face.pose import eye_look_weights

        index = {n.lower(): i for i, n in enumerate(ARKIT_NAMES)}
        for name, w in eye_look_weights(joints).items():
            i = index.get(_ict_to_arkit_name(name).lower())
            if i is not None:
                out[i] = w
    return out


# ------------------------------------------------------------------------------------------------- angles


def euler_yxz(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) radians with R = Ry(yaw) @ Rx(pitch) @ Rz(roll) (``tracker.face.pose``'s convention)."""
    from tracker.face.pose import euler_deg_from_matrix

    return tuple(math.radians(a) for a in euler_deg_from_matrix(r))


def head_rotation_model(p: FitParams) -> np.ndarray:
    """(3, 3) the head's orientation in model axes: M^T R_root M @ R_neck @ R_head (the rotation part of
    ``tracker.face.pose.head_pose(model, p).relative``, which needs no model)."""
    m = MODEL_TO_CAMERA_AXES
    joints = np.asarray(p.joints, dtype=np.float64).reshape(-1, 3)
    return m.T @ _rodrigues(p.root_rotation) @ m @ _rodrigues(joints[0]) @ _rodrigues(joints[1])


def head_angles(p: FitParams) -> dict:
    """Head yaw/pitch/roll (radians, module docstring), eye yaw/pitch/roll (radians, each eye relative to the
    head as ``tracker.face.pose.eye_angles_deg`` gives them: yaw > 0 towards the subject's left, pitch > 0
    up; roll 0) and the head quaternion (w, x, y, z) in camera axes."""
    from tracker.face.pose import eye_angles_deg

    yaw, pitch, roll = euler_yxz(head_rotation_model(p))
    joints = np.asarray(p.joints, dtype=np.float64).reshape(-1, 3)
    eyes = np.radians(eye_angles_deg(joints)) if joints.shape[0] >= 4 else np.zeros((2, 2))
    r_cam = _rodrigues(p.root_rotation) @ MODEL_TO_CAMERA_AXES @ _rodrigues(joints[0]) @ _rodrigues(joints[1]) \
        @ MODEL_TO_CAMERA_AXES.T
    return {"head": (yaw, pitch, roll), "left_eye": (float(eyes[0, 0]), float(eyes[0, 1]), 0.0),
            "right_eye": (float(eyes[1, 0]), float(eyes[1, 1]), 0.0),
            "head_quaternion_wxyz": _quaternion(r_cam)}


def _quaternion(r: np.ndarray) -> tuple[float, float, float, float]:
    from tracker.face.pose import quaternion_from_matrix

    return tuple(float(v) for v in quaternion_from_matrix(r))


# --------------------------------------------------------------------------------------------------- csv


def timecode(timestamp_ns: int, t0_ns: int, start_unix: float, fps: float) -> str:
    """Live Link Face's ``HH:MM:SS:FF.fff`` (time of day, UTC; FF frames at ``fps``, .fff the fraction)."""
    t = start_unix + (timestamp_ns - t0_ns) / 1e9
    day = t % 86400.0
    hh, rem = divmod(day, 3600.0)
    mm, ss = divmod(rem, 60.0)
    whole = math.floor(ss)
    frames = (ss - whole) * fps
    ff = math.floor(frames)
    return f"{int(hh):02d}:{int(mm):02d}:{int(whole):02d}:{ff:02d}.{int((frames - ff) * 1000):03d}"


def _expression_names(reader: SessionReader, n: int) -> tuple[str, ...]:
    names = reader.meta.get("expression_names")
    if names and len(names) == n:
        return tuple(names)
    try:
        from tracker.face.build import load_head_model

        model = load_head_model()
        if model.n_expression == n:
            return tuple(model.expression_names)
    except Exception as exc:  # noqa: BLE001 - fall back to the ICT order built in below
        log.debug("head model unavailable for expression names: %s", exc)
    if n == len(ICT_EXPRESSION_NAMES):
        return ICT_EXPRESSION_NAMES
    raise SessionError(f"cannot name the {n} expression weights of this session (no expression_names in its "
                       f"meta.json and no head model)")


#: ICT-FaceKit's 53 expressions in the head model's order (used when the session does not list them).
ICT_EXPRESSION_NAMES = (
    "browDown_L", "browDown_R", "browInnerUp_L", "browInnerUp_R", "browOuterUp_L", "browOuterUp_R", "cheekPuff_L",
    "cheekPuff_R", "cheekSquint_L", "cheekSquint_R", "eyeBlink_L", "eyeBlink_R", "eyeLookDown_L", "eyeLookDown_R",
    "eyeLookIn_L", "eyeLookIn_R", "eyeLookOut_L", "eyeLookOut_R", "eyeLookUp_L", "eyeLookUp_R", "eyeSquint_L",
    "eyeSquint_R", "eyeWide_L", "eyeWide_R", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimple_L", "mouthDimple_R", "mouthFrown_L", "mouthFrown_R", "mouthFunnel", "mouthLeft",
    "mouthLowerDown_L", "mouthLowerDown_R", "mouthPress_L", "mouthPress_R", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmile_L", "mouthSmile_R",
    "mouthStretch_L", "mouthStretch_R", "mouthUpperUp_L", "mouthUpperUp_R", "noseSneer_L", "noseSneer_R",
)


def _fitted(reader: SessionReader) -> Iterator[tuple[dict, FitParams | None]]:
    for rec in reader.records:
        yield rec, params_from_record(rec)


def export_csv(reader: SessionReader, out: Path) -> int:
    """One row per recorded frame (untracked frames: empty values). Returns the rows written."""
    recs = reader.records
    if not recs:
        raise SessionError(f"session {reader.folder} has no frames to export")
    n_exp = next((len(r["fit"]["expression"]) for r in recs if r.get("fit")), len(ICT_EXPRESSION_NAMES))
    mapping = arkit_mapping(_expression_names(reader, n_exp))
    t0 = int(recs[0]["timestamp_ns"])
    start = float(reader.meta.get("start_time_unix") or 0.0)
    fps = reader.fps
    rows = 0
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_HEADER)
        for rec, p in _fitted(reader):
            row = [timecode(int(rec["timestamp_ns"]), t0, start, fps), len(ARKIT_NAMES) + len(POSE_COLUMNS)]
            if p is not None and rec.get("tracked"):
                ang = head_angles(p)
                row += [f"{v:.6g}" for v in arkit_weights(p.expression, mapping, p.joints)]
                row += [f"{v:.6g}" for v in (*ang["head"], *ang["left_eye"], *ang["right_eye"])]
                row += [rec["index"], rec["timestamp_ns"], 1, *(f"{v:.4f}" for v in p.translation_mm),
                        f"{p.focal_px:.3f}", f"{rec['fit']['cost']:.6g}"]
            else:
                row += [""] * (len(ARKIT_NAMES) + len(POSE_COLUMNS))
                row += [rec["index"], rec["timestamp_ns"], 0, "", "", "", "", ""]
            w.writerow(row)
            rows += 1
    return rows


# ------------------------------------------------------------------------------------------------- jsonl


def export_jsonl(reader: SessionReader, out: Path) -> int:
    """One JSON object per frame: time, tracked, head angles (degrees), quaternion, translation, ARKit
    weights by name, the model's raw parameters, landmarks and sigmas, fit cost and timings."""
    recs = reader.records
    if not recs:
        raise SessionError(f"session {reader.folder} has no frames to export")
    n_exp = next((len(r["fit"]["expression"]) for r in recs if r.get("fit")), len(ICT_EXPRESSION_NAMES))
    names = _expression_names(reader, n_exp)
    mapping = arkit_mapping(names)
    t0 = int(recs[0]["timestamp_ns"])
    rows = 0
    with open(out, "w") as f:
        for rec, p in _fitted(reader):
            obj = {"frame": rec["index"], "timestamp_ns": rec["timestamp_ns"],
                   "time_s": (int(rec["timestamp_ns"]) - t0) / 1e9, "tracked": bool(rec.get("tracked")),
                   "message": rec.get("message", "")}
            if p is not None:
                ang = head_angles(p)
                deg = [math.degrees(v) for v in ang["head"]]
                obj["head"] = {"yaw_deg": deg[0], "pitch_deg": deg[1], "roll_deg": deg[2],
                               "quaternion_wxyz": list(ang["head_quaternion_wxyz"]),
                               "translation_mm": p.translation_mm.tolist()}
                obj["eyes"] = {side: dict(zip(("yaw_deg", "pitch_deg", "roll_deg"),
                                              (math.degrees(v) for v in ang[side + "_eye"])))
                               for side in ("left", "right")}
                obj["blendshapes"] = dict(zip(ARKIT_NAMES, arkit_weights(p.expression, mapping, p.joints).tolist()))
                obj["expression"] = dict(zip(names, p.expression.tolist()))
                obj["params"] = {"identity": p.identity.tolist(), "root_rotation": p.root_rotation.tolist(),
                                 "translation_mm": p.translation_mm.tolist(), "joints": p.joints.tolist(),
                                 "focal_px": p.focal_px}
                obj["fit_cost"] = rec["fit"]["cost"]
            if rec.get("landmarks"):
                obj["landmarks"] = to_jsonable(rec["landmarks"])
            obj["timings_ms"] = rec.get("timings_ms", {})
            f.write(json.dumps(obj, separators=(",", ":")) + "\n")
            rows += 1
    return rows


# --------------------------------------------------------------------------------------------------- obj


def export_obj(reader: SessionReader, out: Path, model=None, step: int = 1) -> int:
    """One OBJ per tracked frame (every ``step``-th) in folder ``out``: ``frame_000123.obj``, the posed head
    in the camera's space turned to OBJ's usual axes (x right, y up, z towards the viewer), millimetres."""
    from tracker.face.obj_export import write_obj
    from tracker.pipeline import fit_vertices

    if model is None:
        from tracker.face.build import load_head_model

        model = load_head_model()
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    tracked = [(rec, p) for rec, p in _fitted(reader) if p is not None and rec.get("tracked")]
    if not tracked:
        raise SessionError(f"session {reader.folder} has no tracked frames to export as meshes")
    for rec, p in tracked[:: max(1, int(step))]:
        verts = fit_vertices(model, p) @ MODEL_TO_CAMERA_AXES.T  # camera (y down, z forward) -> y up, z back
        header = (f"frame {rec['index']} timestamp_ns {rec['timestamp_ns']}\n"
                  f"posed head in camera space (x right, y up, z towards the viewer), millimetres")
        path = out / f"frame_{int(rec['index']):06d}.obj"
        tmp = write_obj(path.with_suffix(".obj.tmp"), verts, model.faces, header)
        os.replace(tmp, path)
        written += 1
    return written


def export_session(session: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None, *,
                   model=None, step: int = 1) -> tuple[Path, int]:
    """Export ``session`` as ``fmt`` (csv, jsonl, obj) to ``out`` (default: beside the session's records:
    ``SESSION/export.csv``, ``SESSION/export.jsonl``, ``SESSION/obj/``). Returns (path, items written)."""
    if fmt not in FORMATS:
        raise SessionError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    reader = SessionReader(session)
    default = {"csv": "export.csv", "jsonl": "export.jsonl", "obj": "obj"}[fmt]
    path = Path(out) if out is not None else reader.folder / default
    try:
        if fmt == "csv":
            n = export_csv(reader, path)
        elif fmt == "jsonl":
            n = export_jsonl(reader, path)
        else:
            n = export_obj(reader, path, model=model, step=step)
    except OSError as exc:
        raise SessionError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path, n

