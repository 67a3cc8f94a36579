"""Model fitting (paper Sec. 3.2-3.3): the energy, its analytic Jacobians and a Levenberg-Marquardt solver.

Public API::

    from tracker.fitting import FaceFitter, FitOptions
    fitter = FaceFitter(head_model, landmark_set, FitOptions())
    result = fitter.fit_frame(landmarks, intrinsics, previous=None)          # tracking -> FitResult
    kf = fitter.fit_keyframes(list_of_landmarks, intrinsics, fit_identity=True, fit_focal=True)
    kf.identity, kf.focal_px, kf.focal_std_px, kf.frames                     # KeyframeFitResult
    seq = fitter.fit_sequence(list_of_landmarks, intrinsics)                 # offline, temporal term
"""

from tracker.fitting.energy import FitOptions
from tracker.fitting.landmark_model import Camera, LandmarkModel
from tracker.fitting.solver import FaceFitter, KeyframeFitResult

__all__ = ["Camera", "FaceFitter", "FitOptions", "KeyframeFitResult", "LandmarkModel"]
