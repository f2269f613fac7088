"""Latency regression tests: a model against a stored baseline (unpaired rounds) or against a
reference model measured interleaved in the same process (paired rounds, robust on noisy machines),
plus an optional check that the task metric did not drop. The result is a list of checks that the CLI
prints, turns into an exit code and writes as JUnit XML."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from compress.bench.baseline import Baseline
from compress.bench.compare import MIN_PAIRED_ROUNDS, Comparison, compare_interleaved, compare_rounds
from compress.bench.fingerprint import cpu_mismatch, differences, fingerprint
from compress.bench.model_bench import BenchSettings, bench_model, evaluate, inputs_for, model_source, sample_shape
from compress.bench.runners import Sessions, make_runner
from compress.bench.timing import robust_cv
from compress.errors import ArtifactError, CompressError, DataError, RecipeError

__all__ = ["Check", "RegressResult", "against_baseline", "against_reference", "latency_check", "metric_check"]


@dataclass
class Check:
    name: str
    passed: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class RegressResult:
    model: str
    mode: Literal["baseline", "reference"]
    against: str
    checks: list[Check]
    warnings: list[str] = field(default_factory=list)
    environment_differences: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def lines(self) -> list[str]:
        out = [f"{'PASS' if c.passed else 'FAIL'} {c.name}: {c.message}" for c in self.checks]
        return out + [f"warning: {w}" for w in self.warnings]


def latency_check(batch: str, comparison: Comparison, *, max_slowdown: float, alpha: float, against: str) -> Check:
    """Fails only on a 'slower' verdict at `max_slowdown` tolerance (see `Comparison.verdict`)."""
    verdict = comparison.verdict(max_slowdown, alpha)
    cand, ref = np.median(comparison.candidate_ms), np.median(comparison.reference_ms)
    message = (
        f"{verdict}, p50 {cand:.4g} ms vs {ref:.4g} ms ({against}): {comparison.describe()}; "
        f"limit {1 + max_slowdown:.2f}x at alpha {alpha:g}"
    )
    return Check(f"latency[batch={batch}]", verdict != "slower", message, {"verdict": verdict, **comparison.to_dict()})


def metric_check(current: dict[str, Any], reference: dict[str, Any], *, max_drop: float, against: str) -> Check:
    """`max_drop` in the metric's own units (0.01 accuracy = 1 point); for lower-is-better metrics a
    drop is an increase."""
    sign = 1 if current["higher_is_better"] else -1
    drop = sign * (reference["value"] - current["value"])
    message = f"{current['name']} {current['value']:.4f} vs {reference['value']:.4f} ({against}), drop {drop:+.4f}, limit {max_drop:g}"
    return Check(f"metric[{current['name']}]", drop <= max_drop, message, {"drop": drop, "current": current, "reference": reference})


def _noise_warnings(batch: str, rounds: dict[str, list[float]], threshold: float) -> list[str]:
    out = []
    for who, values in rounds.items():
        cv = robust_cv(values)
        if cv > threshold:
            out.append(f"latency[batch={batch}] of the {who} is noisy: round medians vary {100 * cv:.1f}% (threshold {100 * threshold:g}%)")
    return out


def against_baseline(
    model: str | Path,
    baseline: Baseline,
    *,
    baseline_path: str = "baseline",
    max_slowdown: float,
    max_metric_drop: float | None = None,
    alpha: float = 0.05,
    strict_environment: bool = False,
) -> RegressResult:
    """Measure `model` the way the baseline was measured and compare round medians (unpaired)."""
    start = time.perf_counter()
    settings = baseline.settings
    if max_metric_drop is not None and baseline.metric is None:
        raise RecipeError(f"--max-metric-drop needs a metric, and baseline {baseline_path} has none", fix="save it with --task")
    if settings.task is None and settings.input_shape is None:
        settings = settings.model_copy(update={"input_shape": tuple(baseline.model.input_shape)})
    runner = make_runner(settings.target)
    diffs = differences(baseline.fingerprint, fingerprint(runner.describe()))
    if diffs and strict_environment:
        raise ArtifactError(f"this machine differs from baseline {baseline_path}'s ({'; '.join(diffs)})", fix="save a baseline here")
    mismatch = cpu_mismatch(settings.target.cpu)
    if mismatch and strict_environment:
        raise ArtifactError(f"baseline {baseline_path}: {mismatch}", fix="run the regression test on a machine of that CPU kind")
    try:
        current = bench_model(model, settings, runner=runner)
    except DataError as err:
        raise ArtifactError(f"baseline {baseline_path} does not fit {Path(model).name}: {err.message}", fix="save a new baseline") from None
    checks, warnings = [], [f"environment differs from the baseline's: {'; '.join(diffs)}"] if diffs else []
    warnings += [mismatch] if mismatch else []
    for batch, stats in current["latency"].items():
        old = baseline.latency[batch]
        comparison = compare_rounds(stats["round_p50"], old.round_p50, paired=False)
        checks.append(latency_check(batch, comparison, max_slowdown=max_slowdown, alpha=alpha, against="baseline"))
        rounds = {"model": stats["round_p50"], "baseline": old.round_p50}
        warnings += _noise_warnings(batch, rounds, settings.timing.noise_threshold)
    if max_metric_drop is not None and baseline.metric is not None:
        checks.append(metric_check(current["metric"], baseline.metric, max_drop=max_metric_drop, against="baseline"))
    return RegressResult(str(model), "baseline", baseline_path, checks, warnings, diffs, time.perf_counter() - start)


def against_reference(
    model: str | Path,
    reference: str | Path,
    settings: BenchSettings,
    *,
    max_slowdown: float,
    max_metric_drop: float | None = None,
    alpha: float = 0.05,
) -> RegressResult:
    """Measure `model` and `reference` interleaved in this process (paired rounds); no stored state."""
    start = time.perf_counter()
    if settings.timing.rounds < MIN_PAIRED_ROUNDS:
        raise RecipeError(
            f"a reference comparison needs at least {MIN_PAIRED_ROUNDS} rounds, got {settings.timing.rounds}", fix="raise --rounds"
        )
    if max_metric_drop is not None and settings.task is None:
        raise RecipeError("--max-metric-drop needs --task, to compute the metric of both models")
    task = settings.task.load() if settings.task else None
    paths = {"model": Path(model), "reference": Path(reference)}
    shapes = {who: sample_shape(p, settings, task.input_shape if task else None) for who, p in paths.items()}
    if shapes["model"] != shapes["reference"]:
        raise DataError(
            f"the model takes inputs {shapes['model']} and the reference {shapes['reference']}", fix="compare models of one task"
        )
    runner = make_runner(settings.target)
    fresh = settings.timing.fresh_sessions
    sessions = {who: Sessions(runner, model_source(p), fresh=fresh) for who, p in paths.items()}
    checks, warnings = [], [w for w in [cpu_mismatch(settings.target.cpu)] if w]
    for batch in settings.batch_sizes:
        x = inputs_for(shapes["model"], batch, task, settings.split)
        comparison = compare_interleaved(sessions["model"], sessions["reference"], x, settings.timing)
        checks.append(latency_check(str(batch), comparison, max_slowdown=max_slowdown, alpha=alpha, against="reference"))
        rounds = {"model": comparison.candidate_ms, "reference": comparison.reference_ms}
        warnings += _noise_warnings(str(batch), rounds, settings.timing.noise_threshold)
    if max_metric_drop is not None and task is not None:
        metrics = {who: evaluate(s.loaded(), task, settings.split, settings.task, paths[who]) for who, s in sessions.items()}
        checks.append(metric_check(metrics["model"], metrics["reference"], max_drop=max_metric_drop, against="reference"))
    return RegressResult(str(model), "reference", str(reference), checks, warnings, [], time.perf_counter() - start)


def parse_fraction(text: str, option: str = "value") -> float:
    """'10%' -> 0.10, '0.1' -> 0.1; for --max-slowdown."""
    value = text.strip()
    try:
        number = float(value.rstrip("%")) / (100 if value.endswith("%") else 1)
    except ValueError:
        raise CompressError(f"{option} {text!r} is not a fraction", fix="write it like 10% or 0.1") from None
    if not math.isfinite(number) or number < 0:
        raise CompressError(f"{option} {text!r} is not a fraction of 0 or more", fix="write it like 10% or 0.1")
    return number
