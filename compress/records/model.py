"""`ModelRecord`: one model the run produced, what it is, and its typed results."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compress.models.spec import ModelSpec
from compress.records.results import Agreement, LatencyStats, PruneResult, QuantResult, Record, Score, TargetBench, Training

ModelKind = Literal["fp32", "int8"]


class ModelRecord(Record):
    """A model the run produced: how to rebuild it, its files (relative to the run folder), what it is,
    and what was measured."""

    name: str
    stage: str
    spec: ModelSpec
    kind: ModelKind = "fp32"
    parent: str | None = Field(None, description="the model this one was made from: distilled, pruned or quantized from")
    checkpoint: str | None = Field(None, description="FP32 weights (an INT8 model has none: it exists as its ONNX file)")
    onnx: str | None = None
    params: int | None = None
    macs: int | None = None
    size_bytes: int | None = None
    scores: list[Score] = Field(default_factory=list)
    parity: Agreement | None = Field(None, description="ONNX Runtime vs PyTorch on real test inputs (FP32 export)")
    training: Training | None = None
    prune: PruneResult | None = None
    quant: QuantResult | None = None
    bench: dict[str, TargetBench] = Field(default_factory=dict, description="per benchmark target, in the order measured")

    def files(self) -> list[str]:
        return [p for p in (self.checkpoint, self.onnx) if p]

    @property
    def format(self) -> str:
        """`fp32`, or the INT8 format's label (u8s8, u8s8+7bit, ...)."""
        return self.quant.format.label if self.quant is not None else self.kind

    def score(self, metric: str, *, runtime: str | None = None, split: str | None = None) -> Score | None:
        """The score of `metric` through `runtime` (default: the first benchmarked target) on `split`
        (default: test, else whichever split it was measured on)."""
        runtime = runtime or next(iter(self.bench), None)
        found = [s for s in self.scores if s.metric == metric and s.runtime == runtime and split in (None, s.split)]
        return next((s for s in found if s.split == "test"), found[0] if found else None)

    def headline(self, metric: str) -> Score | None:
        """The figure a summary shows for `metric`: through the first benchmarked target (test split first);
        a model never benchmarked (an INT8 file made after the benchmark): as its check measured it on ONNX Runtime."""
        found = self.score(metric)
        if found is None and not self.bench:
            found = self.score(metric, runtime="onnxruntime")
        return found

    def latency(self, batch_size: int | str = 1, *, target: str | None = None) -> LatencyStats | None:
        """Latency at `batch_size` on `target` (default: the first benchmarked target); None if not measured."""
        bench = self.bench.get(target) if target is not None else next(iter(self.bench.values()), None)
        return bench.latency_ms.get(str(batch_size)) if bench is not None else None


def merge_scores(scores: list[Score], values: dict[str, float], *, split: str, runtime: str) -> list[Score]:
    """`scores` with those of one (split, runtime) replaced by `values`."""
    kept = [s for s in scores if (s.split, s.runtime) != (split, runtime)]
    return kept + [Score(split=split, runtime=runtime, metric=k, value=v) for k, v in values.items()]
