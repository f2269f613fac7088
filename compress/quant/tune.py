"""Accuracy-driven tuning of post-training quantization: try configurations in a fixed, sensible order
and stop at the first whose metric loss against FP32 is within the tolerance.

The order: the configuration as given; the other calibration methods; per-channel weights switched;
then a sensitivity scan (each quantizable layer kept in float alone, which also stops at the first
passing one); then the most sensitive layers kept in float together, two, three, ... Every trial is
returned, passing or not, so the manifest shows what was tried."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["Candidate", "Trial", "TuneResult", "tune"]


@dataclass(frozen=True)
class Candidate:
    method: str
    per_channel: bool
    exclude_nodes: tuple[str, ...] = ()


@dataclass
class Trial:
    index: int
    kind: str  # base | calibration | per_channel | sensitivity | fallback
    candidate: Candidate
    metric: float
    loss: float
    passed: bool
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d |= d.pop("candidate")
        d["exclude_nodes"] = list(d["exclude_nodes"])
        return d


@dataclass
class TuneResult:
    baseline: float
    allowed_loss: float
    trials: list[Trial] = field(default_factory=list)

    @property
    def chosen(self) -> Trial:
        """The first passing trial, or (none passed) the one with the smallest loss."""
        passing = [t for t in self.trials if t.passed]
        return passing[0] if passing else min(self.trials, key=lambda t: t.loss)

    @property
    def met(self) -> bool:
        return any(t.passed for t in self.trials)


class _Stop(Exception):
    pass


def tune(
    evaluate: Callable[[Candidate], float],
    base: Candidate,
    *,
    baseline: float,
    allowed_loss: float,
    higher_is_better: bool,
    layers: list[str],
    methods: tuple[str, ...],
    max_trials: int,
    max_float_layers: int,
) -> TuneResult:
    """`evaluate(candidate)` quantizes with that configuration and returns the validation metric;
    `baseline` is the FP32 model's. `layers` are the node names the sensitivity scan may keep in float."""
    result = TuneResult(baseline=baseline, allowed_loss=allowed_loss)

    def trial(kind: str, candidate: Candidate) -> Trial:
        if len(result.trials) >= max_trials:
            raise _Stop
        start = time.perf_counter()
        metric = evaluate(candidate)
        loss = baseline - metric if higher_is_better else metric - baseline
        t = Trial(len(result.trials), kind, candidate, metric, loss, loss <= allowed_loss, time.perf_counter() - start)
        result.trials.append(t)
        if t.passed:
            raise _Stop
        return t

    try:
        best = trial("base", base)
        for method in (m for m in methods if m != base.method):
            best = min(best, trial("calibration", replace(base, method=method)), key=lambda t: t.loss)
        flipped = trial("per_channel", replace(best.candidate, per_channel=not best.candidate.per_channel))
        start = min(best, flipped, key=lambda t: t.loss).candidate
        scan = [(trial("sensitivity", _keep(start, [layer])), layer) for layer in layers if layer not in start.exclude_nodes]
        ranked = [layer for t, layer in sorted(scan, key=lambda s: s[0].loss)]  # most sensitive first: keeping it float helps most
        for k in range(2, min(max_float_layers, len(ranked)) + 1):
            trial("fallback", _keep(start, ranked[:k]))
    except _Stop:
        pass
    return result


def _keep(candidate: Candidate, layers: list[str]) -> Candidate:
    return replace(candidate, exclude_nodes=(*candidate.exclude_nodes, *layers))
