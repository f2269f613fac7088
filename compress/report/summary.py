"""`summary.json`: one entry per model the run produced, for CI and scripts. The schema is documented
in README.md ("summary.json"); later stages add entries (pruned, quantized variants) and fields."""

from __future__ import annotations

from typing import Any

from compress.context import ModelRecord, RunContext

__all__ = ["build_summary", "model_entry", "SUMMARY_SCHEMA"]

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
            t: {b: {"p50": s["p50"], "p90": s["p90"]} for b, s in per_b.items()} for t, per_b in m.get("latency_ms", {}).items()
        },
        "parity": m.get("parity"),
        "prune": m.get("prune"),
        "quant": m.get("quant"),
    }


def build_summary(ctx: RunContext) -> dict[str, Any]:
    return {
        "schema_version": SUMMARY_SCHEMA,
        "task": ctx.task.name,
        "target": ctx.target.name,
        "threads": ctx.target.num_threads,
        "models": [model_entry(r) for r in ctx.models.values()],
    }
