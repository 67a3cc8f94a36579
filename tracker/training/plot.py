"""Training curves from the trainer's ``log.csv`` files -> a PNG (losses and validation NME).

Command: ``python -m tracker.training.plot runs/A/log.csv [runs/B/log.csv ...] --out docs/training_curves.png``
(several logs are drawn one after another, e.g. a pre-training run then the run that started from it).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def read_log(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{path} has no rows")
    d = {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}
    # rows logged at the same training second (e.g. validations right at the end of a time budget): their mean
    t, inverse = np.unique(d["seconds"], return_inverse=True)
    if len(t) < len(d["seconds"]):
        d = {k: np.bincount(inverse, v) / np.bincount(inverse) for k, v in d.items()}
    return d


def plot_logs(logs: list[Path], out: Path, labels: list[str] | None = None,
              events: list[tuple[float, str]] | None = None, hardware: str = "one CPU thread") -> Path:
    """Draw the logs one after another on a common time axis; ``events``: (hours, text) vertical marks
    (e.g. where the data or the validation set changed); ``hardware``: what the time was spent on."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    many = len(logs) > 4  # the loss legend has two rows per run: two columns and a taller figure
    fig, (ax_loss, ax_nme) = plt.subplots(1, 2, figsize=(11, 4 + (0.25 * (len(logs) - 4) if many else 0)))
    offset, lo, hi = 0.0, np.inf, -np.inf
    for k, path in enumerate(logs):
        d = read_log(path)
        lo = min(lo, float(d["train_loss"].min()))
        hi = max(hi, float(np.max(np.concatenate([d["train_loss"], d["val_loss"]]))))
        hours = (d["seconds"] + offset) / 3600.0
        name = labels[k] if labels else Path(path).parent.name
        color = f"C{k % 10}"  # one colour per run: its training (solid) and validation (dashed) loss
        ax_loss.plot(hours, d["train_loss"], "-", color=color, label=f"{name} train")
        ax_loss.plot(hours, d["val_loss"], "--", color=color, label=f"{name} val")
        ax_nme.plot(hours, d["val_nme"], "-o", ms=3, color=color, label=name)
        offset += float(d["seconds"][-1])
    ax_loss.set_ylim(lo - 0.5, min(lo + 8.0, hi + 0.5))  # the first validation losses of renders are far off the scale
    for hours, text in events or []:
        for ax in (ax_loss, ax_nme):
            ax.axvline(hours, color="grey", lw=0.8, ls=":")
        ax_nme.text(hours, ax_nme.get_ylim()[1], " " + text, fontsize=7, va="top", rotation=90, color="grey")
    ax_loss.set_xlabel(f"training time (h, {hardware})")
    ax_loss.set_ylabel("Gaussian NLL (Eq. 1, per landmark)")
    ax_loss.legend(fontsize=7 if many else 8, ncol=2 if many else 1)
    ax_loss.grid(alpha=0.3)
    ax_nme.set_xlabel(f"training time (h, {hardware})")
    ax_nme.set_ylabel("validation NME (% of eye-centre distance)")
    ax_nme.legend(fontsize=8)
    ax_nme.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("logs", type=Path, nargs="+")
    p.add_argument("--out", type=Path, default=Path("docs/training_curves.png"))
    p.add_argument("--labels", nargs="*", default=None)
    p.add_argument("--event", action="append", default=[], metavar="HOURS:TEXT",
                   help="a vertical mark at HOURS on the common time axis")
    p.add_argument("--hardware", default="one CPU thread", help="what the training time was spent on (axis label)")
    a = p.parse_args(argv)
    for f in a.logs:
        if not f.is_file():
            p.error(f"no such log: {f}")
    if a.labels and len(a.labels) != len(a.logs):
        p.error("give one label per log")
    events = []
    for e in a.event:
        hours, _, text = e.partition(":")
        try:
            events.append((float(hours), text))
        except ValueError:
            p.error(f"--event wants HOURS:TEXT, got {e!r}")
    print(plot_logs(a.logs, a.out, a.labels, events, a.hardware))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
