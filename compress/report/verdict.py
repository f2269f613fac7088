"""The run's decision: each benchmarked model against the reference (metric change, x fewer parameters,
x faster per batch size with a confidence interval), the model to ship (the fastest that keeps the metric
within the tolerance), and the recipe's `acceptance` gates checked on it (a speedup on its interval's lower
bound), also as JUnit XML for CI."""

from __future__ import annotations

import math
from xml.etree import ElementTree as ET

from compress.config import Acceptance
from compress.records import GateCheck, LatencyStats, MetricInfo, ModelRecord, Speedup, Standing, Summary, Verdict

__all__ = ["decide", "junit_xml", "binomial_noise", "change_text", "DEFAULT_DROP"]

DEFAULT_DROP = 0.01
"""Without an acceptance section: one point of accuracy (a higher-is-better metric), else 1% of the reference's value."""


def decide(summary: Summary, acceptance: Acceptance | None) -> Verdict | None:
    """The verdict, or None when the reference was not benchmarked (nothing to compare yet)."""
    reference_name = acceptance.reference if acceptance else "teacher"
    reference = summary.model(reference_name)
    target = (acceptance.target if acceptance else None) or summary.target
    if reference is None or not _latencies(reference, target) or summary.metric is None:
        return None
    ref_value = summary.value(reference, runtime=target)
    tolerance, source = _tolerance(acceptance, summary.metric, ref_value)
    batches = sorted(_latencies(reference, target), key=int)
    standings = [
        _standing(m, reference, summary, summary.metric, target, batches, tolerance)
        for m in summary.models
        if m.name != reference_name and _latencies(m, target)
    ]
    recommended, why = _recommend(standings, batches, tolerance, summary.metric, reference_name)
    verdict = Verdict(
        reference=reference_name,
        target=target,
        tolerance=tolerance,
        tolerance_from=source,
        ranked_by=f"geometric mean of the p50 speedups at batch {', '.join(batches)}",
        standings=standings,
        recommended=recommended,
        why=why,
    )
    return _gated(verdict, acceptance, batches, summary.metric) if acceptance else verdict


def _latencies(model: ModelRecord, target: str) -> dict[str, LatencyStats]:
    bench = model.bench.get(target)
    return bench.latency_ms if bench is not None and not bench.skipped else {}


def _tolerance(acceptance: Acceptance | None, metric: MetricInfo, reference: float | None) -> tuple[float, str]:
    if acceptance is not None and acceptance.max_metric_drop is not None:
        return acceptance.max_metric_drop, "acceptance"
    if metric.higher_is_better or reference is None:
        return DEFAULT_DROP, "default"
    return DEFAULT_DROP * abs(reference), "default"


def _standing(
    model: ModelRecord, reference: ModelRecord, summary: Summary, metric: MetricInfo, target: str, batches: list[str], tolerance: float
) -> Standing:
    value, ref_value = summary.value(model, runtime=target), summary.value(reference, runtime=target)
    change = None if value is None or ref_value is None else value - ref_value
    drop = None if change is None else (-change if metric.higher_is_better else change)
    n = metric.test_samples
    counted = metric.name == "accuracy" and n and change is not None
    return Standing(
        model=model.name,
        metric=value,
        metric_change=change,
        samples_changed=round(change * n) if counted else None,
        noise=binomial_noise(value, ref_value, n) if counted else None,
        params_ratio=_ratio(reference.params, model.params),
        size_ratio=_ratio(reference.size_bytes, model.size_bytes),
        speedup={b: s for b in batches if (s := _speedup(model, reference, target, b)) is not None},
        keeps_metric=drop is not None and drop <= tolerance + 1e-12,
    )


def _ratio(reference: float | None, model: float | None) -> float | None:
    return reference / model if reference and model else None


def binomial_noise(p: float | None, q: float | None, n: int | None) -> float | None:
    """1.96 standard errors of a difference of two accuracies measured on n test samples each."""
    if p is None or q is None or not n:
        return None
    return 1.96 * math.sqrt((p * (1 - p) + q * (1 - q)) / n)


def _speedup(model: ModelRecord, reference: ModelRecord, target: str, batch: str) -> Speedup | None:
    """Reference p50 / model p50, with a 95% bootstrap interval over the benchmark's per-round medians:
    resampled in pairs when both were timed interleaved (round i of each ran back to back), so load that
    hit both alike cancels out; otherwise each side on its own. The interval is widened to hold the p50
    ratio where the two disagree, so it never excludes the figure it stands beside."""
    mine, theirs = _latencies(model, target).get(batch), _latencies(reference, target).get(batch)
    if mine is None or theirs is None or not mine.p50:
        return None
    value = theirs.p50 / mine.p50
    low = high = value
    if len(mine.round_p50 or []) >= 2 and len(theirs.round_p50 or []) >= 2:
        from compress.bench.compare import compare_rounds

        paired = mine.interleaved and theirs.interleaved and mine.round_group == theirs.round_group
        paired = paired and len(mine.round_p50) == len(theirs.round_p50)
        found = compare_rounds(mine.round_p50, theirs.round_p50, paired=paired)
        # the interval is of the round medians' ratio; the p50 ratio of all calls can fall just outside it
        low, high = min(1 / found.ci_high, value), max(1 / found.ci_low, value)
    return Speedup(value=value, low=low, high=high, noisy=mine.noisy or theirs.noisy)


def _mean_speedup(standing: Standing, batches: list[str]) -> float | None:
    found = [standing.speedup[b].value for b in batches if b in standing.speedup]
    return math.exp(sum(map(math.log, found)) / len(found)) if len(found) == len(batches) else None


def _recommend(
    standings: list[Standing], batches: list[str], tolerance: float, metric: MetricInfo, reference: str
) -> tuple[str | None, str]:
    keeping = [(s, m) for s in standings if s.keeps_metric and (m := _mean_speedup(s, batches)) is not None]
    within = f"within {_amount(tolerance, metric)} of {reference}"
    if not keeping:
        closest = next((s for s in standings if s.model == _closest(standings)), None)
        near = f"; the closest is {closest.model} ({change_text(closest, metric)})" if closest else ""
        return None, f"no model keeps {metric.name} {within}{near}"
    best, mean = max(keeping, key=lambda found: found[1])
    return best.model, f"the fastest model that keeps {metric.name} {within}: {mean:.2f}x faster (geometric mean over batch sizes)"


def _closest(standings: list[Standing]) -> str | None:
    """With no model keeping the metric, the gates are checked on the one that comes closest."""
    measured = [s for s in standings if s.metric_change is not None]
    return max(measured, key=lambda s: s.metric_change or 0.0).model if measured else None


def _amount(value: float, metric: MetricInfo) -> str:
    return f"{100 * value:.2f} points" if metric.name == "accuracy" else f"{value:.4g}"


def change_text(standing: Standing, metric: MetricInfo) -> str:
    """The metric change against the reference: in points for accuracy, else as a number."""
    change = standing.metric_change or 0.0
    return f"{100 * change:+.2f} points" if metric.name == "accuracy" else f"{change:+.4g}"


def _gated(verdict: Verdict, acceptance: Acceptance, batches: list[str], metric: MetricInfo) -> Verdict:
    checked = acceptance.model or verdict.recommended or _closest(verdict.standings)
    standing = verdict.standing(checked) if checked else None
    if standing is None:
        missing = f"model {checked!r} was not benchmarked on {verdict.target}" if checked else verdict.why
        gates = [GateCheck(name="model to ship", wanted="a model meeting the gates", measured=missing, passed=False)]
        return verdict.model_copy(update={"checked": checked, "gates": gates, "passed": False})
    gates = _gates(standing, acceptance, batches, metric, verdict.reference)
    return verdict.model_copy(update={"checked": checked, "gates": gates, "passed": all(g.passed for g in gates)})


def _gates(standing: Standing, acceptance: Acceptance, batches: list[str], metric: MetricInfo, reference: str) -> list[GateCheck]:
    gates = []
    if acceptance.max_metric_drop is not None:
        drop = None if standing.metric_change is None else (-1 if metric.higher_is_better else 1) * standing.metric_change
        measured = "not measured" if drop is None else f"{change_text(standing, metric)} vs {reference}"
        wanted = f"drop <= {_amount(acceptance.max_metric_drop, metric)}"
        gates.append(GateCheck(name=f"{metric.name} drop", wanted=wanted, measured=measured, passed=standing.keeps_metric))
    gates += [_speed_gate(batch, wanted, standing.speedup.get(batch)) for batch, wanted in acceptance.speedup_wanted(batches).items()]
    for name, wanted, found in (
        ("fewer parameters", acceptance.min_param_reduction, standing.params_ratio),
        ("smaller ONNX file", acceptance.min_size_reduction, standing.size_ratio),
    ):
        if wanted is not None:
            measured = "not measured" if found is None else f"{found:.2f}x"
            gates.append(GateCheck(name=name, wanted=f">= {wanted:g}x", measured=measured, passed=found is not None and found >= wanted))
    return gates


def _speed_gate(batch: str, wanted: float, found: Speedup | None) -> GateCheck:
    """Passes when the lower bound of the speedup's 95% interval reaches `wanted`: a point estimate that
    one lucky or disturbed round can move is not enough."""
    name, wanting = f"speedup at batch {batch}", f">= {wanted:g}x"
    if found is None:
        return GateCheck(name=name, wanted=wanting, measured="not measured", passed=False)
    measured = f"{found.value:.2f}x [{found.low:.2f}, {found.high:.2f}]" + (" (noisy)" if found.noisy else "")
    passed = found.low >= wanted
    if found.value >= wanted and not passed:
        measured += f": lower bound below {wanted:g}x"
    return GateCheck(name=name, wanted=wanting, measured=measured, passed=passed)


def junit_xml(verdict: Verdict, run: str) -> str:
    """One test case per gate, a failure element (with the figures) for each missed one."""
    failures = sum(not g.passed for g in verdict.gates)
    suites = ET.Element("testsuites", tests=str(len(verdict.gates)), failures=str(failures), errors="0")
    suite = ET.SubElement(suites, "testsuite", name=f"edge-compress acceptance: {run}", tests=str(len(verdict.gates)))
    suite.set("failures", str(failures))
    props = ET.SubElement(suite, "properties")
    for name, value in (("reference", verdict.reference), ("model", verdict.checked or ""), ("target", verdict.target)):
        ET.SubElement(props, "property", name=name, value=value)
    for gate in verdict.gates:
        case = ET.SubElement(suite, "testcase", classname=f"edge-compress.{run}", name=gate.name, time="0")
        line = f"{verdict.checked or 'no model'}: {gate.name}: wanted {gate.wanted}, measured {gate.measured}"
        if not gate.passed:
            ET.SubElement(case, "failure", message=line, type="acceptance").text = line
        ET.SubElement(case, "system-out").text = line
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
