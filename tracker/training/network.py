"""The dense landmark network: MobileNetV2 (Sandler et al. 2018) with a regression head (paper Sec. 3.1, 4).

Input ``image``: (N, 3, S, S) float32 RGB in [0, 1]; the network normalises it itself.
Output ``landmarks``: (N, L, 3) float32: x, y in normalised crop coordinates ([-1, 1] over the crop,
:func:`tracker.roi.crop_to_normalized`) and log sigma in the same normalised units.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

#: ImageNet statistics (RGB), applied inside the network.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
#: MobileNetV2 inverted-residual stages: expansion t, channels c, repeats n, first stride s.
_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
#: log sigma that the head starts from (sigma = 5% of the half crop).
INITIAL_LOG_SIGMA = float(np.log(0.05))


@dataclass(frozen=True)
class NetworkConfig:
    """``input_size``: S; ``n_landmarks``: L; ``width_mult``: MobileNetV2 width multiplier;
    ``spatial_channels``: K > 0 adds the spatial head (see :class:`LandmarkNet`), 0 leaves it out."""

    input_size: int = 128
    n_landmarks: int = 320
    width_mult: float = 0.5
    spatial_channels: int = 0

    def __post_init__(self) -> None:
        if not 32 <= self.input_size <= 512 or self.input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32 in [32, 512], got {self.input_size}")
        if self.n_landmarks < 1:
            raise ValueError(f"n_landmarks must be positive, got {self.n_landmarks}")
        if not 0.1 <= self.width_mult <= 2.0:
            raise ValueError(f"width_mult must be in [0.1, 2], got {self.width_mult}")
        if not 0 <= self.spatial_channels <= 256:
            raise ValueError(f"spatial_channels must be in [0, 256], got {self.spatial_channels}")

    def to_dict(self) -> dict:
        return asdict(self)


def _divisible(v: float, divisor: int = 8) -> int:
    """Round channels as the reference MobileNetV2 does (never down by more than 10%)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> linear projection (1x1), with a skip when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn(cin, hidden, 1, 1))
        layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden), _conv_bn(hidden, cout, 1, 1, act=False)]
        self.block = nn.Sequential(*layers)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.skip else self.block(x)


class LandmarkNet(nn.Module):
    """MobileNetV2 backbone, global average pool, one linear layer to L x 3.

    With ``spatial_channels`` K > 0, a second (spatial) head adds its output to the first: the last feature map
    (S/32 x S/32 cells) goes through a 1x1 convolution to K channels and, flattened, through a linear layer to
    L x 3. The average pool throws away where in the crop a feature was seen; the spatial head keeps it. Its
    linear layer starts at zero, so a network initialised from pooled-head weights starts out unchanged.
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        wm = config.width_mult
        cin = _divisible(32 * wm)
        layers: list[nn.Module] = [_conv_bn(3, cin, 3, 2)]
        for t, c, n, s in _STAGES:
            cout = _divisible(c * wm)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        last = _divisible(1280 * max(1.0, wm))
        layers.append(_conv_bn(cin, last, 1, 1))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(last, config.n_landmarks * 3)
        k = config.spatial_channels
        if k:
            cells = (config.input_size // 32) ** 2
            self.spatial_reduce = _conv_bn(last, k, 1, 1)
            self.spatial_head = nn.Linear(k * cells, config.n_landmarks * 3)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.head.weight, std=1e-3)
        if self.config.spatial_channels:
            nn.init.zeros_(self.spatial_head.weight)
            nn.init.zeros_(self.spatial_head.bias)
        self.set_initial_landmarks(np.zeros((self.config.n_landmarks, 2)))

    def set_initial_landmarks(self, mean_xy: np.ndarray) -> None:
        """Start the head at (L, 2) mean normalised positions and sigma = exp(INITIAL_LOG_SIGMA)."""
        mean_xy = np.asarray(mean_xy, dtype=np.float32)
        if mean_xy.shape != (self.config.n_landmarks, 2):
            raise ValueError(f"expected ({self.config.n_landmarks}, 2) mean positions, got {mean_xy.shape}")
        bias = np.concatenate([mean_xy, np.full((len(mean_xy), 1), INITIAL_LOG_SIGMA, np.float32)], axis=1)
        with torch.no_grad():
            self.head.bias.copy_(torch.from_numpy(bias.reshape(-1)))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) RGB in [0, 1] -> (N, L, 3): x, y (normalised crop coords), log sigma."""
        x = (image - self.mean) / self.std
        f = self.features(x)
        out = self.head(f.mean(dim=(2, 3)))
        if self.config.spatial_channels:
            out = out + self.spatial_head(self.spatial_reduce(f).flatten(1))
        return out.view(-1, self.config.n_landmarks, 3)

    def head_parameters(self) -> list[nn.Parameter]:
        """The linear layers that map features to landmarks (the optimiser slows them down)."""
        layers = [self.head] + ([self.spatial_head] if self.config.spatial_channels else [])
        return [p for layer in layers for p in layer.parameters()]


def count_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
