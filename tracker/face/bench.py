"""``python main.py bench model [--rebuild] [--ict PATH] [--repeats N] [--json]``: head-model timings.

Build time (with --rebuild), cache load time, and the numpy forward model: the full posed mesh with a fixed
identity (tracking: the identity shape is reused), with a new identity each call, and 320 landmark vertices
through the generic ``vertex_ids`` path. Run with ``OMP_NUM_THREADS=1`` for one-thread figures (numpy's BLAS
reads it at start-up).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np


def add_arguments(parser) -> None:
    parser.add_argument("--rebuild", action="store_true", help="time a full build from ICT-FaceKit first")
    parser.add_argument("--ict", type=Path, metavar="PATH", help="ICT-FaceKit source for --rebuild")
    parser.add_argument("--repeats", type=int, default=50, help="forward calls timed (median reported)")


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def run(args) -> dict:
    from tracker.cli import CommandError
    from tracker.face.build import load_head_model
    from tracker.face.forward import posed_vertices
    from tracker.face.landmark_sets import load_landmark_set
    from tracker.types import FitParams

    results: dict = {"blas_threads_env": os.environ.get("OMP_NUM_THREADS", "unset")}
    try:
        if getattr(args, "rebuild", False):
            t0 = time.perf_counter()
            load_head_model(args.ict, rebuild=True)
            results["build_s"] = time.perf_counter() - t0
        loads = []
        for _ in range(3):
            t0 = time.perf_counter()
            model = load_head_model(getattr(args, "ict", None))
            loads.append(time.perf_counter() - t0)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    results["load_s"] = float(np.median(loads))
    results["vertices"] = model.n_vertices
    rng = np.random.default_rng(0)
    repeats = getattr(args, "repeats", 50)
    expression = rng.uniform(0.0, 1.0, model.n_expression) * (rng.uniform(size=model.n_expression) < 0.4)
    params = FitParams.neutral(model.n_identity, model.n_expression, 800.0).replace(
        identity=rng.normal(size=model.n_identity), expression=expression,
        joints=rng.normal(size=(4, 3)) * 0.1, root_rotation=rng.normal(size=3) * 0.2)
    results["forward_full_ms"] = _median_ms(lambda: posed_vertices(model, params), repeats)
    identities = iter(rng.normal(size=(repeats + 2, model.n_identity)))
    results["forward_full_new_identity_ms"] = _median_ms(
        lambda: posed_vertices(model, params.replace(identity=next(identities))), repeats)
    ids = load_landmark_set("landmarks320").vertex_ids
    results["forward_320_vertex_ids_ms"] = _median_ms(lambda: posed_vertices(model, params, ids), repeats)
    return results
