"""Frozen dataclasses passed between the pipeline's stages.

Conventions (DESIGN.md), written once here:
- Image coordinates in pixels, origin top-left, OpenCV pixel centres (pixel (0, 0) covers [-0.5, 0.5]^2).
- Camera: pinhole, x right, y down, z forward; ``fx = fy = focal_px`` unless calibrated.
- Model space: ICT-FaceKit's (+y up, +z out of the face, centimetres). Camera space in millimetres.
  A model point X (cm) lands in the camera at ``R_root @ (MODEL_TO_CAMERA_AXES @ X * 10) + translation_mm``
  (after linear blend skinning by the neck/head/eye joints), so a zero root rotation is a face looking
  straight into the camera.
- Rotations: axis-angle (3,) inside the optimiser.
- Expressions: the 53 ARKit-named ICT blendshapes, weights in [0, 1].

Arrays in these dataclasses are not copied or frozen; treat them as read-only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

#: Model axes (+y up, +z out of the face) to camera axes (y down, z forward): a 180 degree turn about x.
MODEL_TO_CAMERA_AXES = np.diag([1.0, -1.0, -1.0])
#: Model centimetres to camera millimetres.
CM_TO_MM = 10.0
#: Joint order of the rig (after the root): rotations of these, in this order, are ``FitParams.joints``.
JOINT_NAMES = ("neck", "head", "eye_L", "eye_R")
#: Horizontal field of view that an unknown camera starts from (the paper's choice).
DEFAULT_HFOV_DEG = 45.0


@dataclass(frozen=True, eq=False)
class Frame:
    """One captured image. ``image``: (H, W, 3) uint8, BGR (OpenCV's order)."""

    image: np.ndarray
    timestamp_ns: int
    index: int

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels for an image of ``width`` x ``height``, with OpenCV distortion."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    dist_coeffs: tuple[float, ...] = ()

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float = DEFAULT_HFOV_DEG) -> "Intrinsics":
        """Square pixels, principal point at the image centre, focal from the horizontal field of view."""
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        if not 1.0 <= hfov_deg <= 179.0:
            raise ValueError(f"horizontal field of view must be in [1, 179] degrees, got {hfov_deg}")
        f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)

    @property
    def focal_px(self) -> float:
        """The mean focal length in pixels (``fx`` for square pixels)."""
        return 0.5 * (self.fx + self.fy)

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2.0 * math.atan(0.5 * self.width / self.fx))

    @property
    def matrix(self) -> np.ndarray:
        """K (3, 3)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def with_focal(self, focal_px: float) -> "Intrinsics":
        return replace(self, fx=float(focal_px), fy=float(focal_px) * self.fy / self.fx)

    def scaled_to(self, width: int, height: int) -> "Intrinsics":
        """The same camera at another resolution (pixel-centre convention kept)."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(width, height, self.fx * sx, self.fy * sy,
                          (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5, self.dist_coeffs)


@dataclass(frozen=True, eq=False)
class Roi:
    """An affine map from image pixels to an ``size`` x ``size`` crop. ``matrix``: (2, 3), image -> crop."""

    matrix: np.ndarray
    size: int

    def __post_init__(self) -> None:
        matrix = np.array(self.matrix, dtype=np.float64)  # an own, read-only copy: the cached maps below stay true
        matrix.flags.writeable = False
        object.__setattr__(self, "matrix", matrix)

    @cached_property
    def inverse(self) -> np.ndarray:
        """(2, 3) crop -> image."""
        a = np.vstack([self.matrix, [0.0, 0.0, 1.0]])
        inverse = np.linalg.inv(a)[:2]
        inverse.flags.writeable = False
        return inverse

    def image_to_crop(self, pts: np.ndarray) -> np.ndarray:
        """(..., 2) image px -> (..., 2) crop px."""
        pts = np.asarray(pts, dtype=np.float64)
        return pts @ self.matrix[:, :2].T + self.matrix[:, 2]

    def crop_to_image(self, pts: np.ndarray) -> np.ndarray:
        """(..., 2) crop px -> (..., 2) image px."""
        inv = self.inverse
        pts = np.asarray(pts, dtype=np.float64)
        return pts @ inv[:, :2].T + inv[:, 2]

    @cached_property
    def scale_px(self) -> float:
        """Image pixels per crop pixel (geometric mean of the two axes)."""
        return float(math.sqrt(abs(np.linalg.det(self.inverse[:, :2]))))


@dataclass(frozen=True, eq=False)
class Landmarks:
    """Network output in image pixels: ``mu_px`` (L, 2) and per-landmark ``sigma_px`` (L,)."""

    mu_px: np.ndarray
    sigma_px: np.ndarray

    def __post_init__(self) -> None:
        if self.mu_px.ndim != 2 or self.mu_px.shape[1] != 2:
            raise ValueError(f"mu_px must be (L, 2), got {self.mu_px.shape}")
        if self.sigma_px.shape != (self.mu_px.shape[0],):
            raise ValueError(f"sigma_px must be ({self.mu_px.shape[0]},), got {self.sigma_px.shape}")

    def __len__(self) -> int:
        return int(self.mu_px.shape[0])


@dataclass(frozen=True, eq=False)
class FitParams:
    """Every parameter of the fitted head and camera.

    identity: (n_id,) coefficients, prior N(0, 1).
    expression: (53,) weights in [0, 1], order of ``HeadModel.expression_names``.
    root_rotation: (3,) axis-angle, model (after the axis flip) to camera; not penalised.
    translation_mm: (3,) camera-space position of the model origin.
    joints: (4, 3) axis-angle local rotations of neck, head, eye_L, eye_R (``JOINT_NAMES``).
    focal_px: focal length in pixels.
    """

    identity: np.ndarray
    expression: np.ndarray
    root_rotation: np.ndarray
    translation_mm: np.ndarray
    joints: np.ndarray
    focal_px: float

    @classmethod
    def neutral(cls, n_identity: int, n_expression: int, focal_px: float,
                translation_mm: tuple[float, float, float] = (0.0, 0.0, 600.0)) -> "FitParams":
        return cls(np.zeros(n_identity), np.zeros(n_expression), np.zeros(3),
                   np.asarray(translation_mm, dtype=np.float64), np.zeros((len(JOINT_NAMES), 3)),
                   float(focal_px))

    def replace(self, **changes) -> "FitParams":
        return replace(self, **changes)


@dataclass(frozen=True, eq=False)
class FitResult:
    """The fitter's answer for one frame.

    landmarks_px: (L, 2) the fitted model's landmarks projected into the image.
    cost: final energy; iterations: LM iterations run; converged: stopping criterion met.
    message: why it stopped, or what was wrong with the input (empty when all went well).
    """

    params: FitParams
    landmarks_px: np.ndarray
    cost: float
    iterations: int
    converged: bool
    message: str = ""


@dataclass(frozen=True, eq=False)
class TrackedFrame:
    """What the pipeline yields per frame. ``tracked`` is False when no face was found or tracking was lost;
    then ``landmarks``/``fit`` may be None and ``message`` says why. ``timings_ms``: stage name -> ms."""

    frame: Frame
    intrinsics: Intrinsics
    roi: Roi | None
    landmarks: Landmarks | None
    fit: FitResult | None
    tracked: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    message: str = ""
