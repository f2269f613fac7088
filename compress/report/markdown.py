"""Render a run summary as Markdown: the verdict and each model against the reference first, then the
comparison table (noisy latencies marked), the figures, parity, pruning, quantization, every latency
with its spread, and the run itself (stage times, files, recipe, environment)."""

from __future__ import annotations

from typing import Any

from compress.records import Controller, ModelRecord, PruneResult, RunEnvironment, Summary
from compress.report.figure import main_target, stats
from compress.report.headline import headline_section
from compress.report.markdown_quant import quant_section
from compress.report.markdown_run import environment_section, run_line, run_section
from compress.report.run_info import RunInfo
from compress.report.words import blockquotes, ratio_words

__all__ = ["render_markdown"]


def _num(value: Any, fmt: str = ",") -> str:
    return "n/a" if value is None else format(value, fmt)


def _size(n: int | None) -> str:
    if n is None:
        return "n/a"
    return f"{n / 1024:.1f} KiB" if n < 1024**2 else f"{n / 1024**2:.2f} MiB"


def _latency(model: ModelRecord, target: str, batch: str) -> str:
    found = stats(model, target, batch)
    if found is None:
        return "n/a"
    return f"{found.p50:.3f} / {found.p90:.3f}" + (" **(noisy)**" if found.noisy else "")


def _ratio(reference: float | None, model: float | None, better: str, worse: str) -> str:
    return "n/a" if not reference or not model else ratio_words(reference / model, better, worse)


def _metric_change(name: str, new: float, old: float) -> str:
    if name == "accuracy":
        return f"accuracy {100 * (new - old):+.2f} points ({new:.4f} vs {old:.4f})"
    return f"{name} {new - old:+.4g} ({new:.4g} vs {old:.4g})"


def render_markdown(
    summary: Summary,
    *,
    title: str,
    environment: RunEnvironment,
    reference: str | None,
    images: dict[str, str] | None = None,
    run: RunInfo | None = None,
) -> str:
    """The report as Markdown. `images` maps figure names (see report.plots) to the source each is
    linked from: a relative PNG path in report.md, a data URI in the self-contained report.html. `run`:
    the run's date, stage times and recipe (from its manifest), shown when given."""
    images = images or {}
    models = summary.models
    target = main_target(summary)
    batches = sorted({b for m in models for b in (m.bench[target].latency_ms if target in m.bench else {})}, key=int)
    threads = f"{summary.threads} thread" + ("s" if summary.threads != 1 else "")
    lines = [f"# {title}", "", f"Task `{summary.task}`, target `{target}` with {threads}.", "", *run_line(run)]
    lines += [*headline_section(summary), ""] if summary.verdict else []
    lines += _image(images, "ratios", "Each model against the reference")
    cpu = environment.deploy_cpu
    if cpu and cpu.target != cpu.host:
        lines += [f"> Latencies were measured on this `{cpu.host}` machine; the deployment CPU is `{cpu.target}`.", ""]
    lines += _main_table(summary, target, batches)
    lines += _fidelity_notes(models)
    lines += [] if summary.verdict else _relative_section(summary, reference, target, batches)
    lines += _figures(images, _leading_captions(summary))
    lines += _untracked_training(models) if "training" in images else []
    lines += _parity_section(models)
    for m in models:
        if m.prune:
            lines += _prune_section(m.name, m.prune, summary.metric.name if summary.metric else "metric")
    quantized = [(m.name, m.quant) for m in models if m.quant]
    if quantized:
        lines += quant_section(quantized)
    lines += _controller_block(summary, images)
    lines += _figures(images, _TRAILING_CAPTIONS)
    lines += _latency_section(models)
    lines += run_section(run, models)
    lines += environment_section(environment)
    return "\n".join(lines)


def _main_table(summary: Summary, target: str, batches: list[str]) -> list[str]:
    """One row per model: what it is, its metric through each runtime, size, and its latencies (noisy ones marked)."""
    models = summary.models
    metric_name = summary.metric.name if summary.metric else "metric"
    runtimes = list(dict.fromkeys(t for m in models for t, b in m.bench.items() if not b.skipped))
    others = runtimes[1:]  # a metric column each, after the headline one
    first = runtimes[0] if others else "ONNX Runtime"
    head = ["model", "arch", "format", f"{metric_name} ({first}, test)", *(f"{metric_name} ({t}, test)" for t in others)]
    head += ["params", "MACs", "ONNX size", *(f"latency b{b} p50 / p90 (ms)" for b in batches)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in models:
        row = [m.name, m.spec.label, m.format, _metric_cell(summary, m, None), *(_metric_cell(summary, m, t) for t in others)]
        row += [_num(m.params), _num(m.macs), _size(m.size_bytes)]
        lines.append("| " + " | ".join(row + [_latency(m, target, b) for b in batches]) + " |")
    if any((s := stats(m, target, b)) is not None and s.noisy for m in models for b in batches):
        lines += ["", NOISY_NOTE]
    return lines


NOISY_NOTE = (
    "**(noisy)**: the benchmark's round medians of that latency varied more than its noise threshold (5% by default): "
    "measure again on a quieter machine, or with more rounds, before relying on it."
)


def _image(images: dict[str, str], name: str, caption: str) -> list[str]:
    return [f"![{caption}]({images[name]})", ""] if name in images else []


def _controller_block(summary: Summary, images: dict[str, str]) -> list[str]:
    controlled = [(m.name, m.training.controller) for m in summary.models if m.training and m.training.controller]
    if not controlled:
        return []
    metric_name = summary.metric.name if summary.metric else "metric"
    lines = ["", "## Distillation controller", "", *_image(images, "controller", "Controller decisions")]
    for name, ctl in controlled:
        lines += _controller_section(name, ctl, metric_name)
    return lines


def _untracked_training(models: list[ModelRecord]) -> list[str]:
    """Models fine-tuned without a per-epoch history (pruning records its steps instead): said, not left out silently."""
    missing = [m.name for m in models if m.prune and not (m.training and m.training.history)]
    if not missing:
        return []
    names = ", ".join(f"`{n}`" for n in missing)
    return ["", f"{names}: fine-tuned while pruning; its validation metric is recorded per pruning step (see Pruning), not per epoch."]


def _metric_cell(summary: Summary, m: ModelRecord, target: str | None) -> str:
    """The model's metric through `target` (None: its headline figure), marked where an INT8 model's
    agreement with its FP32 parent through that runtime is below the bound."""
    shown = _num(summary.value(m, target), ".4f")
    bench = m.bench.get(target or next(iter(m.bench), ""))
    return f"{shown} ⚠ **agreement with FP32 {bench.agreement:.4f}**" if bench and bench.flag and bench.agreement is not None else shown


def _fidelity_notes(models: list[ModelRecord]) -> list[str]:
    return blockquotes([f"> **Warning:** `{m.name}`: {b.flag}." for m in models for b in m.bench.values() if b.flag])


def _relative_section(summary: Summary, reference: str | None, target: str, batches: list[str]) -> list[str]:
    ref = summary.model(reference) if reference else None
    if ref is None:
        return []
    lines = ["", f"Relative to `{reference}`:", ""]
    for m in (m for m in summary.models if m is not ref):
        new, old = summary.value(m), summary.value(ref)
        parts = [_metric_change(summary.metric.name, new, old)] if summary.metric and new is not None and old is not None else []
        parts += [
            f"params {_ratio(ref.params, m.params, 'fewer', 'more')}",
            f"MACs {_ratio(ref.macs, m.macs, 'fewer', 'more')}",
            f"size {_ratio(ref.size_bytes, m.size_bytes, 'smaller', 'larger')}",
        ]
        for b in batches:
            a, r = stats(m, target, b), stats(ref, target, b)
            noisy = " (noisy)" if (a and a.noisy) or (r and r.noisy) else ""
            parts.append(f"latency b{b} {_ratio(r and r.p50, a and a.p50, 'faster', 'slower')}{noisy}")
        lines.append(f"- `{m.name}`: " + ", ".join(parts))
    return lines


def _parity_section(models: list[ModelRecord]) -> list[str]:
    checked = [m for m in models if m.parity]
    if not checked:
        return []
    lines = ["", "ONNX vs PyTorch on real test inputs:", ""]
    for m in checked:
        p = m.parity
        agree = f", top-1 agreement {p.top1_agreement:.4f}" if p.top1_agreement is not None else ""
        lines.append(f"- `{m.name}`: max abs diff {p.max_abs_diff:.2e} over {p.samples} samples{agree}")
    return lines


def _leading_captions(summary: Summary) -> dict[str, str]:
    metric = summary.metric.name if summary.metric else "metric"
    return {
        "pareto": f"{metric[:1].upper()}{metric[1:]} vs latency: every candidate the run produced",
        "training": "Training curves",
    }


_TRAILING_CAPTIONS = {
    "latency": "Latency distributions (per call)",
    "parity": "Parity: how closely each deployed model reproduces its source",
}


def _figures(images: dict[str, str], captions: dict[str, str]) -> list[str]:
    lines = []
    for name, caption in captions.items():
        if name in images:
            lines += ["", f"## {caption}", "", f"![{caption}]({images[name]})"]
    return lines


def _latency_section(models: list[ModelRecord]) -> list[str]:
    """Every latency measurement with its spread; noisy ones are marked, not hidden."""
    rows = []
    for m in models:
        for target, bench in m.bench.items():
            growth = bench.memory.rss_growth_mb if bench.memory else None
            for batch, s in bench.latency_ms.items():
                if s.p99 is None:
                    continue
                noisy = "**noisy**" if s.noisy else "ok"
                mem = "n/a" if growth is None else f"{growth:.1f}"
                rows.append(
                    f"| `{m.name}` | {target} | {batch} | {s.p50:.4g} | {s.p90:.4g} | {s.p99:.4g} | "
                    f"{s.mean:.4g} ± {s.std:.2g} | {s.throughput:,.0f} | {100 * (s.round_cv or 0):.1f}% {noisy} | {mem} |"
                )
    if not rows:
        return []
    head = "| model | target | batch | p50 (ms) | p90 (ms) | p99 (ms) | mean ± std (ms) | samples/s | round spread | RSS growth (MiB) |"
    lines = ["", "## Latency", "", head, "|" + "---|" * 10, *rows]
    lines += [
        "",
        "Per-call time after warm-up, in rounds (a fresh load of the model per round unless the target reloads slowly); "
        "p50/p90/p99 over every call. Round spread is the robust coefficient of variation of the round medians; "
        "above the threshold (default 5%) the measurement is marked noisy.",
    ]
    return lines


def _prune_section(name: str, prune: PruneResult, metric_name: str) -> list[str]:
    """The pruning curve of one model: every step's size, measured latency and validation metric."""
    target = prune.target
    batch = prune.curve[0].latency_ms.batch_size
    lines = ["", f"## Pruning `{name}`", ""]
    lines.append(
        f"Importance `{prune.importance}`, target {target.kind} {target.value:g} "
        f"({'met' if prune.target_met else 'not met'}); measured speedup {prune.speedup:.2f}x for "
        f"{prune.mac_reduction:.2f}x fewer MACs."
    )
    if prune.layers:
        worst = max(prune.layers, key=prune.layers.__getitem__)
        lines.append(
            f"Channels removed: the measured fraction of the pruned layers' output channels; the most any one layer "
            f"lost is {100 * prune.layers[worst]:.0f}% (`{worst}`)."
        )
    if prune.final_latency_ms:
        lat = prune.final_latency_ms
        lines.append(f"Final model, timed in rounds alternating with the unpruned one: b{lat.batch_size} p50 {lat.p50:.3f} ms.")
    head = ["step", "channels removed", "channels", "params", "MACs", f"latency b{batch} p50 / p90 (ms)", f"val {metric_name}"]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in prune.curve:
        step = f"{p.step} (final fine-tune)" if p.final else str(p.step)
        row = [step, f"{100 * p.ratio:.0f}%", str(p.channels), _num(p.params), _num(p.macs)]
        row += [f"{p.latency_ms.p50:.3f} / {p.latency_ms.p90:.3f}", f"{p.val:.4f}"]
        lines.append("| " + " | ".join(row) + " |")
    if prune.dominant_nodes:
        lines += ["", f"Where the pruned model's time goes (ONNX Runtime profile, batch {batch}):", ""]
        lines += [f"- `{n.node}` ({n.op}): {100 * n.share:.0f}%" for n in prune.dominant_nodes]
    lines += blockquotes([f"> **Warning:** {w}" for w in prune.warnings])
    return lines


def _controller_section(name: str, ctl: Controller, metric: str) -> list[str]:
    """What the distillation controller (learned) or the search chose for `name`, and what it scored."""
    lines = ["", f"### `{name}` ({ctl.kind})", ""]
    if ctl.kind == "learned":
        lines.append("Chosen before each epoch; reward: " + ("gain" if ctl.config.reward == "gain" else "level") + f" of val {metric}.")
        head = ["epoch", "temperature", "alpha", "feature pair", f"val {metric}", "agreement", "reward"]
        rows = [[d.epoch, d.temperature, d.alpha, d.feature_pair, d.val, d.agreement, d.reward] for d in ctl.decisions or []]
    else:
        trials = ctl.trials or []
        lines.append(f"Optuna TPE, {len(trials)} trials of {ctl.epochs_per_trial} epochs each; the best trial's student is kept.")
        head = ["trial", "temperature", "alpha", "feature pair", f"best val {metric}"]
        rows = [[t.index + 1, t.params.temperature, t.params.alpha, t.params.feature_pair, t.value] for t in trials]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join("-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |")
    return lines
