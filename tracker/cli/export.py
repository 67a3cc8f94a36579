"""``python main.py export SESSION --format csv|jsonl|obj [--out PATH]``."""

from __future__ import annotations

from tracker.cli import CommandError


def add_arguments(parser) -> None:
    parser.add_argument("session", help="a recorded session folder")
    parser.add_argument("--format", choices=("csv", "jsonl", "obj"), default="csv",
                        help="csv: Live Link Face layout, one row per frame; jsonl: one JSON object per frame; "
                             "obj: one mesh per tracked frame in a folder (default: csv)")
    parser.add_argument("--out", help="output file (csv, jsonl) or folder (obj); default: inside the session")
    parser.add_argument("--step", type=int, default=1, help="obj: every N-th tracked frame (default 1)")


def run(args) -> int:
    from tracker.session.export import export_session
    from tracker.session.records import SessionError

    if args.step < 1:
        raise CommandError(f"--step must be 1 or more, got {args.step}")
    try:
        path, n = export_session(args.session, args.format, args.out, step=args.step)
    except SessionError as exc:
        raise CommandError(str(exc)) from exc
    what = "meshes" if args.format == "obj" else "rows"
    print(f"wrote {n} {what} to {path}")
    return 0
