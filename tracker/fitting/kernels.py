"""Compiled (numba) kernels of the tracking hot path: the landmark evaluation with its per-frame Jacobian,
the bounded Levenberg-Marquardt step, the landmark cost with its gradient J^T W r, and the row scaling
sqrt(W) J before the one J^T W J product (BLAS syrk, which stays in scipy).

Why compiled: :func:`tracker.fitting.landmark_model.evaluate` is about sixty numpy calls on arrays of a few
hundred rows, and a numpy call costs a few microseconds however small its array, so in numpy one evaluation
with Jacobian costs 0.3-0.45 ms and one bounded step 0.2 ms: most of a 2.4 ms frame. The kernels do the same
arithmetic in one pass over the landmarks (skipping the expressions a landmark does not depend on: the static
sparsity of the paper, Sec. 3.3), and are tested against the numpy reference (``tests/test_fit_kernels.py``).

The numpy functions stay the reference and serve the batch modes (identity and focal Jacobians).
Compiled once per machine and cached on disk (``cache=True``); ``FaceFitter`` loads them when it is made
(``FaceFitter._warm_up``), so the first frame does not wait for the compiler.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_SMALL = 1e-4


def _jit(fn):
    """``njit`` with numba's on-disk cache; without it where numba finds no writable cache folder (it then
    compiles once per process instead)."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return njit(nogil=True)(fn)


@_jit
def _rod_coeffs(x, y, z):
    t2 = x * x + y * y + z * z
    if t2 < _SMALL * _SMALL:
        return t2, 1.0 - t2 / 6.0, 0.5 - t2 / 24.0
    t = math.sqrt(t2)
    return t2, math.sin(t) / t, (1.0 - math.cos(t)) / t2


@_jit
def _left_coeffs(x, y, z):
    t2 = x * x + y * y + z * z
    if t2 < _SMALL * _SMALL:
        return t2, 0.5 - t2 / 24.0, 1.0 / 6.0 - t2 / 120.0
    t = math.sqrt(t2)
    return t2, (1.0 - math.cos(t)) / t2, (t - math.sin(t)) / (t2 * t)


@_jit
def _so3(out, w, left):
    """out (3, 3) = I + a [w]x + b [w]x^2: Rodrigues' R (``left`` False) or the left Jacobian J_l (True)."""
    x, y, z = w[0], w[1], w[2]
    if left:
        t2, a, b = _left_coeffs(x, y, z)
    else:
        t2, a, b = _rod_coeffs(x, y, z)
    out[0, 0] = 1.0 + b * (x * x - t2)
    out[0, 1] = b * x * y - a * z
    out[0, 2] = b * x * z + a * y
    out[1, 0] = b * x * y + a * z
    out[1, 1] = 1.0 + b * (y * y - t2)
    out[1, 2] = b * y * z - a * x
    out[2, 0] = b * x * z - a * y
    out[2, 1] = b * y * z + a * x
    out[2, 2] = 1.0 + b * (z * z - t2)


@_jit
def _mat3(out, a, b):
    for i in range(3):
        for j in range(3):
            out[i, j] = a[i, 0] * b[0, j] + a[i, 1] * b[1, j] + a[i, 2] * b[2, j]


@_jit
def _vec3(out, a, v):
    for i in range(3):
        out[i] = a[i, 0] * v[0] + a[i, 1] * v[1] + a[i, 2] * v[2]


@_jit
def evaluate_frame(psi, root_rotation, translation_mm, theta, shape_cm, joints_cm, exp_basis, exp_cols,
                   exp_count, skin_weights, subtree_weights, parents, model_to_camera_mm, fx, fy, cx, cy,
                   jacobian, uv, x_mm, jac):
    """The numpy :func:`~tracker.fitting.landmark_model.evaluate` (same formulas, same column order of the
    per-frame Jacobian: expression, root, translation, joints), written into ``uv`` (L, 2), ``x_mm`` (L, 3)
    and, when ``jacobian``, ``jac`` (L, 2, n_exp + 6 + 3K).

    ``exp_cols`` (L, m) / ``exp_count`` (L,): the expressions each landmark depends on (static sparsity);
    the other expression columns of ``jac`` are written as 0. ``theta``: (K, 3) joint axis-angles."""
    n = shape_cm.shape[0]
    k_count = parents.shape[0]
    n_exp = psi.shape[0]
    # forward kinematics: G_k = G_parent(k) [R_k | J_k - R_k J_k] as a (K, 3, 3), b (K, 3)
    a = np.empty((k_count, 3, 3))
    b = np.empty((k_count, 3))
    rot = np.empty((3, 3))
    tmp = np.empty((3, 3))
    loc_t = np.empty(3)
    v3 = np.empty(3)
    for k in range(k_count):
        _so3(rot, theta[k], False)
        _vec3(v3, rot, joints_cm[k])
        for i in range(3):
            loc_t[i] = joints_cm[k, i] - v3[i]
        p = parents[k]
        if p < 0:
            a[k] = rot
            b[k] = loc_t
        else:
            _mat3(a[k], a[p], rot)
            _vec3(v3, a[p], loc_t)
            for i in range(3):
                b[k, i] = v3[i] + b[p, i]
    # C = 10 R0 M; joint maps in camera space C_m = C A_m, d_m = C b_m
    r0 = np.empty((3, 3))
    _so3(r0, root_rotation, False)
    cam = np.empty((3, 3))
    _mat3(cam, r0, model_to_camera_mm)
    c_m = np.empty((k_count, 3, 3))
    d_m = np.empty((k_count, 3))
    for k in range(k_count):
        _mat3(c_m[k], cam, a[k])
        _vec3(d_m[k], cam, b[k])
    # lever-arm anchors (C G_parent(k) J_k) and rotation maps -R'_r J_l(theta_r) (r = 0: root, r = k + 1)
    joint_cam = np.empty((k_count, 3))
    rot_maps = np.empty((k_count + 1, 3, 3))
    if jacobian:
        _so3(tmp, root_rotation, True)
        for i in range(3):
            for j in range(3):
                rot_maps[0, i, j] = -tmp[i, j]
        apar = np.empty((3, 3))
        jl = np.empty((3, 3))
        for k in range(k_count):
            p = parents[k]
            if p >= 0:
                _vec3(v3, a[p], joints_cm[k])
                for i in range(3):
                    v3[i] += b[p, i]
                _mat3(apar, cam, a[p])
            else:
                for i in range(3):
                    v3[i] = joints_cm[k, i]
                for i in range(3):
                    for j in range(3):
                        apar[i, j] = cam[i, j]
            _vec3(joint_cam[k], cam, v3)
            _so3(jl, theta[k], True)
            _mat3(tmp, apar, jl)
            for i in range(3):
                for j in range(3):
                    rot_maps[k + 1, i, j] = -0.1 * tmp[i, j]
    t_rest = np.empty(3)
    s = np.empty((k_count, 3))
    y = np.empty(3)
    cb = np.empty((3, 3))
    q = np.empty((2, 3))
    u = np.empty(3)
    cr = np.empty((2, 3))
    for l in range(n):
        # rest shape T = neutral + B_id beta (precomputed) + B_exp psi over the landmark's expressions
        t_rest[0] = shape_cm[l, 0]
        t_rest[1] = shape_cm[l, 1]
        t_rest[2] = shape_cm[l, 2]
        for c in range(exp_count[l]):
            e = exp_cols[l, c]
            pe = psi[e]
            if pe != 0.0:
                t_rest[0] += exp_basis[l, 0, e] * pe
                t_rest[1] += exp_basis[l, 1, e] * pe
                t_rest[2] += exp_basis[l, 2, e] * pe
        # linear blend skinning in camera space, with the subtree sums S_k of w_m (C_m T + d_m)
        xr0 = 0.0
        xr1 = 0.0
        xr2 = 0.0
        for k in range(k_count):
            w = skin_weights[l, k]
            if w != 0.0:
                _vec3(y, c_m[k], t_rest)
                s[k, 0] = w * (y[0] + d_m[k, 0])
                s[k, 1] = w * (y[1] + d_m[k, 1])
                s[k, 2] = w * (y[2] + d_m[k, 2])
                xr0 += s[k, 0]
                xr1 += s[k, 1]
                xr2 += s[k, 2]
            else:
                s[k, 0] = 0.0
                s[k, 1] = 0.0
                s[k, 2] = 0.0
        x0 = xr0 + translation_mm[0]
        x1 = xr1 + translation_mm[1]
        x2 = xr2 + translation_mm[2]
        x_mm[l, 0] = x0
        x_mm[l, 1] = x1
        x_mm[l, 2] = x2
        inv_z = 1.0 / x2
        xn = x0 * inv_z
        yn = x1 * inv_z
        uv[l, 0] = fx * xn + cx
        uv[l, 1] = fy * yn + cy
        if not jacobian:
            continue
        for k in range(k_count - 1, -1, -1):
            p = parents[k]
            if p >= 0:
                s[p, 0] += s[k, 0]
                s[p, 1] += s[k, 1]
                s[p, 2] += s[k, 2]
        pa = fx * inv_z
        pb = fy * inv_z
        pc = -xn * pa
        pd = -yn * pb
        # d uv / d psi = P C_blend B_exp, C_blend = sum_m w_m C_m
        for i in range(3):
            for j in range(3):
                cb[i, j] = 0.0
        for k in range(k_count):
            w = skin_weights[l, k]
            if w != 0.0:
                for i in range(3):
                    for j in range(3):
                        cb[i, j] += w * c_m[k, i, j]
        for j in range(3):
            q[0, j] = pa * cb[0, j] + pc * cb[2, j]
            q[1, j] = pb * cb[1, j] + pd * cb[2, j]
        for e in range(n_exp):
            jac[l, 0, e] = 0.0
            jac[l, 1, e] = 0.0
        for c in range(exp_count[l]):
            e = exp_cols[l, c]
            bx = exp_basis[l, 0, e]
            by = exp_basis[l, 1, e]
            bz = exp_basis[l, 2, e]
            jac[l, 0, e] = q[0, 0] * bx + q[0, 1] * by + q[0, 2] * bz
            jac[l, 1, e] = q[1, 0] * bx + q[1, 1] * by + q[1, 2] * bz
        # d uv / d t = P
        jac[l, 0, n_exp + 3] = pa
        jac[l, 0, n_exp + 4] = 0.0
        jac[l, 0, n_exp + 5] = pc
        jac[l, 1, n_exp + 3] = 0.0
        jac[l, 1, n_exp + 4] = pb
        jac[l, 1, n_exp + 5] = pd
        # rotations: rows of P [u]x times -R'_r J_l(theta_r), u the lever arm of rotation r
        for r in range(k_count + 1):
            if r == 0:
                u[0] = xr0
                u[1] = xr1
                u[2] = xr2
                col = n_exp
            else:
                sw = subtree_weights[l, r - 1]
                u[0] = s[r - 1, 0] - sw * joint_cam[r - 1, 0]
                u[1] = s[r - 1, 1] - sw * joint_cam[r - 1, 1]
                u[2] = s[r - 1, 2] - sw * joint_cam[r - 1, 2]
                col = n_exp + 6 + 3 * (r - 1)
            cr[0, 0] = -pc * u[1]
            cr[0, 1] = pc * u[0] - pa * u[2]
            cr[0, 2] = pa * u[1]
            cr[1, 0] = pb * u[2] - pd * u[1]
            cr[1, 1] = pd * u[0]
            cr[1, 2] = -pb * u[0]
            for i in range(2):
                for j in range(3):
                    jac[l, i, col + j] = (cr[i, 0] * rot_maps[r, 0, j] + cr[i, 1] * rot_maps[r, 1, j]
                                          + cr[i, 2] * rot_maps[r, 2, j])


@_jit
def _cholesky_solve_inplace(a, rhs):
    """Solve a x = rhs for symmetric positive definite ``a`` (lower Cholesky, a overwritten); returns
    False when ``a`` is not positive definite (``rhs`` then holds garbage)."""
    n = a.shape[0]
    for j in range(n):
        d = a[j, j]
        for k in range(j):
            d -= a[j, k] * a[j, k]
        if not d > 0.0:
            return False
        d = math.sqrt(d)
        a[j, j] = d
        inv = 1.0 / d
        for i in range(j + 1, n):
            v = a[i, j]
            for k in range(j):
                v -= a[i, k] * a[j, k]
            a[i, j] = v * inv
    for i in range(n):
        v = rhs[i]
        for k in range(i):
            v -= a[i, k] * rhs[k]
        rhs[i] = v / a[i, i]
    for i in range(n - 1, -1, -1):
        v = rhs[i]
        for k in range(i + 1, n):
            v -= a[k, i] * rhs[k]
        rhs[i] = v / a[i, i]
    return True


@_jit
def bounded_step(h, g, exp_pos, psi, lam, d):
    """(H + lam diag H) d = -g with psi + d kept in [0, 1] (primal active set, as
    ``FaceFitter._bounded_step``): a psi at a bound whose gradient points outwards is held; a free psi whose
    step would leave the box is fixed at the bound and the rest solved again, at most 4 times.
    ``exp_pos``: positions of the expressions among H's columns; ``psi`` their values. Writes ``d``;
    returns False when a reduced system is not positive definite."""
    n = h.shape[0]
    m = exp_pos.shape[0]
    fixed = np.zeros(n, dtype=np.bool_)
    for i in range(m):
        pi = exp_pos[i]
        gi = g[pi]
        if (psi[i] <= 0.0 and gi > 0.0) or (psi[i] >= 1.0 and gi < 0.0):
            fixed[pi] = True
    for i in range(n):
        d[i] = 0.0
    free = np.empty(n, dtype=np.int64)
    hd = np.empty((n, n))
    rhs = np.empty(n)
    for _ in range(4):
        nf = 0
        for i in range(n):
            if not fixed[i]:
                free[nf] = i
                nf += 1
        for ii in range(nf):
            fi = free[ii]
            v = -g[fi]
            for j in range(n):
                if fixed[j]:
                    v -= h[fi, j] * d[j]
            rhs[ii] = v
            for jj in range(ii + 1):
                hd[ii, jj] = h[fi, free[jj]]
            diag = h[fi, fi]
            hd[ii, ii] += lam * (diag if diag > 1e-9 else 1e-9)
        if not _cholesky_solve_inplace(hd[:nf, :nf], rhs[:nf]):
            return False
        for ii in range(nf):
            d[free[ii]] = rhs[ii]
        viol = False
        for i in range(m):
            pi = exp_pos[i]
            if not fixed[pi]:
                nv = psi[i] + d[pi]
                if nv < 0.0 or nv > 1.0:
                    viol = True
                    fixed[pi] = True
                    d[pi] = min(max(nv, 0.0), 1.0) - psi[i]
        if not viol:
            break
    return True



@_jit
def scale_rows(jf, row_w, out):
    """out = jf * row_w[:, None]: sqrt(W) J for J^T W J as one syrk."""
    for r in range(jf.shape[0]):
        w = row_w[r]
        for c in range(jf.shape[1]):
            out[r, c] = jf[r, c] * w


@_jit
def landmark_terms(uv, mu, w, uv_prev, w_temporal, jf, g):
    """E_landmarks (+ E_temporal when ``w_temporal`` > 0) and its gradient: returns
    cost = sum_l w_l |uv_l - mu_l|^2 + w_t |uv_l - uv_prev_l|^2 and writes g = J^T e with
    e = w_l (uv_l - mu_l) + w_t (uv_l - uv_prev_l) (half the gradient, as in E = |r|^2)."""
    n = uv.shape[0]
    na = jf.shape[1]
    for c in range(na):
        g[c] = 0.0
    cost = 0.0
    for l in range(n):
        for a in range(2):
            r = uv[l, a] - mu[l, a]
            e = w[l] * r
            cost += e * r
            if w_temporal > 0.0:
                d = uv[l, a] - uv_prev[l, a]
                cost += w_temporal * d * d
                e += w_temporal * d
            if e != 0.0:
                row = 2 * l + a
                for c in range(na):
                    g[c] += e * jf[row, c]
    return cost
