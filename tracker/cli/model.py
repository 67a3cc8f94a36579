"""``python main.py model [--ict PATH] [--rebuild] [--obj FILE] [--figures DIR] [--check-landmarks]``."""

from __future__ import annotations

from pathlib import Path

from tracker.cli import CommandError


def add_arguments(parser) -> None:
    parser.add_argument("--ict", type=Path, metavar="PATH",
                        help="ICT-FaceKit FaceXModel folder or FaceXModel.tar.xz to build from when the cache "
                             "is missing or with --rebuild (default: TRACKER_ICT, else "
                             "<data>/ict-facekit/FaceXModel.tar.xz, else a download)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cache even if it exists")
    parser.add_argument("--cache-dir", type=Path, metavar="DIR",
                        help="cache directory (default: TRACKER_CACHE or the user cache directory)")
    parser.add_argument("--obj", type=Path, metavar="FILE",
                        help="also write the neutral head (model space, millimetres) as an OBJ file")
    parser.add_argument("--figures", type=Path, metavar="DIR",
                        help="also draw both landmark sets on the head (landmarks_front.png, landmarks_side.png)")
    parser.add_argument("--check-landmarks", action="store_true",
                        help="check that the documented procedure still makes the frozen landmark sets")


def run(args) -> int:
    import time

    import numpy as np

    from tracker.face.build import cache_path, load_head_model
    from tracker.face.landmark_sets import SET_NAMES, check_against_model, load_landmark_set

    path = cache_path(args.cache_dir)
    will_build = args.rebuild or not path.is_file()
    if args.ict is not None and not args.ict.exists():
        raise CommandError(f"--ict {args.ict}: no such file or folder")
    t0 = time.perf_counter()
    try:
        model = load_head_model(args.ict, cache_dir=args.cache_dir, rebuild=args.rebuild)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    seconds = time.perf_counter() - t0
    if will_build:
        t1 = time.perf_counter()
        load_head_model(cache_dir=args.cache_dir)
        print(f"built the head model in {seconds:.2f} s; the cache loads in {time.perf_counter() - t1:.3f} s")
    else:
        print(f"loaded the head model cache in {seconds:.3f} s")
    print(f"cache: {path} ({path.stat().st_size / 1e6:.1f} MB, version {model.version})")
    print(f"vertices: {model.n_vertices}, triangles: {model.faces.shape[0]}, identity modes: {model.n_identity}, "
          f"expressions: {model.n_expression}")
    counts = np.bincount(model.vertex_part, minlength=len(model.part_names))
    print("parts: " + ", ".join(f"{n} {c}" for n, c in zip(model.part_names, counts)))
    names = ("neck", "head", "eye_L", "eye_R")
    print("joints (cm): " + ", ".join(f"{n} ({', '.join(f'{x:.2f}' for x in j)})"
                                      for n, j in zip(names, model.joints_neutral_cm)))
    print(f"eyeball radius (cm): {model.eye_radius_cm[0]:.3f} / {model.eye_radius_cm[1]:.3f}")
    sets = []
    for name in SET_NAMES:
        try:
            lms = load_landmark_set(name)
            check_against_model(lms, model)
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        sets.append(lms)
        print(f"landmark set {name}: {len(lms)} landmarks, {len(set(lms.regions))} regions")
    if args.check_landmarks:
        from tracker.face.landmark_sets import make_landmarks68, make_landmarks320

        for made, frozen in zip((make_landmarks320(model), make_landmarks68(model)), sets):
            same = (np.array_equal(made.vertex_ids, frozen.vertex_ids) and made.names == frozen.names
                    and np.array_equal(made.mirror, frozen.mirror))
            if not same:
                raise CommandError(f"the procedure no longer makes the frozen {frozen.name}")
            print(f"{frozen.name}: the procedure reproduces the frozen file")
    if args.obj is not None:
        from tracker.face.obj_export import write_obj

        write_obj(args.obj, model.neutral_cm * 10.0, model.faces, comment="ICT-FaceKit neutral head, model space")
        print(f"wrote {args.obj}")
    if args.figures is not None:
        from tracker.face.figures import plot_landmark_sets

        for view in ("front", "side"):
            out = plot_landmark_sets(model, sets, view, args.figures / f"landmarks_{view}.png")
            print(f"wrote {out}")
    return 0
