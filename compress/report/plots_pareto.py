"""The metric-latency Pareto plot: every benchmarked model at each batch size (a panel each, log latency
axis), the front drawn as the best metric reachable at each latency, the recommended model and the
reference marked, the tolerance line from the verdict, noisy latencies flagged."""

from __future__ import annotations

import math

from compress.records import ModelRecord, Summary
from compress.report.figure import BAD, GOOD, INK, NEUTRAL, NOISY, log_axis, plt, png, stats
from compress.report.verdict import binomial_noise

__all__ = ["pareto", "pareto_figure", "pareto_front", "pareto_batches"]


def pareto_front(points: list[tuple[float, float]], higher_is_better: bool = True) -> list[int]:
    """Indices of the points no other point beats on both latency (lower) and metric, fastest first."""
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


def _candidates(summary: Summary, target: str, batch: str) -> list[ModelRecord]:
    return [m for m in summary.models if summary.value(m, target) is not None and stats(m, target, batch) is not None]


def pareto_batches(summary: Summary, target: str) -> list[str]:
    """The batch sizes with at least one model that has both a metric and a latency on `target`: one panel each."""
    batches = {b for m in summary.models for b in (m.bench[target].latency_ms if target in m.bench else {})}
    return [b for b in sorted(batches, key=int) if _candidates(summary, target, b)]


def pareto(summary: Summary, target: str) -> bytes | None:
    fig = pareto_figure(summary, target)
    return None if fig is None else png(fig)


def pareto_figure(summary: Summary, target: str):
    """The matplotlib figure (one panel per batch size), or None without a metric or a latency."""
    if summary.metric is None:
        return None
    batches = pareto_batches(summary, target)
    if not batches:
        return None
    pyplot = plt()
    cols = min(2, len(batches))
    rows = -(-len(batches) // cols)
    fig, axes = pyplot.subplots(rows, cols, figsize=(6.0 * cols, 4.3 * rows), squeeze=False)
    for ax, batch in zip(axes.flat, batches, strict=False):
        _panel(ax, summary, target, batch)
    for ax in list(axes.flat)[len(batches) :]:
        ax.axis("off")
    handles = _legend(summary, target, batches, axes[0, 0])
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=8, frameon=False)
    metric = summary.metric.name
    fig.suptitle(
        f"{metric} (test, through {target}) vs p50 latency, per batch size: the line is the best {metric} reachable at each latency",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.1 / rows, 1, 1))
    return fig


def _panel(ax, summary: Summary, target: str, batch: str) -> None:
    models = _candidates(summary, target, batch)
    latencies = [stats(m, target, batch) for m in models]
    points = [(s.p50, summary.value(m, target)) for m, s in zip(models, latencies, strict=True)]
    front = pareto_front(points, summary.metric.higher_is_better)
    xs, ys = zip(*points, strict=True)
    right = max(xs) * 1.8
    fx, fy = [points[i][0] for i in front], [points[i][1] for i in front]
    ax.step([*fx, right], [*fy, fy[-1]], where="post", color=GOOD, lw=1.4, zorder=2, label="Pareto front")
    verdict = summary.verdict if summary.verdict is not None and summary.verdict.target == target else None
    for i, (m, s) in enumerate(zip(models, latencies, strict=True)):
        x, y = points[i]
        if s.round_p50 and len(s.round_p50) > 1:  # how far the round medians spread: the latency's own error bar
            spread = [[max(x - min(s.round_p50), 0.0)], [max(max(s.round_p50) - x, 0.0)]]
            ax.errorbar([x], [y], xerr=spread, fmt="none", ecolor=NOISY if s.noisy else NEUTRAL, capsize=3, lw=1.1, zorder=3)
        on_front = i in front
        ax.scatter([x], [y], s=48, zorder=4, marker="s" if verdict and m.name == verdict.reference else "o",
                   facecolor=INK if on_front else "white", edgecolor=NOISY if s.noisy else (INK if on_front else NEUTRAL), linewidth=1.4)  # fmt: skip
        if verdict and m.name == verdict.recommended:
            ax.scatter(
                [x], [y], s=320, marker="*", facecolor="none", edgecolor="#d4a017", linewidth=1.4, zorder=5, label=f"recommended: {m.name}"
            )
    _limits(ax, summary, xs, ys, verdict, target)
    log_axis(ax, "x")
    ax.set_xlim(min(xs) / 1.6, right)
    _labels(ax, models, latencies, points, verdict)
    if verdict is not None:
        _tolerance(ax, summary, verdict, target)
    ax.set_xlabel("p50 latency per call (ms, log scale); whisker: spread of the round medians", fontsize=8)
    ax.set_ylabel(f"{summary.metric.name} (test)", fontsize=8)
    ax.set_title(f"batch {batch}", fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(alpha=0.3, which="both")


def _legend(summary: Summary, target: str, batches: list[str], first) -> list:
    """What the markers mean, then the front and the tolerance line; 'noisy' only where a latency is."""
    from matplotlib.lines import Line2D

    def marker(label: str, **style) -> Line2D:
        return Line2D([], [], ls="none", markersize=7, label=label, **style)

    handles = [
        marker("on the front", marker="o", markerfacecolor=INK, markeredgecolor=INK),
        marker("beaten on both axes", marker="o", markerfacecolor="white", markeredgecolor=NEUTRAL),
    ]
    verdict = summary.verdict if summary.verdict is not None and summary.verdict.target == target else None
    if verdict is not None:
        handles.append(marker(f"reference ({verdict.reference})", marker="s", markerfacecolor=INK, markeredgecolor=INK))
    if any((s := stats(m, target, b)) is not None and s.noisy for m in summary.models for b in batches):
        handles.append(marker("noisy latency", marker="o", markerfacecolor="white", markeredgecolor=NOISY, markeredgewidth=1.6))
    return handles + first.get_legend_handles_labels()[0]


def _limits(ax, summary: Summary, xs, ys, verdict, target: str) -> None:
    """The metric axis spans at least 2% of the values (and three tolerances), so a one-sample change stays small."""
    low, high = min(ys), max(ys)
    if verdict is not None:
        ref = summary.value(summary.model(verdict.reference), target)
        bound = ref - (1 if summary.metric.higher_is_better else -1) * verdict.tolerance
        low, high = min(low, bound), max(high, bound)
    span = max(high - low, 0.02 * max(abs(low), abs(high)), 3 * verdict.tolerance if verdict else 0.0, 2 * _noise(summary, ys), 1e-9)
    middle = (low + high) / 2
    bottom, top = middle - 0.62 * span, middle + 0.62 * span
    if summary.metric.name == "accuracy" and top > 1.0:  # nothing lies above 1: keep the window, move it down
        bottom, top = bottom - (top - 1.0) + 0.04 * span, 1.0 + 0.04 * span
    ax.set_ylim(bottom, top)


def _noise(summary: Summary, ys) -> float:
    """The test-set noise of a difference at the best accuracy (0 for other metrics): the axis spans at least
    twice it, so a change that is not evidence does not fill the panel."""
    if summary.metric.name != "accuracy":
        return 0.0
    best = max(ys)
    return binomial_noise(best, best, summary.metric.test_samples) or 0.0


def _tolerance(ax, summary: Summary, verdict, target: str) -> None:
    ref = summary.value(summary.model(verdict.reference), target)
    higher = summary.metric.higher_is_better
    bound = ref - (1 if higher else -1) * verdict.tolerance
    amount = f"{100 * verdict.tolerance:.2f} points" if summary.metric.name == "accuracy" else f"{verdict.tolerance:.3g}"
    where = "above" if higher else "below"
    ax.axhline(bound, color=BAD, ls="--", lw=0.9, zorder=1, label=f"{verdict.reference} - {amount}: {where} this keeps the metric")
    if summary.metric.name == "accuracy":
        twin = ax.secondary_yaxis("right", functions=(lambda y: 100 * (y - ref), lambda d: ref + d / 100))
        twin.set_ylabel(f"points vs {verdict.reference}", fontsize=8)
        twin.tick_params(labelsize=7)


def _labels(ax, models: list[ModelRecord], latencies, points, verdict) -> None:
    """Names beside the points, moved down when they would overlap one already placed."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    decades = max(math.log10(x1 / x0), 1e-9)
    placed: list[tuple[float, float]] = []
    for m, s, (x, y) in sorted(zip(models, latencies, points, strict=True), key=lambda t: (-t[2][1], t[2][0])):
        u, v = math.log10(x / x0) / decades, (y - y0) / max(y1 - y0, 1e-12)
        shift = sum(1 for pu, pv in placed if abs(pu - u) < 0.22 and abs(pv - v) < 0.06)
        placed.append((u, v - 0.05 * shift))
        name = m.name + (" (reference)" if verdict and m.name == verdict.reference else "") + (" (noisy)" if s.noisy else "")
        left = u > 0.6  # near the right edge: the name goes to the left of its point
        ax.annotate(name, (x, y), fontsize=7.5, xytext=(-6 if left else 6, 4 - 11 * shift), textcoords="offset points",
                    ha="right" if left else "left", color=NOISY if s.noisy else INK)  # fmt: skip
