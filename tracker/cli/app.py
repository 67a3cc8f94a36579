"""``python main.py [app] [--source SPEC]``: the desktop app (camera if there is one, else the demo)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--source", metavar="SPEC", default=None,
                        help="camera index, video file, session folder or 'demo' "
                             "(default: the last camera, else the first camera, else the demo)")


def run(args) -> int:
    from tracker.gui.app import run_app

    return run_app(getattr(args, "source", None))
