"""Camera calibration from a planar board (Zhang's method via ``cv2.calibrateCamera``) and undistortion.

Flow: :class:`BoardViewCollector` detects the board per image and keeps a view only when it is not a
near-duplicate of one already kept (same corners within ``min_view_change`` of the image diagonal), then
:func:`calibrate_board` checks the view set (enough views, enough tilt and tilt variety, otherwise the focal
length is not observable: Zhang 2000, Sec. 3.3, parallel planes give no new constraint) and runs
``cv2.calibrateCamera`` (fx, fy, cx, cy, k1, k2, p1, p2; k3 only on request).

Undistortion (the tracker's choice): the landmark network sees the raw frame and its landmark points are
undistorted with ``cv2.undistortPoints`` before fitting, against the pinhole camera of the same K. That costs
~20 us for 320 points, against ~1 ms to remap a 640x480 frame, and webcam distortion is nearly constant over the
small face crop the network sees. The fitter does this itself whenever ``Intrinsics.dist_coeffs`` are non-zero
(``tracker.fitting.solver``: landmarks undistorted on input, the model's projections distorted on output), so
the pipeline passes raw landmarks and a calibrated profile's intrinsics unchanged. :func:`undistort_points`,
:func:`undistort_landmarks` and :func:`pinhole` are for other consumers (exports of undistorted 2D points);
:class:`FrameUndistorter` (precomputed ``cv2.remap`` tables) is there for displays that want straight lines.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from tracker.camera.board import BoardDetection, BoardSpec, detect_board
from tracker.types import Frame, Intrinsics, Landmarks

log = logging.getLogger(__name__)


class CalibrationError(ValueError):
    """A calibration that cannot be done with the given views; the message says what to do."""


@dataclass(frozen=True)
class BoardCalibrationOptions:
    """min_views: views needed; max_views: views used (the most varied); min_view_change: a view is a near-duplicate
    when its corners moved less than this fraction of the image diagonal (mean) from a kept view's;
    min_tilt_deg: some view must tilt the board at least this much; min_tilt_spread_deg: board normals must
    differ by at least this much between some two views; fix_k3 / zero_tangent / fix_aspect / fix_principal_point:
    constrain the distortion and intrinsic model (``cv2.CALIB_*``); min_corners: ChArUco corners a view needs."""

    min_views: int = 6
    max_views: int = 40
    min_view_change: float = 0.03
    min_tilt_deg: float = 8.0
    min_tilt_spread_deg: float = 10.0
    fix_k3: bool = True
    zero_tangent: bool = False
    fix_aspect: bool = False
    fix_principal_point: bool = False
    min_corners: int = 8


@dataclass(frozen=True, eq=False)
class BoardCalibration:
    """The result: intrinsics (with dist_coeffs k1, k2, p1, p2, k3), RMS reprojection error in px over all corners,
    per_view_errors (n_views,) RMS px per view, n_views used, tilts_deg (n_views,) board tilt per view, and the
    1-sigma uncertainty of fx and fy in px from OpenCV's std estimate."""

    intrinsics: Intrinsics
    rms_reprojection_px: float
    per_view_errors: np.ndarray
    n_views: int
    tilts_deg: np.ndarray
    fx_std_px: float = float("nan")
    fy_std_px: float = float("nan")
    board: str = ""

    @property
    def hfov_deg(self) -> float:
        return self.intrinsics.hfov_deg

    def summary(self) -> str:
        k = self.intrinsics
        dist = ", ".join(f"{c:+.4f}" for c in k.dist_coeffs)
        return (f"fx={k.fx:.2f} fy={k.fy:.2f} (std {self.fx_std_px:.2f}, {self.fy_std_px:.2f}) px, "
                f"cx={k.cx:.2f} cy={k.cy:.2f} px, dist=[{dist}], hfov={k.hfov_deg:.2f} deg, "
                f"RMS reprojection {self.rms_reprojection_px:.3f} px over {self.n_views} views")


# ----------------------------------------------------------------------------------------------------------
# View collection


def _view_change(a: BoardDetection, b: BoardDetection) -> float:
    """Mean corner displacement between two detections over their shared corners, in px (inf when none shared)."""
    common, ia, ib = np.intersect1d(a.ids, b.ids, return_indices=True)
    if len(common) < 4:
        return float("inf")
    d = np.linalg.norm(a.image_points[ia] - b.image_points[ib], axis=1).mean()
    # A checkerboard found rotated by 180 degrees is the same view: compare against the reversed order too.
    if len(a.ids) == len(b.ids) and np.array_equal(a.ids, np.arange(len(a.ids))):
        d = min(d, np.linalg.norm(a.image_points - b.image_points[::-1], axis=1).mean())
    return float(d)


class BoardViewCollector:
    """Collects board views from images, skipping images without the board and near-duplicate views.

    ``add(image)`` returns a short status string; counters ``n_images``, ``n_detected``, ``n_duplicates``.
    """

    def __init__(self, spec: BoardSpec, options: BoardCalibrationOptions | None = None):
        self.spec = spec
        self.options = options or BoardCalibrationOptions()
        self.views: list[BoardDetection] = []
        self.image_size: tuple[int, int] | None = None
        self.n_images = 0
        self.n_detected = 0
        self.n_duplicates = 0
        self.last_detection: BoardDetection | None = None

    def add(self, image: np.ndarray | Frame) -> str:
        """Detect the board in one image; returns 'kept', 'duplicate', 'no board' or raises on a size change."""
        if isinstance(image, Frame):
            image = image.image
        image = np.asarray(image)
        size = (int(image.shape[1]), int(image.shape[0]))
        if self.image_size is None:
            self.image_size = size
        elif size != self.image_size:
            raise CalibrationError(f"all images must have the same size: got {size[0]}x{size[1]} after "
                                   f"{self.image_size[0]}x{self.image_size[1]}")
        self.n_images += 1
        det = detect_board(image, self.spec, min_corners=self.options.min_corners)
        self.last_detection = det
        if det is None:
            return "no board"
        self.n_detected += 1
        return self.add_detection(det)

    def add_detection(self, det: BoardDetection) -> str:
        diag = math.hypot(*det.image_size)
        threshold = self.options.min_view_change * diag
        if any(_view_change(det, v) < threshold for v in self.views):
            self.n_duplicates += 1
            return "duplicate"
        self.views.append(det)
        return "kept"

    def status(self) -> str:
        return (f"{len(self.views)} views kept ({self.n_detected} of {self.n_images} images showed the board, "
                f"{self.n_duplicates} near-duplicates skipped)")


def collect_views(images: Iterable[np.ndarray | Frame], spec: BoardSpec,
                  options: BoardCalibrationOptions | None = None) -> BoardViewCollector:
    collector = BoardViewCollector(spec, options)
    for image in images:
        collector.add(image)
    return collector


# ----------------------------------------------------------------------------------------------------------
# Pose-set checks


def _homography_tilt_normal(det: BoardDetection, k_guess: np.ndarray) -> np.ndarray:
    """The board normal (3,) in the camera from the plane homography and a guessed K (Zhang 2000, Eq. 2:
    H ~ K [r1 r2 t]). A wrong focal changes the tilt's size, not whether it is zero."""
    import cv2

    h, _ = cv2.findHomography(det.object_points[:, :2].astype(np.float64), det.image_points.astype(np.float64), 0)
    if h is None:
        return np.array([0.0, 0.0, 1.0])
    m = np.linalg.solve(k_guess, h)
    r1 = m[:, 0] / np.linalg.norm(m[:, 0])
    r2 = m[:, 1] / np.linalg.norm(m[:, 1])
    n = np.cross(r1, r2)
    n /= np.linalg.norm(n)
    return n if n[2] > 0 else -n


def check_pose_set(views: list[BoardDetection], options: BoardCalibrationOptions | None = None) -> None:
    """Raise CalibrationError when the views cannot fix the focal length: too few, all face-on, or all at one tilt."""
    options = options or BoardCalibrationOptions()
    n = len(views)
    if n < options.min_views:
        raise CalibrationError(
            f"too few board views: {n} usable view{'s' if n != 1 else ''}, at least {options.min_views} are needed "
            f"(show the board at {options.min_views - n} more distinct positions and tilts)")
    w, h = views[0].image_size
    f = 0.5 * w / math.tan(math.radians(30.0))  # a 60 degree guess; only the tilt's size depends on it
    k_guess = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]])
    normals = np.array([_homography_tilt_normal(v, k_guess) for v in views])
    tilts = np.degrees(np.arccos(np.clip(normals[:, 2], -1, 1)))
    if tilts.max() < options.min_tilt_deg:
        raise CalibrationError(
            f"degenerate pose set: all {n} views show the board nearly face-on (largest tilt {tilts.max():.1f} deg); "
            f"the focal length cannot be measured from fronto-parallel views. Tilt the board by 20-45 degrees "
            f"left, right, up and down")
    cosines = np.clip(normals @ normals.T, -1, 1)
    spread = float(np.degrees(np.arccos(cosines.min())))
    if spread < options.min_tilt_spread_deg:
        raise CalibrationError(
            f"degenerate pose set: all {n} views tilt the board the same way (normals within {spread:.1f} deg); "
            f"parallel board positions do not fix the focal length. Tilt the board in different directions "
            f"(left, right, up and down)")


def _select_varied(views: list[BoardDetection], k: int) -> list[BoardDetection]:
    """Greedy farthest-point selection of ``k`` views by corner displacement."""
    if len(views) <= k:
        return list(views)
    chosen = [int(np.argmax([len(v) for v in views]))]
    dmin = np.array([_view_change(views[chosen[0]], v) for v in views])
    dmin = np.where(np.isfinite(dmin), dmin, 1e9)
    while len(chosen) < k:
        i = int(np.argmax(dmin))
        chosen.append(i)
        d = np.array([_view_change(views[i], v) for v in views])
        dmin = np.minimum(dmin, np.where(np.isfinite(d), d, 1e9))
        dmin[chosen] = -1
    return [views[i] for i in sorted(chosen)]


# ----------------------------------------------------------------------------------------------------------
# Calibration


def calibrate_views(views: list[BoardDetection], options: BoardCalibrationOptions | None = None,
                    board: str = "") -> BoardCalibration:
    """Zhang's calibration over board detections (``cv2.calibrateCameraExtended``)."""
    import cv2

    options = options or BoardCalibrationOptions()
    check_pose_set(views, options)
    views = _select_varied(views, options.max_views)
    w, h = views[0].image_size
    obj = [v.object_points.reshape(-1, 1, 3).astype(np.float32) for v in views]
    img = [v.image_points.reshape(-1, 1, 2).astype(np.float32) for v in views]
    flags = 0
    if options.fix_k3:
        flags |= cv2.CALIB_FIX_K3
    if options.zero_tangent:
        flags |= cv2.CALIB_ZERO_TANGENT_DIST
    if options.fix_aspect:
        flags |= cv2.CALIB_FIX_ASPECT_RATIO
    if options.fix_principal_point:
        flags |= cv2.CALIB_FIX_PRINCIPAL_POINT
    k0 = np.array([[1.0, 0, (w - 1) / 2], [0, 1.0, (h - 1) / 2], [0, 0, 1]])
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-10)
    try:
        rms, k, dist, rvecs, tvecs, std_int, _, per_view = cv2.calibrateCameraExtended(
            obj, img, (w, h), k0, np.zeros(5), flags=flags, criteria=criteria)
    except cv2.error as exc:
        raise CalibrationError(f"OpenCV could not calibrate from these {len(views)} views "
                               f"({str(exc).strip().splitlines()[-1]}); add views with more tilt variety") from exc
    dist = np.asarray(dist, np.float64).ravel()[:5]
    if not (np.all(np.isfinite(k)) and k[0, 0] > 0 and k[1, 1] > 0):
        raise CalibrationError("calibration diverged (non-positive focal length); add views with more tilt variety")
    tilts = np.array([math.degrees(math.acos(min(1.0, abs(cv2.Rodrigues(r)[0][2, 2])))) for r in rvecs])
    intr = Intrinsics(int(w), int(h), float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]),
                      tuple(float(c) for c in dist))
    std = np.asarray(std_int, np.float64).ravel()
    result = BoardCalibration(intr, float(rms), np.asarray(per_view, np.float64).ravel(), len(views), tilts,
                              float(std[0]), float(std[1]), board)
    if result.rms_reprojection_px > 2.0:
        log.warning("high reprojection error %.2f px: blurred views or a wrong board spec?", result.rms_reprojection_px)
    return result


def calibrate_board(images: Iterable[np.ndarray | Frame], spec: BoardSpec | str,
                    options: BoardCalibrationOptions | None = None) -> BoardCalibration:
    """Calibrate from images or frames showing the board. Raises CalibrationError with what to do when it cannot."""
    spec = BoardSpec.parse(spec) if isinstance(spec, str) else spec
    options = options or BoardCalibrationOptions()
    return calibrate_collected(collect_views(images, spec, options), spec, options)


def calibrate_collected(collector: BoardViewCollector, spec: BoardSpec,
                        options: BoardCalibrationOptions | None = None) -> BoardCalibration:
    """Calibrate from the views a collector kept. Raises CalibrationError saying what is missing: images, a board
    in view, enough views, or tilt variety."""
    options = options or BoardCalibrationOptions()
    if collector.n_images == 0:
        raise CalibrationError("no images to calibrate from")
    if collector.n_detected == 0:
        raise CalibrationError(f"no board in view: the {spec} board was not found in any of the "
                               f"{collector.n_images} images (check the board spec: a checkerboard is given by its "
                               f"inner corners, e.g. 9x6 for 10x7 squares; the whole checkerboard must be visible)")
    if len(collector.views) < options.min_views:
        raise CalibrationError(
            f"too few board views: {len(collector.views)} usable views ({collector.status()}), at least "
            f"{options.min_views} are needed (show the board at {options.min_views - len(collector.views)} more "
            f"distinct positions and tilts)")
    return calibrate_views(collector.views, options, str(spec))


# ----------------------------------------------------------------------------------------------------------
# Undistortion


def has_distortion(intrinsics: Intrinsics) -> bool:
    return any(abs(c) > 0.0 for c in intrinsics.dist_coeffs)


def pinhole(intrinsics: Intrinsics) -> Intrinsics:
    """The same K without distortion: the camera the fitter sees after :func:`undistort_points`."""
    from dataclasses import replace

    return replace(intrinsics, dist_coeffs=())


def undistort_points(points_px: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """(..., 2) distorted image px -> (..., 2) px of the ideal pinhole camera with the same K.

    A no-op copy when ``intrinsics`` has no distortion.
    """
    import cv2

    pts = np.asarray(points_px, dtype=np.float64)
    if not has_distortion(intrinsics):
        return pts.copy()
    shape = pts.shape
    k = intrinsics.matrix
    out = cv2.undistortPointsIter(pts.reshape(-1, 1, 2), k, np.asarray(intrinsics.dist_coeffs, np.float64),
                                  np.eye(3), k, (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 10, 1e-6))
    return out.reshape(shape)


def distort_points(points_px: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """(..., 2) ideal pinhole px -> (..., 2) distorted px (the inverse of :func:`undistort_points`)."""
    import cv2

    pts = np.asarray(points_px, dtype=np.float64)
    if not has_distortion(intrinsics):
        return pts.copy()
    shape = pts.shape
    k = intrinsics.matrix
    norm = np.stack([(pts[..., 0] - k[0, 2]) / k[0, 0], (pts[..., 1] - k[1, 2]) / k[1, 1],
                     np.ones(pts.shape[:-1])], axis=-1).reshape(-1, 1, 3)
    out, _ = cv2.projectPoints(norm, np.zeros(3), np.zeros(3), k, np.asarray(intrinsics.dist_coeffs, np.float64))
    return out.reshape(shape)


def undistort_landmarks(landmarks: Landmarks, intrinsics: Intrinsics) -> Landmarks:
    """Landmarks with undistorted ``mu_px`` (sigmas unchanged); the same object when there is no distortion."""
    if not has_distortion(intrinsics):
        return landmarks
    return Landmarks(undistort_points(landmarks.mu_px, intrinsics), landmarks.sigma_px)


@dataclass
class FrameUndistorter:
    """Whole-frame undistortion with precomputed remap tables (for display); maps built on first use."""

    intrinsics: Intrinsics
    _maps: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import cv2

        if not has_distortion(self.intrinsics):
            return image
        if self._maps is None:
            k = self.intrinsics.matrix
            self._maps = cv2.initUndistortRectifyMap(k, np.asarray(self.intrinsics.dist_coeffs, np.float64), None, k,
                                                     (self.intrinsics.width, self.intrinsics.height), cv2.CV_16SC2)
        return cv2.remap(image, self._maps[0], self._maps[1], cv2.INTER_LINEAR)
