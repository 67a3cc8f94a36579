"""Turning a TrackedFrame into what the views draw (``DisplayFrame``), in the worker thread.

No Qt here: the worker calls :meth:`FramePreparer.prepare` for each frame it will show, so the GUI thread only
uploads arrays. The posed mesh comes from ``tracker.pipeline.fit_vertices`` (camera-space mm).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace

import numpy as np

from tracker.face.model import HeadModel
from tracker.face.pose import euler_from_axis_angle, eye_angles_deg, head_pose
from tracker.gui.geometry import VertexNormals, select_parts, sigma_colors, unique_edges, unproject_pixels
from tracker.types import CM_TO_MM, MODEL_TO_CAMERA_AXES, Intrinsics, TrackedFrame

log = logging.getLogger(__name__)

#: mesh parts drawn over the video (skin only: eyes, teeth and lashes would clutter a translucent overlay)
OVERLAY_PARTS = ("Face",)
#: mesh parts drawn in the orbitable head view
HEAD_PARTS = ("Face", "BackHead", "ScleraLeft", "IrisLeft", "ScleraRight", "IrisRight")
#: landmark colours: sigma as a fraction of the face crop's width, green at or below SIGMA_GOOD, red at or
#: above SIGMA_BAD (on real clips the median is about 0.02 and the 95th percentile about 0.1)
SIGMA_GOOD, SIGMA_BAD = 0.015, 0.06
#: depth (mm) of the plane the 2D landmarks are placed on in the overlay (nearer than any face)
LANDMARK_PLANE_MM = 50.0


@dataclass(frozen=True, eq=False)
class MeshTopology:
    """The drawn subset of the head mesh.

    vertex_ids: (M,) indices into the model's vertices (the union of both views' parts);
    overlay_faces / head_faces: (F, 3) uint32 into vertex_ids; overlay_edges: (E, 2) uint32 wireframe edges.
    """

    vertex_ids: np.ndarray
    overlay_faces: np.ndarray
    overlay_edges: np.ndarray
    head_faces: np.ndarray


def face_mask(model: HeadModel) -> np.ndarray | None:
    """(N,) bool: the front of the face (brows to chin, ear to ear, no scalp, neck or ears), which is what the
    landmarks constrain and what the overlay shows. Bounds from the model's 68 iBUG landmark vertices
    (``landmarks68``): x within the jaw's ends, y from just under the chin to 3 cm above the brows, z in front
    of the jaw's ends; below the mouth corners the face narrows with the jaw line. None when the landmark
    set is unavailable."""
    try:
        from tracker.face.landmark_sets import load_landmark_set

        ids = load_landmark_set("landmarks68").vertex_ids
    except Exception as exc:  # noqa: BLE001 - no landmark set: draw the whole face part
        log.info("no landmarks68 set (%s): the overlay shows the whole face part", exc)
        return None
    lm = np.asarray(model.neutral_cm, dtype=np.float64)[np.asarray(ids)]
    jaw, brows = lm[:17], lm[17:27]
    v = np.asarray(model.neutral_cm, dtype=np.float64)
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    half_width = np.abs(jaw[[0, 16], 0]).mean()
    keep = (np.abs(x) <= half_width + 0.2) & (y <= brows[:, 1].max() + 3.0) & (z >= jaw[[0, 16], 2].min() - 0.5)
    # under the jaw line: interpolate the jaw's height at each x (jaw points ordered right to left in x)
    order = np.argsort(jaw[:, 0])
    jaw_y = np.interp(x, jaw[order, 0], jaw[order, 1])
    keep &= y >= jaw_y - 0.4
    return keep


def mesh_topology(model: HeadModel, overlay_parts=OVERLAY_PARTS, head_parts=HEAD_PARTS) -> MeshTopology:
    """Pick the parts of ``model`` to draw: the overlay shows the front of the face (:func:`face_mask`) of
    ``overlay_parts``; the head view all of ``head_parts``. Parts the model lacks are left out with a log line."""
    def known(parts):
        ok = tuple(p for p in parts if p in model.part_names)
        if len(ok) != len(parts):
            log.info("head model has no parts %s; drawing %s", sorted(set(parts) - set(ok)), ok)
        return ok or None

    all_parts = known(tuple(dict.fromkeys(overlay_parts + head_parts)))
    vertex_ids, _ = select_parts(model.faces, model.vertex_part, model.part_names, all_parts)
    remap = np.full(model.n_vertices, -1, dtype=np.int64)
    remap[vertex_ids] = np.arange(vertex_ids.shape[0])

    def faces_of(parts):
        ids, faces = select_parts(model.faces, model.vertex_part, model.part_names, known(parts))
        return remap[ids][faces].astype(np.uint32)

    overlay = faces_of(overlay_parts)
    mask = face_mask(model)
    if mask is not None:
        inside = mask[vertex_ids][overlay].all(axis=1)
        if inside.sum() > 1000:  # a sane mask; otherwise keep the whole part
            overlay = overlay[inside]
    return MeshTopology(vertex_ids, overlay, unique_edges(overlay), faces_of(head_parts))


def subset_model(model: HeadModel, vertex_ids: np.ndarray, faces: np.ndarray) -> HeadModel:
    """The same head model restricted to ``vertex_ids`` (joints and rig unchanged), with ``faces`` (F, 3) into
    the subset. Posing it gives exactly the full model's vertices at ``vertex_ids``, in a third of the time."""
    ids = np.asarray(vertex_ids, dtype=np.int64)
    return replace(model,
                   neutral_cm=np.ascontiguousarray(model.neutral_cm[ids]),
                   identity_basis_cm=np.ascontiguousarray(model.identity_basis_cm[:, ids]),
                   expression_basis_cm=np.ascontiguousarray(model.expression_basis_cm[:, ids]),
                   skin_weights=np.ascontiguousarray(model.skin_weights[ids]),
                   vertex_part=np.ascontiguousarray(model.vertex_part[ids]),
                   faces=np.ascontiguousarray(faces, dtype=model.faces.dtype))


@dataclass(frozen=True, eq=False)
class DisplayFrame:
    """Everything the window shows for one frame, ready to draw.

    intrinsics: the camera the overlay draws through (the fit's focal length); vertices_mm/normals_cam: (M, 3)
    float32 camera space, or None (no face); the image is ``tracked.frame.image`` (H, W, 3) BGR;
    head_vertices_cm/normals_head: (M, 3) the same head in model axes (cm), centred on the model origin, with
    the fitted rotation (so it turns like the face) for the orbit view; landmark_points: (L, 3) on the
    landmark plane, landmark_colors: (L, 4) by sigma. euler_deg: the head's (yaw, pitch, roll) and
    head_position_mm its pivot in the camera (``tracker.face.pose.head_pose``); gaze_deg: ((yaw, pitch) of
    eye_L, of eye_R) relative to the head (``tracker.face.pose.eye_angles_deg``).
    """

    tracked: TrackedFrame
    intrinsics: Intrinsics | None = None
    vertices_mm: np.ndarray | None = None
    normals_cam: np.ndarray | None = None
    head_vertices_cm: np.ndarray | None = None
    normals_head: np.ndarray | None = None
    landmark_points: np.ndarray | None = None
    landmark_colors: np.ndarray | None = None
    euler_deg: tuple[float, float, float] | None = None
    head_position_mm: np.ndarray | None = None
    gaze_deg: tuple[tuple[float, float], tuple[float, float]] | None = None
    sigma_mean_px: float = math.nan
    prepare_ms: float = 0.0
    extra: dict = field(default_factory=dict)


class FramePreparer:
    """Prepares DisplayFrames. ``model`` None: no mesh (landmarks and numbers only).

    ``fit_vertices(model, fit) -> (N, 3)`` camera-space mm of the model's vertices; by default
    ``tracker.pipeline.fit_vertices``. It is called with the model restricted to the drawn vertices.
    """

    def __init__(self, model: HeadModel | None, topology: MeshTopology | None = None, fit_vertices=None):
        self.model = model
        self.topology = topology if topology is not None or model is None else mesh_topology(model)
        if fit_vertices is None and model is not None:
            from tracker.pipeline import fit_vertices as fit_vertices  # noqa: PLC0415
        self.fit_vertices = fit_vertices
        # only the drawn vertices are posed: a model restricted to them (3x faster than the full mesh)
        self._drawn = (None if self.topology is None
                       else subset_model(model, self.topology.vertex_ids, self.topology.head_faces))
        self._normals = (None if self.topology is None
                         else VertexNormals(self.topology.head_faces, self.topology.vertex_ids.shape[0]))
        self.mesh = True
        self.landmarks = True

    def prepare(self, tf: TrackedFrame) -> DisplayFrame:
        import time

        t0 = time.perf_counter()
        out: dict = {}
        fit = tf.fit
        # the fitted camera: the pipeline's intrinsics with the fit's focal length (it may have been refined)
        intr = tf.intrinsics
        if fit is not None and tf.tracked and abs(float(fit.params.focal_px) - intr.focal_px) > 1e-6:
            intr = intr.with_focal(float(fit.params.focal_px))
        out["intrinsics"] = intr
        if tf.landmarks is not None and self.landmarks:
            out["landmark_points"] = unproject_pixels(tf.landmarks.mu_px, intr, LANDMARK_PLANE_MM)
            if tf.roi is not None:  # sigma as a fraction of the face crop's width: resolution-independent
                rel = tf.landmarks.sigma_px / (tf.roi.scale_px * tf.roi.size)
                out["landmark_colors"] = sigma_colors(rel, lo=SIGMA_GOOD, hi=SIGMA_BAD)
            else:
                out["landmark_colors"] = sigma_colors(tf.landmarks.sigma_px)
            out["sigma_mean_px"] = float(np.mean(tf.landmarks.sigma_px))
        if fit is not None and tf.tracked:
            p = fit.params
            if self.model is not None:  # the head joint's pose: root, neck and head rotations composed
                hp = head_pose(self.model, p)
                out["euler_deg"] = (hp.yaw_deg, hp.pitch_deg, hp.roll_deg)
                out["head_position_mm"] = np.asarray(hp.position_mm, dtype=np.float64)
            else:
                out["euler_deg"] = euler_from_axis_angle(p.root_rotation)
                out["head_position_mm"] = np.asarray(p.translation_mm, dtype=np.float64)
            gaze = eye_angles_deg(p.joints)
            out["gaze_deg"] = ((float(gaze[0, 0]), float(gaze[0, 1])), (float(gaze[1, 0]), float(gaze[1, 1])))
            if self.model is not None and self.mesh and self.topology is not None:
                verts = np.asarray(self.fit_vertices(self._drawn, fit), dtype=np.float32)
                normals = self._normals(verts)
                out["vertices_mm"] = verts
                out["normals_cam"] = normals
                # camera mm -> model axes cm about the model origin (rotation kept): x_m = A (x_c - t) / 10
                axes = MODEL_TO_CAMERA_AXES.astype(np.float32)  # its own inverse
                out["head_vertices_cm"] = ((verts - p.translation_mm.astype(np.float32)) @ axes) / CM_TO_MM
                out["normals_head"] = normals @ axes
        return DisplayFrame(tracked=tf, prepare_ms=(time.perf_counter() - t0) * 1e3, **out)
