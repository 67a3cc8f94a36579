"""A small random HeadModel that follows the contract of ``tracker.face.model`` (built by the tests).

Geometry loosely like a face (cm, +y up, +z out): a frontal skin sheet, two eyeball spheres, upper and
lower teeth, eyelid skin just outside the eyeballs and lip skin just in front of the teeth; 4 joints
(neck, head, eye_L, eye_R) with parents (-1, 0, 1, 1).
"""

from __future__ import annotations

import numpy as np

from tracker.face.model import HeadModel

PART_NAMES = ("Face", "BackHead", "Teeth", "ScleraLeft", "ScleraRight")
EXPRESSIONS = ("jawOpen", "eyeBlink_L", "eyeBlink_R", "mouthSmile_L", "mouthSmile_R", "browInnerUp",
               "mouthPucker", "cheekPuff")
EYE_CENTRES = np.array([[3.2, 3.0, 1.5], [-3.2, 3.0, 1.5]])
EYE_RADIUS = 1.2


def _sphere_points(rng, centre, radius, n):
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    v[:, 2] = np.abs(v[:, 2])  # front half
    return centre + radius * v


def build_tiny_head(seed: int = 0, n_identity: int = 5) -> HeadModel:
    rng = np.random.default_rng(seed)
    # skin: a curved frontal sheet
    gx, gy = np.meshgrid(np.linspace(-6.5, 6.5, 12), np.linspace(-8.5, 7.5, 13))
    sx, sy = gx.ravel(), gy.ravel()
    sz = 4.0 - 0.06 * sx ** 2 - 0.03 * sy ** 2
    skin = np.stack([sx, sy, sz], axis=1)
    # eyelids: skin vertices just outside each eyeball (upper front)
    lids = []
    for c in EYE_CENTRES:
        for a in np.linspace(-0.9, 0.9, 6):
            d = np.array([np.sin(a) * 0.6, 0.55, 0.6])
            d /= np.linalg.norm(d)
            lids.append(c + (EYE_RADIUS + 0.3) * d)
    lids = np.array(lids)
    # lips: just in front of the teeth
    lips = np.array([[x, y, 3.35] for x in np.linspace(-1.5, 1.5, 5) for y in (-3.3, -4.7)])
    back = np.stack([sx * 0.9, sy, -6.0 + 0.0 * sx], axis=1)[::4]
    sclera_l = _sphere_points(rng, EYE_CENTRES[0], EYE_RADIUS, 20)
    sclera_r = _sphere_points(rng, EYE_CENTRES[1], EYE_RADIUS, 20)
    tx, ty, tz = np.meshgrid(np.linspace(-1.8, 1.8, 4), np.array([-3.6, -3.9, -4.1, -4.4]),
                             np.linspace(1.6, 3.0, 3), indexing="ij")
    teeth = np.stack([tx.ravel(), ty.ravel(), tz.ravel()], axis=1)
    blocks = [(skin, 0), (lids, 0), (lips, 0), (back, 1), (teeth, 2), (sclera_l, 3), (sclera_r, 4)]
    neutral = np.concatenate([b for b, _ in blocks])
    part = np.concatenate([np.full(len(b), p, dtype=np.uint8) for b, p in blocks])
    n = neutral.shape[0]
    n_skin = len(skin)
    lid_ids = np.arange(n_skin, n_skin + len(lids))
    lip_ids = np.arange(n_skin + len(lids), n_skin + len(lids) + len(lips))
    teeth_ids = np.flatnonzero(part == 2)
    lower_teeth = teeth_ids[neutral[teeth_ids, 1] < -4.0]

    def smooth_field(scale):
        centres = rng.normal(scale=5.0, size=(4, 3))
        amps = rng.normal(scale=scale, size=(4, 3))
        d = np.linalg.norm(neutral[:, None] - centres[None], axis=2)
        return np.einsum("nk,ka->na", np.exp(-(d / 6.0) ** 2), amps)

    identity = np.stack([smooth_field(0.4) for _ in range(n_identity)])
    identity[:, np.flatnonzero(part == 0)[-len(lids) - len(lips):]] *= 0.1   # lids and lips: small changes
    # eyeballs move rigidly with identity (a translation per eye), so the sphere fit stays exact
    for k, (pid, c) in enumerate(((3, 0), (4, 1))):
        m = part == pid
        shift = rng.normal(scale=0.05, size=(n_identity, 3))
        identity[:, m] = shift[:, None, :]
    expr = np.zeros((len(EXPRESSIONS), n, 3))
    lower_face = (neutral[:, 1] < -2.0) & (part == 0)
    expr[0, lower_face, 1] = -1.0 * (1.0 - (neutral[lower_face, 1] + 2.0) / -7.0).clip(0.3, 1.0)
    expr[0, lower_teeth, 1] = -1.0
    expr[0, lip_ids[neutral[lip_ids, 1] < -4.0], 1] = -1.0
    for e in range(3, 8):
        centre = neutral[rng.integers(0, n_skin)]
        w = np.exp(-(np.linalg.norm(neutral - centre, axis=1) / 2.5) ** 2) * (part == 0)
        w[lid_ids] = 0.0
        w[lip_ids] = 0.0
        expr[e] = w[:, None] * rng.normal(scale=0.6, size=3)
    # no single shape pushes eyelids into the eyeballs or lips into the teeth, but combinations do:
    # each blink, and browInnerUp, pull the lids 0.2 cm towards the eye centre (clearance 0.3 cm);
    # mouthPucker and cheekPuff each push the lips 0.25 cm back (clearance ~0.35 cm)
    for e, c in ((1, EYE_CENTRES[0]), (2, EYE_CENTRES[1])):
        mine = lid_ids[np.linalg.norm(neutral[lid_ids] - c, axis=1) < EYE_RADIUS + 0.5]
        toward = c - neutral[mine]
        expr[e, mine] = 0.2 * toward / np.linalg.norm(toward, axis=1, keepdims=True)
        expr[5, mine] = expr[e, mine]  # (5, 6 and 7 also move other skin: see the loop above)
    expr[6, lip_ids] = [0.0, 0.0, -0.25]
    expr[7, lip_ids] = [0.0, 0.0, -0.25]
    joints = np.array([[0.0, -10.0, -2.0], [0.0, -1.5, -0.5], EYE_CENTRES[0], EYE_CENTRES[1]])
    joints_id = rng.normal(scale=0.1, size=(n_identity, 4, 3))
    for k, pid in ((2, 3), (3, 4)):
        joints_id[:, k] = identity[:, np.flatnonzero(part == pid)[0]]
    weights = np.zeros((n, 4))
    w_head = np.clip((neutral[:, 1] + 9.0) / 4.0, 0.0, 1.0)
    weights[:, 1] = w_head
    weights[:, 0] = 1.0 - w_head
    for k, pid in ((2, 3), (3, 4)):
        m = part == pid
        weights[m] = 0.0
        weights[m, k] = 1.0
    faces = np.array([[0, 1, 12]], dtype=np.int32)
    return HeadModel(neutral.astype(np.float32), identity.astype(np.float32), expr.astype(np.float32),
                     EXPRESSIONS, faces, part, PART_NAMES, np.array([-1, 0, 1, 1], dtype=np.int64),
                     joints.astype(np.float32), joints_id.astype(np.float32), weights.astype(np.float32),
                     np.array([EYE_RADIUS, EYE_RADIUS], dtype=np.float32), "tiny-test")


def landmark_ids(model: HeadModel) -> np.ndarray:
    """Landmark vertices: every other skin vertex, the lips, and a few sclera vertices per eye."""
    skin = np.flatnonzero(model.vertex_part == 0)
    sclera = [np.flatnonzero(model.vertex_part == p)[:6] for p in (3, 4)]
    return np.concatenate([skin[::2], *sclera])
