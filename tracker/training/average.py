"""Average the weights of checkpoints of one network (weight interpolation, as in WiSE-FT: Wortsman et al.,
"Robust fine-tuning of zero-shot models", CVPR 2022).

Command::

    python -m tracker.training.average --out runs/avg.pt A.pt B.pt [--weights 0.5 0.5]

Every floating-point tensor (weights, batch-norm statistics) becomes the weighted mean of the checkpoints'; the
others (step counters) and the config are those of the first checkpoint. The checkpoints must have the same
config and tensors, except that a checkpoint may lack an added head (``spatial_channels`` or ``fine_channels``
0 where another has K): it is the same function as its network with that head's linear layer at zero, so it
takes zeros there and the other checkpoint's reduce layer (which a zero head does not read); the result has the
head. Averaging a fine-tuned network with the weights it started from keeps most of the gain
and gives back some of what long fine-tuning on one data set loses (its confidence on other faces; see the
model card's "Training on a lent GPU"). The result is a checkpoint for ``tracker.training.export`` (no
optimiser state).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from tracker.training.network import ADDED_HEADS, NetworkConfig


def _fill_missing_heads(cks: list[dict]) -> None:
    """Give checkpoints without an added head the zero head (see the module docstring), in place."""
    for field, (reduce_name, head_name) in ADDED_HEADS.items():
        if len({ck["config"][field] for ck in cks} - {0}) != 1:
            continue
        donor = next(ck for ck in cks if ck["config"][field])
        for ck in cks:
            if ck["config"][field]:
                continue
            ck["config"] = {**ck["config"], field: donor["config"][field]}
            for k, v in donor["model"].items():
                if k.startswith(head_name + "."):
                    ck["model"][k] = torch.zeros_like(v)
                elif k.startswith(reduce_name + "."):
                    ck["model"][k] = v.clone()


def average_checkpoints(paths: list[Path], weights: list[float] | None = None) -> dict:
    """The averaged checkpoint (see the module docstring)."""
    if len(paths) < 2:
        raise ValueError("give at least two checkpoints")
    weights = [1.0 / len(paths)] * len(paths) if weights is None else [float(w) for w in weights]
    if len(weights) != len(paths) or any(w < 0 for w in weights) or abs(sum(weights) - 1.0) > 1e-6:
        raise ValueError("give one non-negative weight per checkpoint, summing to 1")
    cks = []
    for p in paths:
        ck = torch.load(str(p), map_location="cpu", weights_only=False)
        if "model" not in ck or "config" not in ck:
            raise ValueError(f"{p} is not a landmark-network checkpoint (no 'model'/'config')")
        ck["config"] = NetworkConfig(**ck["config"]).to_dict()  # fields added since it was written: defaults
        cks.append(ck)
    _fill_missing_heads(cks)  # after the defaults: every config has every field
    first = cks[0]
    for p, ck in zip(paths[1:], cks[1:]):
        if ck["config"] != first["config"] or set(ck["model"]) != set(first["model"]):
            raise ValueError(f"{p} is another network than {paths[0]} (config or tensors differ)")
    model = {}
    for k, v in first["model"].items():
        if v.is_floating_point():
            model[k] = sum(w * ck["model"][k].float() for w, ck in zip(weights, cks)).to(v.dtype)
        else:
            model[k] = v.clone()
    out = {k: v for k, v in first.items() if k not in ("model", "optimizer")}
    out["model"] = model
    out["averaged_from"] = [f"{w:g} x {p}" for w, p in zip(weights, paths)]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tracker.training.average", description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--weights", type=float, nargs="*", default=None, help="one per checkpoint (default: equal)")
    a = ap.parse_args(argv)
    for p in a.checkpoints:
        if not p.is_file():
            print(f"error: no checkpoint at {p}", file=sys.stderr)
            return 2
    try:
        ck = average_checkpoints(a.checkpoints, a.weights)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    a.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ck, str(a.out))
    print(f"{a.out}: {', '.join(ck['averaged_from'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
