"""Render a run summary as Markdown: one comparison table, the ratios to the reference model, parity."""

from __future__ import annotations

from typing import Any

from compress.records import Controller, Deployed, ModelRecord, PruneResult, QuantResult, RunEnvironment, Speed, Summary, Tuning
from compress.report.headline import headline_section

__all__ = ["render_markdown"]


def _num(value: Any, fmt: str = ",") -> str:
    return "n/a" if value is None else format(value, fmt)


def _size(n: int | None) -> str:
    if n is None:
        return "n/a"
    return f"{n / 1024:.1f} KiB" if n < 1024**2 else f"{n / 1024**2:.2f} MiB"


def _stats(model: ModelRecord, target: str, batch: str):
    bench = model.bench.get(target)
    return bench.latency_ms.get(batch) if bench else None


def _latency(model: ModelRecord, target: str, batch: str) -> str:
    stats = _stats(model, target, batch)
    return "n/a" if stats is None else f"{stats.p50:.3f} / {stats.p90:.3f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "n/a" if not a or not b else f"{a / b:.2f}x"


def _metric_change(name: str, new: float, old: float) -> str:
    if name == "accuracy":
        return f"accuracy {100 * (new - old):+.2f} points ({new:.4f} vs {old:.4f})"
    return f"{name} {new - old:+.4g} ({new:.4g} vs {old:.4g})"


def render_markdown(
    summary: Summary, *, title: str, environment: RunEnvironment, reference: str | None, images: dict[str, str] | None = None
) -> str:
    """The report as Markdown. `images` maps figure names (see report.plots) to the source each is
    linked from: a relative PNG path in report.md, a data URI in the self-contained report.html."""
    models = summary.models
    measured = [t for m in models for t, b in m.bench.items() if b.latency_ms]
    target = summary.target if summary.target in measured or not measured else measured[0]
    batches = sorted({b for m in models for b in (m.bench[target].latency_ms if target in m.bench else {})}, key=int)
    metric_name = summary.metric.name if summary.metric else "metric"
    runtimes = list(dict.fromkeys(t for m in models for t, b in m.bench.items() if not b.skipped))
    others = runtimes[1:]  # a metric column each, after the headline one
    first = runtimes[0] if others else "ONNX Runtime"
    head = ["model", "arch", "format", f"{metric_name} ({first}, test)", *(f"{metric_name} ({t}, test)" for t in others)]
    head += ["params", "MACs", "ONNX size"]
    head += [f"latency b{b} p50 / p90 (ms)" for b in batches]
    threads = f"{summary.threads} thread" + ("s" if summary.threads != 1 else "")
    lines = [f"# {title}", "", f"Task `{summary.task}`, target `{target}` with {threads}.", ""]
    lines += [*headline_section(summary), ""] if summary.verdict else []
    cpu = environment.deploy_cpu
    if cpu and cpu.target != cpu.host:
        lines += [f"> Latencies were measured on this `{cpu.host}` machine; the deployment CPU is `{cpu.target}`.", ""]
    if images and "waterfall" in images:
        lines += [f"![What each stage changed]({images['waterfall']})", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in models:
        row = [m.name, m.spec.label, m.format, _metric_cell(summary, m, None), *(_metric_cell(summary, m, t) for t in others)]
        row += [_num(m.params), _num(m.macs), _size(m.size_bytes)]
        lines.append("| " + " | ".join(row + [_latency(m, target, b) for b in batches]) + " |")
    lines += _fidelity_notes(models)
    lines += [] if summary.verdict else _relative_section(summary, reference, target, batches)
    lines += _parity_section(models)
    for m in models:
        if m.prune:
            lines += _prune_section(m.name, m.prune, metric_name)
    quantized = [(m.name, m.quant) for m in models if m.quant]
    if quantized:
        lines += _quant_section(quantized)
    controlled = [(m.name, m.training.controller) for m in models if m.training and m.training.controller]
    if controlled:
        lines += ["", "## Distillation controller", ""]
        lines += [f"![Controller decisions]({images['controller']})"] if images and "controller" in images else []
        for name, ctl in controlled:
            lines += _controller_section(name, ctl, metric_name)
    lines += _figures(images or {})
    lines += _latency_section(models)
    lines += _environment_section(environment)
    return "\n".join(lines)


def _metric_cell(summary: Summary, m: ModelRecord, target: str | None) -> str:
    """The model's metric through `target` (None: its headline figure), marked where an INT8 model's
    agreement with its FP32 parent through that runtime is below the bound."""
    shown = _num(summary.value(m, target), ".4f")
    bench = m.bench.get(target or next(iter(m.bench), ""))
    return f"{shown} ⚠ **agreement with FP32 {bench.agreement:.4f}**" if bench and bench.flag and bench.agreement is not None else shown


def _fidelity_notes(models: list[ModelRecord]) -> list[str]:
    flagged = [(m.name, b.flag) for m in models for b in m.bench.values() if b.flag]
    return ["", *(f"> **Warning:** `{name}`: {flag}." for name, flag in flagged)] if flagged else []


def _relative_section(summary: Summary, reference: str | None, target: str, batches: list[str]) -> list[str]:
    ref = summary.model(reference) if reference else None
    if ref is None:
        return []
    lines = ["", f"Relative to `{reference}`:", ""]
    for m in (m for m in summary.models if m is not ref):
        new, old = summary.value(m), summary.value(ref)
        parts = [_metric_change(summary.metric.name, new, old)] if summary.metric and new is not None and old is not None else []
        parts += [
            f"params {_ratio(m.params, ref.params)}",
            f"MACs {_ratio(m.macs, ref.macs)}",
            f"size {_ratio(m.size_bytes, ref.size_bytes)}",
        ]
        for b in batches:
            a, r = _stats(m, target, b), _stats(ref, target, b)
            parts.append(f"latency b{b} {_ratio(a and a.p50, r and r.p50)}")
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


_CAPTIONS = {
    "pareto": "Accuracy vs latency: every candidate the run produced",
    "latency": "Latency distributions (per call)",
    "parity": "Parity: how closely each deployed model reproduces its source",
}


def _figures(images: dict[str, str]) -> list[str]:
    lines = []
    for name, caption in _CAPTIONS.items():
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
    head = "| model | target | batch | p50 (ms) | p90 | p99 | mean ± std | samples/s | round spread | RSS growth (MiB) |"
    lines = ["", "## Latency", "", head, "|" + "---|" * 10, *rows]
    lines += [
        "",
        "Per-call time after warm-up, in rounds (a fresh load of the model per round unless the target reloads slowly); "
        "p50/p90/p99 over every call. Round spread is the robust coefficient of variation of the round medians; "
        "above the threshold (default 5%) the measurement is marked noisy.",
    ]
    return lines


def _environment_section(env: RunEnvironment) -> list[str]:
    lines = ["", "## Environment", "", f"- CPU: {env.cpu} ({env.cores} cores)", f"- Python {env.python}"]
    cpu = env.deploy_cpu
    if cpu:
        asked = "this machine" if cpu.requested == "auto" else "set in the recipe"
        lines.append(f"- Deployment CPU (INT8 formats are chosen for it): `{cpu.target}`, {asked}; this host: `{cpu.host}`")
        lines.append(f"  - host features: {' '.join(cpu.host_features)}")
    lines += [f"- {k} {v}" for k, v in env.packages.items() if v]
    for target, fp in env.targets.items():
        extra = f", precision {fp.precision_hint}" if fp.precision_hint else ""
        lines.append(f"- target `{target}`: {fp.runtime}, {fp.provider}, {fp.threads} threads{extra}")
        if fp.cpu_flags:
            lines.append(f"  - CPU flags: {' '.join(fp.cpu_flags)}")
    return [*lines, ""]


def _deployed_cell(d: Deployed | None) -> str:
    if d is None or d.deployed is None:
        return "-"
    exact = d.exact.top1_agreement if d.exact else None
    where = d.basis if d.cpu in d.basis else f"{d.basis}, {d.cpu}"
    return f"{d.deployed:.4f} ({where})" + (f" / {exact:.4f}" if exact is not None else "")


def _speed_cell(speed: Speed | None) -> str:
    if speed is None:
        return "-"
    if not speed.measured:
        return "not measured"
    return f"{speed.speedup:.2f}x at b{speed.batch}"


def _quant_notes(name: str, q: QuantResult) -> list[str]:
    notes = []
    d, speed = q.deployed, q.speed
    if d and d.cause:
        notes.append(f"> **Warning:** `{name}`: {d.cause}" + (f"; {d.fix}." if d.fix else "."))
    if d and d.portability:
        notes.append(f"> **Note:** `{name}` was {d.portability}.")
    for r in (r for r in q.recurrent if not r.integer):
        notes.append(f"> **Note:** `{name}`: {r.op} `{r.node}` ({r.weight_share:.0%} of the weights) stays float: {r.why}.")
    if speed and speed.measured and not speed.pays_off:
        notes.append(
            f"> **INT8 does not pay off here:** `{name}` runs {speed.speedup:.2f}x its FP32 file at batch {speed.batch} "
            f"({speed.int8_ms:.3f} vs {speed.fp32_ms:.3f} ms) on this `{d.host if d else 'host'}` CPU."
        )
    return notes


def _unmeasured_note(quantized: list[tuple[str, QuantResult]]) -> list[str]:
    """One line for the INT8 files whose speed was not measured here (the reason is the run's, not theirs)."""
    unmeasured = [(n, q.speed.why) for n, q in quantized if q.speed and not q.speed.measured]
    if not unmeasured:
        return []
    names = ", ".join(f"`{n}`" for n, _ in unmeasured)
    return [f"> Speed against FP32 not measured for {names}: {unmeasured[0][1]}."]


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
        lines += ["", f"Where the pruned model's time goes (ONNX Runtime profile, batch {batch}): "]
        lines += [f"- `{n.node}` ({n.op}): {100 * n.share:.0f}%" for n in prune.dominant_nodes]
    lines += [""] + [f"> **Warning:** {w}" for w in prune.warnings]
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


def _quant_section(quantized: list[tuple[str, QuantResult]]) -> list[str]:
    """Per INT8 model: how it was made and in which format, how closely it agrees where it will run (and
    in exact arithmetic), whether it is faster than its FP32 source here, and what ORT still runs in
    float (the first place to look when INT8 is not faster)."""
    head = (
        "| model | from | method | format | agreement (top-1 / max abs diff; qad: with its fake-quantized twin) | deployed (basis) / exact "
        "| vs FP32 speed | integer ops | float ops ORT runs |"
    )
    lines = ["", "## Quantization", "", head, "|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for name, q in quantized:
        close = q.vs_reference
        agree = f"{close.top1_agreement:.4f} / " if close and close.top1_agreement is not None else ""
        gap = f"{close.max_abs_diff:.3g}" if close else "nan"
        integer = ", ".join(f"{op} x{c}" for op, c in q.integer_ops.items() if op not in ("QuantizeLinear", "DequantizeLinear"))
        left = ", ".join(f"{op} x{c}" for op, c in q.float_ops.items()) or "none"
        lines.append(
            f"| `{name}` | `{q.source}` | {_method(q)} | {q.format.label} | {agree}{gap} | {_deployed_cell(q.deployed)} | {_speed_cell(q.speed)} "
            f"| {integer} | {left} |"
        )
        notes += _quant_notes(name, q)
    notes += _unmeasured_note(quantized)
    lines += ["", *notes] if notes else []
    for name, q in quantized:
        lines += _tuning_lines(name, q.tuning)
    return lines


def _method(q: QuantResult) -> str:
    method = q.method if q.method != "static" else f"static, {(q.calibration or {}).get('method', '')}"
    method += f" ({q.backend})" if q.backend not in ("ort", "qad") else ""
    return method + (", tuned" if q.tuning else "")


def _tuning_lines(name: str, t: Tuning | None) -> list[str]:
    if t is None or not t.trials:
        return []
    lines = ["", f"Tuning `{name}` ({len(t.trials)} trials, {'met' if t.met else 'not met'}; val {t.metric} FP32 {t.fp32:.4f}):", ""]
    for trial in t.trials:
        kept = f", float: {', '.join(trial.exclude_nodes)}" if trial.exclude_nodes else ""
        mark = " (passed)" if trial.passed else ""
        lines.append(f"- {trial.index} {trial.kind}: {trial.method}, per-channel {trial.per_channel}{kept}: {trial.metric:.4f}{mark}")
    return lines
