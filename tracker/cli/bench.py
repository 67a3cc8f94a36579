"""``python main.py bench {model,fit,landmarks,pipeline,calibrate} [--json]``.

Each benchmark is a module with ``add_arguments(parser)`` and ``run(args) -> dict`` (its results, JSON-able).
This command prints the results readably and, with ``--json``, one JSON object as the last line.
Benchmarks pin numpy/BLAS/onnxruntime to one thread themselves where the issue asks for one thread.
"""

from __future__ import annotations

import importlib
import json
import sys

from tracker.cli import CommandError

#: benchmark -> module that implements it
BENCHMARKS = {
    "model": "tracker.face.bench",
    "fit": "tracker.fitting.bench",
    "landmarks": "tracker.landmarks.bench",
    "pipeline": "tracker.pipeline_bench",
    "calibrate": "tracker.camera.calibration_bench",
}


def _load(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, module_name in BENCHMARKS.items():
        p = sub.add_parser(name, help=f"benchmark: {name}")
        p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
        module = _load(module_name)
        if module is not None:
            module.add_arguments(p)


def _print_readable(obj, indent: int = 0) -> None:
    pad = "  " * indent
    for key, value in obj.items():
        if isinstance(value, dict):
            print(f"{pad}{key}:")
            _print_readable(value, indent + 1)
        elif isinstance(value, float):
            print(f"{pad}{key}: {value:.4g}")
        else:
            print(f"{pad}{key}: {value}")


def run(args) -> int:
    module = _load(BENCHMARKS[args.benchmark])
    if module is None:
        raise CommandError(f"benchmark '{args.benchmark}' is not implemented yet", status=2)
    results = module.run(args)
    _print_readable(results)
    if args.json:
        sys.stdout.flush()
        print(json.dumps(results, default=float))
    return 0
