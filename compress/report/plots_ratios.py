"""Each model against the reference, as the ratios a reader takes in at a glance: x fewer parameters and
MACs, x smaller file, x faster per batch size (reference / model, log axis centred on 1x, so 14x fewer
and 14x more are the same length), and the metric change in points beside the test set's sampling noise
and the tolerance, on an axis that starts at no change (a one-sample change looks like one)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from compress.records import ModelRecord, Summary
from compress.report.figure import BAD, GOOD, INK, NOISY, latency_keys, plt, png, short, stats
from compress.report.verdict import binomial_noise
from compress.report.words import ratio_words

__all__ = ["Bar", "RatioPanel", "MetricRow", "ratio_panels", "metric_rows", "ratios", "ratios_figure", "shared_limits"]


@dataclass(frozen=True)
class Bar:
    """One model in a panel: `ratio` is reference / model (above 1: better), `value` the model's own figure."""

    model: str
    ratio: float
    value: float
    low: float | None = None
    high: float | None = None
    noisy: bool = False


@dataclass(frozen=True)
class RatioPanel:
    title: str
    unit: str
    better: str
    worse: str
    reference_value: float
    bars: list[Bar]


@dataclass(frozen=True)
class MetricRow:
    model: str
    change: float
    samples: int | None
    noise: float | None
    keeps: bool | None


def ratio_panels(summary: Summary, reference: str) -> list[RatioPanel]:
    """One panel per quantity measured on both the reference and another model, ratios reference / model."""
    ref = summary.model(reference)
    if ref is None:
        return []
    quantities = [
        ("parameters", "", "fewer", "more", lambda m: m.params),
        ("MACs per sample", "", "fewer", "more", lambda m: m.macs),
        ("ONNX file", "KiB", "smaller", "larger", lambda m: m.size_bytes and m.size_bytes / 1024),
    ]
    panels = [_panel(summary, ref, title, unit, better, worse, get) for title, unit, better, worse, get in quantities]
    panels += [_latency_panel(summary, ref, target, batch) for target, batch in latency_keys(summary.models)]
    return [p for p in panels if p is not None]


def _panel(summary: Summary, ref: ModelRecord, title: str, unit: str, better: str, worse: str, get) -> RatioPanel | None:
    base = get(ref)
    bars = [Bar(m.name, base / v, v) for m in summary.models if m is not ref and base and (v := get(m))]
    return RatioPanel(title, unit, better, worse, base, bars) if bars else None


def _latency_panel(summary: Summary, ref: ModelRecord, target: str, batch: str) -> RatioPanel | None:
    """p50 speedups; the verdict's bootstrap interval where it compared on this target."""
    theirs = stats(ref, target, batch)
    if theirs is None or not theirs.p50:
        return None
    verdict = summary.verdict if summary.verdict is not None and summary.verdict.target == target else None
    bars = []
    for m in (m for m in summary.models if m is not ref):
        mine = stats(m, target, batch)
        if mine is None or not mine.p50:
            continue
        standing = verdict.standing(m.name) if verdict else None
        found = standing.speedup.get(batch) if standing else None
        low, high = (found.low, found.high) if found else (None, None)
        bars.append(Bar(m.name, theirs.p50 / mine.p50, mine.p50, low, high, mine.noisy or theirs.noisy))
    title = f"latency p50, batch {batch}" + ("" if target == summary.target else f", {target}")
    return RatioPanel(title, "ms", "faster", "slower", theirs.p50, bars) if bars else None


def metric_rows(summary: Summary, reference: str) -> list[MetricRow]:
    """The metric change of every other model (model - reference); noise and tolerance from the verdict."""
    ref = summary.model(reference)
    if ref is None or summary.metric is None or summary.value(ref) is None:
        return []
    verdict = summary.verdict if summary.verdict is not None and summary.verdict.reference == reference else None
    rows = []
    for m in (m for m in summary.models if m is not ref):
        standing = verdict.standing(m.name) if verdict else None
        if standing is not None and standing.metric_change is not None:
            rows.append(MetricRow(m.name, standing.metric_change, standing.samples_changed, standing.noise, standing.keeps_metric))
        elif (value := summary.value(m)) is not None:
            rows.append(_row(m.name, value, summary.value(ref), summary.metric))
    return rows


def _row(name: str, value: float, reference: float, metric) -> MetricRow:
    """A change without a verdict: its sampling noise and test samples computed here (classification accuracy)."""
    n = metric.test_samples if metric.name == "accuracy" else None
    samples = round((value - reference) * n) if n else None
    return MetricRow(name, value - reference, samples, binomial_noise(value, reference, n), None)


def ratios(summary: Summary, reference: str | None) -> bytes | None:
    fig = ratios_figure(summary, reference)
    return None if fig is None else png(fig)


def ratios_figure(summary: Summary, reference: str | None):
    """One panel per quantity, models top to bottom in the order the run made them; every ratio panel on
    the same log scale, so 44x fewer parameters and 2.8x faster are drawn as different as they are."""
    if reference is None:
        return None
    panels, rows = ratio_panels(summary, reference), metric_rows(summary, reference)
    count = len(panels) + (1 if rows else 0)
    if count == 0:
        return None
    pyplot = plt()
    cols = min(3, count)
    models = max([len(p.bars) for p in panels] + [len(rows)])
    height = 1.3 + 0.42 * models
    fig, axes = pyplot.subplots(-(-count // cols), cols, figsize=(4.5 * cols, height * -(-count // cols)), squeeze=False)
    recommended = summary.verdict.recommended if summary.verdict else None
    flat = list(axes.flat)
    if rows:
        _metric_panel(flat[0], rows, summary, reference, recommended)
    scale = shared_limits(panels)
    for ax, panel in zip(flat[1 if rows else 0 :], panels, strict=False):
        _ratio_panel(ax, panel, reference, recommended, scale)
    for ax in flat[count:]:
        ax.axis("off")
    fig.suptitle(f"Each model against `{reference}`: bars to the right of 1x are better (same log scale in every ratio panel)", fontsize=10)
    fig.tight_layout()
    return fig


def _ends(bar: Bar) -> list[float]:
    return [bar.ratio] + [e for e in (bar.low, bar.high) if e is not None]


def shared_limits(panels: list[RatioPanel]) -> tuple[float, float]:
    """One x range for every ratio panel: from 1/2 (or the worst ratio) to the best, with room for the labels."""
    ends = [e for p in panels for b in p.bars for e in _ends(b)] or [1.0]
    low, high = min(min(ends), 1.0), max(max(ends), 2.0)
    decades = math.log10(high / min(low, 0.5))
    return min(low, 0.5) / 10 ** (0.05 * decades), high * 10 ** (0.45 * decades)


def _ticks(low: float, high: float) -> list[float]:
    steps = [10.0**k * m for k in range(-4, 5) for m in (1, 2, 5)]
    found = [t for t in steps if low <= t <= high]
    return found if len(found) <= 9 else [t for t in found if math.log10(t).is_integer() or t in (0.5, 2)]


def _ylabels(ax, names: list[str], values: list[str], recommended: str | None) -> None:
    texts = [f"{n} (ship)" if n == recommended else n for n in names]
    ax.set_yticks(range(len(names)), [f"{t}\n{v}" if v else t for t, v in zip(texts, values, strict=True)], fontsize=7)
    for label, name in zip(ax.get_yticklabels(), names, strict=True):
        label.set_fontweight("bold" if name == recommended else "normal")
    ax.invert_yaxis()  # the first model on top


def _ratio_panel(ax, panel: RatioPanel, reference: str, recommended: str | None, limits: tuple[float, float]) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    for i, bar in enumerate(panel.bars):
        left, right = sorted((1.0, bar.ratio))
        color = GOOD if bar.ratio >= 1 else BAD
        ax.barh(
            i, right - left, left=left, height=0.6, color=color, hatch="///" if bar.noisy else None, edgecolor=NOISY if bar.noisy else color
        )
        if bar.low is not None and bar.high is not None and bar.high > bar.low:
            ax.errorbar(
                bar.ratio,
                i,
                xerr=[[max(bar.ratio - bar.low, 0.0)], [max(bar.high - bar.ratio, 0.0)]],
                fmt="none",
                color=INK,
                capsize=2,
                lw=0.8,
            )
        text = ratio_words(bar.ratio, panel.better, panel.worse) + (" (noisy)" if bar.noisy else "")
        ax.annotate(text, (max(*_ends(bar), 1.0), i), xytext=(4, 0), textcoords="offset points", va="center", fontsize=7,
                    color=INK if bar.ratio >= 1 else BAD, fontweight="normal" if bar.ratio >= 1 else "bold")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlim(*limits)
    ax.xaxis.set_major_locator(FixedLocator(_ticks(*limits)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x" if v >= 1 else f"1/{1 / v:g}"))
    ax.tick_params(axis="x", labelsize=7)
    ax.axvline(1, color=INK, lw=0.9)
    unit = f" {panel.unit}" if panel.unit else ""
    _ylabels(ax, [b.model for b in panel.bars], [short(b.value) + unit for b in panel.bars], recommended)
    ax.set_title(f"{panel.title}: x {panel.better} (reference {reference}: {short(panel.reference_value)}{unit})", fontsize=8.5)
    ax.set_xlabel(f"reference / model, log scale (left of 1x: {panel.worse})", fontsize=7)
    ax.grid(axis="x", alpha=0.25)


def _metric_panel(ax, rows: list[MetricRow], summary: Summary, reference: str, recommended: str | None) -> None:
    """Change in points (accuracy) or metric units: bars from zero, each model's test-set noise band around
    zero, the tolerance dashed; the labels to the right of everything in their row."""
    metric = summary.metric
    accuracy = metric.name == "accuracy"
    scale, unit = (100, "points") if accuracy else (1, metric.name)
    verdict = summary.verdict if summary.verdict is not None and summary.verdict.reference == reference else None
    sign = 1 if metric.higher_is_better else -1
    edges = [0.0]
    tol = -sign * verdict.tolerance * scale if verdict is not None else None
    for i, row in enumerate(rows):
        noise, change = (row.noise or 0.0) * scale, row.change * scale
        if noise:
            ax.fill_betweenx([i - 0.42, i + 0.42], -noise, noise, color="#d5dbe3", lw=0)
        good = row.keeps if row.keeps is not None else sign * row.change >= 0
        ax.barh(i, change, height=0.6, color=GOOD if good else BAD)
        edges += [change, noise, -noise]
    if tol is not None:
        ax.axvline(tol, color=BAD, ls="--", lw=1.1, zorder=3)
        edges.append(tol)
    low, high = min(edges), max(edges)
    width = max(high - low, 1e-9)
    ax.set_xlim(low - 0.06 * width, high + 0.75 * width)
    for i, row in enumerate(rows):
        change = row.change * scale
        text = (f"{change:+.2f}" if accuracy else f"{change:+.3g}") + (f" ({row.samples:+d} samples)" if row.samples is not None else "")
        right = max(change, (row.noise or 0.0) * scale, 0.0, tol or 0.0)
        ax.annotate(text, (right, i), xytext=(4, 0), textcoords="offset points", va="center", fontsize=7)
    ax.axvline(0, color=INK, lw=0.9)
    _ylabels(ax, [r.model for r in rows], ["" for _ in rows], recommended)
    value = summary.value(summary.model(reference))
    ax.set_title(f"{metric.name} change vs reference {reference} ({value:.4g}), {unit}", fontsize=8.5)
    notes = ["grey: test-set noise (95%)"] if any(r.noise for r in rows) else []
    notes += ["dashed: tolerance"] if verdict is not None else []
    ax.set_xlabel(f"model - reference, {unit}" + (f"; {', '.join(notes)}" if notes else ""), fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.25)
