"""`benchmark`: every exported model on one or more targets: the task metric computed through each
deployed runtime, parameters, MACs, file size, latency statistics per batch size and memory. The models
are timed interleaved on each target (round r of every model before round r+1 of any), so a change in the
machine's load hits them alike and their round medians pair; the calls, rounds and statistics are those of
`edge-compress bench`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from compress.bench import RUNNERS, Loaded, ModelSource, TimingConfig, make_runner, params_and_macs
from compress.bench.fidelity import compare_outputs
from compress.bench.fingerprint import fingerprint
from compress.bench.interleave import time_interleaved
from compress.bench.runners import Sessions
from compress.config import BatchSizes, ModelName, StageConfig
from compress.context import RunContext
from compress.data.task import predict_numpy
from compress.errors import RecipeError
from compress.fsio import write_json
from compress.records import ModelRecord, TargetBench, merge_scores
from compress.stages.base import Planned, Stage, need, register_stage

__all__ = ["Benchmark"]

Timed = tuple[TargetBench, Sessions | None]
"""One model on one target: what was measured, and its sessions there (None when the target skipped it)."""


class BenchmarkConfig(StageConfig):
    models: list[ModelName] | None = Field(None, description="models to measure; default: every exported model")
    targets: list[str] | None = Field(None, description="targets to measure on (ort-cpu, openvino-cpu, torch-cpu, ...); default: the run's")
    batch_sizes: BatchSizes = Field([1, 32], description="batch sizes to time")
    split: Literal["test", "val"] = Field("test", description="split the metric is computed on")
    timing: TimingConfig = Field(default_factory=TimingConfig, description="warm-up, rounds and iteration counts")

    @field_validator("targets")
    @classmethod
    def _known(cls, targets: list[str] | None) -> list[str] | None:
        for name in targets or []:
            RUNNERS.check(name)
        return targets


@register_stage
class Benchmark(Stage):
    """Measure exported models on each target: metric through the runtime, params, MACs, size, latency, memory."""

    name = "benchmark"
    Config = BenchmarkConfig

    def requires(self) -> list[str]:
        return list(self.cfg.models or [])

    def targets(self) -> list[str]:
        return list(self.cfg.targets or [])

    def plan(self, models: dict[str, Planned]) -> None:
        names = self.cfg.models or [n for n, m in models.items() if m.onnx]
        if not names:
            raise RecipeError("no exported model to measure at this point", fix="add an export stage before benchmark")
        for name in names:
            need(models, name, onnx=True)

    def run(self, ctx: RunContext, cfg: BenchmarkConfig) -> RunContext:
        specs = [ctx.target.model_copy(update={"name": t}) for t in cfg.targets or [ctx.target.name]]
        runners = [make_runner(spec) for spec in specs]  # an unavailable target fails here, before any timing
        names = cfg.models or [n for n, r in ctx.models.items() if r.onnx]
        if not names:
            raise RecipeError("benchmark: no exported model to measure", fix="add an export stage before benchmark")
        parents = {ctx.record(n).parent for n in names if ctx.record(n).kind == "int8"}
        timed = {runner.target: self._time(ctx, runner, names, cfg) for runner in runners}
        kept: dict[tuple[str, str], np.ndarray] = {}  # outputs of the INT8 models' parents, per target
        measured = {name: self._measure(ctx, runners, timed, name, cfg, kept, keep=name in parents) for name in names}
        environments = {r.target: fingerprint(r.describe()) for r in runners}
        results = {"targets": environments, "timing": cfg.timing.model_dump(), "models": measured}
        write_json(ctx.out("results.json"), results)
        ctx.metrics["environment"] = environments
        return ctx

    def _source(self, ctx: RunContext, name: str) -> ModelSource:
        record = ctx.record(name)
        if not record.onnx:
            raise RecipeError(f"benchmark: model {name!r} has no ONNX file", fix="export it in an earlier stage")
        # an INT8 model, and one brought as an ONNX file, exist only as ONNX: no module to time on torch targets
        module = None if record.kind == "int8" or record.spec.onnx is not None else (lambda: ctx.module(name))
        return ModelSource(label=name, onnx=ctx.path(record.onnx), module=module)

    def _measure(
        self,
        ctx: RunContext,
        runners: list,
        timed: dict[str, dict[str, Timed]],
        name: str,
        cfg: BenchmarkConfig,
        kept: dict[tuple[str, str], np.ndarray],
        *,
        keep: bool,
    ) -> dict[str, Any]:
        """Record `name`'s timing on every runner (from `timed`) with its metric and agreement there, and
        return what results.json keeps of it. With `keep`, its outputs per target go in `kept`, where its
        INT8 children measured later find them."""
        source = self._source(ctx, name)
        record = ctx.record(name)
        origin = ctx.record(record.parent) if record.kind == "int8" and record.parent else record  # INT8: its FP32 source's network
        if origin.spec.onnx is None:
            params, macs = params_and_macs(ctx.module(origin.name), ctx.task.example_input(1))
        else:  # brought as an ONNX file: its stored values; MACs are counted on PyTorch modules only
            params, macs = origin.params, origin.macs
        bench, scores = {}, list(record.scores)
        for runner in runners:
            bench[runner.target], sessions = timed[runner.target][name]
            if sessions is None:
                continue
            loaded = sessions.loaded()
            scores = merge_scores(scores, ctx.task.evaluate(loaded, cfg.split), split=cfg.split, runtime=runner.target)
            if keep:
                kept[name, runner.target] = _outputs(ctx, loaded, cfg.split)
            agreement, flag = _vs_fp32(ctx, runner, record, loaded, cfg.split, kept)
            bench[runner.target] = bench[runner.target].model_copy(update={"agreement": agreement, "flag": flag})
        record = ctx.update_model(name, params=params, macs=macs, size_bytes=source.onnx.stat().st_size, scores=scores, bench=bench)
        self._log(ctx, record, cfg.split)
        return record.model_dump(mode="json", include={"params", "macs", "size_bytes", "scores", "bench"})

    def _time(self, ctx: RunContext, runner, names: list[str], cfg: BenchmarkConfig) -> dict[str, Timed]:
        """Every model's latency per batch size and memory on one target, timed interleaved (round r of each
        model before round r+1 of any), with its sessions there (None for a model the target skips)."""
        sources = {name: self._source(ctx, name) for name in names}
        onnx_only = {n for n, s in sources.items() if runner.target.startswith("torch") and s.module is None}
        sessions = {n: Sessions(runner, sources[n], fresh=cfg.timing.fresh_sessions) for n in names if n not in onnx_only}
        batches = {str(b): ctx.task.full_batch(b).numpy() for b in cfg.batch_sizes}
        if len(sessions) > 1:
            fresh = ", each on a fresh load" if cfg.timing.fresh_sessions else ""
            ctx.log(
                f"  timing {len(sessions)} models interleaved on {runner.target}: {cfg.timing.rounds} rounds per batch size"
                f" ({', '.join(batches)}){fresh}, every model once per round"
            )
        found = time_interleaved(sessions, batches, cfg.timing) if sessions else {}
        timed: dict[str, Timed] = {
            n: (TargetBench(runner=runner.describe(), skipped="exists only as ONNX (an INT8 model, or one brought as an ONNX file)"), None)
            for n in onnx_only
        }
        for n, (latency, memory) in found.items():
            timed[n] = TargetBench(runner=runner.describe(), latency_ms=latency, memory=memory), sessions[n]
        return timed

    @staticmethod
    def _log(ctx: RunContext, record: ModelRecord, split: str) -> None:
        metric = ctx.task.metric.name
        found = record.score(metric, split=split)
        parts = []
        for target, bench in record.bench.items():
            times = ", ".join(f"b{b} p50 {s.p50:.3f} ms{' (noisy)' if s.noisy else ''}" for b, s in bench.latency_ms.items())
            close = "" if bench.agreement is None else f", agreement with FP32 {bench.agreement:.4f}"
            parts.append(f"{target}: {times or bench.skipped}{close}")
        shown = "n/a" if found is None else f"{found.value:.4f}"
        ctx.log(f"  {record.name}: {metric} {shown} (deployed runtime), {record.params:,} params; " + "; ".join(parts))
        for bench in (b for b in record.bench.values() if b.flag):
            ctx.log(f"  warning: {record.name}: {bench.flag}")


def _outputs(ctx: RunContext, predict: Callable[[np.ndarray], np.ndarray], split: str) -> np.ndarray:
    return predict_numpy(predict, ctx.task.loader(split, 256))


def _vs_fp32(ctx: RunContext, runner, record: ModelRecord, loaded: Loaded, split: str, kept: dict) -> tuple[float | None, str | None]:
    """An INT8 model against its FP32 parent through the same runner on the same split (the parent's
    outputs from this stage when it measured them, else from a load of its ONNX file here)."""
    parent = ctx.models.get(record.parent) if record.kind == "int8" and record.parent else None
    if parent is None or parent.kind != "fp32" or not parent.onnx:
        return None, None
    reference = kept.get((parent.name, runner.target))
    if reference is None:
        reference = _outputs(ctx, runner.load(ctx.path(parent.onnx)), split)
    outputs, classification = _outputs(ctx, loaded, split), ctx.task.kind == "classification"
    return compare_outputs(reference, outputs, classification=classification, reference_name=parent.name, target=runner.target, split=split)
