"""``python -m tracker.training.data build|correspondence`` (see the package docstring)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tracker.training.data",
                                     description="Build the landmark network's training data.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="pseudo-labelled real images and synthetic renders")
    b.add_argument("--out", type=Path, default=None, help="output folder (default: cache dir / training)")
    b.add_argument("--data", default=None, help="a folder laid out like ../shared/data, or 'none'")
    b.add_argument("--images", type=Path, action="append", default=[], help="a folder of images (repeatable)")
    b.add_argument("--only", choices=("real", "synthetic"), default=None)
    b.add_argument("--limit", type=int, default=None, help="at most N images per real source")
    b.add_argument("--synthetic-train", type=int, default=3000)
    b.add_argument("--synthetic-val", type=int, default=300)
    b.add_argument("--seed", type=int, default=0)
    sub.add_parser("correspondence", help="rebuild the committed MediaPipe-to-ICT correspondence")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    if args.command == "correspondence":
        from tracker.training.data.correspondence import CORRESPONDENCE_FILE, build_correspondence, save_correspondence

        corr, report = build_correspondence()
        save_correspondence(corr)
        print(f"wrote {CORRESPONDENCE_FILE}: mean surface distance {report['surface_distance_mm_mean']:.2f} mm, "
              f"anatomical pairs {report['anatomical_error_mm']} mm")
        return 0

    from tracker import paths
    from tracker.training.data import default_root
    from tracker.training.data.build import BuildOptions, build_all

    if args.data is None:
        data = paths.data_dir()
    elif args.data.lower() == "none":
        data = None
    else:
        data = Path(args.data)
        if not data.is_dir():
            print(f"error: data folder not found: {data}", file=sys.stderr)
            return 2
    for folder in args.images:
        if not folder.is_dir():
            print(f"error: image folder not found: {folder}", file=sys.stderr)
            return 2
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    opts = BuildOptions(out=(args.out or default_root()).resolve(), data=data, images=args.images,
                        limit=args.limit, synthetic_train=args.synthetic_train,
                        synthetic_val=args.synthetic_val, seed=args.seed)
    try:
        written = build_all(opts, args.only)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
