"""The command line of DESIGN.md.

Each command is a module ``tracker.cli.<name>`` with ``add_arguments(parser)`` and ``run(args) -> int``.
Modules keep heavy imports (cv2, onnxruntime, mediapipe, Qt) inside ``run`` so ``--help`` stays instant.
A command whose module is not written yet is still listed and says so with exit status 2.
"""

from __future__ import annotations

import argparse
import os
import importlib
import logging
import sys

#: name -> one-line help. The app is the default when no command is given.
COMMANDS: dict[str, str] = {
    "app": "the desktop app (default): camera if there is one, else a built-in demo source",
    "track": "headless tracking: video file / camera index / session -> session folder",
    "landmarks": "per image: the 320 landmarks and sigmas in px, and the fitted model's 68 iBUG points",
    "calibrate": "camera focal length from the face or a checkerboard / ChArUco board",
    "export": "export a recorded session as csv, jsonl or obj",
    "model": "build (once) and inspect the ICT-FaceKit head model cache",
    "bench": "benchmarks: model, fit, landmarks, pipeline, calibrate",
}


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 1 (or ``status``)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def _load(name: str):
    try:
        return importlib.import_module(f"tracker.cli.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"tracker.cli.{name}":
            return None
        raise


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="main.py", description="Real-time dense-landmark 3D face tracker.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--precision", choices=("auto", "int8", "float"), default=None,
                        help="landmark network: the 8-bit copy (int8), the float model, or auto (default: 8-bit on "
                             "CPUs with 8-bit dot products, VNNI or 64-bit ARM); same as TRACKER_PRECISION")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, object] = {}
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        module = _load(name)
        modules[name] = module
        if module is not None:
            module.add_arguments(p)
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    name = args.command or "app"
    if args.precision:
        os.environ["TRACKER_PRECISION"] = args.precision  # read by every LandmarkPredictor the command makes
    from tracker.threads import limit_blas_threads

    limit_blas_threads(1)  # small BLAS calls: a second thread only busy-waits (tracker/threads.py)
    module = modules.get(name)
    if module is None:
        print(f"main.py {name}: not implemented yet", file=sys.stderr)
        return 2
    try:
        return int(module.run(args) or 0)
    except CommandError as exc:
        print(f"main.py {name}: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print(f"main.py {name}: interrupted", file=sys.stderr)
        return 130
