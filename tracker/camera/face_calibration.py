"""Focal length from the user's own face: guided keyframe collection, then a joint fit of focal length and
identity over the keyframes (per-frame pose and expression) through the fitter's focal mode.

Why several views: from one view, focal length trades off against depth and face size; the perspective change
between views at different yaw, pitch and distance (the paper's Sec. 3.2 energy summed over keyframes with one
shared identity beta and focal f) makes f observable. Its uncertainty is the focal entry of (J^T J)^-1 at the
optimum (Gauss-Newton covariance of the summed energy).

Coverage (:class:`Coverage`): three marginal bin sets, each bin wanting ``per_bin`` keyframes:
- yaw: right (< -yaw_deg), centre, left (> +yaw_deg); yaw > 0 is the face turned to the *user's* left
  (towards the camera's +x, i.e. image right);
- pitch: down (< -pitch_deg), level, up (> +pitch_deg); pitch > 0 is looking up (camera -y);
- distance: near, mid, far over the keyframes' depth range once it spans ``depth_span`` (max/min). Depth is
  relative: the tracking fit's z at the starting focal (off by the focal's error, a common factor), or the
  inverse landmark spread; only ratios are used.
The prompt names the first bin still short, in the order of :data:`PROMPTS`.

State machine (:class:`FaceCalibrator`): ``collecting`` -> (coverage complete and the estimate settled)
``ready`` -> ``accept()`` -> ``accepted``; ``retry()`` from anywhere -> ``collecting`` with nothing kept;
a solver failure -> ``failed`` (``retry()`` to start again). A solve whose focal runs off (FOV outside 20-130
degrees or std above 25 %: too little perspective in the views so far, typically small head turns far from the
camera) is no estimate yet while bins are missing, and a failure once all are covered. The calibrator is plain
Python: the GUI runs it in a worker thread, where :meth:`FaceCalibrator.solve` runs too.

Measured (``python main.py bench calibrate --part face``): with the model's own faces and 1-2 px landmark noise
the focal error stays within about 1 %; a 2 mm per-landmark shape error the model cannot represent raises it to
2-5 % and the reported std (landmark noise only) then understates the error.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np

from tracker.fitting.rotation import rodrigues as _rodrigues
from tracker.types import JOINT_NAMES, MODEL_TO_CAMERA_AXES, FitParams, Intrinsics, Landmarks, TrackedFrame

log = logging.getLogger(__name__)

#: bin -> the prompt that fills it, in the order prompts are given
PROMPTS: dict[str, str] = {
    "yaw:centre": "look straight at the camera",
    "yaw:left": "turn left",
    "yaw:right": "turn right",
    "pitch:up": "look up",
    "pitch:down": "look down",
    "distance:near": "move closer",
    "distance:far": "move farther",
    "pitch:level": "look straight at the camera",
    "distance:mid": "go back to where you started",
}
BINS: dict[str, tuple[str, ...]] = {
    "yaw": ("right", "centre", "left"),
    "pitch": ("down", "level", "up"),
    "distance": ("far", "mid", "near"),
}
DONE_PROMPT = "hold still"


class FaceCalibrationError(ValueError):
    """Face calibration cannot run on this input; the message says why."""


# ----------------------------------------------------------------------------------------------------------
# Head orientation


def head_yaw_pitch_deg(params: FitParams) -> tuple[float, float]:
    """(yaw, pitch) in degrees of the head's facing direction in the camera.

    The face's forward axis (model +z) goes through root, neck and head rotations:
    f = R_root @ M @ R_neck @ R_head @ (0, 0, 1), which is (0, 0, -1) (towards the camera) at rest.
    yaw = atan2(f_x, -f_z) (> 0: turned to the user's left), pitch = atan2(-f_y, hypot(f_x, f_z)) (> 0: up).
    """
    rot = _rodrigues(params.root_rotation) @ MODEL_TO_CAMERA_AXES
    joints = np.asarray(params.joints, dtype=np.float64).reshape(-1, 3)
    for name in ("neck", "head"):
        rot = rot @ _rodrigues(joints[JOINT_NAMES.index(name)])
    f = rot @ np.array([0.0, 0.0, 1.0])
    yaw = math.degrees(math.atan2(f[0], -f[2]))
    pitch = math.degrees(math.atan2(-f[1], math.hypot(f[0], f[2])))
    return yaw, pitch


def landmark_scale_px(landmarks: Landmarks) -> float:
    """RMS distance of the landmarks from their centroid in px: a depth proxy (size ~ 1 / depth)."""
    mu = np.asarray(landmarks.mu_px, dtype=np.float64)
    return float(np.sqrt(((mu - mu.mean(axis=0)) ** 2).sum(axis=1).mean()))


# ----------------------------------------------------------------------------------------------------------
# Keyframes and coverage


@dataclass(frozen=True, eq=False)
class Keyframe:
    """One view kept for the joint fit. ``depth`` is relative (mm from the running fit, or 1 / size in px when
    only landmarks are known); ``params`` warm-starts the fitter (None when only landmarks are known)."""

    landmarks: Landmarks
    intrinsics: Intrinsics
    yaw_deg: float
    pitch_deg: float
    depth: float
    index: int
    params: FitParams | None = None


@dataclass(frozen=True)
class CoverageOptions:
    """Bin edges and keyframe selection.

    yaw_deg / pitch_deg: the left/right and up/down bins start at these angles; depth_span: the distance bins are
    covered once max/min keyframe depth reaches this ratio (1.6: e.g. 0.4 to 0.64 m), near and far being the outer
    thirds (in log depth) of that span around the observed range's centre; per_bin keyframes fill a bin.
    A frame becomes a keyframe when it differs from every keyframe by ``min_pose_change_deg`` in yaw or pitch or
    by ``min_depth_change`` in log depth, up to ``max_keyframes``.
    """

    yaw_deg: float = 15.0
    pitch_deg: float = 10.0
    depth_span: float = 1.6
    per_bin: int = 3
    max_keyframes: int = 30
    min_pose_change_deg: float = 4.0
    min_depth_change: float = 0.06


class Coverage:
    """Keyframes per bin over yaw, pitch and distance (module docstring), recomputed from the kept views."""

    def __init__(self, options: CoverageOptions | None = None):
        self.options = options or CoverageOptions()
        self.yaw: list[float] = []
        self.pitch: list[float] = []
        self.depth: list[float] = []

    def add(self, yaw_deg: float, pitch_deg: float, depth: float) -> None:
        if not (math.isfinite(depth) and depth > 0):
            raise FaceCalibrationError(f"keyframe depth must be positive, got {depth}")
        self.yaw.append(float(yaw_deg))
        self.pitch.append(float(pitch_deg))
        self.depth.append(float(depth))

    @property
    def span(self) -> float:
        """max / min keyframe depth (1 with fewer than two keyframes)."""
        return max(self.depth) / min(self.depth) if len(self.depth) >= 2 else 1.0

    def distance_bin(self, depth: float) -> str:
        """'near', 'mid' or 'far'; near and far exist only once the depth span reaches ``depth_span``."""
        if self.span < self.options.depth_span:
            return "mid"
        centre = math.sqrt(max(self.depth) * min(self.depth))
        edge = math.log(self.options.depth_span) / 6.0  # outer thirds of the required span
        r = math.log(depth / centre)
        return "near" if r <= -edge else "far" if r >= edge else "mid"

    def bins_of(self, yaw_deg: float, pitch_deg: float, depth: float) -> tuple[str, str, str]:
        o = self.options
        yaw = "left" if yaw_deg > o.yaw_deg else "right" if yaw_deg < -o.yaw_deg else "centre"
        pitch = "up" if pitch_deg > o.pitch_deg else "down" if pitch_deg < -o.pitch_deg else "level"
        return f"yaw:{yaw}", f"pitch:{pitch}", f"distance:{self.distance_bin(depth)}"

    @property
    def counts(self) -> dict[str, int]:
        out = {f"{axis}:{b}": 0 for axis, bins in BINS.items() for b in bins}
        for y, p, d in zip(self.yaw, self.pitch, self.depth):
            for b in self.bins_of(y, p, d):
                out[b] += 1
        return out

    @property
    def fraction(self) -> float:
        """Covered share in [0, 1]: sum over bins of min(count, per_bin) / (9 per_bin); while the depth span is
        short, the near and far bins count the span reached so far."""
        k = self.options.per_bin
        counts = self.counts
        total = sum(min(c, k) for c in counts.values())
        if self.span < self.options.depth_span:
            reached = math.log(self.span) / math.log(self.options.depth_span)
            total += 2 * k * min(1.0, max(0.0, reached))
        return total / (k * len(counts))

    @property
    def complete(self) -> bool:
        return all(c >= self.options.per_bin for c in self.counts.values())

    def missing(self) -> list[str]:
        counts = self.counts
        return [b for b in PROMPTS if counts[b] < self.options.per_bin]

    def missing_prompts(self) -> list[str]:
        """The prompts of the bins still short, each once, in prompt order."""
        out: list[str] = []
        for b in self.missing():
            if PROMPTS[b] not in out:
                out.append(PROMPTS[b])
        return out

    def prompt(self) -> str:
        """What the user should do next (``DONE_PROMPT`` when every bin is full). While the depth span is short,
        'move closer' until the user has come half the span nearer than where they started, then 'move farther'."""
        for b in self.missing():
            if b.startswith("distance:") and self.span < self.options.depth_span:
                closer = math.log(self.depth[0] / min(self.depth)) if self.depth else 0.0
                return PROMPTS["distance:near"] if closer < 0.5 * math.log(self.options.depth_span) \
                    else PROMPTS["distance:far"]
            return PROMPTS[b]
        return DONE_PROMPT


# ----------------------------------------------------------------------------------------------------------
# The solver interface


@dataclass(frozen=True, eq=False)
class FocalEstimate:
    """A joint fit over keyframes: focal_px and its 1-sigma std (from (J^T J)^-1), the shared identity (n_id,),
    per-keyframe params, the final cost and the number of keyframes used."""

    focal_px: float
    focal_std_px: float
    identity: np.ndarray
    n_keyframes: int
    cost: float = float("nan")
    params: tuple[FitParams, ...] = ()
    converged: bool = True
    message: str = ""


class FocalSolver(Protocol):
    def __call__(self, keyframes: Sequence[Keyframe], intrinsics: Intrinsics,
                 initial: FocalEstimate | None) -> FocalEstimate: ...


def calibration_fitter(fitter):
    """A fitter for calibration: the given ``FaceFitter``'s model, landmarks and options without E_intersect.

    The eyelid/eyeball penetration term carries no information on the focal length, costs most of the fit's time
    (measured: 12 keyframes x 68 landmarks, 9.3 s with it, 2.6 s without) and, on synthetic sequences, kept the
    batch from converging in 40 iterations (focal +10 % off against -0.9 % without). Returns ``fitter`` itself
    when its E_intersect weight is already 0.
    """
    from dataclasses import replace as _replace

    if getattr(fitter.options, "w_intersect", 0.0) == 0.0:
        return fitter
    from tracker.fitting import FaceFitter

    return FaceFitter(fitter.model, fitter.lm.vertex_ids, _replace(fitter.options, w_intersect=0.0))


def fitter_focal_solver(fitter=None, *, head_model=None, landmark_set=None) -> FocalSolver:
    """The fitter's focal mode as a :class:`FocalSolver`: ``FaceFitter.fit_keyframes(..., fit_identity=True,
    fit_focal=True)`` over the keyframes' landmarks (the fitter undistorts them with the intrinsics' dist_coeffs).

    ``fitter``: a ``tracker.fitting.FaceFitter`` (the pipeline's), else one is built from ``head_model`` and
    ``landmark_set`` (a LandmarkSet or vertex ids). Each solve starts from the previous estimate (focal, identity,
    and the per-frame fits of keyframes seen before); new keyframes start from PnP at that focal.
    """
    import weakref

    if fitter is None:
        if head_model is None or landmark_set is None:
            raise FaceCalibrationError("face calibration needs the fitter: pass a FaceFitter, or the head model and "
                                       "its landmark set")
        try:
            from tracker.fitting import FaceFitter
        except ImportError as exc:
            raise FaceCalibrationError(f"face calibration needs the fitter's focal mode (tracker.fitting): {exc}") \
                from exc
        fitter = FaceFitter(head_model, landmark_set)
    fitter = calibration_fitter(fitter)
    fitted: "weakref.WeakKeyDictionary[Keyframe, FitParams]" = weakref.WeakKeyDictionary()

    def solve(keyframes: Sequence[Keyframe], intrinsics: Intrinsics, initial: FocalEstimate | None) -> FocalEstimate:
        start = intrinsics if initial is None else intrinsics.with_focal(initial.focal_px)
        if initial is None:  # the tracking fits were made at this focal: they are good starts
            previous = [k.params for k in keyframes]
        else:
            previous = [fitted.get(k) for k in keyframes]
        try:
            res = fitter.fit_keyframes([k.landmarks for k in keyframes], start, previous=previous,
                                       identity=None if initial is None else initial.identity,
                                       fit_identity=True, fit_focal=True)
        except ValueError as exc:
            raise FaceCalibrationError(f"the focal fit rejected the keyframes: {exc}") from exc
        std = res.focal_std_px
        if std is None or not math.isfinite(res.focal_px) or not math.isfinite(std):
            raise FaceCalibrationError(f"the focal fit failed: {res.message or 'no uncertainty'}")
        for k, fr in zip(keyframes, res.frames):
            if math.isfinite(fr.cost):
                fitted[k] = fr.params
        return FocalEstimate(float(res.focal_px), float(std), np.asarray(res.identity, dtype=np.float64),
                             len(keyframes), float(res.cost), tuple(fr.params for fr in res.frames),
                             bool(res.converged), res.message)

    return solve


# ----------------------------------------------------------------------------------------------------------
# The calibrator


@dataclass(frozen=True)
class FaceCalibrationOptions:
    """min_keyframes before the first solve; solve_every: new keyframes between solves; settle_rel_std:
    the estimate is settled when std / focal is below this and the last ``settle_count`` estimates agree within
    ``settle_rel_change``; min_hfov_deg / max_hfov_deg: plausible webcam range; max_rel_std: a solve whose focal
    std exceeds this fraction, or whose FOV is outside the range, is no estimate (the views show too little
    perspective yet); once every pose bin is covered it is a failure."""

    coverage: CoverageOptions = field(default_factory=CoverageOptions)
    min_keyframes: int = 8
    solve_every: int = 4
    settle_rel_std: float = 0.03
    settle_rel_change: float = 0.02
    settle_count: int = 2
    min_hfov_deg: float = 20.0
    max_hfov_deg: float = 130.0
    max_rel_std: float = 0.25


@dataclass(frozen=True, eq=False)
class CalibrationUpdate:
    """What the GUI shows after each frame."""

    state: str
    prompt: str
    coverage: float
    counts: dict[str, int]
    n_keyframes: int
    added: bool
    estimate: FocalEstimate | None
    hfov_deg: float | None
    message: str = ""


@dataclass(frozen=True, eq=False)
class FaceCalibrationResult:
    """The accepted answer: intrinsics with the fitted focal (principal point, aspect and distortion kept),
    focal_px, focal_std_px, hfov_deg, identity (n_id,), n_keyframes, and the estimate history
    ((n_keyframes, focal_px, focal_std_px) per solve)."""

    intrinsics: Intrinsics
    focal_px: float
    focal_std_px: float
    hfov_deg: float
    identity: np.ndarray
    n_keyframes: int
    history: tuple[tuple[int, float, float], ...]

    def summary(self) -> str:
        return (f"focal {self.focal_px:.1f} px +- {self.focal_std_px:.1f} (1 sigma), horizontal FOV "
                f"{self.hfov_deg:.1f} deg, {self.n_keyframes} keyframes")


class FaceCalibrator:
    """Collects keyframes from tracked frames (or landmarks), solves for focal + identity, accept/retry."""

    def __init__(self, solver: FocalSolver | None = None, options: FaceCalibrationOptions | None = None):
        self.options = options or FaceCalibrationOptions()
        self._solver = solver
        self.retry()

    # -- state -------------------------------------------------------------------------------------------
    def retry(self) -> None:
        """Start again: forget keyframes, estimates and any result."""
        self.state = "collecting"
        self.coverage = Coverage(self.options.coverage)
        self.keyframes: list[Keyframe] = []
        self.history: list[tuple[int, float, float]] = []
        self.estimate: FocalEstimate | None = None
        self.intrinsics: Intrinsics | None = None
        self.message = ""
        self.unmeasured = ""
        self._solved_at = 0

    @property
    def solver(self) -> FocalSolver:
        if self._solver is None:
            self._solver = fitter_focal_solver()
        return self._solver

    def accept(self) -> FaceCalibrationResult:
        """Take the current estimate (state ``ready``; or ``collecting`` with an estimate, when the user accepts
        early) and finish."""
        if self.estimate is None or self.intrinsics is None:
            raise FaceCalibrationError("nothing to accept yet: no focal estimate (collect more keyframes)")
        if self.state == "failed":
            raise FaceCalibrationError(f"cannot accept a failed calibration: {self.message}")
        est = self.estimate
        # the starting camera's principal point, aspect ratio and distortion (e.g. from a board profile) are kept
        intr = self.intrinsics.with_focal(est.focal_px)
        self.state = "accepted"
        return FaceCalibrationResult(intr, est.focal_px, est.focal_std_px, intr.hfov_deg, np.asarray(est.identity),
                                     est.n_keyframes, tuple(self.history))

    # -- input -------------------------------------------------------------------------------------------
    def add_tracked(self, tracked: TrackedFrame, solve: bool = True) -> CalibrationUpdate:
        """Feed one frame from the pipeline; frames without a face or fit are skipped (and said so)."""
        if not tracked.tracked or tracked.landmarks is None or tracked.fit is None:
            return self._update(False, tracked.message or "no face tracked")
        params = tracked.fit.params
        yaw, pitch = head_yaw_pitch_deg(params)
        depth = float(params.translation_mm[2])
        return self._add(Keyframe(tracked.landmarks, tracked.intrinsics, yaw, pitch, depth, tracked.frame.index,
                                  params), solve)

    def add_landmarks(self, landmarks: Landmarks, intrinsics: Intrinsics, yaw_deg: float, pitch_deg: float,
                      depth: float | None = None, index: int = -1, params: FitParams | None = None,
                      solve: bool = True) -> CalibrationUpdate:
        """Feed landmarks with a known head orientation; ``depth`` defaults to 1 / landmark spread."""
        if depth is None:
            depth = 1.0 / max(landmark_scale_px(landmarks), 1e-6)
        return self._add(Keyframe(landmarks, intrinsics, yaw_deg, pitch_deg, float(depth), index, params), solve)

    def _add(self, kf: Keyframe, solve: bool) -> CalibrationUpdate:
        if self.state == "failed":
            return self._update(False, f"{self.message} (retry to start again)")
        if self.state != "collecting":
            return self._update(False, f"calibration is {self.state}; retry to start again")
        if self.intrinsics is None:
            self.intrinsics = kf.intrinsics
        elif (kf.intrinsics.width, kf.intrinsics.height) != (self.intrinsics.width, self.intrinsics.height):
            raise FaceCalibrationError(
                f"frame size changed from {self.intrinsics.width}x{self.intrinsics.height} to "
                f"{kf.intrinsics.width}x{kf.intrinsics.height} during calibration; retry")
        added = self._maybe_keep(kf)
        if solve and self.needs_solve():
            self.solve()
        return self._update(added)

    def _maybe_keep(self, kf: Keyframe) -> bool:
        o = self.options.coverage
        if len(self.keyframes) >= o.max_keyframes:
            return False
        if not (math.isfinite(kf.depth) and kf.depth > 0):
            return False
        novel = all(max(abs(kf.yaw_deg - k.yaw_deg), abs(kf.pitch_deg - k.pitch_deg)) >= o.min_pose_change_deg
                    or abs(math.log(kf.depth / k.depth)) >= o.min_depth_change for k in self.keyframes)
        if novel:
            self.coverage.add(kf.yaw_deg, kf.pitch_deg, kf.depth)
            self.keyframes.append(kf)
            return True
        return False

    # -- solving -----------------------------------------------------------------------------------------
    def needs_solve(self) -> bool:
        n = len(self.keyframes)
        return (self.state == "collecting" and n >= self.options.min_keyframes
                and (self._solved_at == 0 or n - self._solved_at >= self.options.solve_every
                     or (self.coverage.complete and n > self._solved_at)))

    def solve(self) -> FocalEstimate | None:
        """Run the joint fit over the current keyframes (slow: call it off the GUI thread)."""
        if not self.keyframes or self.intrinsics is None:
            raise FaceCalibrationError("no keyframes to fit")
        n = len(self.keyframes)
        self._solved_at = n
        try:
            est = self.solver(list(self.keyframes), self.intrinsics, self.estimate)
        except FaceCalibrationError as exc:
            self.state, self.message = "failed", str(exc)
            return None
        if not (math.isfinite(est.focal_px) and est.focal_px > 0):
            self.state, self.message = "failed", f"the focal fit diverged (focal {est.focal_px}); retry"
            return None
        hfov = self.intrinsics.with_focal(est.focal_px).hfov_deg
        rel = est.focal_std_px / est.focal_px
        o = self.options
        if not (o.min_hfov_deg <= hfov <= o.max_hfov_deg and rel <= o.max_rel_std):
            # Too little perspective in the views so far (the focal runs off towards an orthographic camera):
            # not an estimate yet. A failure only once every bin is covered.
            why = (f"horizontal FOV {hfov:.0f} deg is outside {o.min_hfov_deg:.0f}-{o.max_hfov_deg:.0f} deg"
                   if not o.min_hfov_deg <= hfov <= o.max_hfov_deg else f"focal std {100 * rel:.0f}%")
            self.unmeasured = why
            if self.coverage.complete:
                self.state = "failed"
                self.message = (f"the focal length could not be measured from these views ({why}) although every "
                                f"pose bin is covered; retry closer to the camera with larger head turns")
            else:
                self.message = f"focal length not measurable yet ({why}): keep following the prompts"
            return None
        self.unmeasured = ""
        self.message = ""
        self.estimate = est
        self.history.append((n, float(est.focal_px), float(est.focal_std_px)))
        if self.coverage.complete and self.settled():
            self.state = "ready"
        return est

    def settled(self) -> bool:
        o = self.options
        if self.estimate is None or len(self.history) < o.settle_count:
            return False
        est = self.estimate
        if not est.focal_std_px <= o.settle_rel_std * est.focal_px:
            return False
        recent = [f for _, f, _ in self.history[-o.settle_count:]]
        return (max(recent) - min(recent)) <= o.settle_rel_change * est.focal_px

    def _update(self, added: bool, message: str = "") -> CalibrationUpdate:
        est = self.estimate
        hfov = None if est is None or self.intrinsics is None else self.intrinsics.with_focal(est.focal_px).hfov_deg
        prompt = self.coverage.prompt()
        if self.state == "ready":
            prompt = "done: accept or retry"
        elif self.state == "failed":
            prompt = "calibration failed: retry"
        elif prompt == DONE_PROMPT and not self.settled():
            rel = None if est is None else est.focal_std_px / est.focal_px
            if rel is not None and rel > self.options.settle_rel_std:
                prompt = f"come closer and turn slowly: the focal length is still uncertain (+-{100 * rel:.0f}%)"
            else:
                prompt = "keep moving slowly: the estimate is settling"
        return CalibrationUpdate(self.state, prompt, self.coverage.fraction, dict(self.coverage.counts),
                                 len(self.keyframes), added, est, hfov, message or self.message)

    def run(self, frames: Iterable[TrackedFrame], max_frames: int | None = None,
            on_update: Callable[[CalibrationUpdate], None] | None = None) -> FaceCalibrationResult:
        """Headless: feed frames until ``ready`` (or the stream ends / ``max_frames``), then accept.

        Raises FaceCalibrationError with what was missing when it cannot finish.
        """
        n = 0
        n_tracked = 0
        for tracked in frames:
            n += 1
            n_tracked += bool(tracked.tracked)
            update = self.add_tracked(tracked)
            if on_update is not None:
                on_update(update)
            if self.state in ("ready", "failed") or (max_frames is not None and n >= max_frames):
                break
        if self.state == "failed":
            raise FaceCalibrationError(self.message)
        if n == 0:
            raise FaceCalibrationError("no frames: the source delivered nothing")
        if n_tracked == 0:
            raise FaceCalibrationError(f"no face tracked in any of the {n} frames")
        if self.state != "ready" and len(self.keyframes) >= self.options.min_keyframes and self.needs_solve():
            self.solve()
        if self.estimate is None:
            missing = ", ".join(self.coverage.missing_prompts()) or "nothing"
            if self.unmeasured:
                raise FaceCalibrationError(
                    f"the focal length could not be measured from these views ({self.unmeasured}): the head turned "
                    f"and moved too little; {len(self.keyframes)} keyframes from {n} frames, coverage "
                    f"{100 * self.coverage.fraction:.0f}%, still missing: {missing}")
            raise FaceCalibrationError(
                f"not enough keyframes: {len(self.keyframes)} kept from {n} frames ({n_tracked} tracked), at least "
                f"{self.options.min_keyframes} are needed; coverage {100 * self.coverage.fraction:.0f}%, "
                f"still missing: {missing}")
        if self.state != "ready":
            log.warning("calibration stopped before coverage was complete (%.0f%%, missing: %s); using the estimate "
                        "so far", 100 * self.coverage.fraction, ", ".join(self.coverage.missing_prompts()) or "nothing")
        return self.accept()


def calibrate_landmarks(landmarks: Sequence[Landmarks], intrinsics: Intrinsics, fitter,
                        options: FaceCalibrationOptions | None = None, use_all: bool = False,
                        on_update: Callable[[CalibrationUpdate], None] | None = None) -> FaceCalibrationResult:
    """Face calibration over a list of landmark frames (no pipeline): each frame is fitted in tracking mode at
    the starting focal ``intrinsics.fx`` to get its head pose, keyframes are chosen by coverage (all frames
    with ``use_all``), then focal and identity are solved jointly (one solve per ``solve_every`` keyframes, so
    ``history`` shows the convergence).

    ``fitter``: a ``tracker.fitting.FaceFitter``. Raises FaceCalibrationError with what was missing.
    """
    options = options or FaceCalibrationOptions()
    if use_all:
        cov = options.coverage
        options = FaceCalibrationOptions(
            CoverageOptions(cov.yaw_deg, cov.pitch_deg, cov.near_ratio, cov.far_ratio, cov.per_bin,
                            max(cov.max_keyframes, len(landmarks)), 0.0, 0.0),
            options.min_keyframes, options.solve_every, options.settle_rel_std, options.settle_rel_change,
            options.settle_count, options.min_hfov_deg, options.max_hfov_deg)
    fitter = calibration_fitter(fitter)
    cal = FaceCalibrator(fitter_focal_solver(fitter), options)
    previous: FitParams | None = None
    n_fitted = 0
    messages: list[str] = []
    for i, lmk in enumerate(landmarks):
        fit = fitter.fit_frame(lmk, intrinsics, previous=previous)
        if not math.isfinite(fit.cost):
            messages.append(fit.message)
            previous = None
            continue
        previous = fit.params
        n_fitted += 1
        yaw, pitch = head_yaw_pitch_deg(fit.params)
        update = cal.add_landmarks(lmk, intrinsics, yaw, pitch, float(fit.params.translation_mm[2]), i, fit.params,
                                   solve=True)
        if on_update is not None:
            on_update(update)
        if cal.state == "failed":
            raise FaceCalibrationError(cal.message)
    if n_fitted == 0:
        why = f" ({messages[0]})" if messages else ""
        raise FaceCalibrationError(f"no face could be fitted in any of the {len(landmarks)} frames{why}")
    if len(cal.keyframes) < options.min_keyframes:
        raise FaceCalibrationError(
            f"not enough keyframes: {len(cal.keyframes)} kept from {len(landmarks)} frames, at least "
            f"{options.min_keyframes} are needed; still missing: "
            f"{', '.join(cal.coverage.missing_prompts()) or 'nothing'}")
    if cal._solved_at < len(cal.keyframes) and cal.state == "collecting":
        cal.solve()
        if cal.state == "failed":
            raise FaceCalibrationError(cal.message)
    if cal.estimate is None:
        raise FaceCalibrationError(
            f"the focal length could not be measured from these views ({cal.unmeasured or 'no estimate'}): the head "
            f"turned and moved too little; coverage {100 * cal.coverage.fraction:.0f}%, still missing: "
            f"{', '.join(cal.coverage.missing_prompts()) or 'nothing'}")
    return cal.accept()
