"""`Verdict`: which model the run recommends for its target, each model's standing against the reference,
and the recipe's acceptance gates checked on the recommended model (compress.report.verdict computes it)."""

from __future__ import annotations

from pydantic import Field

from compress.records.results import Record


class Speedup(Record):
    """How many times faster than the reference at one batch size (reference p50 / model p50), with the
    bootstrap confidence interval over the benchmark's rounds."""

    value: float
    low: float
    high: float
    noisy: bool = Field(False, description="either latency was marked noisy by the benchmark (round-to-round spread)")


class Standing(Record):
    """One model against the reference: metric change, x fewer parameters, x smaller file, x faster per batch."""

    model: str
    metric: float | None
    metric_change: float | None = Field(description="model minus reference, in metric units (accuracy: 0.01 = one point)")
    samples_changed: int | None = Field(None, description="the metric change in test samples (classification accuracy)")
    noise: float | None = Field(None, description="test-set sampling noise of the change: 1.96 binomial standard errors")
    params_ratio: float | None = Field(description="reference parameters / model parameters")
    size_ratio: float | None = Field(description="reference ONNX bytes / model ONNX bytes")
    speedup: dict[str, Speedup] = Field(default_factory=dict, description="per batch size")
    keeps_metric: bool = Field(description="the metric drop is within the tolerance")


class GateCheck(Record):
    """One acceptance gate, checked on the recommended (or named) model."""

    name: str
    wanted: str
    measured: str
    passed: bool


class Verdict(Record):
    reference: str
    target: str
    tolerance: float = Field(description="largest tolerated metric drop, in metric units")
    tolerance_from: str = Field(description="'acceptance' (the recipe's) or 'default'")
    ranked_by: str = Field(description="how 'fastest' is decided: the latency measure compared")
    standings: list[Standing]
    recommended: str | None = Field(description="the fastest model that keeps the metric within the tolerance")
    why: str
    checked: str | None = Field(None, description="the model the gates were checked on")
    gates: list[GateCheck] = Field(default_factory=list)
    passed: bool | None = Field(None, description="every gate passed; None without an acceptance section")

    def standing(self, model: str) -> Standing | None:
        return next((s for s in self.standings if s.model == model), None)
