"""Calibration boards: the spec, detection in an image, and synthetic renders with known intrinsics.

Two kinds of board:
- ``checkerboard:COLSxROWS:SQUAREmm``: COLS x ROWS *inner* corners (OpenCV's convention; a 9x6 board has
  10 x 7 squares). Found with ``cv2.findChessboardCornersSB`` (falling back to ``cv2.findChessboardCorners``) on
  the frame scaled to at most 960 px, then refined with ``cv2.cornerSubPix`` at full resolution.
- ``charuco:COLSxROWS:SQUAREmm:MARKERmm[:DICT]``: COLS x ROWS *squares* with ArUco markers (default dictionary
  ``DICT_5X5_100``), detected with ``cv2.aruco.CharucoDetector``; partial views are fine.

Board coordinates are millimetres in the board plane (z = 0), x along the columns, y along the rows.

Synthetic views (:func:`render_board_view`) project the board texture through a pinhole camera with optional
OpenCV distortion pixel by pixel (every output pixel is undistorted, its ray intersected with the board
plane, and the texture sampled there), rendered at 2x and box-filtered down, then blurred and given noise.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from dataclasses import dataclass

import numpy as np

from tracker.types import Intrinsics

log = logging.getLogger(__name__)

BOARD_KINDS = ("checkerboard", "charuco")
DEFAULT_ARUCO_DICT = "DICT_5X5_100"
_SPEC_HELP = ("board spec must look like 'checkerboard:9x6:25mm' (inner corners, square size) or "
              "'charuco:7x5:30mm:22mm[:DICT_5X5_100]' (squares, square size, marker size)")


@dataclass(frozen=True)
class BoardSpec:
    """A planar calibration board.

    kind: "checkerboard" or "charuco". cols, rows: inner corners (checkerboard) or squares (charuco).
    square_mm: square side; marker_mm: ArUco marker side (charuco only); dictionary: cv2.aruco dictionary name.
    """

    kind: str
    cols: int
    rows: int
    square_mm: float
    marker_mm: float = 0.0
    dictionary: str = DEFAULT_ARUCO_DICT

    def __post_init__(self) -> None:
        if self.kind not in BOARD_KINDS:
            raise ValueError(f"unknown board kind '{self.kind}'; expected one of {', '.join(BOARD_KINDS)}")
        low = 2 if self.kind == "checkerboard" else 3
        if self.cols < low or self.rows < low:
            raise ValueError(f"a {self.kind} needs at least {low}x{low} "
                             f"{'inner corners' if self.kind == 'checkerboard' else 'squares'}, "
                             f"got {self.cols}x{self.rows}")
        if not self.square_mm > 0:
            raise ValueError(f"square size must be positive, got {self.square_mm} mm")
        if self.kind == "charuco":
            if not 0 < self.marker_mm < self.square_mm:
                raise ValueError(f"ChArUco marker size must be positive and smaller than the square "
                                 f"({self.square_mm} mm), got {self.marker_mm} mm")
            import cv2

            if not hasattr(cv2.aruco, self.dictionary):
                raise ValueError(f"unknown ArUco dictionary '{self.dictionary}' (e.g. {DEFAULT_ARUCO_DICT})")

    @classmethod
    def parse(cls, text: str) -> "BoardSpec":
        """``checkerboard:9x6:25mm`` or ``charuco:7x5:30mm:22mm[:DICT_5X5_100]`` -> BoardSpec."""
        parts = [p.strip() for p in str(text).strip().split(":")]
        kind = parts[0].lower()
        if kind not in BOARD_KINDS:
            raise ValueError(f"{_SPEC_HELP}; got '{text}'")
        want = (3,) if kind == "checkerboard" else (4, 5)
        if len(parts) not in want:
            raise ValueError(f"{_SPEC_HELP}; got '{text}'")
        m = re.fullmatch(r"(\d+)\s*[xX]\s*(\d+)", parts[1])
        if m is None:
            raise ValueError(f"{_SPEC_HELP}; the size '{parts[1]}' is not COLSxROWS")
        cols, rows = int(m.group(1)), int(m.group(2))
        square = _parse_mm(parts[2])
        if kind == "checkerboard":
            return cls(kind, cols, rows, square)
        marker = _parse_mm(parts[3])
        dictionary = parts[4] if len(parts) == 5 else DEFAULT_ARUCO_DICT
        return cls(kind, cols, rows, square, marker, dictionary)

    def __str__(self) -> str:
        if self.kind == "checkerboard":
            return f"checkerboard:{self.cols}x{self.rows}:{self.square_mm:g}mm"
        return f"charuco:{self.cols}x{self.rows}:{self.square_mm:g}mm:{self.marker_mm:g}mm:{self.dictionary}"

    @property
    def squares(self) -> tuple[int, int]:
        """(columns, rows) of squares on the printed board."""
        if self.kind == "checkerboard":
            return self.cols + 1, self.rows + 1
        return self.cols, self.rows

    @property
    def n_corners(self) -> int:
        sx, sy = self.squares
        return (sx - 1) * (sy - 1)

    @property
    def size_mm(self) -> tuple[float, float]:
        """(width, height) of the squared area in mm."""
        sx, sy = self.squares
        return sx * self.square_mm, sy * self.square_mm

    def object_points(self) -> np.ndarray:
        """(n_corners, 3) float32 inner-corner positions in mm (z = 0), row-major, corner id = index."""
        sx, sy = self.squares
        j, i = np.meshgrid(np.arange(1, sx), np.arange(1, sy))
        pts = np.stack([j.ravel() * self.square_mm, i.ravel() * self.square_mm, np.zeros(j.size)], axis=1)
        return pts.astype(np.float32)

    def charuco_board(self):
        """The ``cv2.aruco.CharucoBoard`` (charuco only)."""
        import cv2

        if self.kind != "charuco":
            raise ValueError("not a ChArUco board")
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        return cv2.aruco.CharucoBoard((self.cols, self.rows), float(self.square_mm), float(self.marker_mm),
                                      dictionary)

    def texture(self, px_per_mm: float = 4.0, margin_mm: float | None = None) -> tuple[np.ndarray, float, float]:
        """The printable board image and its placement.

        Returns (image (H, W) uint8, px_per_mm, margin_px): board point (x, y) mm lies at texture pixel
        coordinates ``margin_px - 0.5 + px_per_mm * (x, y)`` (pixel-centre convention).
        """
        margin_mm = self.square_mm if margin_mm is None else margin_mm
        margin = int(round(margin_mm * px_per_mm))
        sx, sy = self.squares
        side = int(round(self.square_mm * px_per_mm))
        px_per_mm = side / self.square_mm
        w, h = sx * side + 2 * margin, sy * side + 2 * margin
        if self.kind == "charuco":
            img = self.charuco_board().generateImage((w, h), marginSize=margin, borderBits=1)
        else:
            img = np.full((h, w), 255, np.uint8)
            for i in range(sy):
                for k in range(sx):
                    if (i + k) % 2 == 0:
                        img[margin + i * side:margin + (i + 1) * side, margin + k * side:margin + (k + 1) * side] = 0
        return img, float(px_per_mm), float(margin)


def _parse_mm(text: str) -> float:
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(mm|cm|m)?", text.strip().lower())
    if m is None:
        raise ValueError(f"{_SPEC_HELP}; '{text}' is not a length like 25mm")
    scale = {"mm": 1.0, None: 1.0, "cm": 10.0, "m": 1000.0}[m.group(2)]
    return float(m.group(1)) * scale


@dataclass(frozen=True, eq=False)
class BoardDetection:
    """Board corners found in one image.

    image_points: (N, 2) float32 px; object_points: (N, 3) float32 mm; ids: (N,) int corner ids
    (indices into ``BoardSpec.object_points``); image_size: (width, height).
    """

    image_points: np.ndarray
    object_points: np.ndarray
    ids: np.ndarray
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def _gray(image: np.ndarray) -> np.ndarray:
    import cv2

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim != 2:
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {image.shape}")
    return image


def detect_board(image: np.ndarray, spec: BoardSpec, min_corners: int = 6,
                 detect_max_side: int = 960) -> BoardDetection | None:
    """Find the board's inner corners in ``image`` ((H, W) gray or (H, W, 3) BGR uint8); None if not found.

    A checkerboard must be fully visible; a ChArUco board counts when at least ``min_corners`` corners are seen.
    """
    import cv2

    gray = _gray(image)
    if gray.dtype != np.uint8:
        gray = np.clip(gray, 0, 255).astype(np.uint8)
    h, w = gray.shape
    obj = spec.object_points()
    if spec.kind == "checkerboard":
        pattern = (spec.cols, spec.rows)
        # findChessboardCornersSB costs ~1 s on a 1920x1080 frame (found or not); on large frames the board is
        # found at detect_max_side and the corners refined at full resolution with cornerSubPix.
        scale = min(1.0, detect_max_side / max(w, h))
        small = gray if scale >= 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ok, corners = cv2.findChessboardCornersSB(small, pattern, flags=cv2.CALIB_CB_NORMALIZE_IMAGE)
        if not ok:
            ok, corners = cv2.findChessboardCorners(
                small, pattern, flags=cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE)
            if not ok:
                return None
            corners = cv2.cornerSubPix(small, corners, (5, 5), (-1, -1),
                                       (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 40, 0.01))
        pts = corners.reshape(-1, 2).astype(np.float32)
        # cornerSubPix at full resolution also where SB ran on it: on synthetic views with known corners it
        # brings the mean corner error from ~0.1 px (SB alone) to ~0.03 px.
        pts = _refine_corners(gray, (pts + 0.5) / scale - 0.5 if scale < 1.0 else pts)
        ids = np.arange(len(pts))
        return BoardDetection(pts, obj, ids, (w, h))
    detector = cv2.aruco.CharucoDetector(spec.charuco_board())
    corners, ids, _, _ = detector.detectBoard(gray)
    if ids is None or corners is None or len(ids) < max(min_corners, 4):
        return None
    ids = ids.ravel().astype(np.int64)
    # CharucoDetector's corners carry a systematic +0.5 px offset in OpenCV 4.11 (measured on synthetic
    # renders with known corners); one more cornerSubPix pass on the gray image removes it.
    pts = _refine_corners(gray, corners.reshape(-1, 2).astype(np.float32), max_win=7)
    return BoardDetection(pts, obj[ids], ids, (w, h))


def _refine_corners(gray: np.ndarray, pts: np.ndarray, max_win: int = 11) -> np.ndarray:
    """(N, 2) corners -> (N, 2) float32 refined by cornerSubPix, the window 0.3 x the median corner spacing."""
    import cv2

    if len(pts) < 2:
        return pts.astype(np.float32)
    diff = pts[:, None, :] - pts[None, :, :]
    dist = np.sqrt((diff ** 2).sum(-1)) + np.eye(len(pts)) * 1e9
    win = int(np.clip(0.3 * np.median(dist.min(axis=1)), 2, max_win))
    out = cv2.cornerSubPix(gray, pts.reshape(-1, 1, 2).astype(np.float32).copy(), (win, win), (-1, -1),
                           (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 40, 0.001))
    return out.reshape(-1, 2).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------
# Synthetic views


def look_at_pose(spec: BoardSpec, distance_mm: float, tilt_x_deg: float, tilt_y_deg: float,
                 roll_deg: float = 0.0, offset_mm: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """A board pose (R (3, 3), t (3,)) board mm -> camera mm: board centre at ``(offset, distance)``, rotated by
    ``roll`` about its normal, then tilted about the camera's x and y axes."""
    import cv2

    w, h = spec.size_mm
    centre = np.array([w / 2.0, h / 2.0, 0.0])
    rz = cv2.Rodrigues(np.array([0.0, 0.0, math.radians(roll_deg)]))[0]
    rx = cv2.Rodrigues(np.array([math.radians(tilt_x_deg), 0.0, 0.0]))[0]
    ry = cv2.Rodrigues(np.array([0.0, math.radians(tilt_y_deg), 0.0]))[0]
    rot = ry @ rx @ rz
    t = np.array([offset_mm[0], offset_mm[1], distance_mm]) - rot @ centre
    return rot, t


@functools.lru_cache(maxsize=2)
def _normalised_pixel_grid(intrinsics: Intrinsics) -> np.ndarray:
    """(H * W, 2) float32 undistorted normalised camera coordinates of every pixel, row-major.

    Depends on the camera only, so it is cached: undistorting a 2560x1440 grid takes ~1.5 s.
    """
    import cv2

    k = intrinsics
    u, v = np.meshgrid(np.arange(k.width, dtype=np.float64), np.arange(k.height, dtype=np.float64))
    pix = np.stack([u.ravel(), v.ravel()], axis=1)
    if any(abs(c) > 0 for c in k.dist_coeffs):
        norm = cv2.undistortPointsIter(pix.reshape(-1, 1, 2), k.matrix, np.asarray(k.dist_coeffs, np.float64),
                                       np.eye(3), np.eye(3),
                                       (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 1e-10)).reshape(-1, 2)
    else:
        norm = np.stack([(pix[:, 0] - k.cx) / k.fx, (pix[:, 1] - k.cy) / k.fy], axis=1)
    out = norm.astype(np.float32)
    out.setflags(write=False)
    return out


def render_board_view(spec: BoardSpec, intrinsics: Intrinsics, rotation: np.ndarray, translation_mm: np.ndarray,
                      blur_sigma_px: float = 0.6, noise_std: float = 2.0, rng: np.random.Generator | None = None,
                      background: int = 128, supersample: int = 2) -> np.ndarray:
    """Render the board seen by a camera: (H, W) uint8 gray.

    rotation (3, 3), translation_mm (3,): board mm -> camera mm. ``intrinsics.dist_coeffs`` are applied
    (OpenCV's model). Pixels whose ray misses the board plane show ``background``.
    """
    import cv2

    rng = np.random.default_rng(0) if rng is None else rng
    hi = intrinsics.scaled_to(intrinsics.width * supersample, intrinsics.height * supersample)
    # Texture resolution about 1.5 texture px per output px at the board's centre depth.
    depth = float(np.asarray(translation_mm, np.float64)[2] + rotation[2] @ np.r_[np.array(spec.size_mm) / 2, 0.0])
    tex, ppm, margin = spec.texture(px_per_mm=float(np.clip(1.5 * hi.fx / max(depth, 1.0), 2.0, 24.0)))
    grid = _normalised_pixel_grid(hi)
    xn, yn = grid[:, 0].astype(np.float64), grid[:, 1].astype(np.float64)
    # Plane homography: camera normalised coords ~ [r1 r2 t] (x, y, 1)_board, so (x, y, 1)_board ~ inv(.) (xn, yn, 1).
    m = np.column_stack([rotation[:, 0], rotation[:, 1], np.asarray(translation_mm, np.float64)])
    a = np.linalg.inv(m)
    wgt = a[2, 0] * xn + a[2, 1] * yn + a[2, 2]
    valid = wgt * np.sign(np.linalg.det(m)) > 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_w = np.where(valid, 1.0 / wgt, 0.0)
    bx = np.where(valid, (a[0, 0] * xn + a[0, 1] * yn + a[0, 2]) * inv_w, -1e6)
    by = np.where(valid, (a[1, 0] * xn + a[1, 1] * yn + a[1, 2]) * inv_w, -1e6)
    map_x = (margin - 0.5 + ppm * bx).astype(np.float32).reshape(hi.height, hi.width)
    map_y = (margin - 0.5 + ppm * by).astype(np.float32).reshape(hi.height, hi.width)
    # Where one output pixel spans several texture pixels, pre-blur the texture so bilinear sampling does not alias.
    inside = (map_x[:, 1:] > 0) & (map_x[:, 1:] < tex.shape[1]) & (map_x[:, :-1] > 0)
    step = float(np.median(np.abs(np.diff(map_x, axis=1))[inside])) if inside.any() else 1.0
    if step > 1.5:
        tex = cv2.GaussianBlur(tex, (0, 0), 0.5 * step)
    img = cv2.remap(tex, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                    borderValue=int(background))
    if supersample > 1:
        img = cv2.resize(img, (intrinsics.width, intrinsics.height), interpolation=cv2.INTER_AREA)
    out = img.astype(np.float32)
    if blur_sigma_px > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur_sigma_px)
    if noise_std > 0:
        out += rng.normal(0.0, noise_std, out.shape).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def project_board_corners(spec: BoardSpec, intrinsics: Intrinsics, rotation: np.ndarray,
                          translation_mm: np.ndarray) -> np.ndarray:
    """(n_corners, 2) the true corner positions in px (with distortion) for a synthetic view."""
    import cv2

    rvec = cv2.Rodrigues(np.asarray(rotation, np.float64))[0]
    pts, _ = cv2.projectPoints(spec.object_points().astype(np.float64), rvec,
                               np.asarray(translation_mm, np.float64), intrinsics.matrix,
                               np.asarray(intrinsics.dist_coeffs, np.float64) if intrinsics.dist_coeffs else None)
    return pts.reshape(-1, 2)


def random_board_poses(spec: BoardSpec, intrinsics: Intrinsics, n: int, rng: np.random.Generator,
                       tilt_deg: tuple[float, float] = (15.0, 40.0), fill: tuple[float, float] = (0.45, 0.8),
                       max_tries: int = 200) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` varied board poses fully inside the image: tilts of ``tilt_deg`` magnitude in random directions,
    the board covering ``fill`` of the image width, random roll and offset."""
    w_mm, h_mm = spec.size_mm
    poses: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(n):
        for _ in range(max_tries):
            frac = rng.uniform(*fill)
            dist = intrinsics.fx * max(w_mm, h_mm) / (frac * intrinsics.width)
            mag = rng.uniform(*tilt_deg)
            ang = rng.uniform(0, 2 * math.pi)
            off = rng.uniform(-0.25, 0.25, 2) * np.array([intrinsics.width, intrinsics.height]) * dist / intrinsics.fx
            rot, t = look_at_pose(spec, dist, mag * math.cos(ang), mag * math.sin(ang), rng.uniform(-25, 25),
                                  (float(off[0]), float(off[1])))
            corners = project_board_corners(spec, intrinsics, rot, t)
            m = 0.04 * intrinsics.width
            if (corners[:, 0].min() > m and corners[:, 1].min() > m and corners[:, 0].max() < intrinsics.width - m
                    and corners[:, 1].max() < intrinsics.height - m):
                poses.append((rot, t))
                break
        else:
            raise RuntimeError("could not place the board inside the image; use a smaller board or wider camera")
    return poses
