"""`benchmark`: every exported model on one or more targets: the task metric computed through each
deployed runtime, parameters, MACs, file size, latency statistics per batch size and memory. Uses the
same measurement code as `edge-compress bench`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from compress.bench import RUNNERS, ModelSource, TimingConfig, make_runner, params_and_macs
from compress.bench.fingerprint import fingerprint
from compress.bench.model_bench import evaluate, time_batches
from compress.bench.runners import Sessions
from compress.config import BatchSizes, ModelName, StageConfig
from compress.context import RunContext
from compress.errors import RecipeError
from compress.fsio import write_json
from compress.stages.base import Stage, register_stage

__all__ = ["Benchmark"]


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

    def run(self, ctx: RunContext, cfg: BenchmarkConfig) -> RunContext:
        specs = [ctx.target.model_copy(update={"name": t}) for t in cfg.targets or [ctx.target.name]]
        runners = [make_runner(spec) for spec in specs]  # an unavailable target fails here, before any timing
        names = cfg.models or [n for n, r in ctx.models.items() if r.onnx]
        if not names:
            raise RecipeError("benchmark: no exported model to measure", fix="add an export stage before benchmark")
        results = {name: self._measure(ctx, runners, name, cfg) for name in names}
        environments = {r.target: fingerprint(r.describe()) for r in runners}
        write_json(ctx.out("results.json"), {"targets": environments, "timing": cfg.timing.model_dump(), "models": results})
        ctx.metrics.update(results)
        ctx.metrics["environment"] = environments
        return ctx

    def _source(self, ctx: RunContext, name: str) -> ModelSource:
        record = ctx.record(name)
        if not record.onnx:
            raise RecipeError(f"benchmark: model {name!r} has no ONNX file", fix="export it in an earlier stage")
        # an INT8 model exists only as ONNX: its record's module is the FP32 network it came from
        module = None if record.metrics.get("quant") else (lambda: ctx.module(name))
        return ModelSource(label=name, onnx=ctx.path(record.onnx), module=module)

    def _measure(self, ctx: RunContext, runners: list, name: str, cfg: BenchmarkConfig) -> dict[str, Any]:
        source = self._source(ctx, name)
        params, macs = params_and_macs(ctx.module(name), ctx.task.example_input(1))
        result: dict[str, Any] = {"params": params, "macs": macs, "size_bytes": source.onnx.stat().st_size}
        latency, memory, metrics, skipped = {}, {}, {}, {}
        for runner in runners:
            if runner.target.startswith("torch") and source.module is None:
                skipped[runner.target] = "INT8 model: exists only as ONNX"
                continue
            sessions = Sessions(runner, source, fresh=cfg.timing.fresh_sessions)
            batches = {str(b): ctx.task.full_batch(b).numpy() for b in cfg.batch_sizes}
            latency[runner.target], memory[runner.target] = time_batches(sessions, batches, cfg.timing)
            metrics[runner.target] = evaluate(sessions.loaded(), ctx.task, cfg.split, None)
        primary = next(iter(metrics.values()), None)
        result.update(metric=primary and {k: primary[k] for k in ("name", "value", "split")}, metric_by_target=metrics, latency_ms=latency)
        result.update(scores=primary and primary["scores"], memory=memory, skipped_targets=skipped)
        result.update(runner=runners[0].describe(), runners={r.target: r.describe() for r in runners})
        ctx.update_model(name, metrics=result)
        self._log(ctx, name, result)
        return result

    @staticmethod
    def _log(ctx: RunContext, name: str, result: dict[str, Any]) -> None:
        metric = result["metric"] or {"name": "metric", "value": float("nan")}
        parts = []
        for target, per_batch in result["latency_ms"].items():
            times = ", ".join(f"b{b} p50 {s['p50']:.3f} ms{' (noisy)' if s['noisy'] else ''}" for b, s in per_batch.items())
            parts.append(f"{target}: {times}")
        ctx.log(f"  {name}: {metric['name']} {metric['value']:.4f} (deployed runtime), {result['params']:,} params; " + "; ".join(parts))
