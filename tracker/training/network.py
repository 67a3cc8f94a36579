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

from tracker.roi import template

#: ImageNet statistics (RGB), applied inside the network.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
#: MobileNetV2 inverted-residual stages: expansion t, channels c, repeats n, first stride s.
_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
#: Heads added to the pooled one: config field -> (reduce layer, linear layer) attribute names. Each linear layer
#: starts at zero, so a network without the head is the same function as one with it at zero.
ADDED_HEADS = {"spatial_channels": ("spatial_reduce", "spatial_head"), "fine_channels": ("fine_reduce", "fine_head")}
#: log sigma that the head starts from (sigma = 5% of the half crop).
INITIAL_LOG_SIGMA = float(np.log(0.05))


@dataclass(frozen=True)
class NetworkConfig:
    """``input_size``: S; ``n_landmarks``: L; ``width_mult``: MobileNetV2 width multiplier;
    ``spatial_channels``: K > 0 adds the spatial head (see :class:`LandmarkNet`), 0 leaves it out;
    ``crop_zoom``: the zoom of the crops it is trained on and expects (:func:`tracker.roi.template`); it does
    not change the layers; ``fine_channels``: K > 0 adds the fine head (the spatial head's kind on the stride-16
    feature map, see :class:`LandmarkNet`), 0 leaves it out."""

    input_size: int = 128
    n_landmarks: int = 320
    width_mult: float = 0.5
    spatial_channels: int = 0
    crop_zoom: float = 1.0
    fine_channels: int = 0

    def __post_init__(self) -> None:
        if not 32 <= self.input_size <= 512 or self.input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32 in [32, 512], got {self.input_size}")
        if self.n_landmarks < 1:
            raise ValueError(f"n_landmarks must be positive, got {self.n_landmarks}")
        if not 0.1 <= self.width_mult <= 2.0:
            raise ValueError(f"width_mult must be in [0.1, 2], got {self.width_mult}")
        if not 0 <= self.spatial_channels <= 256:
            raise ValueError(f"spatial_channels must be in [0, 256], got {self.spatial_channels}")
        if not 0 <= self.fine_channels <= 256:
            raise ValueError(f"fine_channels must be in [0, 256], got {self.fine_channels}")
        template(self.crop_zoom)  # raises outside tracker.roi.ZOOM_RANGE

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

    With ``fine_channels`` K > 0, a third head of the same kind reads the feature map at stride 16 (the end of
    the 96-channel stage, S/16 x S/16 cells): twice the spatial head's resolution, for the landmarks that need
    precise positions (lips, eyes). It too starts at zero.
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        wm = config.width_mult
        cin = _divisible(32 * wm)
        layers: list[nn.Module] = [_conv_bn(3, cin, 3, 2)]
        self._fine_end, fine_in = 0, 0
        for t, c, n, s in _STAGES:
            cout = _divisible(c * wm)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
            if c == 96:  # the last stage at stride 16
                self._fine_end, fine_in = len(layers), cout
        last = _divisible(1280 * max(1.0, wm))
        layers.append(_conv_bn(cin, last, 1, 1))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(last, config.n_landmarks * 3)
        k = config.spatial_channels
        if k:
            cells = (config.input_size // 32) ** 2
            self.spatial_reduce = _conv_bn(last, k, 1, 1)
            self.spatial_head = nn.Linear(k * cells, config.n_landmarks * 3)
        kf = config.fine_channels
        if kf:
            self.fine_reduce = _conv_bn(fine_in, kf, 1, 1)
            self.fine_head = nn.Linear(kf * (config.input_size // 16) ** 2, config.n_landmarks * 3)
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
        for linear in self.added_heads():
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)
        self.set_initial_landmarks(np.zeros((self.config.n_landmarks, 2)))

    def set_initial_landmarks(self, mean_xy: np.ndarray) -> None:
        """Start the head at (L, 2) mean normalised positions and sigma = exp(INITIAL_LOG_SIGMA)."""
        set_head_landmarks(self.head, mean_xy)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) RGB in [0, 1] -> (N, L, 3): x, y (normalised crop coords), log sigma."""
        x = (image - self.mean) / self.std
        f16 = self.features[:self._fine_end](x)  # stride 16, read by the fine head
        f = self.features[self._fine_end:](f16)
        out = self.head(f.mean(dim=(2, 3)))
        if self.config.spatial_channels:
            out = out + self.spatial_head(self.spatial_reduce(f).flatten(1))
        if self.config.fine_channels:
            out = out + self.fine_head(self.fine_reduce(f16).flatten(1))
        return out.view(-1, self.config.n_landmarks, 3)

    def scale_sigma(self, factor) -> None:
        """Multiply the output sigmas by ``factor``, one number or one per landmark (adds its log to the pooled
        head's log-sigma biases; the positions are untouched): temperature scaling of the uncertainties."""
        scale_head_sigma(self.head, factor)

    def head_parameters(self) -> list[nn.Parameter]:
        """The linear layers that map features to landmarks (the optimiser slows them down)."""
        return [p for layer in [self.head, *self.added_heads()] for p in layer.parameters()]

    def added_heads(self) -> list[nn.Linear]:
        """The linear layers of the heads that the config adds (:data:`ADDED_HEADS`)."""
        return [getattr(self, linear) for field, (_, linear) in ADDED_HEADS.items() if getattr(self.config, field)]


def set_head_landmarks(head: nn.Linear, mean_xy: np.ndarray) -> None:
    """Set the biases of a linear layer to L x [x, y, log sigma] to (L, 2) mean positions and
    sigma = exp(INITIAL_LOG_SIGMA)."""
    n = head.out_features // 3
    mean_xy = np.asarray(mean_xy, dtype=np.float32)
    if mean_xy.shape != (n, 2):
        raise ValueError(f"expected ({n}, 2) mean positions, got {mean_xy.shape}")
    bias = np.concatenate([mean_xy, np.full((n, 1), INITIAL_LOG_SIGMA, np.float32)], axis=1)
    with torch.no_grad():
        head.bias.copy_(torch.from_numpy(bias.reshape(-1)))


def scale_head_sigma(head: nn.Linear, factor) -> None:
    """Multiply the sigmas a linear layer to L x [x, y, log sigma] outputs by ``factor`` (one number or one per
    landmark) by adding its log to the log-sigma biases; positions untouched."""
    f = np.broadcast_to(np.asarray(factor, dtype=np.float64), (head.out_features // 3,))
    if not (np.all(np.isfinite(f)) and np.all(f > 0)):
        raise ValueError("sigma scale must be positive numbers")
    with torch.no_grad():
        head.bias.view(-1, 3)[:, 2] += torch.from_numpy(np.log(f)).to(head.bias.dtype)


def _copy_map(n_old: int, n_new: int, rng: np.random.Generator) -> np.ndarray:
    """(n_new,) old channel of each new channel: the old ones in order, then random copies."""
    if n_new < n_old:
        raise ValueError(f"cannot narrow a layer from {n_old} to {n_new} channels")
    return np.concatenate([np.arange(n_old), rng.integers(0, n_old, n_new - n_old)])


def _split_inputs(w: torch.Tensor, g_in: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """(O, I_new, ...) weights gathered from the old inputs -> the same with each old input's weight split among
    its copies by random shares that sum to one per output row (the sum over the copies is unchanged, and the
    copies get different gradients, so they can move apart)."""
    share = rng.uniform(0.5, 1.5, (w.shape[0], len(g_in)))
    total = np.zeros((w.shape[0], int(g_in.max()) + 1))
    np.add.at(total.T, g_in, share.T)
    share = share / total[:, g_in]
    return w * torch.from_numpy(share).to(w.dtype).view(*share.shape, *([1] * (w.dim() - 2)))


def widen_state_dict(state: dict, source: NetworkConfig, target: NetworkConfig, seed: int = 0) -> dict:
    """Weights of a ``source``-width network -> weights of a wider ``target`` network that computes the same
    function (Net2WiderNet, Chen et al. 2016): each new channel copies an old one (convolution and batch norm),
    and the layer that reads a copied channel splits the old channel's weight among its copies. Residual
    streams keep one channel map per stage. Input size, landmarks and spatial head must be the same."""
    if (source.input_size, source.n_landmarks, source.spatial_channels) != (
            target.input_size, target.n_landmarks, target.spatial_channels) or source.fine_channels \
            or target.fine_channels:
        raise ValueError("widening keeps the input size, the landmarks and the spatial head, and has no fine head; "
                         f"got {source} -> {target}")
    rng = np.random.default_rng(seed)
    src, dst = LandmarkNet(source), LandmarkNet(target)
    src.load_state_dict(state)
    out = {k: v.clone() for k, v in dst.state_dict().items()}
    src_mods, dst_mods = dict(src.named_modules()), dict(dst.named_modules())

    def conv_bn(name: str, g_in: np.ndarray | None, n_out: int | None, g_out: np.ndarray | None = None):
        """Copy conv ``name``.0 and its batch norm ``name``.1; g_in None: a depthwise conv (output map = input
        map). Returns the output channel map."""
        conv_old = src_mods[name + ".0"].weight.detach()
        if g_in is None:
            w = conv_old[torch.from_numpy(g_out)]
        else:
            if g_out is None:
                g_out = _copy_map(conv_old.shape[0], n_out, rng)
            w = _split_inputs(conv_old[torch.from_numpy(g_out)][:, torch.from_numpy(g_in)], g_in, rng)
        out[name + ".0.weight"] = w.clone()
        idx = torch.from_numpy(g_out)
        for field in ("weight", "bias", "running_mean", "running_var"):
            out[f"{name}.1.{field}"] = getattr(src_mods[name + ".1"], field).detach()[idx].clone()
        out[f"{name}.1.num_batches_tracked"] = src_mods[name + ".1"].num_batches_tracked.clone()
        return g_out

    stream = conv_bn("features.0", np.arange(3), dst_mods["features.0.0"].out_channels)
    for i, (a, b) in enumerate(zip(src.features, dst.features)):
        if not isinstance(a, InvertedResidual):
            continue
        if a.skip != b.skip:
            raise ValueError(f"block {i}: the residual connection differs between the widths")
        name = f"features.{i}.block"
        j = 0
        g = stream
        if len(b.block) == 3:  # expand
            g = conv_bn(f"{name}.0", g, dst_mods[f"{name}.0.0"].out_channels)
            j = 1
        g = conv_bn(f"{name}.{j}", None, None, g_out=g)  # depthwise
        stream = conv_bn(f"{name}.{j + 1}", g, dst_mods[f"{name}.{j + 1}.0"].out_channels,
                         g_out=stream if b.skip else None)
    last = len(dst.features) - 1
    conv_bn(f"features.{last}", stream, None, g_out=np.arange(dst_mods[f"features.{last}.0"].out_channels))
    for k, v in state.items():  # heads: unchanged shapes
        if not k.startswith("features."):
            out[k] = v.clone()
    return out


def resize_input_state_dict(state: dict, source: NetworkConfig, target: NetworkConfig) -> dict:
    """Weights of a network for one input size S -> weights for another. The backbone and the pooled head do
    not depend on S; the spatial head's linear layer reads a K x (S/32) x (S/32) grid of cells, so its weight is
    resampled bilinearly from the old grid to the new one (cell centres over the same crop) and scaled by the
    ratio of cell counts: a feature map that varies smoothly over the crop gives about the same output.
    Landmarks, width and spatial channels must be the same."""
    if (source.n_landmarks, source.width_mult, source.spatial_channels) != (
            target.n_landmarks, target.width_mult, target.spatial_channels) or source.fine_channels \
            or target.fine_channels:
        raise ValueError("resizing keeps the landmarks, the width and the spatial head, and has no fine head; "
                         f"got {source} -> {target}")
    out = dict(state)
    k = target.spatial_channels
    g_old, g_new = source.input_size // 32, target.input_size // 32
    if k and g_old != g_new:
        w = state["spatial_head.weight"]
        grid = w.reshape(w.shape[0], k, g_old, g_old)
        resized = nn.functional.interpolate(grid, size=(g_new, g_new), mode="bilinear", align_corners=False)
        out["spatial_head.weight"] = (resized * (g_old * g_old / (g_new * g_new))).reshape(w.shape[0], -1).clone()
    return out


def count_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
