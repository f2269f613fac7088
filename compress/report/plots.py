"""The report's figures, drawn with matplotlib from the run summary (pure data in, PNG bytes out):
a per-stage waterfall, the accuracy-latency Pareto plot, latency distributions and parity."""

from __future__ import annotations

import io

import numpy as np

from compress.records import ModelRecord, Summary

__all__ = ["waterfall", "pareto", "distributions", "parity", "controller", "render_all", "pareto_front", "bar_bases"]

_GOOD, _BAD, _FIRST = "#2a9d8f", "#e76f51", "#8d99ae"


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display; set before pyplot is imported
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)
    return buf.getvalue()


def _p50(model: ModelRecord, target: str, batch: str) -> float | None:
    bench = model.bench.get(target)
    stats = bench.latency_ms.get(batch) if bench else None
    return stats.p50 if stats else None


def _quantities(summary: Summary) -> list[tuple[str, str, bool, list[float | None]]]:
    """(title, unit, lower is better, value per model) for every panel of the waterfall."""
    models = summary.models
    rows: list[tuple[str, str, bool, list[float | None]]] = [
        ("parameters", "", True, [m.params for m in models]),
        ("MACs per sample", "", True, [m.macs for m in models]),
        ("ONNX size", "KiB", True, [m.size_bytes and m.size_bytes / 1024 for m in models]),
    ]
    if summary.metric:
        values = [summary.value(m) for m in models]
        rows.append((f"{summary.metric.name} (test)", "", not summary.metric.higher_is_better, values))
    for target, batch in _latency_keys(models):
        rows.append((f"latency p50, {target}, batch {batch}", "ms", True, [_p50(m, target, batch) for m in models]))
    return rows


def _latency_keys(models: list[ModelRecord]) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    for m in models:
        for target, bench in m.bench.items():
            keys += [(target, b) for b in bench.latency_ms if (target, b) not in keys]
    return keys


def waterfall(summary: Summary) -> bytes:
    """One panel per quantity; models in the order the run made them. Each bar floats from the value of
    the model it was made from (its `parent`: distilled, pruned or quantized from) to its own, green where
    it improved and red where it got worse; a model made from nothing (trained, loaded) stands on its own."""
    plt = _plt()
    names = [m.name for m in summary.models]
    parents = [names.index(m.parent) if m.parent in names else None for m in summary.models]
    panels = [q for q in _quantities(summary) if any(v is not None for v in q[3])]
    metric_title = summary.metric.name if summary.metric else "\0"
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 3.2 * rows), squeeze=False)
    for ax, (title, unit, lower_better, values) in zip(axes.flat, panels, strict=False):
        _waterfall_panel(ax, names, values, parents, lower_better, zero_based=not title.startswith(metric_title))
        ax.set_title(title + (f" ({unit})" if unit else ""), fontsize=9)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle("What each stage changed (green: better, red: worse than the model it was made from)", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def _waterfall_panel(
    ax, names: list[str], values: list[float | None], parents: list[int | None], lower_better: bool, *, zero_based: bool
) -> None:
    from matplotlib.ticker import FuncFormatter

    known = [v for v in values if v is not None]
    for i, (v, base) in enumerate(zip(values, bar_bases(values, parents), strict=True)):
        if v is None:
            continue
        if base is None:
            ax.bar(i, v, color=_FIRST)
            label = _short(v)
        else:
            better = (v < base) == lower_better or v == base
            ax.bar(i, v - base, bottom=base, color=_GOOD if better else _BAD)
            ax.plot([parents[i] - 0.4, i + 0.4], [base, base], color="#555", lw=0.6, ls=":")
            label = f"{_short(v)} ({v / base:.2f}x)" if zero_based and base else _short(v)
        ax.annotate(label, (i, v), ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
    lo, hi = min(known), max(known)
    if zero_based:
        ax.set_ylim(0, hi * 1.22 if hi > 0 else 1)
    else:  # a metric: zoom on the values so a one-point change is visible
        pad = max(hi - lo, abs(hi) * 0.002, 1e-6)
        ax.set_ylim(lo - pad, hi + 0.6 * pad)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _short(v)))
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)


def bar_bases(values: list[float | None], parents: list[int | None]) -> list[float | None]:
    """Where each waterfall bar starts: the value of the model it was made from, or None (it stands alone)."""
    return [values[p] if p is not None else None for p in parents]


def _short(v: float) -> str:
    if abs(v) >= 1e6:
        return f"{v / 1e6:.2f}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"


def _log_x(ax) -> None:
    """Log scale with plain tick labels (0.03, not 3x10^-2)."""
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.1e}"[0] in "25" else ""))
    ax.tick_params(axis="x", which="both", labelsize=7)


def pareto_front(points: list[tuple[float, float]], higher_is_better: bool = True) -> list[int]:
    """Indices of the points no other point beats on both latency (lower) and metric."""
    sign = 1 if higher_is_better else -1
    front = []
    for i, (lat, met) in enumerate(points):
        dominated = any(
            (lat2 <= lat and sign * met2 >= sign * met) and (lat2 < lat or sign * met2 > sign * met)
            for j, (lat2, met2) in enumerate(points)
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def pareto(summary: Summary, target: str, batch: str) -> bytes | None:
    """Metric (test, through the runtime) against p50 latency for every benchmarked model; pruning
    steps (validation metric, timed while pruning) in a separate series; the front joined by a line."""
    plt = _plt()
    if summary.metric is None:
        return None
    models = [m for m in summary.models if summary.value(m, target) is not None and _p50(m, target, batch) is not None]
    if not models:
        return None
    metric = summary.metric.name
    points = [(_p50(m, target, batch), summary.value(m, target)) for m in models]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.scatter(*zip(*points, strict=True), s=40, color="#264653", zorder=3, label=f"models (test {metric})")
    for m, (x, y) in zip(models, points, strict=True):
        ax.annotate(m.name, (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
    front = pareto_front(points, summary.metric.higher_is_better)
    ax.plot([points[i][0] for i in front], [points[i][1] for i in front], color=_GOOD, lw=1.2, zorder=2, label="Pareto front")
    for m in summary.models:
        curve = m.prune.curve if m.prune else []
        if curve and str(curve[0].latency_ms.batch_size) == batch:  # timed at another batch size: not on this axis
            ax.scatter(
                [p.latency_ms.p50 for p in curve],
                [p.val for p in curve],
                s=14,
                marker="x",
                color=_BAD,
                zorder=2,
                label=f"pruning steps of {m.name} (val, batch {curve[0].latency_ms.batch_size})",
            )
    _log_x(ax)
    ax.set_xlabel(f"latency p50 (ms, {target}, batch {batch}, log scale)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs latency: every candidate of the run", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _png(fig)


def distributions(summary: Summary) -> bytes | None:
    """Empirical distribution (from the stored percentiles) of per-call latency, one panel per target
    and batch size: a curve far to the right of its median means a long tail."""
    plt = _plt()
    keys = _latency_keys(summary.models)
    if not keys:
        return None
    cols = min(2, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.4 * cols, 3.4 * rows), squeeze=False)
    for ax, (target, batch) in zip(axes.flat, keys, strict=False):
        for m in summary.models:
            stats = m.bench[target].latency_ms.get(batch) if target in m.bench else None
            if not stats or not stats.quantiles:
                continue
            q = np.asarray(stats.quantiles)
            flag = " (noisy)" if stats.noisy else ""
            ax.plot(q, np.linspace(0, 100, len(q)), label=f"{m.name}: p50 {stats.p50:.3g}, p99 {stats.p99:.3g}{flag}")
        _log_x(ax)
        ax.set_xlabel("latency per call (ms, log scale)")
        ax.set_ylabel("percentile")
        ax.set_title(f"{target}, batch {batch}", fontsize=9)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # no model has stored percentiles for this target and batch
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def parity(summary: Summary) -> bytes | None:
    """Largest output difference from the model's PyTorch (or FP32) counterpart, log scale, with the
    top-1 agreement written on each bar."""
    plt = _plt()
    rows = []
    for m in summary.models:
        if m.parity:
            rows.append((f"{m.name}\nONNX vs PyTorch", m.parity))
        if m.quant and m.quant.vs_reference:
            rows.append((f"{m.name}\nINT8 vs {'FP32 ONNX' if m.quant.reference == 'fp32 onnx' else 'fake-quant'}", m.quant.vs_reference))
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(max(4.8, 1.3 * len(rows)), 3.4))
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
    return _png(fig)


def controller(summary: Summary) -> bytes | None:
    """Per distilled model with a controller: its choices per epoch (temperature, weight, feature pair)
    above the validation metric they led to; for a search, each trial's setting and score."""
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    runs = [(m.name, m.training.controller) for m in summary.models if m.training and m.training.controller]
    if not runs:
        return None
    metric = summary.metric.name if summary.metric else "metric"
    fig, axes = plt.subplots(3, len(runs), figsize=(5.2 * len(runs), 6.4), sharex="col", squeeze=False)
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
            colors = [_FIRST if p is None else ("#457b9d", "#e9c46a", "#2a9d8f", "#e76f51")[p % 4] for p in pairs]
            ax.scatter(x, ys, c=colors, s=14, zorder=3)
            if bound is not None:
                for b in bound:
                    ax.axhline(b, color="#bbbbbb", lw=0.8, ls="--")
            ax.set_ylabel(title, fontsize=8)
        axes[0, col].set_title(f"{name}: {ctl.kind} controller (colour: feature pair)", fontsize=9)
        axes[-1, col].set_xlabel(label)
        axes[-1, col].xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return _png(fig)


def render_all(summary: Summary) -> dict[str, bytes]:
    """Every figure that has data: {'waterfall': png, ...}."""
    keys = _latency_keys(summary.models)
    pruned_at = {str(m.prune.curve[0].latency_ms.batch_size) for m in summary.models if m.prune and m.prune.curve}
    ranked = sorted(keys, key=lambda k: (k[0] != summary.target, k[1] not in pruned_at))  # the run's target; pruning's batch if measured
    target, batch = ranked[0] if ranked else (summary.target, "1")
    figures = {
        "waterfall": waterfall(summary),
        "pareto": pareto(summary, target, batch),
        "latency": distributions(summary),
        "parity": parity(summary),
        "controller": controller(summary),
    }
    return {name: png for name, png in figures.items() if png is not None}
