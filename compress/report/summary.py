"""`summary.json`: one entry per model the run produced, for CI and scripts. The schema is documented
in README.md ("summary.json"); later stages add entries (pruned, quantized variants) and fields."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from compress.bench.runners import TargetSpec
from compress.context import ModelRecord, RunContext

__all__ = ["build_summary", "summary_of", "model_entry", "SUMMARY_SCHEMA"]

SUMMARY_SCHEMA = 1


def model_entry(record: ModelRecord) -> dict[str, Any]:
    m = record.metrics
    return {
        "name": record.name,
        "stage": record.stage,
        "arch": record.spec.label,
        "checkpoint": record.checkpoint,
        "onnx": record.onnx,
        "metric": m.get("metric"),
        "params": m.get("params"),
        "macs": m.get("macs"),
        "size_bytes": m.get("size_bytes"),
        "latency_ms": {
            t: {b: {k: v for k, v in s.items() if k != "round_p50"} for b, s in per_b.items()}
            for t, per_b in m.get("latency_ms", {}).items()
        },
        "metric_by_target": m.get("metric_by_target"),
        "memory": m.get("memory"),
        "parity": m.get("parity"),
        "prune": m.get("prune"),
        "quant": m.get("quant"),
        "distill": m.get("distill"),
    }


def build_summary(ctx: RunContext) -> dict[str, Any]:
    return summary_of(ctx.task.name, ctx.target, ctx.models.values())


def summary_of(task: str, target: TargetSpec, records: Iterable[ModelRecord]) -> dict[str, Any]:
    """The summary from plain records: what a run context holds, or what a manifest replays."""
    return {
        "schema_version": SUMMARY_SCHEMA,
        "task": task,
        "target": target.name,
        "threads": target.num_threads,
        "models": [model_entry(r) for r in records],
    }
