"""Start training from an exported network (``assets/landmark_model.onnx``) when its checkpoint is gone.

The export folds each batch norm into the convolution before it, so the ONNX file holds, per convolution, the
folded weight W' and bias b'. :func:`load_onnx_weights` puts W' into the convolution and makes its batch norm
the identity plus b' (the same function in eval mode). In train mode a batch norm normalises with the batch's
statistics, which would change the function at the first step, so :func:`recalibrate_batchnorm` then measures
each batch norm's input mean m and variance v on real crops and sets running statistics (m, v), scale
sqrt(v + eps) and shift b' + m: still exactly the same function in eval mode, and about the same in train mode.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tracker.training.network import ADDED_HEADS, LandmarkNet, NetworkConfig


def config_from_sidecar(onnx_path: Path) -> NetworkConfig:
    """The network's shape from the JSON sidecar beside an exported model."""
    side = Path(onnx_path).with_suffix(".json")
    if not side.is_file():
        raise FileNotFoundError(f"no sidecar {side} beside {onnx_path}")
    meta = json.loads(side.read_text())
    try:
        return NetworkConfig(int(meta["input_size"]), int(meta["n_landmarks"]), float(meta["width_mult"]),
                             int(meta.get("spatial_channels", 0)), float(meta.get("crop_zoom", 1.0)),
                             int(meta.get("fine_channels", 0)))
    except KeyError as exc:
        raise ValueError(f"{side} lacks {exc}") from exc


def _conv_bn_pairs(model: LandmarkNet) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    pairs = []
    for m in model.modules():
        if isinstance(m, nn.Sequential) and len(m) >= 2 and isinstance(m[0], nn.Conv2d) \
                and isinstance(m[1], nn.BatchNorm2d):
            pairs.append((m[0], m[1]))
    return pairs


def load_onnx_weights(model: LandmarkNet, onnx_path: Path) -> None:
    """Copy an exported network's weights into ``model`` (same config); batch norms become identity + bias."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:  # the exporter shares equal tensors (e.g. two zero biases) through Identity nodes
        if node.op_type == "Identity" and node.input[0] in inits:
            inits[node.output[0]] = inits[node.input[0]]
    convs = [n for n in graph.node if n.op_type == "Conv"]
    pairs = _conv_bn_pairs(model)
    if len(convs) != len(pairs):
        raise ValueError(f"{onnx_path} has {len(convs)} convolutions, the network {len(pairs)}: another architecture")
    with torch.no_grad():
        for node, (conv, bn) in zip(convs, pairs):
            w = inits[node.input[1]]
            b = inits[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise ValueError(f"{onnx_path}: convolution {node.name} is {w.shape}, the network's "
                                 f"{tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(w.copy()))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(b.copy()))
        for name in ("head", *(linear for _, linear in ADDED_HEADS.values())):
            lin = getattr(model, name, None)
            if lin is None:
                continue
            w, b = inits.get(f"{name}.weight"), inits.get(f"{name}.bias")
            if w is None or b is None or tuple(w.shape) != tuple(lin.weight.shape):
                raise ValueError(f"{onnx_path} has no {name} of the network's shape")
            lin.weight.copy_(torch.from_numpy(w.copy()))
            lin.bias.copy_(torch.from_numpy(b.copy()))


def recalibrate_batchnorm(model: LandmarkNet, batches) -> None:
    """Give each batch norm (identity + shift, from :func:`load_onnx_weights`) the statistics of its input over
    ``batches`` (an iterable of (N, 3, S, S) float tensors) without changing the eval-mode function."""
    pairs = _conv_bn_pairs(model)
    sums: dict[int, list] = {id(bn): [0.0, 0.0, 0] for _, bn in pairs}

    def hook(bn, inp, _out):
        x = inp[0].detach().double()
        acc = sums[id(bn)]
        acc[0] = acc[0] + x.sum(dim=(0, 2, 3))
        acc[1] = acc[1] + (x * x).sum(dim=(0, 2, 3))
        acc[2] += x.shape[0] * x.shape[2] * x.shape[3]

    handles = [bn.register_forward_hook(hook) for _, bn in pairs]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x in batches:
                model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    with torch.no_grad():
        for _, bn in pairs:
            s, s2, n = sums[id(bn)]
            if n == 0:
                raise ValueError("no batches to recalibrate the batch norms with")
            mean = s / n
            var = (s2 / n - mean * mean).clamp_min(1e-6)
            shift = bn.bias.double().clone()
            bn.running_mean.copy_(mean.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())
            bn.bias.copy_((shift + mean).float())
