"""Axis-angle rotations (Rodrigues' formula) and their derivatives, as pure numpy functions.

The derivative of R = exp([w]x) with respect to the axis-angle vector w is Gallego & Yezzi,
"A compact formula for the derivative of a 3-D rotation in exponential coordinates" (JMIV 2015), Eq. 9:
    dR/dw_i = (w_i [w]x + [w x ((I - R) e_i)]x) R / |w|^2,
with its second-order series about w = 0 for tiny angles.
"""

from __future__ import annotations

import math

import numpy as np

_SMALL = 1e-4
_EYE = np.eye(3)
# [e_i]x for i = 0, 1, 2: (3, 3, 3)
_GENERATORS = np.array([
    [[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]],
    [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [-1.0, 0.0, 0.0]],
    [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
])


def skew(w: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 3, 3) cross-product matrices [w]x."""
    w = np.asarray(w, dtype=np.float64)
    z = np.zeros(w.shape[:-1])
    return np.stack([
        np.stack([z, -w[..., 2], w[..., 1]], -1),
        np.stack([w[..., 2], z, -w[..., 0]], -1),
        np.stack([-w[..., 1], w[..., 0], z], -1),
    ], -2)


def _skew3(x: float, y: float, z: float) -> np.ndarray:
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def rodrigues(w: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) -> rotation matrix (3, 3): R = I + sin(t)/t [w]x + (1 - cos(t))/t^2 [w]x^2, t = |w|."""
    x, y, z = (float(v) for v in w)
    t2 = x * x + y * y + z * z
    if t2 < _SMALL * _SMALL:
        a, b = 1.0 - t2 / 6.0, 0.5 - t2 / 24.0
    else:
        t = math.sqrt(t2)
        a, b = math.sin(t) / t, (1.0 - math.cos(t)) / t2
    # I + a K + b K^2 with K^2 = w w^T - t2 I
    return np.array([
        [1.0 + b * (x * x - t2), b * x * y - a * z, b * x * z + a * y],
        [b * x * y + a * z, 1.0 + b * (y * y - t2), b * y * z - a * x],
        [b * x * z - a * y, b * y * z + a * x, 1.0 + b * (z * z - t2)],
    ])


def rodrigues_jacobian(w: np.ndarray, r: np.ndarray | None = None) -> np.ndarray:
    """dR/dw as (3, 3, 3): ``out[i] = dR/dw_i`` (Gallego & Yezzi 2015, Eq. 9). ``r``: R if already computed."""
    x, y, z = (float(v) for v in w)
    t2 = x * x + y * y + z * z
    k = _skew3(x, y, z)
    if t2 < _SMALL * _SMALL:
        # second-order series of exp: R ~ I + K + K^2 / 2  =>  dR/dw_i ~ G_i + (G_i K + K G_i) / 2
        return _GENERATORS + 0.5 * (_GENERATORS @ k + k @ _GENERATORS)
    if r is None:
        r = rodrigues(w)
    wv = np.array([x, y, z])
    i_minus_r = _EYE - r                       # columns (I - R) e_i
    c = np.cross(wv, i_minus_r.T)              # (3, 3): row i = w x ((I - R) e_i)
    m = np.empty((3, 3, 3))
    for i in range(3):
        m[i] = wv[i] * k + _skew3(c[i, 0], c[i, 1], c[i, 2])
    return (m @ r) / t2


def rotation_log(r: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) -> axis-angle (3,), the inverse of :func:`rodrigues` (angle in [0, pi])."""
    r = np.asarray(r, dtype=np.float64)
    cos_t = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
    t = float(np.arccos(cos_t))
    v = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    if t < 1e-6:
        return 0.5 * v
    if np.pi - t < 1e-4:
        # near pi: axis from the symmetric part
        b = (r + _EYE) / 2.0
        axis = b[int(np.argmax(np.diag(b)))]
        axis = axis / np.linalg.norm(axis)
        if axis @ v < 0:
            axis = -axis
        return t * axis
    return t / (2.0 * np.sin(t)) * v


def geodesic_deg(r_a: np.ndarray, r_b: np.ndarray) -> float:
    """Angle (degrees) of R_a^T R_b, the geodesic distance between two rotations (3, 3)."""
    c = np.clip((np.trace(np.asarray(r_a).T @ np.asarray(r_b)) - 1.0) / 2.0, -1.0, 1.0)
    return float(np.degrees(np.arccos(c)))


def left_jacobian(w: np.ndarray) -> np.ndarray:
    """The left Jacobian J_l (3, 3) of SO(3): d exp([w + e]x) / de = [J_l(w) e]x exp([w]x) at e = 0, so
    d(R p)/dw = -[R p]x J_l(w).  J_l = I + (1 - cos t)/t^2 [w]x + (t - sin t)/t^3 [w]x^2."""
    x, y, z = (float(v) for v in w)
    t2 = x * x + y * y + z * z
    if t2 < _SMALL * _SMALL:
        a, b = 0.5 - t2 / 24.0, 1.0 / 6.0 - t2 / 120.0
    else:
        t = math.sqrt(t2)
        a, b = (1.0 - math.cos(t)) / t2, (t - math.sin(t)) / (t2 * t)
    return np.array([
        [1.0 + b * (x * x - t2), b * x * y - a * z, b * x * z + a * y],
        [b * x * y + a * z, 1.0 + b * (y * y - t2), b * y * z - a * x],
        [b * x * z - a * y, b * y * z + a * x, 1.0 + b * (z * z - t2)],
    ])
