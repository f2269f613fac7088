"""The report's first section, the one that decides: the model to ship, each model against the reference
as ratios a reader takes in at a glance (x fewer parameters, x faster per batch size with its confidence
interval, metric change with its noise and in test samples), and the acceptance gates."""

from __future__ import annotations

from compress.records import MetricInfo, Standing, Summary, Verdict
from compress.report.words import ratio_words, speed_words

__all__ = ["headline_section"]


def headline_section(summary: Summary) -> list[str]:
    verdict = summary.verdict
    if verdict is None or summary.metric is None:
        return []
    metric = summary.metric
    lines = ["## Verdict", "", _recommendation(verdict), ""]
    batches = sorted({b for s in verdict.standings for b in s.speedup}, key=int)
    head = ["model", f"{metric.name} vs `{verdict.reference}`", "parameters", "ONNX file", *(f"latency p50, batch {b}" for b in batches)]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in verdict.standings:
        name = f"**{s.model}** (recommended)" if s.model == verdict.recommended else s.model
        row = [name, _change(s, metric), _times(s.params_ratio, "fewer", "more"), _times(s.size_ratio, "smaller", "larger")]
        lines.append("| " + " | ".join(row + [_speed(s, b) for b in batches]) + " |")
    lines += ["", _legend(verdict, metric, any(x.noisy for s in verdict.standings for x in s.speedup.values()))]
    return lines + _gates(verdict)


def _recommendation(verdict: Verdict) -> str:
    if verdict.recommended is None:
        return f"**No model to ship:** {verdict.why}."
    return f"**Ship `{verdict.recommended}`** on `{verdict.target}`: {verdict.why}."


def _times(ratio: float | None, better: str, worse: str) -> str:
    return "n/a" if ratio is None else ratio_words(ratio, better, worse)


def _speed(s: Standing, batch: str) -> str:
    x = s.speedup.get(batch)
    if x is None:
        return "n/a"
    text = speed_words(x.value, x.low, x.high)
    return f"{text} (noisy)" if x.noisy else text


def _change(s: Standing, metric: MetricInfo) -> str:
    if s.metric_change is None:
        return "n/a"
    if metric.name != "accuracy":
        return f"{s.metric_change:+.4g}" + ("" if s.keeps_metric else " ✗")
    text = f"{100 * s.metric_change:+.2f} points"
    if s.samples_changed is not None:
        text += f" ({s.samples_changed:+d} of {metric.test_samples} test samples"
        text += f", noise ±{100 * s.noise:.2f})" if s.noise is not None else ")"
    return text + ("" if s.keeps_metric else " ✗")


def _legend(verdict: Verdict, metric: MetricInfo, noisy: bool) -> str:
    tolerance = f"{100 * verdict.tolerance:.2f} points" if metric.name == "accuracy" else f"{verdict.tolerance:.4g}"
    source = "the recipe's acceptance section" if verdict.tolerance_from == "acceptance" else "the default"
    text = (
        f"Each model against `{verdict.reference}`: latency is `{verdict.reference}`'s p50 / the model's p50, with a 95% bootstrap "
        f"interval over the benchmark's rounds (resampled in pairs where the models were timed interleaved); ✗ marks a drop in {metric.name} beyond {tolerance} ({source}). "
        f"The recommended model is ranked by the {verdict.ranked_by}."
    )
    if metric.name == "accuracy":
        text += " Noise is 1.96 binomial standard errors of the difference on the test split: smaller changes are not evidence."
    return text + (" (noisy): the benchmark's rounds varied more than its noise threshold." if noisy else "")


def _gates(verdict: Verdict) -> list[str]:
    if not verdict.gates:
        return []
    outcome = "passed" if verdict.passed else "**FAILED**"
    lines = [
        "",
        f"Acceptance gates on `{verdict.checked}`: {outcome} (JUnit: `acceptance.xml`; a speedup passes on its interval's lower bound).",
        "",
    ]
    lines += ["| gate | wanted | measured | result |", "|---|---|---|---|"]
    lines += [f"| {g.name} | {g.wanted} | {g.measured} | {'pass' if g.passed else '**FAIL**'} |" for g in verdict.gates]
    return lines
