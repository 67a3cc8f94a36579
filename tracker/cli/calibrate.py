"""``python main.py calibrate``: camera intrinsics from a board or from the face, saved as a camera profile.

    python main.py calibrate --source SRC --method board --board checkerboard:9x6:25mm [--camera-id ID]
    python main.py calibrate --source SRC --method face [--camera-id ID] [--frames N]
    python main.py calibrate --list
    python main.py calibrate --camera-id ID --size WxH --set-hfov DEG | --delete

SRC: a camera index, a video file, or (board only) a folder of images. The profile goes to
``<config>/cameras/<camera-id>_<W>x<H>.json``; a face calibration also writes ``<config>/face_profile.json``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tracker.cli import CommandError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def add_arguments(p) -> None:
    p.add_argument("--source", help="camera index, video file, or a folder of images (board only)")
    p.add_argument("--method", choices=("face", "board"), help="calibrate from the face or from a board")
    p.add_argument("--board", default="checkerboard:9x6:25mm",
                   help="board spec: checkerboard:COLSxROWS:SQUAREmm (inner corners) or "
                        "charuco:COLSxROWS:SQUAREmm:MARKERmm[:DICT] (squares); default checkerboard:9x6:25mm")
    p.add_argument("--camera-id", help="profile name (default: cameraN for a camera index, the file or folder name)")
    p.add_argument("--frames", type=int, default=None,
                   help="most frames to read (default: board 600, face 900; all images of a folder)")
    p.add_argument("--every", type=int, default=None,
                   help="board from a video: use every k-th frame (default 5; 1 for cameras)")
    p.add_argument("--width", type=int, help="camera capture width")
    p.add_argument("--height", type=int, help="camera capture height")
    p.add_argument("--no-save", action="store_true", help="print the result without writing profiles")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--list", action="store_true", help="list the saved camera profiles")
    p.add_argument("--size", help="WxH of the profile to edit or delete (with --camera-id)")
    p.add_argument("--set-hfov", type=float, metavar="DEG", help="set a profile's focal length from a horizontal FOV")
    p.add_argument("--delete", action="store_true", help="delete the profile --camera-id at --size")


def _size(text: str | None) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if m is None:
        raise CommandError(f"--size must look like 640x480, got '{text}'" if text else "--size WxH is needed")
    return int(m.group(1)), int(m.group(2))


def _manage(args) -> int:
    from tracker.camera import profiles

    if args.list:
        found = profiles.list_profiles()
        if not found:
            print(f"no camera profiles in {profiles.cameras_dir()}")
        for prof in found:
            print(prof.summary())
        face = profiles.load_face_profile()
        if face is not None:
            print(f"face profile: {len(face.identity)} identity coefficients, camera {face.camera_id or '?'}, "
                  f"{face.created} ({profiles.face_profile_path()})")
        if args.json:
            print(json.dumps({"profiles": [p.to_json() for p in found]}))
        return 0
    if not args.camera_id:
        raise CommandError("--camera-id is needed to edit or delete a profile")
    w, h = _size(args.size)
    if args.delete:
        if not profiles.delete_profile(args.camera_id, w, h):
            raise CommandError(f"no profile for camera '{args.camera_id}' at {w}x{h} "
                               f"({profiles.profile_path(args.camera_id, w, h)})")
        print(f"deleted the profile of camera '{args.camera_id}' at {w}x{h}")
        return 0
    try:
        prof = profiles.edit_profile(args.camera_id, w, h, hfov_deg=args.set_hfov)
    except (profiles.ProfileError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    print(prof.summary())
    print(f"saved {prof.path}")
    return 0


def _default_camera_id(source: str) -> str:
    from tracker.camera.profiles import camera_id_for_source

    return camera_id_for_source(source)


def _image_folder(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _open(args, intrinsics=None):
    from tracker.camera.sources import SourceError, open_source

    try:
        return open_source(args.source, width=args.width, height=args.height, intrinsics=intrinsics)
    except SourceError as exc:
        raise CommandError(str(exc)) from exc


def _board(args, camera_id: str) -> dict:
    import cv2

    from tracker.camera.board import BoardSpec
    from tracker.camera.calibration import BoardViewCollector, CalibrationError, calibrate_collected
    from tracker.camera.sources import SourceError

    try:
        spec = BoardSpec.parse(args.board)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    collector = BoardViewCollector(spec)
    path = Path(args.source).expanduser()
    max_frames = args.frames
    try:
        if path.is_dir() and not (path / "meta.json").exists():
            files = _image_folder(path)
            if not files:
                raise CommandError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in the folder {path}")
            for f in files[:max_frames] if max_frames else files:
                image = cv2.imread(str(f), cv2.IMREAD_COLOR)
                if image is None:
                    print(f"skipped {f.name}: not a readable image")
                    continue
                state = collector.add(image)
                print(f"{f.name}: {state}")
        else:
            source = _open(args)
            live = bool(getattr(source, "is_live", False))
            every = args.every or (1 if live else 5)
            max_frames = max_frames or 600
            try:
                for i, frame in enumerate(source):
                    if i >= max_frames:
                        break
                    if i % every:
                        continue
                    state = collector.add(frame)
                    if state == "kept":
                        print(f"frame {frame.index}: board view {len(collector.views)} kept")
                    if live and len(collector.views) >= 25:
                        break
            finally:
                source.close()
    except SourceError as exc:
        raise CommandError(str(exc)) from exc
    except CalibrationError as exc:
        raise CommandError(str(exc)) from exc
    try:
        result = calibrate_collected(collector, spec)
    except CalibrationError as exc:
        raise CommandError(str(exc)) from exc
    print(collector.status())
    print(result.summary())
    out = {"method": "board", "camera_id": camera_id, "board": str(spec), **_intrinsics_json(result.intrinsics),
           "rms_reprojection_px": result.rms_reprojection_px, "fx_std_px": result.fx_std_px,
           "n_views": result.n_views, "per_view_errors_px": [float(e) for e in result.per_view_errors]}
    if not args.no_save:
        from tracker.camera import profiles

        prof = profiles.CameraProfile(camera_id, result.intrinsics, "board",
                                      rms_reprojection_px=result.rms_reprojection_px, n_views=result.n_views,
                                      notes=f"{spec}; fx std {result.fx_std_px:.2f} px")
        out["profile"] = str(profiles.save_profile(prof))
        print(f"saved {out['profile']}")
    return out


def _face(args, camera_id: str) -> dict:
    from tracker.camera.face_calibration import FaceCalibrationError, FaceCalibrator, fitter_focal_solver
    from tracker.camera.sources import SourceError

    path = Path(args.source).expanduser()
    if path.is_dir() and not (path / "meta.json").exists():
        raise CommandError("a folder of images works only with --method board; give a video or a camera index")
    try:
        from tracker.pipeline import Pipeline, PipelineError, PipelineOptions
    except ImportError as exc:
        raise CommandError(f"face calibration needs the tracking pipeline: {exc}") from exc
    source = _open(args)
    try:
        try:
            pipeline = Pipeline(PipelineOptions(use_face_profile=False))
        except PipelineError as exc:
            raise CommandError(str(exc)) from exc
        calibrator = FaceCalibrator(fitter_focal_solver(pipeline.fitter))
        last = {"prompt": None}

        def show(update) -> None:
            if update.prompt != last["prompt"] or update.estimate is not None and update.added:
                est = (f", focal {update.estimate.focal_px:.1f} +- {update.estimate.focal_std_px:.1f} px, "
                       f"hfov {update.hfov_deg:.1f} deg" if update.estimate is not None else "")
                print(f"[{100 * update.coverage:3.0f}% covered, {update.n_keyframes} keyframes{est}] {update.prompt}")
                last["prompt"] = update.prompt

        try:
            result = calibrator.run(pipeline.track(source), max_frames=args.frames or 900, on_update=show)
        except FaceCalibrationError as exc:
            raise CommandError(str(exc)) from exc
        except SourceError as exc:
            raise CommandError(str(exc)) from exc
    finally:
        source.close()
    print(result.summary())
    out = {"method": "face", "camera_id": camera_id, **_intrinsics_json(result.intrinsics),
           "focal_px": result.focal_px, "focal_std_px": result.focal_std_px, "n_keyframes": result.n_keyframes,
           "history": [list(h) for h in result.history]}
    if not args.no_save:
        from tracker.camera import profiles

        prof = profiles.CameraProfile(camera_id, result.intrinsics, "face", focal_std_px=result.focal_std_px,
                                      n_views=result.n_keyframes)
        out["profile"] = str(profiles.save_profile(prof))
        face = profiles.FaceProfile(result.identity, getattr(pipeline.model, "version", ""), camera_id,
                                    result.focal_px, result.n_keyframes)
        out["face_profile"] = str(profiles.save_face_profile(face))
        print(f"saved {out['profile']} and {out['face_profile']}")
    return out


def _intrinsics_json(k) -> dict:
    return {"width": k.width, "height": k.height, "fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy,
            "dist_coeffs": list(k.dist_coeffs), "hfov_deg": k.hfov_deg}


def run(args) -> int:
    if args.list or args.delete or args.set_hfov is not None:
        return _manage(args)
    if not args.source:
        raise CommandError("--source is needed (a camera index, a video file, or a folder of board images)")
    if not args.method:
        raise CommandError("--method face or --method board is needed")
    if args.frames is not None and args.frames <= 0:
        raise CommandError(f"--frames must be positive, got {args.frames}")
    if args.every is not None and args.every <= 0:
        raise CommandError(f"--every must be positive, got {args.every}")
    camera_id = args.camera_id or _default_camera_id(args.source)
    out = _board(args, camera_id) if args.method == "board" else _face(args, camera_id)
    if args.json:
        print(json.dumps(out, default=float))
    return 0
