"""Synthetic tracked frames over real video frames, for the session tests."""

from __future__ import annotations

import numpy as np

from tracker.types import FitParams, FitResult, Frame, Intrinsics, Landmarks, Roi, TrackedFrame


def fake_tracked(frame: Frame, rng: np.random.Generator, tracked: bool = True, n_id: int = 100,
                 n_lm: int = 320) -> TrackedFrame:
    """A TrackedFrame with random (but plausible-shaped) landmarks and every model parameter."""
    intr = Intrinsics.from_fov(frame.width, frame.height)
    if not tracked:
        return TrackedFrame(frame, intr, None, None, None, False, {"decode": 0.5, "total": 0.7}, "no face found")
    params = FitParams(identity=rng.normal(size=n_id), expression=rng.uniform(size=53),
                       root_rotation=rng.normal(scale=0.2, size=3),
                       translation_mm=np.array([0.0, 0.0, 600.0]) + rng.normal(size=3),
                       joints=rng.normal(scale=0.1, size=(4, 3)), focal_px=float(intr.focal_px))
    mu = rng.uniform(0, frame.width, size=(n_lm, 2))
    lms = Landmarks(mu, rng.uniform(0.5, 3.0, size=n_lm))
    fit = FitResult(params, mu + rng.normal(size=mu.shape), cost=float(rng.uniform(10, 100)), iterations=3,
                    converged=True)
    roi = Roi(np.array([[1.0, 0.1, -20.0], [-0.1, 1.0, 5.0]]) * rng.uniform(0.5, 1.5), 256)
    return TrackedFrame(frame, intr, roi, lms, fit, True,
                        {"decode": 1.0, "roi": 0.2, "network": 4.0, "fit": 2.5, "total": 7.7})
