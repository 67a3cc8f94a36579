"""Gaussian negative log-likelihood of circular 2D Gaussian landmarks (paper Eq. 1) with per-landmark weights.

Paper Eq. 1:  Loss(L) = sum_i lambda_i * ( log(sigma_i^2) + ||mu_i - mu'_i||^2 / (2 sigma_i^2) ).
Here the sum is divided by the sum of the weights, so the value is a per-landmark average that does not
depend on how many landmarks a sample has labels for. Its minimum over sigma is at sigma^2 = ||mu - mu'||^2 / 2,
i.e. sigma is the per-axis standard deviation of a calibrated prediction.
"""

from __future__ import annotations

import numpy as np
import torch

#: log sigma is clamped to this range inside the loss (normalised units), for numerical safety only.
LOG_SIGMA_RANGE = (-9.0, 3.0)


def gaussian_nll(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """pred (N, L, 3) [x, y, log sigma]; target (N, L, 2); weights (N, L) >= 0 -> scalar loss.

    Raises ValueError for mismatched shapes or when all weights are zero.
    """
    if pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"pred must be (N, L, 3), got {tuple(pred.shape)}")
    if target.shape != pred.shape[:-1] + (2,):
        raise ValueError(f"target must be {tuple(pred.shape[:-1]) + (2,)}, got {tuple(target.shape)}")
    if weights.shape != pred.shape[:-1]:
        raise ValueError(f"weights must be {tuple(pred.shape[:-1])}, got {tuple(weights.shape)}")
    total = weights.sum()
    if float(total) <= 0.0:
        raise ValueError("all landmark weights are zero: nothing to train on")
    log_sigma = pred[..., 2].clamp(*LOG_SIGMA_RANGE)
    sq = (pred[..., :2] - target).square().sum(-1)
    # Paper Eq. 1: lambda_i * (log sigma_i^2 + ||mu_i - mu'_i||^2 / (2 sigma_i^2))
    per = 2.0 * log_sigma + 0.5 * sq * torch.exp(-2.0 * log_sigma)
    return (weights * per).sum() / total


def gaussian_nll_numpy(pred: np.ndarray, target: np.ndarray, weights: np.ndarray) -> float:
    """Reference implementation of :func:`gaussian_nll` in numpy (float64), same shapes."""
    pred = np.asarray(pred, np.float64)
    log_sigma = np.clip(pred[..., 2], *LOG_SIGMA_RANGE)
    sq = ((pred[..., :2] - np.asarray(target, np.float64)) ** 2).sum(-1)
    w = np.asarray(weights, np.float64)
    # Paper Eq. 1
    return float((w * (np.log(np.exp(log_sigma) ** 2) + sq / (2.0 * np.exp(log_sigma) ** 2))).sum() / w.sum())
