"""The report's figures, drawn with matplotlib from the run summary (pure data in, PNG bytes out): each
model against the reference (plots_ratios), the metric-latency Pareto plot per batch size (plots_pareto),
training curves (plots_training), latency distributions, parity and the distillation controller."""

from __future__ import annotations

import numpy as np

from compress.records import Summary
from compress.report.figure import NEUTRAL, latency_keys, log_axis, main_target, plt, png
from compress.report.plots_pareto import pareto, pareto_front
from compress.report.plots_ratios import ratios
from compress.report.plots_training import training_curves

FIGURES = ("ratios", "pareto", "training", "latency", "parity", "controller", "waterfall")
"""Every figure a report may draw (`waterfall`: what reports before the ratios figure drew), by file name."""

__all__ = ["FIGURES", "ratios", "pareto", "training_curves", "distributions", "parity", "controller", "render_all", "pareto_front"]


def distributions(summary: Summary) -> bytes | None:
    """Empirical distribution (from the stored percentiles) of per-call latency, one panel per target
    and batch size: a curve far to the right of its median means a long tail."""
    pyplot = plt()
    keys = [(t, b) for t, b in latency_keys(summary.models) if any(_quantiles(m, t, b) for m in summary.models)]
    if not keys:  # no stored percentiles anywhere: no figure rather than empty panels
        return None
    cols = min(2, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = pyplot.subplots(rows, cols, figsize=(5.4 * cols, 3.4 * rows + 0.17 * len(summary.models) * rows), squeeze=False)
    for ax, (target, batch) in zip(axes.flat, keys, strict=False):
        for m in summary.models:
            stats = _quantiles(m, target, batch)
            if stats is None:
                continue
            q = np.asarray(stats.quantiles)
            flag = " (noisy: dashed)" if stats.noisy else ""
            label = f"{m.name}: p50 {stats.p50:.3g} ms, p99 {stats.p99:.3g} ms{flag}"
            ax.plot(q, np.linspace(0, 100, len(q)), ls="--" if stats.noisy else "-", label=label)
        log_axis(ax, "x")
        ax.set_xlabel("latency per call (ms, log scale)")
        ax.set_ylabel("percentile")
        ax.set_title(f"{target}, batch {batch}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.tight_layout()
    return png(fig)


def _quantiles(model, target: str, batch: str):
    """The model's latency at (target, batch) when it stored percentiles to draw, else None."""
    found = model.bench[target].latency_ms.get(batch) if target in model.bench else None
    return found if found is not None and found.quantiles else None


def parity(summary: Summary) -> bytes | None:
    """Largest output difference from the model's PyTorch (or FP32) counterpart, log scale, with the
    top-1 agreement written on each bar."""
    pyplot = plt()
    rows = []
    for m in summary.models:
        if m.parity:
            rows.append((f"{m.name}\nONNX vs PyTorch", m.parity))
        if m.quant and m.quant.vs_reference:
            rows.append((f"{m.name}\nINT8 vs {'FP32 ONNX' if m.quant.reference == 'fp32 onnx' else 'fake-quant'}", m.quant.vs_reference))
    if not rows:
        return None
    fig, ax = pyplot.subplots(figsize=(max(4.8, 1.3 * len(rows)), 3.4))
    values = [max(r.max_abs_diff, 1e-12) for _, r in rows]
    ax.bar(range(len(rows)), values, color="#457b9d")
    for i, (_, r) in enumerate(rows):
        agree = f"top-1 {r.top1_agreement:.4f}" if r.top1_agreement is not None else ""
        ax.annotate(
            f"{r.max_abs_diff:.1e}\n{agree}",
            (i, values[i]),
            ha="center",
            va="bottom",
            fontsize=7,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax.set_yscale("log")
    ax.set_ylim(min(values) / 100, max(values) * 30)  # bars rooted well below the smallest value, so heights compare
    ax.set_xticks(range(len(rows)), [name for name, _ in rows], fontsize=7)
    ax.set_ylabel("max abs output difference")
    ax.set_title("Parity: deployed model vs its source, on real test inputs", fontsize=10)
    fig.tight_layout()
    return png(fig)


def controller(summary: Summary) -> bytes | None:
    """Per distilled model with a controller: its choices per epoch (temperature, weight, feature pair)
    above the validation metric they led to; for a search, each trial's setting and score."""
    from matplotlib.ticker import MaxNLocator

    pyplot = plt()
    runs = [(m.name, m.training.controller) for m in summary.models if m.training and m.training.controller]
    if not runs:
        return None
    metric = summary.metric.name if summary.metric else "metric"
    fig, axes = pyplot.subplots(3, len(runs), figsize=(5.2 * len(runs), 6.4), sharex="col", squeeze=False)
    for col, (name, ctl) in enumerate(runs):
        if ctl.kind == "learned":
            decisions = ctl.decisions or []
            x, label = [d.epoch for d in decisions], "epoch"
            pairs = [d.feature_pair for d in decisions]
            values = ([d.temperature for d in decisions], [d.alpha for d in decisions], [d.val for d in decisions])
        else:
            trials = ctl.trials or []
            x, label = [t.index + 1 for t in trials], "trial"
            pairs = [t.params.feature_pair for t in trials]
            values = ([t.params.temperature for t in trials], [t.params.alpha for t in trials], [t.value for t in trials])
        bounds = (ctl.config.temperature, ctl.config.alpha, None)
        for ax, ys, title, bound in zip(
            axes[:, col], values, ("temperature", "alpha (distillation weight)", f"val {metric}"), bounds, strict=True
        ):
            ax.plot(x, ys, color="#8d99ae", lw=1)
            colors = [NEUTRAL if p is None else ("#457b9d", "#e9c46a", "#2a9d8f", "#e76f51")[p % 4] for p in pairs]
            ax.scatter(x, ys, c=colors, s=14, zorder=3)
            if bound is not None:
                for b in bound:
                    ax.axhline(b, color="#bbbbbb", lw=0.8, ls="--")
            ax.set_ylabel(title, fontsize=8)
        axes[0, col].set_title(f"{name}: {ctl.kind} controller (colour: feature pair)", fontsize=9)
        axes[-1, col].set_xlabel(label)
        axes[-1, col].xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return png(fig)


def render_all(summary: Summary, reference: str | None = None) -> dict[str, bytes]:
    """Every figure that has data: {'ratios': png, 'pareto': png, ...}. `reference`: the model the ratios
    compare with when the run has no verdict (with one, the verdict's reference; with neither, the run's
    first model, e.g. the FP32 file an INT8 one was made from)."""
    if summary.verdict is not None:
        reference = summary.verdict.reference
    elif reference is None and len(summary.models) > 1:
        reference = summary.models[0].name
    figures = {
        "ratios": ratios(summary, reference),
        "pareto": pareto(summary, main_target(summary)),
        "training": training_curves(summary),
        "latency": distributions(summary),
        "parity": parity(summary),
        "controller": controller(summary),
    }
    return {name: data for name, data in figures.items() if data is not None}
