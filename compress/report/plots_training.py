"""Training curves: the validation metric per epoch of every model the run trained, distilled or
fine-tuned (`ModelRecord.training.history`), its best (kept) epoch marked."""

from __future__ import annotations

from dataclasses import dataclass

from compress.records import Summary
from compress.report.figure import plt, png

__all__ = ["Curve", "training_series", "training_curves"]


@dataclass(frozen=True)
class Curve:
    model: str
    key: str
    epochs: list[int]
    values: list[float]
    best_epoch: int | None
    note: str = ""  # what the epochs were, when not the model's own training


def _key(history: list[dict], metric: str | None) -> str | None:
    keys = [k for h in history for k in h if k.startswith("val_") and isinstance(h[k], int | float)]
    wanted = f"val_{metric}" if metric else None
    return wanted if wanted in keys else (keys[0] if keys else None)


def training_series(summary: Summary) -> list[Curve]:
    """One curve per model with a per-epoch history holding a validation metric."""
    metric = summary.metric.name if summary.metric else None
    curves = []
    for m in summary.models:
        history = m.training.history if m.training else []
        key = _key(history, metric)
        if key is None:
            continue
        rows = [(h.get("epoch", i + 1), h[key]) for i, h in enumerate(history) if isinstance(h.get(key), int | float)]
        epochs, values = zip(*rows, strict=True)
        note = "fine-tuning after pruning, " if m.prune is not None else ""
        curves.append(Curve(m.name, key, list(epochs), list(values), m.training.best_epoch, note))
    return curves


def training_curves(summary: Summary) -> bytes | None:
    from matplotlib.ticker import MaxNLocator

    curves = training_series(summary)
    if not curves:
        return None
    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(6.4, 3.2))
    for c in curves:
        (line,) = ax.plot(c.epochs, c.values, lw=1.4, marker="o", ms=2.5)
        best = f", kept epoch {c.best_epoch}" if c.best_epoch in c.epochs else ""
        line.set_label(f"{c.model} ({c.note}last {c.values[-1]:.4g}{best})")
        if c.best_epoch in c.epochs:
            at = c.epochs.index(c.best_epoch)
            ax.scatter([c.best_epoch], [c.values[at]], s=60, facecolor="none", edgecolor=line.get_color(), linewidth=1.4, zorder=4)
    keys = sorted({c.key for c in curves})
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch", fontsize=8)
    ax.set_ylabel(" / ".join(k.replace("_", " ", 1).replace("val ", "validation ") for k in keys), fontsize=8)
    ax.set_title("Training: validation metric per epoch (circle: the epoch kept)", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return png(fig)
