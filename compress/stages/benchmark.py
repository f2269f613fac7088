"""`benchmark`: every exported model on the run's target: the task metric computed through the
deployed runtime, parameters, MACs, file size, and latency per batch size."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from compress.bench import TimingConfig, make_runner, measure, params_and_macs
from compress.config import ModelName, StageConfig
from compress.context import RunContext
from compress.errors import RecipeError
from compress.fsio import write_json
from compress.stages.base import Stage, register_stage

__all__ = ["Benchmark"]


class BenchmarkConfig(StageConfig):
    models: list[ModelName] | None = Field(None, description="models to measure; default: every exported model")
    batch_sizes: list[int] = Field([1, 32], min_length=1, description="batch sizes to time")
    split: Literal["test", "val"] = Field("test", description="split the metric is computed on")
    timing: TimingConfig = Field(default_factory=TimingConfig, description="warm-up and iteration counts")

    @field_validator("batch_sizes")
    @classmethod
    def _positive(cls, sizes: list[int]) -> list[int]:
        if any(b < 1 for b in sizes):
            raise ValueError("batch sizes must be >= 1")
        return sizes


@register_stage
class Benchmark(Stage):
    """Measure exported models on the target: metric through the runtime, params, MACs, size, latency."""

    name = "benchmark"
    Config = BenchmarkConfig

    def requires(self) -> list[str]:
        return list(self.cfg.models or [])

    def run(self, ctx: RunContext, cfg: BenchmarkConfig) -> RunContext:
        runner = make_runner(ctx.target.name, ctx.target.num_threads)
        names = cfg.models or [n for n, r in ctx.models.items() if r.onnx]
        if not names:
            raise RecipeError("benchmark: no exported model to measure", fix="add an export stage before benchmark")
        results = {name: self._measure(ctx, runner, name, cfg) for name in names}
        write_json(ctx.out("results.json"), {"runner": runner.describe(), "timing": cfg.timing.model_dump(), "models": results})
        ctx.metrics.update(results)
        return ctx

    def _measure(self, ctx: RunContext, runner, name: str, cfg: BenchmarkConfig) -> dict[str, Any]:
        record = ctx.record(name)
        if not record.onnx:
            raise RecipeError(f"benchmark: model {name!r} has no ONNX file", fix="export it in an earlier stage")
        onnx_path = ctx.path(record.onnx)
        predict = runner.load(onnx_path)
        scores = ctx.task.evaluate(predict, cfg.split)
        params, macs = params_and_macs(ctx.module(name), ctx.task.example_input(1))
        latency = {}
        for batch_size in cfg.batch_sizes:
            x = ctx.task.full_batch(batch_size).numpy()
            latency[str(batch_size)] = measure(lambda x=x: predict(x), cfg.timing)
        metric = ctx.task.metric.name
        result = {
            "metric": {"name": metric, "value": scores[metric], "split": cfg.split},
            "scores": scores,
            "params": params,
            "macs": macs,
            "size_bytes": onnx_path.stat().st_size,
            "latency_ms": {runner.target: latency},
            "runner": runner.describe(),
        }
        ctx.update_model(name, metrics=result)
        b = cfg.batch_sizes
        ctx.log(
            f"  {name}: {metric} {scores[metric]:.4f} (ONNX Runtime), {params:,} params, "
            + ", ".join(f"batch {s}: p50 {latency[str(s)]['p50']:.3f} ms" for s in b)
        )
        return result
